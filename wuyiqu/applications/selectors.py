"""Scoped reads of applications. An application exists for a user when its unit lies in the user's
scope; otherwise it is a 404, the same as a missing one. The public signing page reads through
``application_for_signing`` (by the unguessable token) and sees addresses only, never names."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext

from wuyiqu.units import selectors as unit_selectors
from wuyiqu.units.models import Household, Unit, district_of

from .models import OPEN_STATUSES, Application, CoSignature
from .workflow import APPLICANT_ROLE, SIGNING_STATUSES, STEP_ROLE


def visible_applications(user) -> QuerySet[Application]:
    prefix = unit_selectors.scope_path(user)
    if prefix is None:
        return Application.objects.none()
    qs = Application.objects.select_related("unit", "applicant")
    # A scoped user's applications lie in their scope's district: named, the read goes to one shard.
    return qs if prefix == "/" else qs.filter(district_code=district_of(prefix), unit__path__startswith=prefix)


def access_application_by_id(user, application_id: int) -> Application:
    """The application if its unit is in the user's scope; Http404 for missing and forbidden alike."""
    try:
        return visible_applications(user).get(pk=application_id)
    except Application.DoesNotExist:
        raise Http404("application") from None


def review_queue(user) -> QuerySet[Application]:
    """待办: applications in the user's scope waiting at a step the user's role acts on, oldest first."""
    steps = [status for status, role in STEP_ROLE.items() if role == user.role]
    return visible_applications(user).filter(status__in=steps).order_by("submitted_at", "id")


def applicant_applications(user) -> QuerySet[Application]:
    """Open applications in the user's scope that the user's role applies for (their own work)."""
    kinds = [kind for kind, role in APPLICANT_ROLE.items() if role == user.role]
    return (visible_applications(user).filter(unit__kind__in=kinds, status__in=[s.value for s in OPEN_STATUSES])
            .order_by("-opened_at"))


def applications_in_scope(user, *, limit: int = 50) -> list[Application]:
    """The open applications in the user's scope that are neither their own work nor waiting at their
    step — to follow how the units below them are doing (a property manager: the compound's buildings;
    the street: every unit of it). Newest first, at most ``limit``."""
    exclude = {a.pk for a in applicant_applications(user)} | {a.pk for a in review_queue(user)}
    return list(visible_applications(user).filter(status__in=[s.value for s in OPEN_STATUSES])
                .exclude(pk__in=exclude).select_related("unit").order_by("-opened_at")[:limit])


def openable_units(user) -> list[Unit]:
    """Units the user may open an application for: their own unit when their role applies for its kind
    (a community worker for the village/community, a street worker for the street)."""
    unit = user.unit if user.is_authenticated and user.unit_id else None
    if unit is None or APPLICANT_ROLE.get(unit.kind) != user.role:
        return []
    return [unit]


def households_to_sign(unit: Unit) -> QuerySet[Household]:
    """Households that co-sign ``unit``'s application: every household below it. Only id, address and
    the building they are in are read — the public page shows no names."""
    from wuyiqu.units.selectors import in_room_order

    return in_room_order(Household.objects.filter(unit__path__startswith=unit.path).select_related("unit")
                         .only("id", "code", "address", "unit__name", "unit__code"))


@dataclass
class SigningProgress:
    total: int
    signed: int
    missing: list[Household] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.signed == self.total

    @property
    def percent(self) -> int:
        return int(100 * self.signed / self.total) if self.total else 0


def signing_progress(application: Application) -> SigningProgress:
    """Signed / total households below the application's unit and the unsigned ones. Two queries."""
    households = list(households_to_sign(application.unit))
    signed = set(CoSignature.objects.filter(district_code=application.district_code, application=application).values_list("household_id", flat=True))
    missing = [h for h in households if h.pk not in signed]
    return SigningProgress(len(households), len(households) - len(missing), missing)


@dataclass(frozen=True)
class PublicSigningState:
    """What the public signing page tells a resident about the unit: counts and the application's
    state only — never which household signed or not (no address, no name)."""
    signed: int
    total: int
    percent: int
    status: str          # the application's status code
    status_label: str
    complete: bool

    @property
    def missing(self) -> int:
        return max(self.total - self.signed, 0)


def public_signing_state(application: Application) -> PublicSigningState:
    """Two COUNT queries: the households below the unit and those that signed this application."""
    total = Household.objects.filter(unit__path__startswith=application.unit.path).count()
    signed = CoSignature.objects.filter(district_code=application.district_code, application=application).count()
    return PublicSigningState(signed=signed, total=total, percent=int(100 * signed / total) if total else 0,
                              status=application.status, status_label=str(application.get_status_display()),
                              complete=total > 0 and signed >= total)


def application_for_signing(token: str) -> Application:
    """The application behind a poster's short link; Http404 when no application has that token."""
    if not token or len(token) > 32:
        raise Http404("token")
    try:
        return Application.objects.select_related("unit").get(token=token)
    except Application.DoesNotExist:
        raise Http404("token") from None


def is_signing_open(application: Application) -> bool:
    return application.status in SIGNING_STATUSES


# --- evaluations ---------------------------------------------------------------------------------------


def evaluation_of(unit: Unit, on: dt.date, *, viewer=None, forms: bool = False) -> dict:
    """The unit's self-assessment on ``on`` as a JSON-able dict: the `wuyiqu evaluate` contract of the
    unit, each criterion with its Chinese name, plus the profile used. The same evaluator as the
    self-assessment page (over the unit's subtree). The reasons never say who (what is frozen into an
    application); with ``viewer``, they do when that user may see it (``standards.visibility``). With
    ``forms`` (what is frozen), each criterion also keeps its reason's machine form (``form``), so that
    the application page shows the frozen reasons in the reader's language."""
    from wuyiqu.accounts.visibility import items_for, reason_for
    from wuyiqu.standards.evaluator import evaluate, parsed_profile, profile_row_in_force

    row = profile_row_in_force(on)
    profile = parsed_profile(row)
    if forms:
        from wuyiqu.standards import criteria as C

        with C.machine_reasons():
            evaluations = evaluate(on, root=unit, profile=profile)
        C.localise(evaluations)
    else:
        evaluations = evaluate(on, root=unit, profile=profile)
    ev = next(e for e in evaluations if e.unit.id == unit.id)
    names = {spec.id: gettext(spec.name) for spec in profile.criteria_for(unit.kind)}
    data = ev.as_contract()
    results = {c.id: c for c in ev.criteria}
    for c in data["criteria"]:
        c["name"] = names.get(c["id"], c["id"])
        if forms and results[c["id"]].machine:
            c["form"] = results[c["id"]].machine
        if viewer is not None:
            c["detail"] = reason_for(results[c["id"]], viewer)
            c["items"] = items_for(c["items"], viewer)
    data["on"] = on.isoformat()
    data["profile"] = f"{row.name} {row.version}"
    return data


def subunit_overview(unit: Unit, on: dt.date) -> list[dict]:
    """For a village/community (or street): every titled unit below it (groups, compounds, buildings;
    for a street its villages and communities) with its co-signature verdict, named state and the
    status of its latest application. One evaluation of the subtree plus one query."""
    from wuyiqu.standards.evaluator import evaluate

    kinds = ("village", "community") if unit.kind == "street" else ("group", "compound", "building")
    evaluations = [e for e in evaluate(on, root=unit) if e.unit.kind in kinds and e.unit.id != unit.id]
    latest: dict[int, Application] = {}
    for app in Application.objects.filter(district_code=district_of(unit.path), unit_id__in=[e.unit.id for e in evaluations]).order_by("opened_at", "id"):
        latest[app.unit_id] = app  # oldest first: the last one seen is the latest
    rows = []
    for e in evaluations:
        signed = next((c for c in e.criteria if c.id == "all_households_signed"), None)
        rows.append({"code": e.unit.code, "name": e.unit.name, "kind": e.unit.kind, "path": e.unit.path,
                     "named": e.named, "eligible": e.eligible,
                     "signed": signed.passed if signed else None, "signed_detail": signed.detail if signed else "",
                     "application": latest.get(e.unit.id)})
    return rows
