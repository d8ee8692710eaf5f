"""Writes of epidemic facts: cases, measures (close contact / home quarantine / returnee), risk zones.

Every write comes in two layers:

- ``write_cases`` / ``write_measures`` / ``write_risk_zones`` take a whole list of already-validated
  rows and store them set-based (one look-up of the people, one of the existing keys, one bulk
  insert per batch). They open no transaction and write no audit row: the import engine calls them
  inside its one transaction and writes its one audit row per import (``imports.run``).
- ``do_record_case`` / ``do_record_measure`` / ``do_record_risk_zone`` and the transitions
  (``do_end_measure_early``, ``do_extend_measure``, ``do_end_risk_zone``) are what forms, the API and
  other code call: atomic, one audit row each.
- ``do_relink_facts``: an administrator's one-off run that links the facts stored before their person
  was registered (``linking``; residents imports do it for their new people themselves).

Facts dated in the future are refused ("…日期不能晚于今天"), except a measure's end date and a
returnee's end of control, which naturally lie ahead. Re-recording a fact that exists adds nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from wuyiqu.audit import actions as audit
from wuyiqu.lib import crypto, dates
from wuyiqu.lib.idcard import InvalidIdNumber, mask_id_number, parse_id_number
from wuyiqu.supervision import services as supervision
from wuyiqu.units.models import Unit, district_of
from wuyiqu.units.residence import units_on

from .linking import LinkedFacts, hold_facts, hold_registry_for_matching, link_facts, move_facts, move_results
from .models import (
    CaseType,
    FactSource,
    HeldFacts,
    HeldStatus,
    Measure,
    MeasureChange,
    MeasureKind,
    NatResult,
    PositiveCase,
    RiskZone,
    ZoneType,
)

CHUNK = 1000  # keys per IN (...) list: well under SQLite's variable limit
# Who confirms or discards facts held between two scopes (docs/facts.md, "Facts from another scope"):
# the street or the health commission above both; community staff too when both lie in their
# community (a building's or compound's token about a neighbouring building).
DECIDER_ROLES = ("community_staff", "street_staff", "health_commission")


class FactRefused(ValueError):
    """The fact or change cannot be recorded. ``message`` is Chinese; ``field`` names the input."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.message = message
        self.field = field


# --- validation (pure: no database) ---------------------------------------------------------------

def refuse_future(day: dt.date | None, label: str, field: str, *, today: dt.date | None = None) -> None:
    """Raise FactRefused when ``day`` lies after today (Asia/Shanghai)."""
    if day is not None and day > (today or dates.today()):
        raise FactRefused(_("%(label)s不能晚于今天") % {"label": label}, field)


def normalise_id_number(raw: str, field: str = "id_number") -> str:
    """The validated, normalised ID number (``wuyiqu.lib.idcard``, the one validator); FactRefused
    naming ``field`` otherwise."""
    try:
        return parse_id_number(raw).number
    except InvalidIdNumber as exc:
        raise FactRefused(str(exc), field) from None


def check_measure_dates(kind: str, start_on: dt.date, end_on: dt.date, *, today: dt.date | None = None) -> None:
    """A measure starts today or earlier and ends on or after its start; its end may lie ahead."""
    start_label, end_label = ((_("到达日期"), _("管控截止日期")) if kind == MeasureKind.RETURNEE
                              else (_("开始日期"), _("结束日期")))
    start_field, end_field = ("arrived_on", "control_until") if kind == MeasureKind.RETURNEE else ("start_on", "end_on")
    refuse_future(start_on, start_label, start_field, today=today)
    if end_on < start_on:
        raise FactRefused(_("%(end)s（%(end_on)s）不能早于%(start)s（%(start_on)s）") % {
            "end": end_label, "end_on": end_on, "start": start_label, "start_on": start_on}, end_field)


def check_zone_dates(start_on: dt.date, end_on: dt.date | None, *, today: dt.date | None = None) -> None:
    refuse_future(start_on, _("开始日期"), "start_on", today=today)
    if end_on is not None:
        if end_on < start_on:
            raise FactRefused(_("结束日期（%(end)s）不能早于开始日期（%(start)s）") % {"end": end_on, "start": start_on},
                              "end_on")
        refuse_future(end_on, _("结束日期"), "end_on", today=today)


# --- rows handed to the set-based writers ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CaseRow:
    reported_on: dt.date
    case_type: str
    id_number: str = ""  # normalised and valid; "" for a case recorded on a unit
    unit_id: int | None = None  # the unit of a case recorded on a unit


@dataclass(frozen=True, slots=True)
class MeasureRow:
    kind: str
    id_number: str  # normalised and valid
    start_on: dt.date
    end_on: dt.date
    origin: str = ""


@dataclass(frozen=True, slots=True)
class ZoneRow:
    unit_id: int
    zone_type: str
    start_on: dt.date
    end_on: dt.date | None


@dataclass
class Written:
    """What a set-based write did. ``unmatched``: rows (new or already stored) whose ID number matches
    no resident; they are kept with resident and unit empty."""

    created: int = 0
    updated: int = 0
    existing: int = 0
    unmatched: int = 0


def _chunks(items: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def people_by_hash(hashes: Iterable[str], scope=None) -> tuple[dict[str, tuple[int, int, str]], set[str]]:
    """({id_hash: (resident id, household unit id, district)} for the residents holding these hashes inside
    ``scope`` (a Unit; None: anywhere), {the hashes held by residents outside it}). Holds the shared
    link lock first: a fact found unmatched here is then linked by a residents import that registers
    its person at the same time (``linking``)."""
    from wuyiqu.units import directory

    hold_registry_for_matching()
    found: dict[str, tuple[int, int, str]] = {}
    outside: set[str] = set()
    # Through the city-wide directory: each district's people read by a statement naming it.
    for h, rid, uid, path, district in directory.resident_values(
            {h for h in hashes if h}, "pk", "household__unit_id", "household__unit__path", "district_code"):
        if scope is None or path.startswith(scope.path):
            found[h] = (rid, uid, district)
        else:
            outside.add(h)
    return found, outside


def hold_outside(hashes: set[str], *, scope) -> None:
    """The facts just stored about people registered outside the submitter's ``scope`` wait for a
    user who covers both (``linking.hold_facts``); those users are told."""
    if hashes and scope is not None:
        tell_deciders(hold_facts(hashes))


def tell_deciders(rows: Sequence[HeldFacts]) -> None:
    """Tell the users who may decide new ``HeldFacts`` rows (``DECIDER_ROLES`` scoped to a unit above
    both the submitter's scope and the person's household): one inbox line per user."""
    from django.conf import settings
    from django.urls import reverse
    from django.utils import translation

    from wuyiqu.accounts.models import User
    from wuyiqu.notifications.actions import notify
    from wuyiqu.units.models import Resident, Unit

    if not rows:
        return
    scope_paths = dict(Unit.objects.filter(pk__in={r.scope_unit_id for r in rows}).values_list("pk", "path"))
    home_paths = dict(Resident.objects.filter(pk__in={r.resident_id for r in rows}).values_list(
        "pk", "household__unit__path"))
    per_ancestor: dict[str, int] = {}
    for r in rows:
        common = _common_path(scope_paths[r.scope_unit_id], home_paths[r.resident_id])
        per_ancestor[common] = per_ancestor.get(common, 0) + 1
    per_user: dict[int, tuple[User, int]] = {}
    deciders = User.objects.filter(role__in=DECIDER_ROLES, is_active=True).select_related("unit")
    for user in deciders.filter(unit__isnull=False):
        n = sum(c for path, c in per_ancestor.items() if path.startswith(user.unit.path))
        if n:
            per_user[user.pk] = (user, n)
    link = reverse("health:held_facts")
    with translation.override(settings.LANGUAGE_CODE):  # a stored text: Chinese whoever submitted
        for user, n in per_user.values():
            notify([user], template="health.held_facts", params={"n": n}, link=link)


def _common_path(a: str, b: str) -> str:
    """The path of the deepest unit above (or equal to) both units of paths ``a`` and ``b``."""
    parts_a, parts_b = a.strip("/").split("/"), b.strip("/").split("/")
    common = []
    for x, y in zip(parts_a, parts_b, strict=False):
        if x != y:
            break
        common.append(x)
    return "/" + "".join(p + "/" for p in common)


def write_cases(rows: Sequence[CaseRow], *, source: str = FactSource.IMPORT, scope=None) -> Written:
    """Store cases not stored yet (keyed by person, or by unit for a case on a unit); set-based.
    ``scope``: the submitter's unit (None: unscoped). A case about a person registered outside it is
    stored unmatched, like one about nobody, and held for a user who covers both (``hold_outside``)."""
    c = crypto.cipher()
    hashes = [c.lookup_hash(r.id_number) if r.id_number else "" for r in rows]
    people, outside = people_by_hash(hashes, scope)
    existing: set[tuple] = set()
    person_hashes = sorted({h for h in hashes if h})
    for chunk in _chunks(person_hashes):
        existing.update(("p", h, d, t) for h, d, t in PositiveCase.objects.filter(id_hash__in=chunk)
                        .values_list("id_hash", "reported_on", "case_type"))
    unit_ids = sorted({r.unit_id for r in rows if not r.id_number and r.unit_id})
    for chunk in _chunks(unit_ids):
        existing.update(("u", u, d, t) for u, d, t in PositiveCase.objects.filter(id_hash="", unit_id__in=chunk)
                        .values_list("unit_id", "reported_on", "case_type"))
    # A case on a person belongs to the unit where the person lived on its date (SPEC §7 "Time"):
    # stored so, its unit is the one re-checked at once.
    homes = units_on((people[h][0], row.reported_on) for row, h in zip(rows, hashes, strict=True) if h in people)
    # Where each case is kept (PersonFact's docstring): its person's district, else its unit's, else
    # the submitter's scope's.
    unit_districts = {pk: district_of(path) for pk, path in Unit.objects.filter(pk__in=unit_ids).values_list("pk", "path")}
    scope_district = district_of(scope.path) if scope is not None else ""
    out = Written()
    new: list[PositiveCase] = []
    for row, h in zip(rows, hashes, strict=True):
        person = people.get(h) if h else None
        if person is not None:
            person = (person[0], homes.get((person[0], row.reported_on)) or person[1], person[2])
        if h and person is None:
            out.unmatched += 1
        key = ("p", h, row.reported_on, row.case_type) if h else ("u", row.unit_id, row.reported_on, row.case_type)
        if key in existing:
            out.existing += 1
            continue
        existing.add(key)
        new.append(PositiveCase(
            id_hash=h, id_masked=mask_id_number(row.id_number) if h else "",
            resident_id=person[0] if person else None,
            unit_id=(person[1] if person else None) if h else row.unit_id,
            district_code=person[2] if person else (scope_district if h else unit_districts.get(row.unit_id, "")),
            reported_on=row.reported_on, case_type=row.case_type, source=source,
            scope_unit_id=scope.pk if scope is not None else None,
        ))
    # ignore_conflicts: a concurrent import of the same file cannot double a case (the unique keys
    # decide); the pre-check above is what counts duplicates for the report.
    PositiveCase.objects.bulk_create(new, batch_size=CHUNK, ignore_conflicts=True)
    out.created = len(new)
    hold_outside(outside, scope=scope)
    return out


def existing_measure_ends(rows: Sequence[MeasureRow]) -> dict[tuple[str, str, dt.date], dt.date]:
    """(kind, id_hash, start_on) -> stored end_on, for the rows' keys that are stored already."""
    c = crypto.cipher()
    hashes = sorted({c.lookup_hash(r.id_number) for r in rows})
    kinds = sorted({r.kind for r in rows})
    found: dict[tuple[str, str, dt.date], dt.date] = {}
    for chunk in _chunks(hashes):
        for k, h, s, e in Measure.objects.filter(kind__in=kinds, id_hash__in=chunk).values_list(
                "kind", "id_hash", "start_on", "end_on"):
            found[(k, h, s)] = e
    return found


def measure_conflict(row: MeasureRow, stored_end: dt.date | None) -> str | None:
    """Why a row cannot be stored over an existing measure with the same key (None: no conflict)."""
    if stored_end is None or stored_end == row.end_on:
        return None
    return _("该人员此%(kind)s措施已登记，结束日期为%(end)s；如需提前解除或延期，请在人员时间线上操作并填写原因") % {
        "kind": MeasureKind(row.kind).label, "end": stored_end}


def write_measures(rows: Sequence[MeasureRow], *, source: str = FactSource.IMPORT, scope=None) -> Written:
    """Store measures not stored yet, keyed by (kind, person, start). A stored measure with the same
    key is left as it is (callers check ``measure_conflict`` first); set-based. ``scope`` as for
    ``write_cases``."""
    c = crypto.cipher()
    hashes = [c.lookup_hash(r.id_number) for r in rows]
    people, outside = people_by_hash(hashes, scope)
    stored = existing_measure_ends(rows)
    out = Written()
    new: list[Measure] = []
    seen: set[tuple] = set()
    for row, h in zip(rows, hashes, strict=True):
        person = people.get(h)
        if person is None:
            out.unmatched += 1
        key = (row.kind, h, row.start_on)
        if key in stored or key in seen:
            out.existing += 1
            continue
        seen.add(key)
        new.append(Measure(
            kind=row.kind, id_hash=h, id_masked=mask_id_number(row.id_number),
            resident_id=person[0] if person else None, unit_id=person[1] if person else None,
            district_code=person[2] if person else (district_of(scope.path) if scope is not None else ""),
            start_on=row.start_on, end_on=row.end_on, origin=row.origin, source=source,
            scope_unit_id=scope.pk if scope is not None else None,
        ))
    Measure.objects.bulk_create(new, batch_size=CHUNK, ignore_conflicts=True)
    out.created = len(new)
    hold_outside(outside, scope=scope)
    return out


def existing_zones(rows: Sequence[ZoneRow]) -> dict[tuple[int, str, dt.date], tuple[int, dt.date | None]]:
    """(unit id, zone type, start) -> (zone id, stored end_on) for the rows' keys already stored."""
    found: dict[tuple[int, str, dt.date], tuple[int, dt.date | None]] = {}
    unit_ids = sorted({r.unit_id for r in rows})
    for chunk in _chunks(unit_ids):
        for pk, u, t, s, e in RiskZone.objects.filter(unit_id__in=chunk).values_list(
                "pk", "unit_id", "zone_type", "start_on", "end_on"):
            found[(u, t, s)] = (pk, e)
    return found


def zone_conflict(row: ZoneRow, stored_end: dt.date | None, exists: bool) -> str | None:
    """Why a row cannot be stored over an existing zone with the same key. Filling in the end of an
    ongoing zone is allowed (it ends the zone); changing a recorded end is not."""
    if not exists or stored_end == row.end_on or stored_end is None:
        return None
    if row.end_on is None:
        return _("该风险区已于%(end)s解除，不能改回“仍在管控”；如再次划定请用新的开始日期") % {"end": stored_end}
    return _("该风险区已登记结束日期%(end)s，与文件中的%(new)s不同") % {"end": stored_end, "new": row.end_on}


def write_risk_zones(rows: Sequence[ZoneRow]) -> Written:
    """Store new zones; fill in the end of an ongoing zone when the row gives one; set-based."""
    stored = existing_zones(rows)
    out = Written()
    new: list[RiskZone] = []
    ends: dict[int, dt.date] = {}
    seen: set[tuple] = set()
    for row in rows:
        key = (row.unit_id, row.zone_type, row.start_on)
        if key in seen:
            out.existing += 1
            continue
        seen.add(key)
        if key in stored:
            pk, end = stored[key]
            if end is None and row.end_on is not None:
                ends[pk] = row.end_on
            else:
                out.existing += 1
            continue
        new.append(RiskZone(unit_id=row.unit_id, zone_type=row.zone_type, start_on=row.start_on, end_on=row.end_on))
    # Kept in its unit's district (health 0006): one read for the new zones' units.
    districts = {pk: district_of(path) for pk, path in Unit.objects.filter(pk__in={z.unit_id for z in new})
                 .values_list("pk", "path")}
    for z in new:
        z.district_code = districts[z.unit_id]
    RiskZone.objects.bulk_create(new, batch_size=CHUNK, ignore_conflicts=True)
    # Grouped by end date: one UPDATE per distinct end, not one per zone.
    by_end: dict[dt.date, list[int]] = {}
    for pk, end in ends.items():
        by_end.setdefault(end, []).append(pk)
    for end, pks in by_end.items():
        out.updated += RiskZone.objects.filter(pk__in=pks, end_on__isnull=True).update(end_on=end)
    out.created = len(new)
    return out


# --- one fact at a time (forms, API) ------------------------------------------------------------------

@transaction.atomic
def do_record_case(*, actor, reported_on: dt.date, case_type: str, id_number: str = "", unit=None,
                   source: str = FactSource.FORM, scope=None) -> PositiveCase:
    """Record a positive case on a person (``id_number``) or on a unit. Returns the case. Refuses a
    future report date, an unknown type, an invalid ID number, both or neither of person and unit,
    and a case already recorded. ``scope``: the submitter's unit (``write_cases``)."""
    if case_type not in CaseType.values:
        raise FactRefused(_("类型应为确诊或无症状"), "type")
    if bool(id_number) == (unit is not None):
        raise FactRefused(_("请填写身份证号或单位编码（二选一）"), "id_number")
    refuse_future(reported_on, _("报告日期"), "reported_on")
    number = normalise_id_number(id_number) if id_number else ""
    row = CaseRow(reported_on=reported_on, case_type=case_type, id_number=number,
                  unit_id=unit.pk if unit is not None else None)
    written = write_cases([row], source=source, scope=scope)
    if not written.created:
        raise FactRefused(_("该病例已登记"), "reported_on")
    if number:
        case = PositiveCase.objects.get(id_hash=crypto.cipher().lookup_hash(number), reported_on=reported_on,
                                        case_type=case_type)
    else:
        case = PositiveCase.objects.get(id_hash="", unit=unit, reported_on=reported_on, case_type=case_type)
    audit.record(actor=actor, action="health.record_case", target=case, unit=case.unit,
                 detail={"reported_on": str(reported_on), "type": case_type, "matched": case.resident_id is not None,
                         "on_unit": unit is not None})
    supervision.recheck_after_facts({case.unit_id}, actor=actor, source="health.record_case")
    return case


@transaction.atomic
def do_record_measure(*, actor, kind: str, id_number: str, start_on: dt.date, end_on: dt.date, origin: str = "",
                      source: str = FactSource.FORM, scope=None) -> Measure:
    """Record a close contact, home quarantine or returnee measure. Returns it. Refuses an unknown kind,
    an invalid ID number, a future start, an end before the start, a returnee without origin, and a
    measure already recorded for that person, kind and start. ``scope`` as for ``write_measures``."""
    if kind not in MeasureKind.values:
        raise FactRefused(_("措施类别应为密接、居家隔离或来綦返綦人员"), "kind")
    number = normalise_id_number(id_number)
    check_measure_dates(kind, start_on, end_on)
    if kind == MeasureKind.RETURNEE and not origin.strip():
        raise FactRefused(_("来源地不能为空"), "origin")
    row = MeasureRow(kind=kind, id_number=number, start_on=start_on, end_on=end_on, origin=origin.strip())
    if not write_measures([row], source=source, scope=scope).created:
        raise FactRefused(_("该人员自%(start)s起的%(kind)s措施已登记") % {"start": start_on, "kind": MeasureKind(kind).label},
                          "start_on")
    measure = Measure.objects.get(kind=kind, id_hash=crypto.cipher().lookup_hash(number), start_on=start_on)
    audit.record(actor=actor, action="health.record_measure", target=measure, unit=measure.unit,
                 detail={"kind": kind, "start_on": str(start_on), "end_on": str(end_on),
                         "matched": measure.resident_id is not None})
    supervision.recheck_after_facts({measure.unit_id}, actor=actor, source="health.record_measure")
    return measure


@transaction.atomic
def do_record_risk_zone(*, actor, unit, zone_type: str, start_on: dt.date, end_on: dt.date | None = None) -> RiskZone:
    """Declare a high-risk or temporary control zone on ``unit`` (``end_on`` None: ongoing). Returns it.
    Refuses an unknown type, future dates, an end before the start and a zone already recorded."""
    if zone_type not in ZoneType.values:
        raise FactRefused(_("类型应为高风险区或临时管控区"), "type")
    check_zone_dates(start_on, end_on)
    if RiskZone.objects.filter(unit=unit, zone_type=zone_type, start_on=start_on).exists():
        raise FactRefused(_("%(unit)s自%(start)s起的%(type)s已登记") % {
            "unit": unit.display_name, "start": start_on, "type": ZoneType(zone_type).label}, "start_on")
    zone = RiskZone.objects.create(unit=unit, zone_type=zone_type, start_on=start_on, end_on=end_on)
    audit.record(actor=actor, action="health.record_risk_zone", target=zone, unit=unit,
                 detail={"type": zone_type, "start_on": str(start_on), "end_on": str(end_on) if end_on else None})
    supervision.recheck_after_facts({unit.pk}, subtree_ids={unit.pk}, actor=actor, source="health.record_risk_zone")
    return zone


# --- transitions ------------------------------------------------------------------------------------

def _clean_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise FactRefused(_("请填写原因"), "reason")
    if len(reason) > 200:
        raise FactRefused(_("原因不能超过200字"), "reason")
    return reason


def _locked_measure(measure: Measure) -> Measure:
    # The race: two staff members end or extend the same measure at the same moment. Without the row
    # lock both would read the same old end date, both checks would pass against it, and the second
    # write would silently overwrite the first while its MeasureChange recorded a wrong old_end_on.
    return Measure.objects.select_for_update().get(district_code=measure.district_code, pk=measure.pk)  # one shard


@transaction.atomic
def do_end_measure_early(measure: Measure, *, actor, on: dt.date, reason: str) -> Measure:
    """End ``measure`` early: ``on`` becomes its last day (it still covers ``on``). Writes a
    MeasureChange with the reason and an audit row; returns the updated measure. Refuses an empty
    reason, a day before the start, a day in the future, and a day not before the current end."""
    reason = _clean_reason(reason)
    m = _locked_measure(measure)
    if on < m.start_on:
        raise FactRefused(_("解除日期（%(on)s）不能早于开始日期（%(start)s）") % {"on": on, "start": m.start_on}, "on")
    if on >= m.end_on:
        raise FactRefused(_("解除日期（%(on)s）应早于原结束日期（%(end)s）；如需延长请用延期") % {"on": on, "end": m.end_on},
                          "on")
    refuse_future(on, _("解除日期"), "on")
    old = m.end_on
    m.end_on = on
    m.save(update_fields=["end_on"])
    MeasureChange.objects.create(measure=m, old_end_on=old, new_end_on=on, reason=reason, actor=actor)
    audit.record(actor=actor, action="health.end_measure_early", target=m, unit=m.unit,
                 detail={"kind": m.kind, "old_end_on": str(old), "new_end_on": str(on), "reason": reason})
    # An earlier end cannot withdraw a title; the chain is re-checked like after any fact (SPEC §6),
    # which also tells the page which named units the change concerns.
    supervision.recheck_after_facts({m.unit_id}, actor=actor, source="health.end_measure_early")
    return m


@transaction.atomic
def do_extend_measure(measure: Measure, *, actor, until: dt.date, reason: str) -> Measure:
    """Extend ``measure`` to end on ``until``. Writes a MeasureChange with the reason and an audit row;
    returns the updated measure. Refuses an empty reason, an ``until`` not after the current end (that
    would shorten it: use the early end), and a measure that already ended before today."""
    reason = _clean_reason(reason)
    m = _locked_measure(measure)
    if until <= m.end_on:
        raise FactRefused(_("延期后的结束日期（%(until)s）应晚于原结束日期（%(end)s）") % {"until": until, "end": m.end_on},
                          "until")
    if m.end_on < dates.today():
        raise FactRefused(_("该措施已于%(end)s结束，不能延期；如再次管控请重新登记") % {"end": m.end_on}, "until")
    old = m.end_on
    m.end_on = until
    m.save(update_fields=["end_on"])
    MeasureChange.objects.create(measure=m, old_end_on=old, new_end_on=until, reason=reason, actor=actor)
    audit.record(actor=actor, action="health.extend_measure", target=m, unit=m.unit,
                 detail={"kind": m.kind, "old_end_on": str(old), "new_end_on": str(until), "reason": reason})
    supervision.recheck_after_facts({m.unit_id}, actor=actor, source="health.extend_measure")
    return m


@transaction.atomic
def do_end_risk_zone(zone: RiskZone, *, actor, on: dt.date, reason: str) -> RiskZone:
    """Lift an ongoing risk zone: ``on`` becomes its last day. Audited with the reason; returns the zone.
    Refuses an empty reason, a zone already lifted, a day before its start and a day in the future."""
    reason = _clean_reason(reason)
    # The race: two people lifting the same zone; the lock makes the second see it already lifted.
    z = RiskZone.objects.select_for_update().get(district_code=zone.district_code, pk=zone.pk)  # one shard
    if z.end_on is not None:
        raise FactRefused(_("该风险区已于%(end)s解除") % {"end": z.end_on}, "on")
    if on < z.start_on:
        raise FactRefused(_("解除日期（%(on)s）不能早于开始日期（%(start)s）") % {"on": on, "start": z.start_on}, "on")
    refuse_future(on, _("解除日期"), "on")
    z.end_on = on
    z.save(update_fields=["end_on"])
    audit.record(actor=actor, action="health.end_risk_zone", target=z, unit=z.unit,
                 detail={"type": z.zone_type, "end_on": str(on), "reason": reason})
    return z



# --- facts stored before their person was registered ------------------------------------------------

@transaction.atomic
def do_relink_facts(*, actor) -> LinkedFacts:
    """Link every stored fact whose person is registered now but which is still unmatched (stored
    before the registration, e.g. before residents imports linked facts) to its resident and the
    resident's household unit; re-check the units of the linked cases and measures. Returns what was
    linked; a second run links nothing. One audit row, also when nothing was linked (an
    administrator's run is worth a record either way)."""
    linked = link_facts(None)
    held = hold_facts(None)
    audit.record(actor=actor, action="health.relink_facts",
                 detail={**linked.as_detail(), "units": len(linked.unit_ids), "held": len(held)})
    tell_deciders(held)
    supervision.recheck_after_facts(linked.unit_ids, actor=actor, source="health.relink_facts")
    return linked


# --- facts held between two scopes ------------------------------------------------------------------

def _held_fact_tables() -> tuple[tuple[str, type], ...]:
    return (("results", NatResult), ("cases", PositiveCase), ("measures", Measure))


@transaction.atomic
def do_decide_held_facts(held: HeldFacts, *, actor, confirm: bool, reason: str = "") -> HeldFacts:
    """Confirm (attach to the resident and their household's unit, then re-check that unit's titles) or
    discard (delete) the facts that one scope submitted about a person registered outside it. Only a
    street or health-commission user whose scope covers both the submitting scope and the person's
    household decides (community staff when both lie in their community; FactRefused otherwise, as
    for a row already decided); discarding needs a reason. One audit row; returns the decided row."""
    from wuyiqu.units.models import Resident, Unit, district_of

    # The race: two deciders pressing at once; the second sees the row decided.
    row = HeldFacts.objects.select_for_update().get(district_code=held.district_code, pk=held.pk)  # one shard
    if row.status != HeldStatus.PENDING:
        raise FactRefused(_("该事项已处理"), "status")
    reason = (reason or "").strip()
    if not confirm and not reason:
        raise FactRefused(_("请填写作废原因"), "reason")
    if len(reason) > 200:
        raise FactRefused(_("原因不能超过200字"), "reason")
    resident = Resident.objects.select_related("household__unit").get(pk=row.resident_id)
    scope_unit = Unit.objects.get(pk=row.scope_unit_id)
    if not may_decide_held(actor, scope_unit.path, resident.household.unit.path):
        raise FactRefused(_("您的管辖范围未同时覆盖提交单位和该居民的登记地"), "status")
    home_unit = resident.household.unit_id
    counts = {}
    for name, model in _held_fact_tables():
        facts = model.objects.filter(id_hash=row.id_hash, scope_unit_id=row.scope_unit_id, resident_id__isnull=True)
        if confirm and model is NatResult:
            # Into the person's district, where their results are kept (NatResult's docstring).
            district = district_of(resident.household.unit.path)
            counts[name] = move_results([(r, {"resident_id": resident.pk, "unit_id": home_unit, "district_code": district})
                                         for r in facts])
        elif confirm:  # into the person's district too (PersonFact's docstring)
            counts[name] = move_facts(model, [(f, {"resident_id": resident.pk, "unit_id": home_unit,
                                                   "district_code": resident.district_code}) for f in facts])
        else:
            counts[name] = facts.delete()[0]
    row.status = HeldStatus.CONFIRMED if confirm else HeldStatus.DISCARDED
    row.decided_by, row.decided_at, row.reason = actor, timezone.now(), reason
    row.save(update_fields=["status", "decided_by", "decided_at", "reason"])
    audit.record(actor=actor, action="health.confirm_held_facts" if confirm else "health.discard_held_facts",
                 target=row, unit=resident.household.unit,
                 detail={**counts, "resident": resident.pk, "submitted_from": scope_unit.code, "reason": reason})
    if confirm and (counts["cases"] or counts["measures"]):
        supervision.recheck_after_facts({home_unit}, actor=actor, source="health.confirm_held_facts")
    return row


def may_decide_held(user, scope_path: str, home_path: str) -> bool:
    """Whether ``user`` may decide facts submitted from the unit at ``scope_path`` about a person living
    at ``home_path``: a street, health-commission or community user (or an unscoped administrator)
    whose scope holds both."""
    from wuyiqu.units.selectors import scope_path as user_scope

    prefix = user_scope(user)
    if prefix is None or not (user.role in DECIDER_ROLES or prefix == "/"):
        return False
    return scope_path.startswith(prefix) and home_path.startswith(prefix)
