"""Facts that arrived before the person: linking them to the resident once the resident is registered.

A fact about a person — a nucleic-acid result, a positive case, a measure — whose ID number matches
no resident is kept with ``resident`` and ``unit`` empty ("unmatched", docs/facts.md). It counts for
no unit, because the evaluator counts participation by ``resident_id`` and places facts by
``unit_id``. When the person is registered later, ``link_facts`` sets both on those facts:

- ``resident_id``: the new resident;
- ``unit_id``: the unit of the resident's household *now* — the same rule as for a fact recorded
  after the registration, which takes the household's unit at the time it is recorded. A fact
  keeps a unit it already has.

Set-based: one ``UPDATE … FROM`` per fact table for a batch of ID hashes (``id_hash = ANY(%s)`` on
PostgreSQL, ``IN (…)`` on SQLite), never a statement per person. On the weekly-partitioned results
table the hash is the leading column of every partition's primary key, so each partition is entered
by an index scan on the hashes (EXPLAIN in docs/facts.md, "Facts before the person").

**Only inside the submitter's scope.** A fact submitted from a scope (``scope_unit_id``: a community's
import, form or API token) is linked only to a person whose household lies inside that scope, so one
community cannot put a case on another community's resident (and withdraw its titles) by sending it
before the person is registered there. A fact about a person registered elsewhere stays unmatched and
``hold_facts`` puts it in the queue (``HeldFacts``) of a street or health-commission user whose scope
covers both, who confirms (links) or discards it (``health.actions``).

``link_facts`` opens no transaction, writes no audit row and re-checks nothing: its callers (the
residents import, the world generator, ``health.actions.do_relink_facts``) do all three in their
own transaction, with the units of the linked cases and measures that it returns.

The race it closes (PostgreSQL): a fact writer looks the person up, does not see a resident that a
residents import inserted but has not committed yet, and stores the fact unmatched; if the import's
UPDATE ran before that fact was committed, it would never be linked. So every fact writer takes
``hold_registry_for_matching`` (a shared transaction lock) before it looks people up, and
``link_facts`` takes the same lock exclusively before it updates: either the fact writer committed
first and the UPDATE sees its rows, or it waits until the residents are committed and then finds
them. Fact writers do not wait for each other; they wait for an import that registers new people
until it commits. (SQLite runs one writing transaction at a time: nothing to do there.)
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from django.db import connection

from .models import Measure, NatResult, PositiveCase

_LINK_LOCK = 0x6E61746C  # pg_advisory_xact_lock key: fact writers (shared) vs. linking (exclusive)
_SQLITE_CHUNK = 5000  # hashes per IN (…): a residents import batch, well under SQLite's variable limit

STATE_KEY = "linked_facts"  # where an import keeps its LinkedFacts in ImportContext.state


@dataclass
class LinkedFacts:
    """How many stored facts were linked to residents, and the units of the linked cases and measures
    (the ones supervision re-checks: a linked result only adds a test, which can make no title fall)."""

    results: int = 0
    cases: int = 0
    measures: int = 0
    unit_ids: set[int] = field(default_factory=set)

    @property
    def total(self) -> int:
        return self.results + self.cases + self.measures

    def __iadd__(self, other: LinkedFacts) -> LinkedFacts:
        self.results += other.results
        self.cases += other.cases
        self.measures += other.measures
        self.unit_ids |= other.unit_ids
        return self

    def as_detail(self) -> dict[str, int]:
        """For an audit row: the counts per fact table."""
        return {"results": self.results, "cases": self.cases, "measures": self.measures}


def hold_registry_for_matching() -> None:
    """Called by every writer of person facts before it looks the people up (see the module
    docstring): holds the shared link lock until the transaction ends. No-op outside PostgreSQL."""
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", [_LINK_LOCK])


def _hold_registry_for_linking() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_LINK_LOCK])


def link_statement(table: str, *, by_hash: bool, returning: bool) -> str:
    """The UPDATE that links ``table``'s unmatched facts to residents with the same ``id_hash``.
    ``by_hash``: only the hashes passed as the parameter(s) (PostgreSQL: one array, twice; SQLite: a
    ``{}`` to fill with placeholders); otherwise every unmatched fact whose person is registered."""
    from wuyiqu.units.models import Household, Resident, Unit

    resident, household, unit = Resident._meta.db_table, Household._meta.db_table, Unit._meta.db_table
    sql = (
        f"UPDATE {table} AS f SET resident_id = p.rid, unit_id = COALESCE(f.unit_id, p.home_unit) "
        f"FROM (SELECT r.id AS rid, r.id_hash AS rhash, h.unit_id AS home_unit, u.path AS home_path "
        f"FROM {resident} r JOIN {household} h ON h.id = r.household_id JOIN {unit} u ON u.id = h.unit_id) AS p "
        "WHERE p.rhash = f.id_hash AND f.resident_id IS NULL "
        # Only inside the submitter's scope (the module docstring); the same prefix test on both databases.
        f"AND (f.scope_unit_id IS NULL OR EXISTS (SELECT 1 FROM {unit} s WHERE s.id = f.scope_unit_id "
        "AND substr(p.home_path, 1, length(s.path)) = s.path))"
    )
    if by_hash:
        if connection.vendor == "postgresql":
            # The hashes on both sides: the planner then enters the residents' unique index and each
            # partition's primary key with the same list, and joins the two small results.
            sql += " AND f.id_hash = ANY(%s) AND p.rhash = ANY(%s)"
        else:
            sql += " AND f.id_hash IN ({})"
    # Both databases name the updated table's column here (the joined side has no ``unit_id``).
    return sql + (" RETURNING unit_id" if returning else "")


def link_facts(hashes: Collection[str] | None) -> LinkedFacts:
    """Link the unmatched facts of the residents holding ``hashes`` (None: of every resident) to them.
    Returns what was linked. Facts already linked are left alone, so running it again links nothing.
    Runs inside the caller's transaction (see the module docstring)."""
    out = LinkedFacts()
    if hashes is not None:
        hashes = sorted({h for h in hashes if h})
        if not hashes:
            return out
    _hold_registry_for_linking()
    tables: Sequence[tuple[str, str]] = (
        ("results", NatResult._meta.db_table),
        ("cases", PositiveCase._meta.db_table),
        ("measures", Measure._meta.db_table),
    )
    with connection.cursor() as cur:
        for name, table in tables:
            returning = name != "results"  # a result moves no verdict at once (see LinkedFacts)
            for params, sql in _statements(table, hashes, returning=returning):
                cur.execute(sql, params)
                if returning:
                    units = [u for (u,) in cur.fetchall()]
                    setattr(out, name, getattr(out, name) + len(units))
                    out.unit_ids.update(u for u in units if u is not None)
                else:
                    setattr(out, name, getattr(out, name) + cur.rowcount)
    return out


def _statements(table: str, hashes: list[str] | None, *, returning: bool):
    if hashes is None:
        yield [], link_statement(table, by_hash=False, returning=returning)
    elif connection.vendor == "postgresql":
        yield [hashes, hashes], link_statement(table, by_hash=True, returning=returning)
    else:
        template = link_statement(table, by_hash=True, returning=returning)
        for i in range(0, len(hashes), _SQLITE_CHUNK):
            chunk = hashes[i:i + _SQLITE_CHUNK]
            yield chunk, template.format(", ".join(["%s"] * len(chunk)))


def hold_facts(hashes: Collection[str] | None) -> list:
    """Queue the facts that stay unmatched although their person is registered — submitted from a
    scope that does not contain the person's household — as ``HeldFacts``: one open row per person and
    submitting scope, made or topped up with the counts per table. ``hashes``: only these people
    (None: everyone). Call after ``link_facts`` in the same transaction. Returns the rows it made
    (whoever decides is told by the caller: ``health.actions.tell_deciders``). Set-based: one
    grouped query per fact table."""
    from wuyiqu.units.models import Resident

    from .models import HeldFacts, HeldStatus

    if hashes is not None:
        hashes = sorted({h for h in hashes if h})
        if not hashes:
            return []
    counts: dict[tuple[str, int], dict[str, int]] = {}
    resident = Resident._meta.db_table
    with connection.cursor() as cur:
        for name, table in (("results", NatResult._meta.db_table), ("cases", PositiveCase._meta.db_table),
                            ("measures", Measure._meta.db_table)):
            sql = (f"SELECT f.id_hash, f.scope_unit_id, count(*) FROM {table} f JOIN {resident} r ON r.id_hash = f.id_hash "
                   "WHERE f.resident_id IS NULL AND f.scope_unit_id IS NOT NULL")
            chunks = [None] if hashes is None else [hashes[i:i + _SQLITE_CHUNK]
                                                   for i in range(0, len(hashes), _SQLITE_CHUNK)]
            for chunk in chunks:
                params: list = []
                text = sql
                if chunk is not None:
                    text += " AND f.id_hash IN ({})".format(", ".join(["%s"] * len(chunk)))
                    params = list(chunk)
                cur.execute(text + " GROUP BY f.id_hash, f.scope_unit_id", params)
                for h, scope_id, n in cur.fetchall():
                    counts.setdefault((h, scope_id), {"results": 0, "cases": 0, "measures": 0})[name] = n
    if not counts:
        return []
    residents = dict(Resident.objects.filter(id_hash__in=sorted({h for h, _s in counts})).values_list("id_hash", "pk"))
    open_rows = {(row.id_hash, row.scope_unit_id): row for row in HeldFacts.objects.filter(
        status=HeldStatus.PENDING, id_hash__in=sorted({h for h, _s in counts}))}
    new, changed = [], []
    for (h, scope_id), n in counts.items():
        row = open_rows.get((h, scope_id))
        if row is None:
            new.append(HeldFacts(id_hash=h, resident_id=residents[h], scope_unit_id=scope_id, **n))
        elif (row.results, row.cases, row.measures, row.resident_id) != (n["results"], n["cases"], n["measures"],
                                                                        residents[h]):
            row.results, row.cases, row.measures, row.resident_id = n["results"], n["cases"], n["measures"], residents[h]
            changed.append(row)
    HeldFacts.objects.bulk_create(new)
    if changed:
        HeldFacts.objects.bulk_update(changed, ["results", "cases", "measures", "resident"])
    return new
