"""Which units new facts bear on, per import kind (the import engine and the API write facts through
the kinds; supervision re-checks the named units above these units, in the same transaction).

Each function takes a written batch (the kind's parsed rows) and the ImportContext and returns
(unit ids, unit ids whose whole subtree is affected). ``titles`` is listed because an imported title
is re-checked at once like any named unit (SPEC §7): a unit that fails a revoke criterion on its
import day loses it again with the reason. A kind not listed carries no facts the
supervision acts on at once (registry, households, signatures; verifications and the
ledger only bear on ``warn`` criteria, which the daily run looks at). ``residents`` is listed because
new people bring the cases and measures stored before they were registered into their units
(``wuyiqu.health.linking``), and a person who moves takes their measures from one unit to another:
its write keeps those units in the import's state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Found = tuple[set[int], set[int]]


def _people(numbers, ctx) -> set[int]:
    # Inside the importer's scope only: a fact about someone registered elsewhere is held, not
    # attached (``wuyiqu.health.linking``), so it bears on no unit.
    found = ctx.residents_by_id_number({n for n in numbers if n})
    return {ref.unit_id for ref in found.values() if ctx.in_scope(ref.unit_path)}


def _units(codes, ctx) -> set[int]:
    return {ref.id for ref in ctx.units_by_code({c for c in codes if c}).values()}


def _people_on(rows, ctx) -> set[int]:
    """The units where the people of ``rows`` ((id_number, reported_on)) lived on those days: a case
    counts there (SPEC §7 "Time")."""
    from wuyiqu.units.residence import units_on

    rows = [(n, d) for n, d in rows if n]
    found = ctx.residents_by_id_number({n for n, _d in rows})
    homes = units_on((found[n].id, d) for n, d in rows if n in found)
    return {u for u in homes.values() if u is not None}


def cases(rows, ctx) -> Found:  # (id_number, unit_code, reported_on, type)
    return _people_on(((r[0], r[2]) for r in rows), ctx) | _units((r[1] for r in rows), ctx), set()


def measures(rows, ctx) -> Found:  # health.actions.MeasureRow
    return _people((r.id_number for r in rows), ctx), set()


def risk_zones(rows, ctx) -> Found:  # (unit_code, type, start_on, end_on): a zone covers above and below
    units = _units((r[0] for r in rows), ctx)
    return units, units


def nat_results(rows, ctx) -> Found:  # (id_number, sampled_at, result): a positive result is a case
    """A positive result is a case on its sample day: it counts in the unit where the person lived
    that day (SPEC §7 "Time"), re-checked with the person's current unit when that is another one.
    Only people registered in the importer's scope (the others' results are held, not attached)."""
    import datetime as dt

    from wuyiqu.units.residence import units_on

    positives = [(r[0], dt.date.fromisoformat(r[1][:10])) for r in rows if r[0] and r[2] == "positive"]
    found = {n: ref for n, ref in ctx.residents_by_id_number({n for n, _d in positives}).items()
             if ctx.in_scope(ref.unit_path)}
    homes = units_on((found[n].id, d) for n, d in positives if n in found)
    then = {u for u in homes.values() if u is not None}
    return then | {ref.unit_id for ref in found.values()}, set()


def on_units(rows, ctx) -> Found:  # inspections, incidents, surveys, titles: rows with unit_code
    return _units((r.unit_code for r in rows), ctx), set()


def residents(rows, ctx) -> Found:
    """The units of cases and measures stored before the new people, and every unit a known person
    moved from or into (their measures follow them: SPEC §7 "Time")."""
    from wuyiqu.health.linking import STATE_KEY
    from wuyiqu.imports.kinds.people import MOVED_UNITS_KEY

    linked = ctx.state.get(STATE_KEY)
    return (set(linked.unit_ids) if linked else set()) | set(ctx.state.get(MOVED_UNITS_KEY, ())), set()


AFFECTED: dict[str, Callable[[list[Any], Any], Found]] = {
    "cases": cases,
    "close-contacts": measures,
    "home-quarantines": measures,
    "returnees": measures,
    "risk-zones": risk_zones,
    "nat-results": nat_results,
    "inspections": on_units,
    "incidents": on_units,
    "surveys": on_units,
    "titles": on_units,
    "residents": residents,
}


class FactsWritten:
    """Collects, batch by batch, the units a kind's writes bear on; ``recheck`` then re-checks their
    named chains. For a kind that carries no facts both do nothing."""

    def __init__(self, kind, ctx):
        self.find = AFFECTED.get(kind.name)
        self.ctx = ctx
        self.units: set[int] = set()
        self.subtrees: set[int] = set()

    def add(self, rows: list[Any]) -> None:
        if self.find is not None and rows:
            units, subtrees = self.find(rows, self.ctx)
            self.units |= units
            self.subtrees |= subtrees

    def recheck(self, *, actor, source: str):
        if self.find is None:
            return None
        from .services import recheck_after_facts

        return recheck_after_facts(self.units, subtree_ids=self.subtrees, actor=actor, source=source)
