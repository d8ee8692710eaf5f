"""The city-wide resident directory (``ResidentDirectory``): ID-number hash -> the district that keeps
the person (docs/scaling.md, "Running on Citus").

The residents are kept in their household's district, and their unique key is ``(district_code,
id_hash)`` (Citus wants the district, its distribution column, in every unique key). The directory's
primary key is the hash alone: a number is registered in one district of the city, and two districts
registering the same new number at the same moment are stopped by the key, not only by the writers'
look-up before. It is also how a number is found without asking every district: ``districts_of``
reads the directory (on Citus distributed by ``id_hash``, so a number's entry lies on one shard), and
``resident_values`` then reads each district's residents with a statement that names the district
(routed to that district's shard).

Every writer of the register keeps it: ``Resident.save`` and ``Resident.objects.bulk_create``
(``register``), the residents import's COPY (``insert``), a move across districts (``forget``, then
``register`` with the new district), a person taken off the register (``Resident.delete`` and the
residents' queryset ``delete``: ``forget``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from django.db import IntegrityError, connection

from .models import ResidentDirectory

TABLE = ResidentDirectory._meta.db_table
COLUMNS = ("id_hash", "district_code")
_CHUNK = 2000


def register(entries: Sequence[tuple[str, str]]) -> None:
    """Enter ``entries`` ((id_hash, district_code) of new residents) in the directory, in the caller's
    transaction. A number already entered (registered in any district) raises IntegrityError."""
    if not entries:
        return
    ResidentDirectory.objects.bulk_create([ResidentDirectory(id_hash=h, district_code=d) for h, d in entries],
                                          batch_size=_CHUNK)


def forget(hashes: Sequence[str]) -> None:
    """Take ``hashes`` out of the directory, in the caller's transaction: a person moving to another
    district is deleted there and inserted again (``units.relocation``), which enters them anew."""
    for i in range(0, len(hashes), _CHUNK):
        ResidentDirectory.objects.filter(id_hash__in=hashes[i:i + _CHUNK]).delete()


def numbers() -> str:
    """A FROM item ``q(h)``: the numbers given as one parameter (``numbers_param``). Joined to the
    directory or the residents by their key, it is probed by index number by number, whatever the
    planner believes of the table: an ``IN (…)`` list was planned, in a registry analysed while empty
    and filled since (a district's first import, in its transaction), as a scan of the whole district
    with the list as a filter (0.8 s per 2,000 numbers against 22 ms, docs/benchmarks.md)."""
    if connection.vendor == "postgresql":
        # One text parameter, split by the server: a list as a psycopg array is quoted element by
        # element in Python (Django's client-side cursor), 4 s per 100,000 rows of a residents import.
        return "unnest(string_to_array(%s, ',')) AS q(h)"
    return "(SELECT value AS h FROM json_each(%s)) AS q"


def numbers_param(hashes: Sequence[str]) -> str:
    """The parameter of ``numbers()``: the hashes (hex: no comma, no quote) comma-joined on
    PostgreSQL, a JSON list on SQLite."""
    return ",".join(hashes) if connection.vendor == "postgresql" else json.dumps(list(hashes))


def districts_of(hashes: Iterable[str]) -> dict[str, str]:
    """{id_hash: district_code} for the registered numbers among ``hashes``."""
    uniq = sorted(set(hashes))
    out: dict[str, str] = {}
    with connection.cursor() as cur:
        for i in range(0, len(uniq), _CHUNK):
            cur.execute(f"SELECT d.id_hash, d.district_code FROM {numbers()} JOIN {TABLE} d ON d.id_hash = q.h",
                        [numbers_param(uniq[i:i + _CHUNK])])
            out.update(cur.fetchall())
    return out


def by_district(hashes: Iterable[str]) -> dict[str, list[str]]:
    """The registered numbers among ``hashes``, grouped by the district that keeps each."""
    out: dict[str, list[str]] = {}
    for h, district in districts_of(hashes).items():
        out.setdefault(district, []).append(h)
    return out


# What ``resident_values`` can read: the resident ``r``, their household ``h`` and its unit ``u``.
FIELDS = {"pk": "r.id", "household_id": "r.household_id", "district_code": "r.district_code",
          "household__unit_id": "h.unit_id", "household__unit__path": "u.path"}


def resident_values(hashes: Iterable[str], *fields: str, not_under: str | None = None) -> list[tuple]:
    """(id_hash, *fields) (``FIELDS``) of the registered residents among ``hashes``: the directory
    first, then one statement per district (and chunk) that names the district — routed to one shard
    on Citus, where a look-up by number alone asks every shard. ``not_under``: only the residents whose
    household's unit lies outside that unit path."""
    columns = "".join(f", {FIELDS[f]}" for f in fields)
    sql = (f"SELECT r.id_hash{columns} FROM {{numbers}} "
           "JOIN units_resident r ON r.district_code = %s AND r.id_hash = q.h "
           "JOIN units_household h ON h.district_code = r.district_code AND h.id = r.household_id "
           "JOIN units_unit u ON u.id = h.unit_id")
    extra: list = []
    if not_under is not None:
        sql += " WHERE substr(u.path, 1, %s) <> %s"
        extra = [len(not_under), not_under]
    return select_by_district(sql, hashes, extra)


def select_by_district(sql: str, hashes: Iterable[str], extra: Sequence = ()) -> list[tuple]:
    """The rows of ``sql`` for the registered numbers among ``hashes``, one statement per district that
    keeps some of them (and chunk). ``sql`` reads ``{numbers}`` (``numbers()``: the district's numbers,
    the first parameter) joined by ``q.h`` and names the district as its second parameter, then
    ``extra``: ``… FROM {numbers} JOIN units_resident r ON r.district_code = %s AND r.id_hash = q.h``."""
    out: list[tuple] = []
    text = sql.format(numbers=numbers())
    with connection.cursor() as cur:
        for district, found in by_district(hashes).items():
            for i in range(0, len(found), _CHUNK):
                cur.execute(text, [numbers_param(found[i:i + _CHUNK]), district, *extra])
                out.extend(cur.fetchall())
    return out


def insert(entries: Sequence[tuple[str, str]]) -> None:
    """``register`` for the bulk writers that COPY their residents (the residents import): COPY on
    PostgreSQL, a multi-row INSERT on SQLite; the key refuses a number entered already."""
    from wuyiqu.imports.bulk import insert_rows

    if not entries:
        return
    try:
        insert_rows(TABLE, COLUMNS, entries)
    except IntegrityError:
        raise
    except Exception as exc:  # psycopg's own error: COPY runs on the connection under Django's wrapper
        if connection.vendor == "postgresql" and _unique_violation(exc):
            raise IntegrityError(str(exc)) from exc
        raise


def _unique_violation(exc: Exception) -> bool:
    """Whether psycopg's ``exc`` is a unique key's refusal: SQLSTATE 23505 from PostgreSQL; from a Citus
    worker through the coordinator's COPY, Citus passes the worker's message on as an internal error
    (XX000), hence the message too."""
    from psycopg import errors

    if isinstance(exc, errors.UniqueViolation):
        return True
    primary = getattr(getattr(exc, "diag", None), "message_primary", None) or ""
    return isinstance(exc, errors.InternalError_) and primary.startswith("duplicate key value violates unique constraint")
