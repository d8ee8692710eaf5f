"""Facts that arrived before the person: linking them to the resident once the resident is registered.

A fact about a person — a nucleic-acid result, a positive case, a measure — whose ID number matches
no resident is kept with ``resident`` and ``unit`` empty ("unmatched", docs/facts.md). It counts for
no unit, because the evaluator counts participation by ``resident_id`` and places facts by
``unit_id``. When the person is registered later, ``link_facts`` sets both on those facts:

- ``resident_id``: the new resident;
- ``unit_id``: the unit of the resident's household *now* — the same rule as for a fact recorded
  after the registration, which takes the household's unit at the time it is recorded. A fact
  keeps a unit it already has.

Set-based, a chunk of ID hashes at a time, never a statement per person: the residents, the
unmatched facts of each table, then the linked ones written — results, cases and measures moved
into the person's district (they are kept in a district, NatResult's and PersonFact's docstrings: a
delete and an insert, ``move_results``, ``move_facts``, as on Citus the district is the distribution
column; a fact already in it is updated in place). The scope test (below) is made in Python on what
was read (the rows are written again anyway).

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
    """The UPDATE that links ``table``'s unmatched facts to residents with the same ``id_hash`` in one
    statement: how plain PostgreSQL and SQLite linked before the Citus deployment (``link_facts`` now
    reads and writes per chunk); kept for bench/relink_residents.py, which measures it.
    ``by_hash``: only the hashes passed as the parameter(s) (PostgreSQL: one array, twice; SQLite: a
    ``{}`` to fill with placeholders); otherwise every unmatched fact whose person is registered."""
    from wuyiqu.units.models import Household, Resident, Unit

    resident, household, unit = Resident._meta.db_table, Household._meta.db_table, Unit._meta.db_table
    sql = (
        f"UPDATE {table} AS f SET resident_id = p.rid, unit_id = COALESCE(f.unit_id, p.home_unit) "
        f"FROM (SELECT r.id AS rid, r.id_hash AS rhash, h.unit_id AS home_unit, u.path AS home_path "
        f"FROM {resident} r JOIN {household} h ON h.district_code = r.district_code AND h.id = r.household_id "
        f"JOIN {unit} u ON u.id = h.unit_id) AS p "
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


def _number_filter(column: str, values: Sequence[str]) -> tuple[str, list]:
    """SQL ``column`` among ``values`` (hashes: hex) and its parameters: on PostgreSQL one text
    parameter the server splits (a list of 5,000 placeholders cost psycopg more to split than the
    server to answer, and an array is quoted element by element), an IN list on SQLite."""
    if connection.vendor == "postgresql":
        from wuyiqu.units.directory import numbers_param

        return f"{column} = ANY(string_to_array(%s, ','))", [numbers_param(values)]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def _with_unmatched_facts(hashes: Sequence[str]) -> set[str]:
    """The numbers among ``hashes`` that an unmatched result, case or measure names."""
    found: set[str] = set()
    where, params = _number_filter("id_hash", hashes)
    with connection.cursor() as cur:
        for model in (NatResult, PositiveCase, Measure):
            cur.execute(f"SELECT DISTINCT id_hash FROM {model._meta.db_table} WHERE resident_id IS NULL AND {where}",
                        params)
            found.update(h for (h,) in cur.fetchall())
    return found


def link_facts(hashes: Collection[str] | None) -> LinkedFacts:
    """Link the unmatched facts of the residents holding ``hashes`` (None: of every resident) to them.
    Returns what was linked. Facts already linked are left alone, so running it again links nothing.
    Runs inside the caller's transaction (see the module docstring).

    Per chunk of hashes, a fixed number of statements: the residents with their household's unit and
    path, the scopes' paths, then per fact table the unmatched facts read and the linked ones written
    (results moved into the person's district, ``move_results``; cases and measures one UPDATE of
    their resident and unit per district where they already lie in the person's, else moved there,
    ``move_facts``). The scope test is done in Python on what was read: on Citus an UPDATE
    of a coordinator's table joined with the units (a reference table) is refused."""
    from wuyiqu.units import directory
    from wuyiqu.units.models import Unit, district_of

    out = LinkedFacts()
    if hashes is not None:
        hashes = sorted({h for h in hashes if h})
        if not hashes:
            return out
    _hold_registry_for_linking()
    if hashes is None:
        hashes = sorted({h for model in (NatResult, PositiveCase, Measure)
                         for h in model.objects.filter(resident_id__isnull=True).exclude(id_hash="")
                         .values_list("id_hash", flat=True).distinct()})
    for i in range(0, len(hashes), _SQLITE_CHUNK):
        chunk = hashes[i:i + _SQLITE_CHUNK]
        # Which of them an unmatched fact names, first (each table's key or index leads with the
        # number): most people registered have none, and are then neither looked up nor read again.
        wanted = _with_unmatched_facts(chunk)
        if not wanted:
            continue
        people = {h: (rid, unit_id, path) for h, rid, unit_id, path in directory.resident_values(
            wanted, "pk", "household__unit_id", "household__unit__path")}
        if not people:
            continue
        known = sorted(people)
        facts = {"results": list(NatResult.objects.filter(id_hash__in=known, resident_id__isnull=True)),
                 "cases": list(PositiveCase.objects.filter(id_hash__in=known, resident__isnull=True)),
                 "measures": list(Measure.objects.filter(id_hash__in=known, resident__isnull=True))}
        scopes = dict(Unit.objects.filter(pk__in={f.scope_unit_id for rows in facts.values() for f in rows
                                                  if f.scope_unit_id is not None}).values_list("pk", "path"))

        def inside(fact, people=people, scopes=scopes) -> bool:
            """Only inside the submitter's scope (the module docstring)."""
            if fact.scope_unit_id is None:
                return True
            scope = scopes.get(fact.scope_unit_id)
            return scope is not None and people[fact.id_hash][2].startswith(scope)

        moves = []
        for r in facts["results"]:
            if inside(r):
                rid, home_unit, home_path = people[r.id_hash]
                moves.append((r, {"resident_id": rid, "unit_id": r.unit_id or home_unit,
                                  "district_code": district_of(home_path)}))
        out.results += move_results(moves)
        for name, model in (("cases", PositiveCase), ("measures", Measure)):
            linked = []
            for f in facts[name]:
                if inside(f):
                    rid, home_unit, home_path = people[f.id_hash]
                    linked.append((f, {"resident_id": rid, "unit_id": f.unit_id or home_unit,
                                       "district_code": district_of(home_path)}))
            setattr(out, name, getattr(out, name) + move_facts(model, linked))
            out.unit_ids.update(changes["unit_id"] for _f, changes in linked if changes["unit_id"] is not None)
    return out


def move_facts(model, moves: Sequence[tuple]) -> int:
    """Write each case or measure of ``moves`` ((row as read, {field: new value}), the row read with
    at least its id, district, resident and unit) again with the changed fields — a person, a unit, the
    district it is kept in — in the caller's transaction. Rows that stay in their district are updated
    in place, the district named; the others are deleted where they are kept and inserted, with the
    same id (and a measure's changes with it), in their new district (``units.relocation``: a district
    is never updated in place). Returns how many were written."""
    from wuyiqu.units.relocation import move_rows

    staying, leaving = [], []
    for row, changes in moves:
        (staying if changes.get("district_code", row.district_code) == row.district_code else leaving).append(
            (row, changes))
    by_district: dict[str, list] = {}
    for row, changes in staying:
        for name, value in changes.items():
            setattr(row, name, value)
        by_district.setdefault(row.district_code, []).append(row)
    for district, rows in by_district.items():
        # The district named: on Citus each statement goes to one shard.
        model.objects.filter(district_code=district).bulk_update(rows, ["resident", "unit"], batch_size=1000)
    move_rows(model, leaving)
    return len(moves)


def move_results(moves: Sequence[tuple[NatResult, dict]]) -> int:
    """Write each result of ``moves`` (as read from the table) again with the changed fields of its
    dict — a person, a unit, the district it is kept in — in the caller's transaction. A district on
    Citus is the distribution column, never updated in place: the rows are deleted where they are
    kept and inserted where they now belong (a result already stored there, the same sample linked
    from two scopes, is kept once). Returns how many were moved."""
    if not moves:
        return 0
    by_district: dict[str, list[tuple]] = {}
    new = []
    for r, changes in moves:
        by_district.setdefault(r.district_code, []).append((r.id_hash, r.sampled_on, r.sampled_at, r.district_code))
        fields = {f.attname: getattr(r, f.attname) for f in NatResult._meta.concrete_fields}
        new.append(NatResult(**{**fields, **changes}))
    for district, keys in by_district.items():
        for i in range(0, len(keys), 500):
            # The district named: on Citus each statement goes to that district's shard only.
            NatResult.objects.filter(district_code=district, pk__in=keys[i:i + 500]).delete()
    NatResult.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    return len(moves)


def rehome_results(resident_districts: dict[int, str]) -> int:
    """After residents moved to another district (resident id -> their new district): their matched
    results move along (``move_results``), so that a district's participation finds every result of
    the people who live in it on its own shard. Read on every shard (a few rows a person)."""
    if not resident_districts:
        return 0
    moves = []
    ids = sorted(resident_districts)
    for i in range(0, len(ids), _SQLITE_CHUNK):
        for r in NatResult.objects.filter(resident_id__in=ids[i:i + _SQLITE_CHUNK]):
            if r.district_code != resident_districts[r.resident_id]:
                moves.append((r, {"district_code": resident_districts[r.resident_id]}))
    return move_results(moves)


def hold_facts(hashes: Collection[str] | None) -> list:
    """Queue the facts that stay unmatched although their person is registered — submitted from a
    scope that does not contain the person's household — as ``HeldFacts``: one open row per person and
    submitting scope, made or topped up with the counts per table. ``hashes``: only these people
    (None: everyone). Call after ``link_facts`` in the same transaction. Returns the rows it made
    (whoever decides is told by the caller: ``health.actions.tell_deciders``). Set-based: one
    grouped query per fact table."""
    from wuyiqu.units import directory

    from .models import HeldFacts, HeldStatus

    if hashes is not None:
        hashes = sorted({h for h in hashes if h})
        if not hashes:
            return []
    counts: dict[tuple[str, int], dict[str, int]] = {}
    with connection.cursor() as cur:
        for name, table in (("results", NatResult._meta.db_table), ("cases", PositiveCase._meta.db_table),
                            ("measures", Measure._meta.db_table)):
            # The registered people are kept below (``residents``): no join with the registry here,
            # which Citus would plan by shipping the registry to the results' shards.
            sql = (f"SELECT f.id_hash, f.scope_unit_id, count(*) FROM {table} f "
                   "WHERE f.resident_id IS NULL AND f.scope_unit_id IS NOT NULL")
            chunks = [None] if hashes is None else [hashes[i:i + _SQLITE_CHUNK]
                                                   for i in range(0, len(hashes), _SQLITE_CHUNK)]
            for chunk in chunks:
                params: list = []
                text = sql
                if chunk is not None:
                    where, params = _number_filter("f.id_hash", chunk)
                    text += " AND " + where
                cur.execute(text + " GROUP BY f.id_hash, f.scope_unit_id", params)
                for h, scope_id, n in cur.fetchall():
                    counts.setdefault((h, scope_id), {"results": 0, "cases": 0, "measures": 0})[name] = n
    residents: dict[str, int] = {}
    districts: dict[str, str] = {}
    known = sorted({h for h, _s in counts})
    for h, pk, district in directory.resident_values(known, "pk", "district_code"):
        residents[h], districts[h] = pk, district
    counts = {key: n for key, n in counts.items() if key[0] in residents}
    if not counts:
        return []
    open_rows = {(row.id_hash, row.scope_unit_id): row for row in HeldFacts.objects.filter(
        status=HeldStatus.PENDING, id_hash__in=sorted({h for h, _s in counts}))}
    new, changed = [], []
    for (h, scope_id), n in counts.items():
        row = open_rows.get((h, scope_id))
        if row is None:
            new.append(HeldFacts(id_hash=h, resident_id=residents[h], district_code=districts[h], scope_unit_id=scope_id,
                                 **n))
        elif (row.results, row.cases, row.measures, row.resident_id) != (n["results"], n["cases"], n["measures"],
                                                                        residents[h]):
            row.results, row.cases, row.measures, row.resident_id = n["results"], n["cases"], n["measures"], residents[h]
            changed.append(row)
    HeldFacts.objects.bulk_create(new)
    if changed:
        HeldFacts.objects.bulk_update(changed, ["results", "cases", "measures", "resident"])
    return new
