"""Each role does only its step. For every action of the workflow (applications: open, sign for the
unit, paper sheet, attachment, submit, the four review steps — on the pages and through the API —, and
supervision, health measures, inspections, imports), one person of every role, each with the object in
their scope, tries it: the roles whose step it is get through, every other role gets 403 (404 where
the object is outside its scope) and nothing changes, not even an audit row."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from access_map import PNG, Side, make_side, snapshot
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Q
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.api.actions import do_create_api_token
from wuyiqu.applications.models import Application, ApplicationStatus
from wuyiqu.applications.workflow import APPLICANT_ROLE, ROUTE, STEP_ROLE
from wuyiqu.audit.models import AuditEvent
from wuyiqu.health.models import Measure, MeasureKind
from wuyiqu.imports.models import ImportJob
from wuyiqu.inspections.models import Incident, IncidentType
from wuyiqu.lib.dates import today
from wuyiqu.supervision.models import Warning
from wuyiqu.units.models import TITLE_BY_KIND, Unit, UnitKind

PASSWORD = "correct-horse-battery"
_seq = itertools.count(1)


@pytest.fixture
def crew(world, alice, carol, erin, root, settings, tmp_path):
    """alice's side of the world and one person of every role, each with alice's building in scope: the
    roles below the community at its compound, the health commission at the district."""
    settings.MEDIA_ROOT = tmp_path
    side = make_side(alice)
    district = Unit.objects.get(code="500110")

    def person(name, role, unit):
        return do_create_user(actor=None, username=name, password=PASSWORD, role=role, unit=unit, display_name=name)

    users = {
        Role.BUILDING_HEAD: person("bh", Role.BUILDING_HEAD, side.compound),
        Role.GROUP_LEADER: person("gl", Role.GROUP_LEADER, side.compound),
        Role.PROPERTY_MANAGER: person("pm", Role.PROPERTY_MANAGER, side.compound),
        Role.COMMUNITY_STAFF: alice,
        Role.STREET_STAFF: carol,
        Role.HEALTH_COMMISSION: person("hc", Role.HEALTH_COMMISSION, district),
        Role.COMMAND: erin,
        Role.ADMIN: root,
    }
    assert set(users) == set(Role.values)
    return side, users


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def done_by(user, action: str) -> int:
    return AuditEvent.objects.filter(actor=user, action=action).count()


@dataclass
class Step:
    roles: frozenset[str]  # whose step it is
    request: Callable[[Side, object], tuple[str, dict]]  # a fresh (url, form data) for one attempt
    audit: str | None  # the audit row of a done step; None: see ``passes``
    # Instead of the audit row: for a step the world's data refuses even to its role (the building's
    # self-assessment does not pass, so it can be neither submitted nor reinstated), that the role got
    # past the role check and was told the data's reason, not a 403.
    passes: Callable[[object], bool] | None = None


def told(response, words: str) -> bool:
    """The page went back with a message containing ``words`` (the form's refusal, not a 403)."""
    from django.contrib.messages import get_messages

    return response.status_code == 302 and any(words in str(m) for m in get_messages(response.wsgi_request))


def told_an_id(response) -> bool:
    """The message names a criterion by its id (``no_case``), which no user reads (issue 18)."""
    import re

    from django.contrib.messages import get_messages

    ids = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")
    return any(ids.search(str(m)) for m in get_messages(response.wsgi_request))


def _second_building(side: Side) -> Unit:
    return (Unit.objects.filter(path__startswith=side.compound.path, kind=UnitKind.BUILDING)
            .exclude(pk=side.building.pk).order_by("code").first())


def _scan() -> SimpleUploadedFile:
    return SimpleUploadedFile("sheet.png", PNG, content_type="image/png")


def _fresh_measure(side: Side) -> Measure:
    on = today()
    start = on - dt.timedelta(days=2 + next(_seq))  # one measure per attempt (unique per person, kind, start)
    r = side.resident
    return Measure.objects.create(resident=r, unit=r.household.unit, id_hash=r.id_hash, id_masked=r.id_masked,
                                  kind=MeasureKind.CLOSE_CONTACT, start_on=start, end_on=on + dt.timedelta(days=5))


def _fresh_warning(side: Side) -> Warning:
    return Warning.objects.create(unit=side.compound, title=side.title, criterion="manual", detail="杂物",
                                  opened_on=today(), deadline=today() + dt.timedelta(days=3))


def _community_application(side: Side) -> Application:
    unit = side.community
    app, _created = Application.objects.get_or_create(unit=unit, title=TITLE_BY_KIND[unit.kind],
                                                      status=ApplicationStatus.DRAFT)
    return app


def _fresh_opinion(side: Side, *, handled: bool = False) -> Incident:
    """A negative opinion on the side's building (one per attempt), handled by the community if asked."""
    on = today()
    return Incident.objects.create(unit=side.building, occurred_on=on, incident_type=IncidentType.NEGATIVE_OPINION,
                                   description=f"舆情{next(_seq)}", handled_on=on if handled else None,
                                   handled_note="已处置" if handled else "")


def _locked_household(side: Side) -> str:
    """The side's household locked afresh on the side's application (five wrong proofs, none lifted)."""
    from wuyiqu.applications.actions import FAILURES_PER_HOUSEHOLD
    from wuyiqu.applications.models import SignatureAttempt

    SignatureAttempt.objects.filter(application=side.application, household=side.household).delete()
    SignatureAttempt.objects.bulk_create([
        SignatureAttempt(application=side.application, household=side.household, created_at=timezone.now())
        for _ in range(FAILURES_PER_HOUSEHOLD)])
    return str(side.household.pk)


def _pending_held(side: Side) -> int:
    """A waiting held-facts row about the side's resident (the side's own, or a fresh one once decided)."""
    from wuyiqu.health.models import HeldFacts, HeldStatus

    held = side.held
    if HeldFacts.objects.filter(pk=held.pk, status=HeldStatus.PENDING).exists():
        return held.pk
    return HeldFacts.objects.create(id_hash=held.id_hash, resident=held.resident, scope_unit=held.scope_unit,
                                    measures=1).pk


def _day_back() -> str:
    return (today() - dt.timedelta(days=next(_seq))).isoformat()


HEALTH = frozenset({Role.COMMUNITY_STAFF, Role.STREET_STAFF, Role.HEALTH_COMMISSION, Role.COMMAND, Role.ADMIN})
RECORDING = frozenset({Role.COMMUNITY_STAFF, Role.STREET_STAFF, Role.ADMIN})
WARNING = frozenset({Role.STREET_STAFF, Role.HEALTH_COMMISSION, Role.COMMAND})
APPLICANT_OR_REGISTRY = frozenset({APPLICANT_ROLE["building"], Role.COMMUNITY_STAFF})

STEPS: dict[str, Step] = {
    "applications:open": Step(frozenset({APPLICANT_ROLE["building"]}), lambda s, u: (
        reverse("applications:open"), {"unit": _second_building(s).code}), "applications.open"),
    "applications:unit_signature": Step(frozenset({APPLICANT_ROLE["community"]}), lambda s, u: (
        reverse("applications:unit_signature", args=[_community_application(s).pk]), {"signed_on": _day_back()}),
        "applications.unit_signature"),
    "applications:paper": Step(APPLICANT_OR_REGISTRY, lambda s, u: (
        reverse("applications:paper", args=[s.application.pk]),
        {"signed_on": _day_back(), "households": [s.household.pk], "scan": _scan()}), "applications.paper_sheet"),
    "applications:add_attachment": Step(APPLICANT_OR_REGISTRY, lambda s, u: (
        reverse("applications:add_attachment", args=[s.application.pk]), {"kind": "photo", "file": _scan()}),
        "applications.attachment"),
    "applications:submit": Step(frozenset({APPLICANT_ROLE["building"]}), lambda s, u: (
        reverse("applications:submit", args=[s.application.pk]), {}), None,
        passes=lambda r: told(r, "自评未全部达标")),
    "applications:unlock": Step(APPLICANT_OR_REGISTRY, lambda s, u: (
        reverse("applications:unlock", args=[s.application.pk]), {"household": _locked_household(s)}),
        "applications.signing_unlock"),
    "supervision:warn": Step(WARNING, lambda s, u: (
        reverse("supervision:warn", args=[s.compound.code]), {"reason": "垃圾未分类", "days": "3"}), "supervision.warn"),
    "supervision:close_warning": Step(WARNING, lambda s, u: (
        reverse("supervision:close_warning", args=[s.compound.code, _fresh_warning(s).pk]), {"reason": "已整改"}),
        "supervision.close_warning"),
    "supervision:withdraw": Step(frozenset({Role.COMMAND}), lambda s, u: (
        reverse("supervision:withdraw", args=[s.compound.code]), {"reason": "材料不实"}), "supervision.withdraw"),
    "supervision:reinstate": Step(frozenset({Role.COMMAND}), lambda s, u: (
        reverse("supervision:reinstate", args=[s.building.code]), {"reason": "误摘"}), None,
        passes=lambda r: told(r, "该单位仍不符合以下标准") and not told_an_id(r)),
    "health:end_measure_early": Step(HEALTH, lambda s, u: (
        reverse("health:end_measure_early", args=[_fresh_measure(s).pk]), {"on": today().isoformat(), "reason": "核实"}),
        "health.end_measure_early"),
    "health:extend_measure": Step(HEALTH, lambda s, u: (
        reverse("health:extend_measure", args=[_fresh_measure(s).pk]),
        {"on": (today() + dt.timedelta(days=9)).isoformat(), "reason": "复核"}), "health.extend_measure"),
    "health:decide_held_facts": Step(frozenset({Role.COMMUNITY_STAFF, Role.STREET_STAFF, Role.HEALTH_COMMISSION,
                                                Role.ADMIN}), lambda s, u: (
        reverse("health:decide_held_facts", args=[_pending_held(s)]), {"decision": "discard", "reason": "重复上报"}),
        "health.discard_held_facts"),
    "inspections:record": Step(RECORDING, lambda s, u: (
        reverse("inspections:record", args=[s.building.code]),
        {"inspected_on": _day_back(), "inspector": "张三", "item_masks": "pass"}), "inspections.record"),
    "inspections:opinion_handled": Step(frozenset({Role.COMMUNITY_STAFF}), lambda s, u: (
        reverse("inspections:opinion_handled", args=[s.building.code, _fresh_opinion(s).pk]),
        {"handled_on": today().isoformat(), "note": "已上门解释"}), "inspections.opinion_handled"),
    "inspections:opinion_accept": Step(frozenset({Role.STREET_STAFF}), lambda s, u: (
        reverse("inspections:opinion_accept", args=[s.building.code, _fresh_opinion(s, handled=True).pk]), {}),
        "inspections.opinion_accepted"),
    "inspections:opinion_return": Step(frozenset({Role.STREET_STAFF}), lambda s, u: (
        reverse("inspections:opinion_return", args=[s.building.code, _fresh_opinion(s, handled=True).pk]),
        {"reason": "未附回访记录"}), "inspections.opinion_returned"),
    "inspections:incident": Step(RECORDING, lambda s, u: (
        reverse("inspections:incident", args=[s.community.code]),
        {"occurred_on": _day_back(), "incident_type": "fight", "description": "楼道争执"}),
        "inspections.record_incident"),
    "web:import": Step(frozenset({Role.COMMUNITY_STAFF, Role.STREET_STAFF, Role.HEALTH_COMMISSION, Role.COMMAND,
                                  Role.ADMIN}), lambda s, u: (
        reverse("web:import", args=[s.community.code]),
        {"kind": "households", "file": SimpleUploadedFile("h.csv", b"code,address\n")}), None,
        passes=lambda r: r.status_code == 302 and ImportJob.objects.filter(  # the job (its audit row comes when it runs)
            pk=int(r["Location"].split("/")[-2]), created_by=r.wsgi_request.user).exists()),
}


def test_each_role_does_only_its_step(crew):
    side, users = crew
    wrong = []
    for name, step in STEPS.items():
        # The refused roles first: the step's own role may change what the next attempt finds.
        for role in sorted(Role.values, key=lambda r: r in step.roles):
            user = users[role]
            url, data = step.request(side, user)
            allowed = role in step.roles
            before = None if allowed else snapshot()
            done_before = done_by(user, step.audit) if allowed and step.audit else 0
            response = signed_in(user).post(url, data)
            if allowed:
                ok = response.status_code not in (403, 404) and (
                    step.passes(response) if step.passes else done_by(user, step.audit) == done_before + 1)
            else:
                ok = response.status_code in (403, 404) and snapshot() == before
            if not ok:
                wrong.append((name, role, response.status_code))
    assert wrong == []


def test_the_steps_cover_every_post_only_workflow_page():
    """A new action page must be added to STEPS (or to the review chain below)."""
    from access_map import KEYED

    actions = {n for n in KEYED if n.split(":")[0] in ("applications", "supervision", "health", "inspections")
               and n.split(":")[1] not in ("detail", "progress", "attachment", "poster", "qr", "history", "measures",
                                           "measures_xlsx", "testing", "testing_xlsx", "timeline",
                                           "measure")}
    assert actions - set(STEPS) == {"applications:review"}


def _at(side: Side, status: str) -> Application:
    app = side.application
    Application.objects.filter(pk=app.pk).update(status=status)
    app.refresh_from_db()
    return app


def _decision(status: str, route) -> str:
    # Approve up the chain; the command returns the application instead of naming the unit (naming
    # depends on the world's data — someone in the building is under a measure — not on the role).
    return "return" if status == route[-1] else "approve"


def test_each_review_step_is_its_roles_alone_on_the_pages(crew):
    side, users = crew
    route = ROUTE[side.building.kind]
    app = _at(side, route[0])
    wrong = []
    for status in route:
        for role in Role.values:
            if role == STEP_ROLE[status]:
                continue
            before = snapshot()
            response = signed_in(users[role]).post(reverse("applications:review", args=[app.pk]), {
                "decision": _decision(status, route), "opinion": "同意", "seen_status": status})
            if response.status_code not in (403, 404) or snapshot() != before:
                wrong.append((status, role, response.status_code))
        reviewer = users[STEP_ROLE[status]]
        response = signed_in(reviewer).post(reverse("applications:review", args=[app.pk]), {
            "decision": _decision(status, route), "opinion": "同意", "seen_status": status})
        app.refresh_from_db()
        assert response.status_code == 302 and app.status != status, (status, response.status_code)
    assert wrong == []
    assert app.status == ApplicationStatus.RETURNED
    assert list(app.steps.values_list("actor_role", flat=True)) == [STEP_ROLE[s] for s in route]


def test_each_review_step_is_its_roles_alone_through_the_api(crew, client):
    side, users = crew
    route = ROUTE[side.building.kind]
    app = _at(side, route[0])
    secrets = {}
    for role in set(STEP_ROLE.values()):
        _token, secrets[role] = do_create_api_token(actor=None, name=f"oa-{role}", unit=side.building,
                                                    scopes=["applications:act"], acts_as=users[role], days=30)
    # A token acts only at a review step: no other role can be given one.
    for role in set(Role.values) - set(STEP_ROLE.values()):
        with pytest.raises(ValueError, match="不是在职的审核人员"):
            do_create_api_token(actor=None, name=f"oa-{role}", unit=side.building, scopes=["applications:act"],
                                acts_as=users[role], days=30)

    def decide(role, status):
        return client.post(f"/api/v1/applications/{app.pk}/decisions",
                           json.dumps({"status": status, "decision": _decision(status, route), "opinion": "同意"}),
                           content_type="application/json", headers={"Authorization": f"Bearer {secrets[role]}"})

    wrong = []
    for status in route:
        for role in secrets:
            if role == STEP_ROLE[status]:
                continue
            before = snapshot(audit=False)
            response = decide(role, status)
            if response.status_code != 403 or snapshot(audit=False) != before:
                wrong.append((status, role, response.status_code))
        response = decide(STEP_ROLE[status], status)
        assert response.status_code == 200, (status, response.content)
    assert wrong == []
    app.refresh_from_db()
    assert app.status == ApplicationStatus.RETURNED
    assert list(app.steps.values_list("actor_role", flat=True)) == [STEP_ROLE[s] for s in route]
    refused = AuditEvent.objects.filter(Q(action="api.act") & Q(detail__status=403))
    assert refused.count() == sum(len(secrets) - 1 for _s in route)  # every refusal audited
