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
    from wuyiqu.units.models import Household, Resident

    resident, household = Resident._meta.db_table, Household._meta.db_table
    sql = (
        f"UPDATE {table} AS f SET resident_id = p.rid, unit_id = COALESCE(f.unit_id, p.home_unit) "
        f"FROM (SELECT r.id AS rid, r.id_hash AS rhash, h.unit_id AS home_unit FROM {resident} r "
        f"JOIN {household} h ON h.id = r.household_id) AS p "
        "WHERE p.rhash = f.id_hash AND f.resident_id IS NULL"
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
