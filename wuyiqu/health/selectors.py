"""Scoped, set-based reads of epidemic facts.

Health data is seen by community staff and everyone above them (street, health commission, command,
administrators), each within their unit's subtree; building heads, group leaders and property
managers do not see it. As in ``wuyiqu.units.selectors``, "missing" and "forbidden" are the same
Http404. Every function here runs a fixed number of queries whatever the number of residents.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Max, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from wuyiqu.accounts.models import Role
from wuyiqu.lib import dates
from wuyiqu.units import selectors as unit_selectors
from wuyiqu.units.models import Resident, SpecialPopulationEntry, Unit, district_of

from .models import Measure, MeasureChange, NatResult, PositiveCase, RiskZone

HEALTH_ROLES = frozenset({Role.COMMUNITY_STAFF, Role.STREET_STAFF, Role.HEALTH_COMMISSION, Role.COMMAND, Role.ADMIN})


def may_see_health(user) -> bool:
    """Community staff and above see (and manage) health facts in their scope."""
    return user.is_authenticated and (user.role in HEALTH_ROLES or user.is_superuser)


def access_health_unit(user, code: str) -> Unit:
    """The unit ``code`` if the user may see its health facts; Http404 otherwise."""
    if not may_see_health(user):
        raise Http404("unit")
    return unit_selectors.access_unit_by_code(user, code)


def access_health_resident(user, resident_id: int) -> Resident:
    """The resident if the user may see their health facts; Http404 otherwise."""
    if not may_see_health(user):
        raise Http404("resident")
    return unit_selectors.access_resident_by_id(user, resident_id)


def unmatched_in(prefix: str) -> Q:
    """Facts on no registered person (yet) that a submitter inside ``prefix`` recorded: they belong to
    the submitter's scope (``scope_unit``) until they attach to someone (health.linking)."""
    return Q(resident__isnull=True, unit__isnull=True, scope_unit__path__startswith=prefix)


def access_measure_by_id(user, measure_id: int) -> Measure:
    """A measure on a person in the user's scope, or on a person not registered (yet) that someone in
    the user's scope recorded (administrators: every one); Http404 otherwise."""
    prefix = unit_selectors.scope_path(user) if may_see_health(user) else None
    if prefix is None:
        raise Http404("measure")
    qs = Measure.objects.select_related("unit", "scope_unit", "resident", "resident__household")
    if prefix != "/":
        qs = qs.filter(Q(unit__path__startswith=prefix) | unmatched_in(prefix))
    try:
        return qs.get(pk=measure_id)
    except Measure.DoesNotExist:
        raise Http404("measure") from None


def covering(on: dt.date, start: str = "start_on", end: str = "end_on") -> Q:
    """Rows whose [start, end] covers ``on`` (an empty end: ongoing) — ``dates.covers`` in SQL."""
    return Q(**{f"{start}__lte": on}) & (Q(**{f"{end}__isnull": True}) | Q(**{f"{end}__gte": on}))


def measures_on(unit: Unit, *, on: dt.date, kind: str | None = None) -> QuerySet[Measure]:
    """Measures covering ``on`` (start ≤ on ≤ end) on residents of ``unit``'s subtree, and on people not
    registered (yet) that someone of the subtree recorded (``unmatched_in``), soonest end first."""
    qs = Measure.objects.filter(Q(unit__path__startswith=unit.path) | unmatched_in(unit.path),
                                start_on__lte=on, end_on__gte=on)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.select_related("resident", "resident__household", "unit").order_by("end_on", "kind", "id")


def cases_within(unit: Unit, *, on: dt.date, days: int) -> QuerySet[PositiveCase]:
    """Positive cases on residents of ``unit``'s subtree or on its units, reported within ``days`` days
    ending on ``on`` (on−days+1 … on)."""
    return (PositiveCase.objects.filter(unit__path__startswith=unit.path,
                                        reported_on__range=(dates.window_start(on, days), on))
            .select_related("resident", "unit").order_by("-reported_on", "id"))


def risk_zones_covering(unit: Unit, *, on: dt.date) -> QuerySet[RiskZone]:
    """Risk zones in force on ``on`` on ``unit``, on a unit below it or on a unit above it."""
    return (RiskZone.objects.filter(Q(unit__path__startswith=unit.path) | Q(unit__code__in=unit.ancestor_codes))
            .filter(covering(on)).select_related("unit").order_by("start_on", "id"))


def latest_test_dates(residents: QuerySet[Resident], *, on: dt.date | None = None,
                      district: str | None = None) -> dict[int, dt.date]:
    """resident id -> latest sample date (on or before ``on``), for the residents of the queryset that
    have one. One aggregate query: MAX(sampled_on) GROUP BY resident_id over the residents in scope.
    ``district``: the residents all live in it, so their results are kept there (NatResult's
    docstring) — named, the query goes to that district's shard alone on Citus."""
    qs = NatResult.objects.filter(resident_id__in=residents.order_by().values("pk"))
    if district is not None:
        qs = qs.filter(district_code=district)
    if on is not None:
        qs = qs.filter(sampled_on__lte=on)
    return dict(qs.values("resident_id").annotate(last=Max("sampled_on")).order_by().values_list("resident_id", "last"))


@dataclass
class TestingRow:
    resident: Resident
    last_sampled_on: dt.date | None
    exempt_reason: str = ""


@dataclass
class TestingStatus:
    """The testing list of a unit on a day: ``rows`` of non-exempt residents (only those not tested
    within ``days`` when given), and ``exempt`` (under 3 on the day, or bedridden) shown apart."""

    on: dt.date
    days: int | None
    rows: list[TestingRow] = field(default_factory=list)
    exempt: list[TestingRow] = field(default_factory=list)
    non_exempt_total: int = 0
    tested_within: int = 0  # non-exempt residents with a sample within ``days`` (0 without days)


def testing_status(unit: Unit, *, on: dt.date, days: int | None = None) -> TestingStatus:
    """The latest test of every resident of ``unit``'s subtree; with ``days``, the non-exempt rows are
    only those not tested within ``days`` days ending on ``on``. Two queries (residents, aggregate)."""
    residents_qs = Resident.objects.filter(district_code=district_of(unit.path), household__unit__path__startswith=unit.path)
    latest = latest_test_dates(residents_qs, on=on, district=district_of(unit.path))
    start = dates.window_start(on, days) if days else None
    status = TestingStatus(on=on, days=days)
    for r in residents_qs.select_related("household").order_by("household__code", "id"):
        last = latest.get(r.pk)
        if r.bedridden or (r.turns_three_on is not None and r.turns_three_on > on):
            status.exempt.append(TestingRow(r, last, _("卧床") if r.bedridden else _("未满3周岁")))
            continue
        status.non_exempt_total += 1
        tested = start is not None and last is not None and last >= start
        status.tested_within += tested
        if start is None or not tested:
            status.rows.append(TestingRow(r, last))
    return status


@dataclass
class TimelineEntry:
    on: dt.date
    kind: str  # case / measure / measure_change / nat / ledger
    title: str
    detail: str = ""
    measure: Measure | None = None


def timeline(resident: Resident) -> list[TimelineEntry]:
    """Every fact about one resident (the caller got them through access_health_resident), by date.
    Facts are found by the ID hash, so facts stored before the person was registered show too."""
    entries: list[TimelineEntry] = []
    for c in PositiveCase.objects.filter(id_hash=resident.id_hash):
        entries.append(TimelineEntry(c.reported_on, "case", _("阳性感染者（%(t)s）") % {"t": c.get_case_type_display()},
                                     _("来源：%(s)s") % {"s": c.get_source_display()}))
    measures = Measure.objects.filter(id_hash=resident.id_hash).prefetch_related(
        Prefetch("changes", queryset=MeasureChange.objects.select_related("actor").order_by("at")))
    for m in measures:
        detail = _("%(start)s 至 %(end)s") % {"start": m.start_on, "end": m.end_on}
        if m.origin:
            detail += _("，来源地：%(o)s") % {"o": m.origin}
        entries.append(TimelineEntry(m.start_on, "measure", str(m.get_kind_display()), detail, measure=m))
        for ch in m.changes.all():
            verb = _("提前解除") if ch.new_end_on < ch.old_end_on else _("延期")
            who = str(ch.actor) if ch.actor else ""
            entries.append(TimelineEntry(
                timezone.localtime(ch.at).date(),
                "measure_change", f"{m.get_kind_display()} · {verb}",
                _("结束日期 %(old)s → %(new)s；原因：%(reason)s") % {"old": ch.old_end_on, "new": ch.new_end_on,
                                                         "reason": ch.reason} + (f"；{who}" if who else "")))
    for n in NatResult.objects.filter(id_hash=resident.id_hash).order_by("-sampled_on")[:100]:
        entries.append(TimelineEntry(n.sampled_on, "nat", _("核酸检测：%(r)s") % {"r": n.get_result_display()},
                                     timezone.localtime(n.sampled_at).strftime("%Y-%m-%d %H:%M")))
    entry = SpecialPopulationEntry.objects.filter(district_code=resident.district_code, resident=resident).first()
    if entry is not None and entry.reviewed_on:
        entries.append(TimelineEntry(entry.reviewed_on, "ledger", _("特殊人群台账复核"),
                                     "、".join(entry.tag_labels) + (_("；帮扶人：%(h)s") % {"h": entry.helper} if entry.helper else "")))
    kind_order = {"case": 0, "measure": 1, "measure_change": 2, "nat": 3, "ledger": 4}
    entries.sort(key=lambda e: (e.on, kind_order[e.kind]), reverse=True)
    return entries


# --- facts held between two scopes ------------------------------------------------------------------

@dataclass
class HeldItem:
    """One queue row with the facts it holds (for the page): results, cases and measures."""

    held: object
    results: list = field(default_factory=list)
    cases: list = field(default_factory=list)
    measures: list = field(default_factory=list)


def may_decide_any(user) -> bool:
    """Whether ``user`` decides held facts at all (street, health commission, unscoped administrator)."""
    from .actions import DECIDER_ROLES

    prefix = unit_selectors.scope_path(user)
    return prefix is not None and (user.role in DECIDER_ROLES or prefix == "/")


def held_facts_for(user) -> QuerySet:
    """The open ``HeldFacts`` rows ``user`` may decide: a street or health-commission user (or an
    unscoped administrator) whose scope holds both the submitting unit and the person's household;
    nothing for anyone else. Newest first."""
    from .models import HeldFacts, HeldStatus

    if not may_decide_any(user):
        return HeldFacts.objects.none()
    prefix = unit_selectors.scope_path(user)
    qs = HeldFacts.objects.filter(status=HeldStatus.PENDING).select_related(
        "resident", "resident__household", "resident__household__unit", "scope_unit").order_by("-created_at", "-id")
    if prefix == "/":
        return qs
    return qs.filter(scope_unit__path__startswith=prefix, resident__household__unit__path__startswith=prefix)


def access_held_facts(user, held_id: int):
    """An open held-facts row ``user`` may decide; Http404 otherwise (missing and forbidden alike)."""
    from .models import HeldFacts

    try:
        return held_facts_for(user).get(pk=held_id)
    except HeldFacts.DoesNotExist:
        raise Http404("held facts") from None


def held_items(rows) -> list[HeldItem]:
    """The facts of each row of ``rows`` (one page): three queries, whatever the number of rows."""
    items = {(r.id_hash, r.scope_unit_id): HeldItem(r) for r in rows}
    hashes = sorted({h for h, _s in items})
    if not hashes:
        return []
    for name, model, order in (("results", NatResult, "sampled_at"), ("cases", PositiveCase, "reported_on"),
                               ("measures", Measure, "start_on")):
        for fact in model.objects.filter(id_hash__in=hashes, resident_id__isnull=True,
                                         scope_unit_id__isnull=False).order_by(order):
            item = items.get((fact.id_hash, fact.scope_unit_id))
            if item is not None:
                getattr(item, name).append(fact)
    return list(items.values())
