"""Where people lived, day by day (SPEC §7 "Time").

A resident lives in ``Resident.household`` from ``Resident.moved_on`` (empty: on every earlier day
too) and, before that, in the households of their ``PastResidence`` rows, each from ``from_on``
(empty: every earlier day) to ``until_on``. The spells never overlap: a move closes the current
spell on the day before its ``moved_on`` (``units.actions.move_residents``). A household counts from
its ``registered_on`` (empty: every day).

This module holds the rule in one place: the pure check of a move, the SQL the evaluator uses to
place people and their facts on a day, and the history of one person for the pages.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.translation import gettext as _

from .models import PastResidence, Resident


def move_problem(*, last_moved_on: dt.date | None, moved_on: dt.date, today: dt.date,
                 born_on: dt.date | None = None) -> str | None:
    """Why a move dated ``moved_on`` cannot be recorded for a person whose current spell began on
    ``last_moved_on`` (None: a first registration without a date), or None when it can. Chinese."""
    if moved_on > today:
        return _("迁入日期（%(d)s）不能晚于今天") % {"d": moved_on.isoformat()}
    if born_on is not None and moved_on < born_on:
        return _("迁入日期（%(d)s）不能早于出生日期（%(b)s）") % {"d": moved_on.isoformat(), "b": born_on.isoformat()}
    if last_moved_on is not None and moved_on < last_moved_on:
        return (_("迁入日期（%(d)s）不能早于该居民上次迁入的日期（%(last)s）")
                % {"d": moved_on.isoformat(), "last": last_moved_on.isoformat()})
    return None


def closed_spell(*, last_moved_on: dt.date | None, moved_on: dt.date) -> tuple[dt.date | None, dt.date] | None:
    """The (from, until) of the spell a move on ``moved_on`` ends, or None when it covered no day (a
    person moved again on the day they arrived: the earlier arrival was a mistake, not a stay)."""
    until = moved_on - dt.timedelta(days=1)
    if last_moved_on is not None and until < last_moved_on:
        return None
    return last_moved_on, until


# --- SQL for the evaluator ------------------------------------------------------------------------------
# Each helper takes ``day`` as a date (then it is a parameter, returned with the SQL) or as the SQL
# of a date column (``c.reported_on``: the day of each row), and returns (SQL, parameters).

Day = dt.date | str


def _day(day: Day) -> tuple[str, list]:
    return ("%s", [day]) if isinstance(day, dt.date) else (day, [])


def household_on(r: str, day: Day) -> tuple[str, list]:
    """An expression: the id of the household resident ``r`` (a table alias) lived in on ``day``, NULL
    when they lived in none known here then. The past spells are looked at only for a day before the
    current arrival: for today, never."""
    d, p = _day(day)
    past = PastResidence._meta.db_table
    return (f"CASE WHEN {r}.moved_on IS NULL OR {r}.moved_on <= {d} THEN {r}.household_id "
            f"ELSE (SELECT p.household_id FROM {past} p WHERE p.resident_id = {r}.id AND p.until_on >= {d} "
            f"AND (p.from_on IS NULL OR p.from_on <= {d}) ORDER BY p.until_on LIMIT 1) END", p * 3)


def registered(alias: str, day: Day) -> tuple[str, list]:
    """A condition: the household or ledger entry ``alias`` is registered on ``day``."""
    d, p = _day(day)
    return f"({alias}.registered_on IS NULL OR {alias}.registered_on <= {d})", p


def arrived(r: str, day: Day) -> tuple[str, list]:
    """A condition: resident ``r`` lives in ``r.household_id`` on ``day`` (had arrived by then)."""
    d, p = _day(day)
    return f"({r}.moved_on IS NULL OR {r}.moved_on <= {d})", p


def past_spells_on(p: str, day: Day) -> tuple[str, list]:
    """A condition: the past spell ``p`` covers ``day``. For a date, entered by the ``until_on``
    index, whose rows on or after the day are those of the moves made since: none for today."""
    d, params = _day(day)
    return f"{p}.until_on >= {d} AND ({p}.from_on IS NULL OR {p}.from_on <= {d})", params * 2


# --- in Python, for a few people (the units a new fact bears on) ----------------------------------------

def units_on(pairs: Iterable[tuple[int, dt.date]]) -> dict[tuple[int, dt.date], int | None]:
    """For each (resident id, day): the unit of the household the resident lived in on that day, None
    when none is known here then. Two queries per 1,000 people, whatever the days."""
    pairs = set(pairs)
    ids = sorted({rid for rid, _day in pairs})
    current: dict[int, tuple[int, dt.date | None]] = {}
    past: dict[int, list[tuple[int, dt.date | None, dt.date]]] = defaultdict(list)
    for i in range(0, len(ids), 1000):
        chunk = ids[i:i + 1000]
        for rid, unit_id, moved_on in Resident.objects.filter(pk__in=chunk).values_list(
                "pk", "household__unit_id", "moved_on"):
            current[rid] = (unit_id, moved_on)
        for rid, unit_id, from_on, until_on in PastResidence.objects.filter(resident_id__in=chunk).values_list(
                "resident_id", "household__unit_id", "from_on", "until_on"):
            past[rid].append((unit_id, from_on, until_on))
    out: dict[tuple[int, dt.date], int | None] = {}
    for rid, day in pairs:
        unit_id, moved_on = current.get(rid, (None, None))
        if unit_id is not None and (moved_on is None or moved_on <= day):
            out[(rid, day)] = unit_id
        else:
            out[(rid, day)] = next((u for u, f, t in past[rid] if (f is None or f <= day) and t >= day), None)
    return out


# --- one person's history (pages) -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Spell:
    household_code: str
    address: str
    unit_name: str
    from_on: dt.date | None  # None: since before the register knows
    until_on: dt.date | None  # None: lives there now


def history_of(resident: Resident) -> list[Spell]:
    """Where ``resident`` lived, oldest first, the current household last. Call it with a resident
    read through a scoped selector (``units.selectors``)."""
    spells = [Spell(p.household.code, p.household.address, p.household.unit.name, p.from_on, p.until_on)
              for p in resident.past_residences.select_related("household__unit").order_by("until_on")]
    hh = resident.household
    spells.append(Spell(hh.code, hh.address, hh.unit.name, resident.moved_on, None))
    return spells
