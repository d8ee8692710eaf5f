"""The URL map as the access tests see it (no tests here; test_reliability_access.py, _csrf.py and
_roles.py import it).

``url_patterns()`` walks ``django.urls.get_resolver()`` and lists every pattern. Each one is in exactly
one of:

- ``KEYED``: the URL (or, for ``applications:open``, the form) names an object. Its factory makes the
  request about the objects of one side of the world (``Side``): alice's 文龙社区 or bob's 天桥社区.
- ``OWN``: no object key; the page shows the user's own scope only. Its factory makes the request, and
  the test checks that nothing of the other side appears in the answer.
- ``PUBLIC``: no sign-in by design, with the reason.

The API is listed the same way from its OpenAPI document (``API_KEYED``, ``API_OWN``, ``API_PUBLIC``),
with ``api_paths_of_url_map()`` tying the document's paths to the URL map. A new pattern or path that
is in none of them fails the tests until someone decides which it is and writes its factory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.files.base import ContentFile
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.api.actions import do_create_api_token
from wuyiqu.applications.models import Application, ApplicationStatus, Attachment, AttachmentKind
from wuyiqu.audit.models import AuditEvent
from wuyiqu.certification.models import Title
from wuyiqu.health.models import HeldFacts, Measure, MeasureKind
from wuyiqu.imports.services import create_job
from wuyiqu.inspections.models import Incident, IncidentType
from wuyiqu.lib.dates import today
from wuyiqu.notifications.models import Notification
from wuyiqu.supervision.models import Warning
from wuyiqu.units.models import TITLE_BY_KIND, Household, Resident, TransferRequest, Unit, UnitKind

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


# --- the URL map -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name"; a pattern without a name is "<namespace>:<route>"
    route: str  # the full route, e.g. "units/<str:code>/ledger/"
    keys: tuple[str, ...]  # the URL's keyword arguments
    callback: Callable


def url_patterns() -> list[Route]:
    """Every pattern of the URL map, include()s followed to the end."""
    out: list[Route] = []

    def walk(patterns, prefix: str, namespace: str | None):
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = ":".join(x for x in (namespace, p.namespace) if x) or None
                walk(p.url_patterns, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern):
                route = prefix + str(p.pattern)
                name = p.name or f"<{route}>"
                keys = tuple(getattr(p.pattern, "converters", {}) or p.pattern.regex.groupindex)
                out.append(Route(f"{namespace}:{name}" if namespace else name, route, keys, p.callback))

    walk(get_resolver().url_patterns, "/", None)
    return out


# --- the two sides of the world ---------------------------------------------------------------------------

@dataclass
class Side:
    """One community's objects: everything a URL can name, made for the access tests."""

    staff: Any  # the community's staff account (alice or bob)
    community: Unit
    compound: Unit
    building: Unit
    household: Household
    resident: Resident
    measure: Measure
    job: Any
    application: Application
    attachment: Attachment
    title: Title  # current, of the compound
    withdrawn: Title  # of the building
    warning: Warning
    notification: Notification
    token_secret: str = ""
    account: Any = None  # an account the side's staff manage (the building head of ``building``)
    opinion: Any = None  # a negative opinion (负面舆情) on ``building``, to be handled and accepted
    held: Any = None  # facts another building's token sent about the resident, waiting (health.HeldFacts)
    transfer: Any = None  # a request to move the resident into another household of the community

    @property
    def markers(self) -> list[str]:
        """Strings only a page about this side would contain."""
        return [self.community.code, self.community.name, self.compound.name, self.building.name,
                self.resident.name, f"/applications/{self.application.pk}/", self.title.certificate_number,
                *([self.account.username] if self.account else [])]


def _error_workbook() -> bytes:
    """A job's ``error_workbook`` as an import keeps it (encrypted, ``imports.errorbook``): one refused row."""
    import base64
    import io

    from openpyxl import Workbook

    from wuyiqu.lib import crypto

    book = Workbook()
    book.active.append(["户号", "错误原因"])
    book.active.append(["X-1", "户号重复"])
    out = io.BytesIO()
    book.save(out)
    return crypto.cipher().encrypt(base64.b64encode(out.getvalue()).decode("ascii"))


def make_side(staff) -> Side:
    """Objects of ``staff``'s community (alice's or bob's, from the ``world`` fixture), one of each kind
    a URL can name. Written directly: the access tests are about reading them, not about making them."""
    community = staff.unit
    compound = Unit.objects.filter(path__startswith=community.path, kind=UnitKind.COMPOUND).order_by("code").first()
    building = Unit.objects.filter(path__startswith=compound.path, kind=UnitKind.BUILDING,
                                   ).order_by("code").first()
    # A resident whose name no one else has: the tests look for it in pages that must not name them.
    resident = next(r for r in Resident.objects.filter(household__unit__path__startswith=building.path)
                    .select_related("household").order_by("id") if Resident.objects.filter(name=r.name).count() == 1)
    household = resident.household
    on = today()
    measure = Measure.objects.create(resident=resident, unit=household.unit, id_hash=resident.id_hash,
                                     id_masked=resident.id_masked, kind=MeasureKind.HOME_QUARANTINE,
                                     start_on=on - dt.timedelta(days=2), end_on=on + dt.timedelta(days=5))
    job = create_job(kind="households", filename="h.csv", actor=staff, scope=community)
    # One refused row, and the workbook of it to download (web:import_error_workbook, linked beside it).
    job.invalid, job.errors, job.error_workbook = 1, [{"line": 2, "field": "code", "message": "户号重复"}], _error_workbook()
    job.save(update_fields=["invalid", "errors", "error_workbook"])
    application = Application.objects.create(unit=building, title=TITLE_BY_KIND[building.kind],
                                             status=ApplicationStatus.DRAFT, token=f"tok{building.pk:06d}x")
    attachment = Attachment(application=application, kind=AttachmentKind.PHOTO, original_name="p.png",
                            content_type="image/png", size=len(PNG), sha256="0" * 64)
    attachment.file.save("scan.png", ContentFile(PNG), save=False)
    attachment.save()
    title = Title.objects.create(unit=compound, title=TITLE_BY_KIND[compound.kind], named_on=on - dt.timedelta(days=30),
                                 certificate_number=f"WYQ-T-{compound.pk:06d}")
    withdrawn = Title.objects.create(unit=building, title=TITLE_BY_KIND[building.kind], named_on=on - dt.timedelta(days=60),
                                     withdrawn_on=on - dt.timedelta(days=1), withdrawn_reason="核查",
                                     certificate_number=f"WYQ-T-{building.pk:06d}")
    warning = Warning.objects.create(unit=compound, title=title, criterion="manual", detail="楼道堆放杂物",
                                     opened_on=on, deadline=on + dt.timedelta(days=3))
    notification = Notification.objects.create(user=staff, text="待办", link=f"/applications/{application.pk}/")
    account = do_create_user(actor=None, username=f"head-{building.code}", password="correct-horse-battery",
                             role="building_head", unit=building, display_name="楼栋长")
    opinion = Incident.objects.create(unit=building, occurred_on=on, incident_type=IncidentType.NEGATIVE_OPINION,
                                      description="业主群抱怨")
    side = Side(staff, community, compound, building, household, resident, measure, job, application, attachment,
                title, withdrawn, warning, notification, account=account, opinion=opinion)
    other_building = Unit.objects.filter(path__startswith=community.path, kind=UnitKind.BUILDING).exclude(
        pk=building.pk).order_by("code").first()
    side.held = HeldFacts.objects.create(id_hash=resident.id_hash, resident=resident, scope_unit=other_building,
                                         measures=1)
    side.transfer = TransferRequest.objects.create(
        resident=resident, from_household=household,
        to_household=Household.objects.filter(unit__path__startswith=community.path).exclude(pk=household.pk)
        .order_by("code").first())
    return side


def give_token(side: Side) -> str:
    """An API token for the side's community with every read scope, every fact kind and the review
    step of its staff; its secret (also kept on the side)."""
    from wuyiqu.api.models import FACT_KINDS, SCOPES

    _token, secret = do_create_api_token(actor=None, name=f"all-{side.community.code}", unit=side.community,
                                         kinds=list(FACT_KINDS), scopes=list(SCOPES), acts_as=side.staff, days=30)
    side.token_secret = secret
    return secret


def snapshot(*, audit: bool = True) -> dict[str, Any]:
    """Everything a refused request must leave as it was (the tables the pages and the API write); with
    ``audit`` False, without the audit rows (every API call writes one, refused or not)."""
    from wuyiqu.applications.models import CoSignature, ReviewStep
    from wuyiqu.health.models import MeasureChange, NatResult, PositiveCase
    from wuyiqu.imports.models import ImportJob
    from wuyiqu.inspections.models import Incident, Inspection

    models = [Application, Attachment, CoSignature, ReviewStep, Measure, MeasureChange, NatResult, PositiveCase,
              Title, Warning, Notification, Inspection, Incident, ImportJob]
    state: dict[str, Any] = {m._meta.label: list(m.objects.order_by("pk").values_list()) for m in models}
    if audit:
        state["audit"] = AuditEvent.objects.count()
    return state


# --- requests ----------------------------------------------------------------------------------------------

@dataclass
class Probe:
    """One request about an object: the URL's arguments, and what goes in the query or the form."""

    kwargs: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    note: str = ""


Factory = Callable[[Side, Side], list[Probe]]  # (the side the request is about, the asker's own side)


def _code(unit_of: Callable[[Side], Unit]) -> Factory:
    return lambda t, _h: [Probe({"code": unit_of(t).code})]


def _application(data: dict | None = None) -> Factory:
    return lambda t, _h: [Probe({"application_id": t.application.pk}, data=dict(data or {}))]


def _measure(t: Side, _h: Side) -> list[Probe]:
    return [Probe({"measure_id": t.measure.pk}, data={"on": (today() + dt.timedelta(days=1)).isoformat(),
                                                       "reason": "核实"})]


def _day() -> str:
    return today().isoformat()


def _an_hour_ago() -> str:
    """A sampling time that is in the past at any time of day (08:30 today is not, before 08:30)."""
    return (timezone.localtime() - dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")


def _zone(t: Side, _h: Side) -> list[Probe]:
    from wuyiqu.health.models import RiskZone

    # Lifted with an end in the past: the zone never covers today.
    zone, _new = RiskZone.objects.get_or_create(unit=t.community, zone_type="temporary",
                                                start_on=today() - dt.timedelta(days=20))
    lifted_on = (today() - dt.timedelta(days=19)).isoformat()
    return [Probe({"code": t.community.code, "zone_id": zone.pk}, data={"end_on": lifted_on})]


def _ledger_entry(t: Side, _h: Side) -> list[Probe]:
    from wuyiqu.units.models import SpecialPopulationEntry

    SpecialPopulationEntry.objects.get_or_create(resident=t.resident, defaults={"tags": "chronic"})
    return [Probe({"resident_id": t.resident.pk})]


KEYED: dict[str, Factory] = {
    "web:unit": lambda t, _h: [Probe({"code": t.community.code}), Probe({"code": t.building.code})],
    "web:ledger": _code(lambda s: s.community),
    "web:import": _code(lambda s: s.community),
    "web:import_template": lambda t, _h: [Probe({"code": t.community.code, "kind": "households"})],
    "web:household": lambda t, _h: [Probe({"code": t.household.code})],
    "web:resident_reveal": lambda t, _h: [Probe({"resident_id": t.resident.pk})],
    "web:import_job": lambda t, _h: [Probe({"job_id": t.job.pk})],
    # The preview's form; the side's job is not a preview, so about one's own it answers 409 (refused, named).
    "web:import_confirm": lambda t, _h: [Probe({"job_id": t.job.pk}, data={"action": "confirm"})],
    "web:import_error_workbook": lambda t, _h: [Probe({"job_id": t.job.pk})],
    "health:measures": _code(lambda s: s.community),
    "health:measures_xlsx": _code(lambda s: s.community),
    "health:testing": _code(lambda s: s.community),
    "health:testing_xlsx": _code(lambda s: s.community),
    "health:timeline": lambda t, _h: [Probe({"resident_id": t.resident.pk})],
    "health:measure": lambda t, _h: [Probe({"measure_id": t.measure.pk})],
    "health:end_measure_early": _measure,
    "health:extend_measure": _measure,
    "web:decide_transfer": lambda t, _h: [Probe({"transfer_id": t.transfer.pk}, data={"decision": "refuse",
                                                                                      "reason": "核实"})],
    "health:decide_held_facts": lambda t, _h: [Probe({"held_id": t.held.pk}, data={"decision": "discard",
                                                                                   "reason": "核实"})],
    "standards:assessment": _code(lambda s: s.community),
    "inspections:record": lambda t, _h: [Probe({"code": t.building.code}, data={
        "inspected_on": _day(), "inspector": "张三", **{f"item_{i}": "pass" for i in (
            "masks", "entrance", "vehicles", "visitors", "disinfection", "garbage", "environment")}})],
    "inspections:incident": lambda t, _h: [Probe({"code": t.community.code}, data={
        "occurred_on": _day(), "incident_type": "fight", "description": "楼道争执"})],
    "inspections:opinion_handled": lambda t, _h: [Probe({"code": t.building.code, "incident_id": t.opinion.pk},
                                                        data={"handled_on": _day(), "note": "已上门解释"})],
    "inspections:opinion_accept": lambda t, _h: [Probe({"code": t.building.code, "incident_id": t.opinion.pk})],
    "inspections:opinion_return": lambda t, _h: [Probe({"code": t.building.code, "incident_id": t.opinion.pk},
                                                       data={"reason": "处置说明不足"})],
    # The unit to apply for is in the form, not the URL.
    "applications:open": lambda t, _h: [Probe(data={"unit": t.building.code})],
    "applications:detail": _application(),
    "applications:progress": _application(),
    "applications:unlock": lambda t, _h: [Probe({"application_id": t.application.pk},
                                                data={"household": t.household.pk})],
    "applications:paper": lambda t, _h: [Probe({"application_id": t.application.pk},
                                                data={"signed_on": _day(), "households": [t.household.pk]})],
    "applications:add_attachment": _application({"kind": "photo", "note": "照片"}),
    "applications:attachment": lambda t, h: [
        Probe({"application_id": t.application.pk, "attachment_id": t.attachment.pk}),
        # the asker's own application with the other side's attachment: still 404
        Probe({"application_id": h.application.pk, "attachment_id": t.attachment.pk}, note="own application"),
    ],
    "applications:unit_signature": _application({"signed_on": "2022-11-01"}),
    "applications:submit": _application(),
    "applications:review": _application({"decision": "approve", "opinion": "同意", "seen_status": "draft"}),
    "applications:poster": _application(),
    "applications:qr": _application(),
    "certification:certificate": lambda t, _h: [Probe({"number": t.title.certificate_number})],
    "notifications:open": lambda t, _h: [Probe({"notification_id": t.notification.pk})],
    "supervision:history": lambda t, _h: [Probe({"code": t.compound.code}),
                                          Probe({"code": t.building.code}, note="withdrawn")],
    "supervision:warn": lambda t, _h: [Probe({"code": t.compound.code}, data={"reason": "垃圾未分类", "days": "3"})],
    "supervision:close_warning": lambda t, h: [
        Probe({"code": t.compound.code, "warning_id": t.warning.pk}, data={"reason": "已整改"}),
        Probe({"code": h.compound.code, "warning_id": t.warning.pk}, data={"reason": "已整改"}, note="own unit"),
    ],
    "supervision:withdraw": lambda t, _h: [Probe({"code": t.compound.code}, data={"reason": "材料不实"})],
    "supervision:reinstate": lambda t, _h: [Probe({"code": t.building.code}, data={"reason": "误摘"})],
    "dashboard:unit": _code(lambda s: s.community),
    "dashboard:children": _code(lambda s: s.community),
    "dashboard:blockers": _code(lambda s: s.community),
    "dashboard:ledger_xlsx": _code(lambda s: s.community),
    "dashboard:ledger_pdf": _code(lambda s: s.community),
    "dashboard:weekly_xlsx": _code(lambda s: s.community),
    "dashboard:weekly_pdf": _code(lambda s: s.community),
    "accounts:detail": lambda t, _h: [Probe({"account_id": t.account.pk},
                                            data={"display_name": "楼栋长", "role": "building_head",
                                                  "unit": t.building.code})],
    "accounts:deactivate": lambda t, _h: [Probe({"account_id": t.account.pk}, data={"reason": "调离"})],
    "accounts:reactivate": lambda t, _h: [Probe({"account_id": t.account.pk})],
    "accounts:unlock": lambda t, _h: [Probe({"account_id": t.account.pk})],
    "accounts:reset_password": lambda t, _h: [Probe({"account_id": t.account.pk})],
    "accounts:password_sheet": lambda t, _h: [Probe({"job_id": t.job.pk})],
    # Last: a fact recorded by hand re-checks the named chain at once, and in this world the compound
    # is named while its building's title is withdrawn (children_named fails), so the re-check
    # withdraws the compound and closes its warning, which the supervision probes above still need.
    "web:record": lambda t, _h: [
        Probe({"code": t.building.code, "kind": "cases"}, data={"on_unit": "1", "reported_on": _day(),
                                                                "type": "confirmed"}),
        Probe({"code": t.community.code, "kind": "risk-zones"}, data={"type": "high", "start_on": _day()}),
        Probe({"code": t.building.code, "kind": "households"}, data={"code": f"{t.building.code}-X1",
                                                                     "address": "新户"}),
    ],
    "web:lift_risk_zone": _zone,
    "web:add_resident": lambda t, _h: [Probe({"code": t.household.code},
                                             data={"id_number": "11010519491231002X", "name": "新居民"})],
    "web:verify_household": lambda t, _h: [Probe({"code": t.household.code})],
    "web:edit_ledger_entry": lambda t, _h: [Probe({"resident_id": t.resident.pk},
                                                  data={"tags": "chronic", "helper": "王网格"})],
    "web:review_ledger_entry": _ledger_entry,
    "web:remove_resident": lambda t, _h: [Probe({"resident_id": t.resident.pk}, data={"reason": "登记有误"})],
    "web:move_resident": lambda t, h: [Probe({"resident_id": t.resident.pk},
                                             data={"household_code": h.household.code, "moved_on": _day()})],
}

# OWN pages that only some roles may open: the others get 403 (and nothing of anyone).
ROLE_LIMITED_OWN = frozenset({"audit:events", "audit:export"})

# No object key: the user's own scope (or own inbox). The factory gets the other side, to ask about it
# where the page takes a query.
OWN: dict[str, Factory] = {
    "web:home": lambda t, _h: [Probe()],
    "web:unit_search": lambda t, _h: [Probe(query={"q": t.compound.name}), Probe(query={"q": t.community.code})],
    "applications:index": lambda t, _h: [Probe()],
    "applications:queue": lambda t, _h: [Probe()],
    "notifications:inbox": lambda t, _h: [Probe()],
    "notifications:read_all": lambda t, _h: [Probe()],  # marks the asker's own notifications only
    "dashboard:home": lambda t, _h: [Probe()],
    "accounts:list": lambda t, _h: [Probe(), Probe(query={"q": t.community.code})],
    "accounts:create": lambda t, _h: [Probe()],  # the unit is typed into the form: refused outside the scope
    "accounts:password": lambda t, _h: [Probe()],
    "health:held_facts": lambda t, _h: [Probe()],  # the queue of the asker's own scope only
    "web:transfers": lambda t, _h: [Probe()],  # likewise
    # The audit viewer: administrators, the district and the street only (403 for the others).
    "audit:events": lambda t, _h: [Probe(query={"unit": t.community.code}), Probe(query={"person": t.resident.name}),
                                   Probe(query={"action": "resident.reveal"})],
    "audit:export": lambda t, _h: [Probe(query={"unit": t.community.code})],
}

# Anyone, signed in or not, by design.
PUBLIC: dict[str, str] = {
    "set_language": "the language switch (a cookie; no data)",
    "favicon": "the site's icon: a redirect to the static SVG (browsers ask for it on every page)",
    "web:login": "the sign-in page",
    "web:logout": "signing out",
    "applications:sign": "residents co-sign from the poster's QR code without an account: the unguessable token "
                         "is the key; the page shows addresses, never names (test_applications_signing.py)",
    "certification:verify": "the certificate's QR code: unit, title, dates, no personal data",
    "certification:verify_malformed": "anything else under /verify/: the public 查无此证书 page",
    "api-v1:openapi-json": "the API's OpenAPI document",
    "api-v1:openapi-view": "the API's documentation page (Swagger UI)",
    "api-v1:api-root": "answers a JSON 404",
    "api-v1:</api/v1/^(?P<rest>.*)$>": "the API's catch-all: answers a JSON 404 for any unknown path",
}

# API routes in the URL map are checked through the OpenAPI document (API_* below).
API_NAMESPACE = "api-v1"


def api_paths_of_url_map() -> dict[str, str]:
    """OpenAPI path ("/api/v1/units/{code}") -> URL name, for the API's patterns that are operations."""
    import re

    return {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r.route): r.name for r in url_patterns()
            if r.name.startswith(API_NAMESPACE + ":") and r.name not in PUBLIC}


# --- the API, by OpenAPI operation ---------------------------------------------------------------------------

@dataclass
class ApiProbe:
    path: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None


ApiFactory = Callable[[Side, Side], ApiProbe]


def _unit_op(t: Side, _h: Side) -> ApiProbe:
    return ApiProbe({"code": t.community.code})


API_KEYED: dict[str, ApiFactory] = {
    "GET /api/v1/units/{code}": _unit_op,
    "GET /api/v1/units/{code}/children": _unit_op,
    "GET /api/v1/units/{code}/history": _unit_op,
    "GET /api/v1/units/{code}/evaluation": _unit_op,
    "GET /api/v1/evaluations": lambda t, _h: ApiProbe(query={"root": t.community.code}),
    "GET /api/v1/applications/{application_id}": lambda t, _h: ApiProbe({"application_id": t.application.pk}),
    "POST /api/v1/applications/{application_id}/decisions": lambda t, _h: ApiProbe(
        {"application_id": t.application.pk}, body={"status": t.application.status, "decision": "approve",
                                                    "opinion": "同意"}),
}

# Fact batches name residents by ID number in each record: a record about a resident outside the
# token's unit gets the answer of an unknown number (unmatched) and is attached to nobody.
API_RECORDS: dict[str, Callable[[Side, Side], ApiProbe]] = {
    "POST /api/v1/facts/nat-results": lambda t, _h: ApiProbe(body={"batch_key": "access-nat", "records": [
        {"id_number": t.resident.reveal_id_number(), "sampled_at": _an_hour_ago(), "result": "positive"}]}),
    "POST /api/v1/facts/{kind}": lambda t, _h: ApiProbe({"kind": "close-contacts"}, body={
        "batch_key": "access-cc", "records": [{"id_number": t.resident.reveal_id_number(), "start_on": _day(),
                                               "end_on": (today() + dt.timedelta(days=7)).isoformat()}]}),
}

API_OWN: dict[str, ApiFactory] = {
    "GET /api/v1/applications": lambda t, _h: ApiProbe(),
}

API_PUBLIC: dict[str, str] = {
    "GET /api/v1/public/certificates/{number}": "the certificate's public check: unit, title, dates, no personal data",
}


def openapi_operations(client) -> dict[str, dict]:
    """"METHOD /path" -> the operation, from the served OpenAPI document."""
    document = client.get("/api/v1/openapi.json").json()
    return {f"{method.upper()} {path}": op for path, ops in document["paths"].items() for method, op in ops.items()}
