"""The city-wide resident directory (``ResidentDirectory``): ID-number hash -> the district that keeps
the person (docs/scaling.md, "The resident directory").

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
``register`` with the new district). The
register has no removal of a person.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import IntegrityError, connection

from .models import Resident, ResidentDirectory

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


def districts_of(hashes: Iterable[str]) -> dict[str, str]:
    """{id_hash: district_code} for the registered numbers among ``hashes``."""
    uniq = sorted(set(hashes))
    out: dict[str, str] = {}
    with connection.cursor() as cur:
        for i in range(0, len(uniq), _CHUNK):
            chunk = uniq[i:i + _CHUNK]
            cur.execute(f"SELECT id_hash, district_code FROM {TABLE} WHERE id_hash IN ({', '.join(['%s'] * len(chunk))})",
                        chunk)
            out.update(cur.fetchall())
    return out


def by_district(hashes: Iterable[str]) -> dict[str, list[str]]:
    """The registered numbers among ``hashes``, grouped by the district that keeps each."""
    out: dict[str, list[str]] = {}
    for h, district in districts_of(hashes).items():
        out.setdefault(district, []).append(h)
    return out


def resident_values(hashes: Iterable[str], *fields: str, queryset=None) -> list[tuple]:
    """``values_list("id_hash", *fields)`` of the registered residents among ``hashes``: the directory
    first, then one statement per district (and chunk) that names the district — routed to one shard
    on Citus, where a look-up by number alone asks every shard. ``queryset`` narrows the residents
    (e.g. ``.exclude(household__unit__path__startswith=…)``)."""
    base = queryset if queryset is not None else Resident.objects.all()
    out: list[tuple] = []
    for district, found in by_district(hashes).items():
        for i in range(0, len(found), _CHUNK):
            out.extend(base.filter(district_code=district, id_hash__in=found[i:i + _CHUNK])
                       .values_list("id_hash", *fields).order_by())
    return out


def select_by_district(sql: str, hashes: Iterable[str]) -> list[tuple]:
    """The rows of ``sql`` for the registered numbers among ``hashes``, one statement per district that
    keeps some of them (and chunk): ``sql``'s first parameter (``%s``) is the district, its ``{}`` the
    list of that district's numbers (``… WHERE r.district_code = %s AND r.id_hash IN ({})``)."""
    out: list[tuple] = []
    with connection.cursor() as cur:
        for district, found in by_district(hashes).items():
            for i in range(0, len(found), _CHUNK):
                chunk = found[i:i + _CHUNK]
                cur.execute(sql.format(", ".join(["%s"] * len(chunk))), [district, *chunk])
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
