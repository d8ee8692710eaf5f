"""A person moving to a household in another district: the rows kept with them change district.

Every district-keyed table keeps a row in one district (``district_code``: the distribution column on
Citus, which no UPDATE may change, ``DistrictKeyedModel``). A resident is kept in their household's
district, and with them the rows that follow the person: their special population entry, their
cases, their measures with the measures' changes, their held facts (and their nucleic-acid results,
``health.linking.move_results``). A move across districts therefore deletes these rows where they
were kept and inserts them, with the same ids and the new district, in one transaction — the
caller's. Their past spells stay where they were spent (in the district of that household).

The same statements on every database: the deletes name the old district (on Citus each goes to one
shard), children before their parents; the inserts parents first. The composite keys between these
tables are deferred (units 0009, health 0006), so they are checked at commit, when everything is in
its new place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import connection

from . import directory
from .models import Resident, SpecialPopulationEntry

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Relocation:
    """Where a resident goes: the household (of another district), its district, the arrival day."""

    household_id: int
    district_code: str
    moved_on: dt.date | None


def _rows(model, **filters) -> list:
    """The rows of ``model`` matching ``filters`` (``<field>__in`` lists chunked), read on every shard."""
    ((key, values),) = filters.items()
    values = sorted(set(values))
    out = []
    for i in range(0, len(values), _CHUNK):
        out.extend(model._base_manager.filter(**{key: values[i:i + _CHUNK]}))
    return out


def _delete(model, rows: list) -> None:
    """Delete ``rows`` where they are kept: one statement per district (routed to its shard on Citus),
    without Django's cascade (what follows the rows is moved by the caller, what stays — past spells,
    transfer requests — must not go)."""
    by_district: dict[str, list[int]] = {}
    for row in rows:
        by_district.setdefault(row.district_code, []).append(row.pk)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cur:
        for district, ids in by_district.items():
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i:i + _CHUNK]
                cur.execute(f"DELETE FROM {table} WHERE district_code = %s AND id IN ({', '.join(['%s'] * len(chunk))})",
                            [district, *chunk])


def _copies(model, rows: list, district_of_row) -> list:
    """New instances of ``rows`` with every field as read and the district ``district_of_row(row)``."""
    fields = [f.attname for f in model._meta.concrete_fields]
    out = []
    for row in rows:
        values = {name: getattr(row, name) for name in fields}
        values["district_code"] = district_of_row(row)
        out.append(model(**values))
    return out


def relocate_residents(moves: Mapping[int, Relocation]) -> None:
    """Move the residents ``moves`` names (resident id -> where to) into their new district with the
    rows kept with them, their household and arrival replaced. In the caller's transaction; residents
    already in that district are the caller's to update in place. Results move separately
    (``health.linking.rehome_results``)."""
    from wuyiqu.health.models import HeldFacts, Measure, MeasureChange, PositiveCase

    if not moves:
        return
    ids = list(moves)
    residents = _rows(Resident, pk__in=ids)
    entries = _rows(SpecialPopulationEntry, resident_id__in=ids)
    cases = _rows(PositiveCase, resident_id__in=ids)
    measures = _rows(Measure, resident_id__in=ids)
    changes = _rows(MeasureChange, measure_id__in=[m.pk for m in measures])
    held = _rows(HeldFacts, resident_id__in=ids)
    measure_district = {m.pk: moves[m.resident_id].district_code for m in measures}
    for model, rows in ((MeasureChange, changes), (Measure, measures), (PositiveCase, cases), (HeldFacts, held),
                        (SpecialPopulationEntry, entries), (Resident, residents)):
        _delete(model, rows)
    # Out of the directory where they were kept: the insert below enters them with their new district.
    directory.forget([r.id_hash for r in residents])
    moved = _copies(Resident, residents, lambda r: moves[r.pk].district_code)
    for r in moved:
        r.household_id, r.moved_on = moves[r.pk].household_id, moves[r.pk].moved_on
    Resident.objects.bulk_create(moved, batch_size=_CHUNK)
    for model, rows in ((SpecialPopulationEntry, entries), (PositiveCase, cases), (Measure, measures),
                        (HeldFacts, held)):
        model.objects.bulk_create(_copies(model, rows, lambda r: moves[r.resident_id].district_code),
                                  batch_size=_CHUNK)
    MeasureChange.objects.bulk_create(_copies(MeasureChange, changes, lambda c: measure_district[c.measure_id]),
                                      batch_size=_CHUNK)


def move_rows(model, moves: list[tuple]) -> None:
    """Write the rows of ``moves`` ((row as read whole, {field: new value}) of one district-keyed table,
    each with a new ``district_code``) again in their new district: deleted where they are kept and
    inserted with the same id and the changed fields, a measure's changes along with it. In the
    caller's transaction (linking a fact to its person, ``health.linking.move_facts``)."""
    from wuyiqu.health.models import Measure, MeasureChange

    if not moves:
        return
    rows = [row for row, _c in moves]  # read whole (every field is written again)
    new_values = {row.pk: changes for row, changes in moves}
    changes = _rows(MeasureChange, measure_id__in=[r.pk for r in rows]) if model is Measure else []
    _delete(MeasureChange, changes)
    _delete(model, rows)
    copies = _copies(model, rows, lambda r: new_values[r.pk]["district_code"])
    for copy in copies:
        for name, value in new_values[copy.pk].items():
            setattr(copy, name, value)
    model.objects.bulk_create(copies, batch_size=_CHUNK)
    MeasureChange.objects.bulk_create(
        _copies(MeasureChange, changes, lambda c: new_values[c.measure_id]["district_code"]), batch_size=_CHUNK)
