"""The set-based evaluator: every titled unit of a tree judged against the profile on a date.

A fixed number of aggregate queries gather the facts of all units at once (units, cases, measures,
risk zones, households with their verification, residents with their nucleic-acid tests, the
special-population ledger, inspections, incidents, surveys, titles, applications, signatures) —
never a query per unit. The facts are then rolled up the tree in Python (a fact on a unit counts
for that unit and every unit above it; a risk zone covers its unit, every unit above and every
unit below), and the registered criteria are applied bottom-up, so that a village can look at the
verdicts of the compounds and buildings below it.
"""

from __future__ import annotations

import datetime as dt
import gc
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from wuyiqu.lib.dates import window_start
from wuyiqu.units import residence

from . import criteria as C
from .profiles import LEVELS, Profile, ProfileError, parse_profile

EVALUATED_KINDS = LEVELS  # building, compound, group, village, community, street
CO_SIGNED_KINDS = ("building", "compound", "group")  # households co-sign; committees sign themselves
# Naming who is missing in a failing nat_participation (``_Evaluator._name_nat_people``): units of at
# most this many non-exempt residents, and this many residents read in all per evaluation.
NAT_NAMES_MAX_PER_UNIT = 2_000
NAT_NAMES_MAX_RESIDENTS = 20_000
TIME_CRITERIA_NOTE = "no_case, no_close_contact, no_home_quarantine, no_returnee_under_control, no_risk_zone, incidents"


@dataclass
class UnitEvaluation:
    unit: C.UnitRef
    level: str
    title: str
    eligible: bool
    named: bool
    criteria: list[C.CriterionResult]
    # For a unit that fails: the first day its failing time-window criteria all pass if nothing new
    # happens (None when none of them fails, or when one waits on an open-ended risk zone).
    earliest_pass_on: dt.date | None = None
    waits_on_open_zone: bool = False
    other_failures: list[str] = field(default_factory=list)  # failing criteria time alone won't fix
    # Villages/communities: the facts rolled up over the subtree, stored with the day's evaluation
    # (``Evaluation.rollup``) so that ``evaluate_chain`` can judge the street above without them.
    rollup: dict[str, Any] | None = None

    @property
    def failed(self) -> list[str]:
        return [c.id for c in self.criteria if not c.passed]

    def as_contract(self) -> dict[str, Any]:
        """The `wuyiqu evaluate --json` shape (SPEC §7) with a few harmless extra keys."""
        return {
            "unit": self.unit.code,
            "kind": self.unit.kind,
            "title": self.title,
            "eligible": self.eligible,
            "named": self.named,
            "criteria": [c.as_dict() for c in self.criteria],
            "name": self.unit.name,
            "earliest_pass_on": self.earliest_pass_on.isoformat() if self.earliest_pass_on else None,
        }


# --- profiles ---------------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _parsed(sha256: str, content_json: str) -> Profile:
    import json

    return parse_profile(json.loads(content_json))


def parsed_profile(row) -> Profile:
    """The validated ``Profile`` of a PolicyProfile row (cached by content digest)."""
    import json

    return _parsed(row.sha256, json.dumps(row.content, ensure_ascii=False, sort_keys=True))


def profile_row_in_force(on: dt.date, name: str | None = None):
    """The PolicyProfile row in force on ``on``: the latest activation with active_from ≤ on. With
    ``name``, the newest version of that profile instead. ProfileError (Chinese) when there is none."""
    from .models import PolicyActivation, PolicyProfile

    if name:
        row = PolicyProfile.objects.filter(name=name).order_by("-created_at", "-id").first()
        if row is None:
            raise ProfileError([_("没有名为“%(name)s”的政策配置") % {"name": name}])
        return row
    act = (PolicyActivation.objects.filter(active_from__lte=on).select_related("profile")
           .order_by("-active_from", "-created_at", "-id").first())
    if act is None:
        raise ProfileError([_("%(date)s 没有生效的政策配置") % {"date": on.isoformat()}])
    return act.profile


# --- the queries --------------------------------------------------------------------------------------


def _path_upper(path: str) -> str:
    """The least string above every path that starts with ``path`` (which ends in "/"): "/" + 1 = "0"."""
    return path[:-1] + chr(ord(path[-1]) + 1)


def _as_date(value) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _like_prefix(path: str) -> str:
    return path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _tables():
    from wuyiqu.health.models import Measure, NatResult, PositiveCase
    from wuyiqu.units.models import (
        Household,
        HouseholdVerification,
        PastResidence,
        Resident,
        SpecialPopulationEntry,
        Unit,
    )

    return {
        "unit": Unit._meta.db_table, "household": Household._meta.db_table,
        "verification": HouseholdVerification._meta.db_table, "resident": Resident._meta.db_table,
        "past": PastResidence._meta.db_table, "nat": NatResult._meta.db_table,
        "case": PositiveCase._meta.db_table, "measure": Measure._meta.db_table,
        "ledger": SpecialPopulationEntry._meta.db_table,
    }


def _as_date_or_none(value) -> dt.date | None:
    return None if value is None else _as_date(value)


def _third_birthday_by(on: dt.date, age: int) -> dt.date:
    """A resident is ``age`` or older on ``on`` when they have no kept third birthday or it is on or
    before the returned day (``on`` plus 3 - ``age`` years; the register keeps only third birthdays,
    so profiles exempt under 3 at most)."""
    years = 3 - age
    try:
        return on.replace(year=on.year + years)
    except ValueError:  # 29 February
        return on.replace(year=on.year + years, day=28)


class _Gather:
    """Runs the fixed set of queries for the units under ``root`` (None: all) on ``on``.

    With ``live`` (a unit below ``root``: the chain's village/community), the queries whose rows grow
    with the residents and units (households, verifications, nucleic-acid tests, ledger, inspections,
    surveys, titles, applications) read only ``live``'s subtree and the root unit itself; the few
    rows of cases, measures, zones and incidents are still read for all of ``root``."""

    def __init__(self, on: dt.date, profile: Profile, root, live=None):
        self.on = on
        self.profile = profile
        self.root = root
        self.live = live if root is not None else None
        self._live_rows: dict[str, list[tuple]] | None = None

    def param(self, key: str, default: int) -> int:
        values = [c.params[key] for c in self.profile.criteria if key in c.params]
        return max(values) if values else default

    @staticmethod
    def _below(field: str, path: str) -> Q:
        if connection.vendor == "sqlite":
            # SQLite's LIKE is case-insensitive and cannot use the path index: a range can.
            return Q(**{f"{field}__gte": path, f"{field}__lt": _path_upper(path)})
        return Q(**{f"{field}__startswith": path})

    def in_district(self, qs):
        """``qs`` (of a table distributed by district on Citus) restricted to the root's district, which
        routes it to that district's shard; all of it without a root."""
        if self.root is None:
            return qs
        from wuyiqu.units.models import district_of

        return qs.filter(district_code=district_of(self.root.path))

    def district_sql(self, alias: str) -> tuple[str, list[Any]]:
        """`` AND <alias>.district_code = %s`` (and its parameter) naming the root's district, for a table
        distributed by district on Citus (routed to that district's shard); nothing without a root."""
        if self.root is None:
            return "", []
        from wuyiqu.units.models import district_of

        return f" AND {alias}.district_code = %s", [district_of(self.root.path)]

    def scoped(self, qs, field: str, heavy: bool = False):
        """``qs`` restricted to rows whose ``field`` (a unit path) lies in the root's subtree (with
        ``heavy`` and a live unit: in the live unit's subtree or on the root unit itself)."""
        if self.root is None:
            return qs
        if heavy and self.live is not None:
            return qs.filter(self._below(field, self.live.path) | Q(**{field: self.root.path}))
        return qs.filter(self._below(field, self.root.path))

    def path_sql(self, column: str, heavy: bool = True) -> tuple[str, list[Any]]:
        """SQL condition (and params) for ``column`` (a unit path) in the root's subtree (with
        ``heavy`` and a live unit: in the live unit's subtree or the root unit itself)."""
        live = self.live if heavy else None
        path = live.path if live is not None else self.root.path
        if connection.vendor == "sqlite":
            cond, params = f"{column} >= %s AND {column} < %s", [path, _path_upper(path)]
        else:
            cond, params = f"{column} LIKE %s ESCAPE '\\'", [_like_prefix(path)]
        if live is not None:
            return f"({cond} OR {column} = %s)", [*params, self.root.path]
        return cond, params

    def _in_scope_sql(self, unit_id: str, heavy: bool = False) -> tuple[str, str, list[Any]]:
        """(JOIN, condition, params) keeping the rows whose unit (the SQL ``unit_id``) lies in the
        root's subtree (``path_sql``); nothing to join without a root."""
        if self.root is None:
            return "", "", []
        t = _tables()
        cond, params = self.path_sql("su.path", heavy)
        return f" JOIN {t['unit']} su ON su.id = {unit_id}", f" AND {cond}", params

    def units(self) -> list[tuple]:
        from wuyiqu.units.models import Unit

        qs = Unit.objects.all()
        if self.live is not None:
            # A chain: the live subtree, the street, its committees (their stored rows stand for
            # everything below them) and the ancestors — not the other committees' ~1,000 units.
            qs = qs.filter(Q(path__startswith=self.live.path) | Q(parent_id=self.root.pk) | Q(pk=self.root.pk)
                           | Q(code__in=self.root.ancestor_codes))
        elif self.root is not None:
            qs = qs.filter(Q(path__startswith=self.root.path) | Q(code__in=self.root.ancestor_codes))
        return list(qs.order_by("depth", "id").values_list("id", "code", "name", "kind", "path", "parent_id", "depth"))

    def _verified_sql(self) -> tuple[str, list[Any]]:
        t = _tables()
        days = self.param("verify_days", 30)
        # The district named for every distributed table (Citus routes a statement with LATERAL
        # subqueries to one shard only so).
        district, district_p = self.district_sql("v")
        return (f"EXISTS (SELECT 1 FROM {t['verification']} v WHERE v.district_code = h.district_code "
                f"AND v.household_id = h.id{district} "
                f"AND v.verified_on >= %s AND v.verified_on <= %s)", [*district_p, window_start(self.on, days), self.on])

    def by_unit(self) -> bool:
        """PostgreSQL, a subtree: read the households (and residents) unit by unit through their
        indexes. Joined as sets, PostgreSQL's planner hashes the subtree's households and scans the
        whole table of residents (and of households) to meet them: at a city of 30 million residents
        that read 8 GB for one district (30 s) where the subtree's 300,000 households are ~1 %
        of it (docs/scaling.md). A LATERAL subquery that cannot be flattened into the join (an
        aggregate, or OFFSET 0) is run per unit with the unit's id: index scans, O(subtree)."""
        return self.root is not None and connection.vendor == "postgresql"

    def _household_query(self, select: str, where: str = "", params: list[Any] | None = None,
                         group_by: str = "") -> list[tuple]:
        """The households registered on D (``select`` over alias ``h``, with ``where``)."""
        t = _tables()
        sql = f"SELECT {select} FROM {t['household']} h"
        counts, p = residence.registered("h", self.on)
        district, district_p = self.district_sql("h")
        where = f"{counts}{district} AND {where}" if where else counts + district
        params = [*p, *district_p, *(params or [])]
        conditions = [where]
        if self.by_unit():
            # The condition inside: a NOT EXISTS outside was planned as one anti-join against every
            # household verification of the window in the city (9 million rows per district).
            sql = (f"SELECT {select} FROM {t['unit']} u CROSS JOIN LATERAL (SELECT h.id, h.unit_id, h.code, h.address, "
                   f"h.district_code FROM {t['household']} h WHERE h.unit_id = u.id AND {where} OFFSET 0) h")
            cond, p = self.path_sql("u.path")
            conditions = [cond]
            params += p
        elif self.root is not None:
            sql += f" JOIN {t['unit']} u ON u.id = h.unit_id"
            cond, p = self.path_sql("u.path")
            conditions.append(cond)
            params += p
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        if group_by:
            sql += f" GROUP BY {group_by}"
        with connection.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def households(self) -> list[tuple]:
        """(unit_id, households) per unit that holds households."""
        return self._household_query("h.unit_id, COUNT(*)", group_by="h.unit_id")

    def unverified_households(self) -> list[tuple]:
        """(unit_id, code, address) of the households not verified within verify_days."""
        verified, params = self._verified_sql()
        return self._household_query("h.unit_id, h.code, h.address", f"NOT {verified}", params)

    def unsigned_households(self, pairs: list[tuple[int, int]]) -> list[tuple]:
        """(application id, household code, address) of the households on the units of ``pairs``
        ((application id, unit id): the application's unit and every unit below it, from the tree
        already in memory) without a co-signature on that application signed by D. One query: the
        pairs travel as one array parameter, each joined to its households by the unit index.

        The co-signatures of these applications are read first, uncorrelated (a CTE naming the district
        with a root), then anti-joined: on Citus they are distributed by district, and a subquery over
        them correlated with the households would be refused; the CTE runs on the shards and its rows
        join the rest where it lies."""
        t = _tables()
        from wuyiqu.applications.models import CoSignature

        sigs = CoSignature._meta.db_table
        app_ids = sorted({a for a, _u in pairs})
        if connection.vendor == "postgresql":
            source = "unnest(%s::bigint[], %s::bigint[]) AS p(app_id, unit_id)"
            app, unit = "p.app_id", "p.unit_id"
            params: list[Any] = [[a for a, _u in pairs], [u for _a, u in pairs]]
            apps_in, apps_p = "s.application_id = ANY(%s::bigint[])", [app_ids]
        else:
            import json

            source = "json_each(%s) AS p"
            app, unit = "json_extract(p.value, '$[0]')", "json_extract(p.value, '$[1]')"
            params = [json.dumps(pairs)]
            apps_in, apps_p = "s.application_id IN (SELECT value FROM json_each(%s))", [json.dumps(app_ids)]
        district, district_p = "", []
        if self.root is not None:
            from wuyiqu.units.models import district_of

            district, district_p = "s.district_code = %s AND ", [district_of(self.root.path)]
        counts, p = residence.registered("h", self.on)
        h_district, h_district_p = self.district_sql("h")
        # Joined on the district too: a co-signature is kept in its household's district (co-located).
        sql = (f"WITH signed AS (SELECT s.district_code, s.application_id, s.household_id FROM {sigs} s "
               f"WHERE {district}{apps_in} AND s.signed_on <= %s) "
               f"SELECT {app}, h.code, h.address FROM {source} JOIN {t['household']} h ON h.unit_id = {unit}{h_district} "
               f"LEFT JOIN signed ON signed.district_code = h.district_code AND signed.application_id = {app} "
               f"AND signed.household_id = h.id "
               f"WHERE signed.application_id IS NULL AND {counts} ORDER BY 1, h.code")
        with connection.cursor() as cur:
            cur.execute(sql, [*district_p, *apps_p, self.on, *params, *h_district_p, *p])
            return cur.fetchall()

    def nat(self) -> list[tuple]:
        """(household unit_id, non-exempt residents living there on D, of them tested within
        nat_days) per unit; a unit may come twice (its residents of today's households, then those
        who lived there on D and have moved since: ``_nat_moved_away``, in the same statement)."""
        nat_spec = self.profile.get("nat_participation")
        days = nat_spec.params["nat_days"] if nat_spec else 7
        age = nat_spec.params["exempt_under_age"] if nat_spec else 3
        grown_by = _third_birthday_by(self.on, int(age))
        start = window_start(self.on, days)
        return self._nat_current(start, grown_by, self._nat_moved_away(start, grown_by))

    def _nat_current(self, start: dt.date, grown_by: dt.date, moved: tuple[str, list[Any]]) -> list[tuple]:
        """``nat`` for the residents in their current household on D (arrived by D), in households
        registered on D, followed (UNION ALL) by the ``moved`` query's rows."""
        t = _tables()
        moved_sql, moved_p = moved
        params: list[Any] = [start, self.on]
        arrived, arrived_p = residence.arrived("r", self.on)
        counts, counts_p = residence.registered("h", self.on)
        if self.by_unit():
            # Per household of each unit of the subtree (see ``by_unit``): its non-exempt residents
            # and how many of them are among the window's tested residents (``_tested_sql``).
            cond, p = self.path_sql("u.path")
            tested, tested_p = self._tested_sql("r.id", start)
            district, district_p = self.district_sql("h")
            r_district, r_district_p = self.district_sql("r")
            sql = (f"SELECT h.unit_id, SUM(c.required)::bigint, SUM(c.tested)::bigint FROM {t['unit']} u "
                   f"CROSS JOIN LATERAL (SELECT h.id, h.unit_id, h.district_code FROM {t['household']} h "
                   f"WHERE h.unit_id = u.id AND {counts}{district} OFFSET 0) h "
                   f"CROSS JOIN LATERAL (SELECT COUNT(*) AS required, COUNT(*) FILTER (WHERE {tested}) "
                   f"AS tested FROM {t['resident']} r WHERE r.district_code = h.district_code{r_district} "
                   f"AND r.household_id = h.id AND r.bedridden = %s "
                   f"AND (r.turns_three_on IS NULL OR r.turns_three_on <= %s) AND {arrived}) c "
                   f"WHERE {cond} GROUP BY h.unit_id HAVING SUM(c.required) > 0 UNION ALL {moved_sql}")
            return self._with_hashed_tested(sql, [*counts_p, *district_p, *tested_p, *r_district_p, False, grown_by,
                                                  *arrived_p, *p, *moved_p])
        if connection.vendor == "postgresql" and self.root is None:
            # The whole tree: the window's tested residents once, in resident order. DISTINCT ON
            # can only be done sorted, so it reads the (resident_id, sampled_on) index of each
            # pruned partition in order (Merge Append of index-only scans + Unique: no hash table
            # of a million residents, no sort) and is merge- or hash-joined to the residents: ~35 %
            # less backend CPU than one index probe per resident on the benchmark world
            # (docs/benchmarks.md). A subtree (a district, a street, the chain) reads its district's
            # results instead (``_tested_sql``). On Citus this subquery is run on every shard and
            # its rows merged on the coordinator (the whole tree is every district).
            tested = (f"LEFT JOIN (SELECT DISTINCT ON (resident_id) resident_id FROM {t['nat']} "
                      f"WHERE sampled_on >= %s AND sampled_on <= %s ORDER BY resident_id) t "
                      f"ON t.resident_id = r.id ")
            sql = (f"SELECT h.unit_id, COUNT(*), COUNT(t.resident_id) FROM {t['resident']} r "
                   f"JOIN {t['household']} h ON h.district_code = r.district_code AND h.id = r.household_id {tested}")
        else:
            # SQLite (no DISTINCT ON): the window's tested residents once (of the district, with a
            # root), an uncorrelated IN that SQLite keeps as a temporary index.
            tested, tested_p = self._tested_sql("r.id", start)
            params = tested_p
            sql = (f"SELECT h.unit_id, COUNT(*), SUM(CASE WHEN {tested} THEN 1 ELSE 0 END) FROM {t['resident']} r "
                   f"JOIN {t['household']} h ON h.district_code = r.district_code AND h.id = r.household_id ")
        if self.root is not None:
            sql += f"JOIN {t['unit']} u ON u.id = h.unit_id "
        sql += f"WHERE r.bedridden = %s AND (r.turns_three_on IS NULL OR r.turns_three_on <= %s) AND {arrived} AND {counts} "
        params += [False, grown_by, *arrived_p, *counts_p]
        if self.root is not None:
            cond, p = self.path_sql("u.path")
            district, district_p = self.district_sql("r")
            sql += f"AND {cond}{district} "
            params += [*p, *district_p]
        sql += f"GROUP BY h.unit_id UNION ALL {moved_sql}"
        params += moved_p
        if "DISTINCT ON" not in sql:
            with connection.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        # Without parallel workers: a parallel plan has every worker (and the leader) read the
        # window's tested residents and build the same hash of them again, 3 times the work on 2
        # workers (EXPLAIN ANALYZE on the benchmark world). And at work_mem 4MB (PostgreSQL's
        # default): with more memory the planner hashes the million tested residents instead of
        # merging them in order with the residents read by primary key, ~25 % more CPU at 16 or
        # 64 MB. Local settings last until the end of the transaction, so both are put back at
        # once; no savepoint inside a caller's transaction (two statements more than the probe).
        with transaction.atomic(savepoint=False), connection.cursor() as cur:
            cur.execute("SELECT current_setting('max_parallel_workers_per_gather'), current_setting('work_mem'), "
                        "set_config('max_parallel_workers_per_gather', '0', true), set_config('work_mem', '4MB', true)")
            parallel, work_mem = cur.fetchone()[:2]
            cur.execute(sql, params)
            rows = cur.fetchall()
            cur.execute("SELECT set_config('max_parallel_workers_per_gather', %s, true), set_config('work_mem', %s, true)",
                        [parallel, work_mem])
            return rows

    def _tested_sql(self, resident: str, start: dt.date) -> tuple[str, list[Any]]:
        """A condition (and params): the resident id ``resident`` has a result sampled in the window
        ``start``…D. Uncorrelated — ``resident IN (SELECT … FROM results …)``, read once per statement
        — and, with a root, naming the root's district: the results of the people who live in a
        district are kept in it (NatResult's docstring), so on Citus the subquery goes to that
        district's shard alone (a correlated probe of a distributed table from the coordinator's
        tables is refused there). It reads only the results of the subtree's residents: their ids
        are found first (on Citus: on the coordinator, shipped with the statement) and enter the
        (resident_id, sampled_on) index (the district is no index's first column)."""
        t = _tables()
        sql = f"SELECT n.resident_id FROM {t['nat']} n WHERE n.sampled_on >= %s AND n.sampled_on <= %s"
        params: list[Any] = [start, self.on]
        if self.root is not None:
            from wuyiqu.units.models import district_of

            cond, p = self.path_sql("su.path")
            sql += (f" AND n.district_code = %s AND n.resident_id IN (SELECT sr.id FROM {t['resident']} sr "
                    f"JOIN {t['household']} sh ON sh.district_code = sr.district_code AND sh.id = sr.household_id "
                    f"JOIN {t['unit']} su ON su.id = sh.unit_id WHERE sr.district_code = %s AND sh.district_code = %s "
                    f"AND {cond})")
            params += [district_of(self.root.path)] * 3 + p
        return f"{resident} IN ({sql})", params

    @staticmethod
    def _with_hashed_tested(sql: str, params: list[Any]) -> list[tuple]:
        """Run ``sql`` (PostgreSQL) with enough memory for the planner to keep ``_tested_sql``'s
        residents in a hash (a "hashed SubPlan", built once): at the default 4MB a district's million
        tested residents would not fit, and an unhashed IN subplan is scanned once per resident.
        Only for this statement (put back at once, as in ``_nat_current``)."""
        with transaction.atomic(savepoint=False), connection.cursor() as cur:
            cur.execute("SELECT current_setting('work_mem'), set_config('work_mem', '256MB', true)")
            work_mem = cur.fetchone()[0]
            cur.execute(sql, params)
            rows = cur.fetchall()
            cur.execute("SELECT set_config('work_mem', %s, true)", [work_mem])
            return rows

    def _nat_moved_away(self, start: dt.date, grown_by: dt.date) -> tuple[str, list[Any]]:
        """The query (and params) of ``nat`` for the people who lived on D in a household they have
        left since (their past spell covers D): few, none at all for today (``residence.past_spells_on``).
        Their results are kept where they live now, which may be another district: read on every
        shard, for these people only (their ids found first, as in ``_tested_sql``)."""
        t = _tables()
        covers, covers_p = residence.past_spells_on("p", self.on)
        moved, moved_p = residence.past_spells_on("mp", self.on)
        counts, counts_p = residence.registered("p", self.on)
        spells, spells_p = self._spells_sql(heavy=True)
        # The tested among them joined as a set (a derived table read once, on Citus on every shard
        # first), not probed per person from the select list: Citus refuses that subplan over a
        # distributed table in a statement that is not routed to one shard.
        sql = (f"SELECT p.unit_id, COUNT(*), SUM(CASE WHEN tm.resident_id IS NULL THEN 0 ELSE 1 END) FROM {spells} "
               f"JOIN {t['resident']} r ON r.id = p.resident_id "
               f"LEFT JOIN (SELECT DISTINCT n.resident_id FROM {t['nat']} n WHERE n.sampled_on >= %s "
               f"AND n.sampled_on <= %s AND n.resident_id IN (SELECT mp.resident_id FROM {t['past']} mp WHERE {moved})) tm "
               f"ON tm.resident_id = r.id "
               f"WHERE {covers} AND r.bedridden = %s AND (r.turns_three_on IS NULL OR r.turns_three_on <= %s) AND {counts} "
               f"GROUP BY p.unit_id")
        return sql, [*spells_p, start, self.on, *moved_p, *covers_p, False, grown_by, *counts_p]

    def _spells_sql(self, heavy: bool = False) -> tuple[str, list[Any]]:
        """A derived table ``p`` (and params): the past spells spent in households of the root's subtree
        (``heavy``: see ``path_sql``), each with its household's unit and registration day — resident_id,
        from_on, until_on, unit_id, registered_on. The spell is kept in its household's district, the
        person (and the facts kept with them) where they live now, which may be another district: on
        Citus this table is read on the district's shard first and joined to the residents after (a
        join of the two tables on the resident's id alone would be refused)."""
        t = _tables()
        join, cond, scope_p = self._in_scope_sql("h.unit_id", heavy)
        district, district_p = self.district_sql("sp")
        return (f"(SELECT sp.resident_id, sp.from_on, sp.until_on, h.unit_id, h.registered_on FROM {t['past']} sp "
                f"JOIN {t['household']} h ON h.district_code = sp.district_code AND h.id = sp.household_id{join} "
                f"WHERE 1 = 1{district}{cond}) p", [*district_p, *scope_p])

    def _located(self, select: str, table: str, alias: str, where: str, params: list[Any], day, *,
                 heavy: bool = False, also: tuple[str, list[Any]] = ("", [])) -> list[tuple]:
        """Rows of a fact about people (``table`` as ``alias``, its rows chosen by ``where``) placed
        where the person lived on ``day`` (a date, or a column of ``alias``): ``SELECT <unit id>,
        {select}`` with the resident as ``r`` and the household as ``h`` (registered on that day, in
        the root's subtree; ``heavy``: see ``path_sql``).

        The fact rows are chosen first (a materialised CTE: few rows — cases of the window, measures
        of the day, incomplete ledger lines — whose people are then found by primary key; joined
        freely, PostgreSQL's planner started from a street's 50,000 residents instead). Then two
        parts: the people in their current household on that day (arrived by then), and those who
        lived then in a household they have left since (a past spell covering the day: for today,
        none). ``also``: a query (and params) whose rows are added in the same statement."""
        t = _tables()
        if heavy and self.live is not None:
            return self._located_from_scope(select, table, alias, where, params, day, also=also)
        counts, counts_p = residence.registered("h", day)
        arrived, arrived_p = residence.arrived("r", day)
        covers, covers_p = residence.past_spells_on("p", day)
        spell_counts, spell_counts_p = residence.registered("p", day)
        join, cond, scope_p = self._in_scope_sql("h.unit_id", heavy)
        spells, spells_p = self._spells_sql(heavy)
        # The facts of the people living in the root's district are kept there (PersonFact's
        # docstring): ``f`` reads that district only. Those of the people who lived in it and have
        # moved to another district since are kept where they live now: ``fm`` reads them by the
        # ids of the district's past spells, on every shard.
        district, district_p = self.district_sql(alias)
        past_district, past_district_p = self.district_sql("mp")
        materialized = "MATERIALIZED " if connection.vendor == "postgresql" else ""
        facts = (f"WITH f AS {materialized}(SELECT * FROM {table} {alias} WHERE {where}{district}), "
                 f"fm AS {materialized}(SELECT * FROM {table} {alias} WHERE {where} AND {alias}.resident_id IN "
                 f"(SELECT mp.resident_id FROM {t['past']} mp WHERE 1 = 1{past_district})) ")
        current = (f"SELECT h.unit_id, {select} FROM f {alias} JOIN {t['resident']} r "
                   f"ON r.district_code = {alias}.district_code AND r.id = {alias}.resident_id "
                   f"JOIN {t['household']} h ON h.district_code = r.district_code AND h.id = r.household_id{join} "
                   f"WHERE {arrived} AND {counts}{cond}")
        moved = (f"SELECT p.unit_id, {select} FROM fm {alias} JOIN {t['resident']} r "
                 f"ON r.district_code = {alias}.district_code AND r.id = {alias}.resident_id "
                 f"JOIN {spells} ON p.resident_id = r.id WHERE {covers} AND {spell_counts}")
        with connection.cursor() as cur:
            cur.execute(f"{facts}{current} UNION ALL {moved}" + (f" UNION ALL {also[0]}" if also[0] else ""),
                        [*params, *district_p, *params, *past_district_p, *arrived_p, *counts_p, *scope_p,
                         *spells_p, *covers_p, *spell_counts_p, *also[1]])
            return cur.fetchall()

    def _located_from_scope(self, select: str, table: str, alias: str, where: str, params: list[Any], day, *,
                            also: tuple[str, list[Any]]) -> list[tuple]:
        """``_located`` for the live subtree of a chain (a village/community, and the root unit): the
        same rows, read from its people first — its households, their residents and the past spells
        in them covering the day — and each person's fact rows by their ``resident_id`` index,
        instead of every fact row of the city placed and then dropped outside the scope (the
        incomplete ledger lines of the benchmark's district are 4 times the residents of a committee;
        docs/benchmarks.md, "The chain's ledger read from its people")."""
        t = _tables()
        counts, counts_p = residence.registered("h", day)
        arrived, arrived_p = residence.arrived("r", day)
        covers, covers_p = residence.past_spells_on("p", day)
        spell_counts, spell_counts_p = residence.registered("p", day)
        scope, scope_p = self.path_sql("su.path", heavy=True)
        district, district_p = self.district_sql("h")
        spells, spells_p = self._spells_sql(heavy=True)
        households = f"{t['unit']} su JOIN {t['household']} h ON h.unit_id = su.id"
        # The fact is kept with its person (PersonFact's docstring): joined on the district too.
        fact = f"JOIN {table} {alias} ON {alias}.district_code = r.district_code AND {alias}.resident_id = r.id"
        current = (f"SELECT h.unit_id, {select} FROM {households} JOIN {t['resident']} r "
                   f"ON r.district_code = h.district_code AND r.household_id = h.id "
                   f"{fact} WHERE {scope}{district} AND {counts} AND {arrived} AND ({where})")
        # The past spells in the subtree: their people (and facts) may live in another district now.
        moved = (f"SELECT p.unit_id, {select} FROM {spells} JOIN {t['resident']} r ON r.id = p.resident_id "
                 f"{fact} WHERE {covers} AND {spell_counts} AND ({where})")
        with connection.cursor() as cur:
            cur.execute(f"{current} UNION ALL {moved}" + (f" UNION ALL {also[0]}" if also[0] else ""),
                        [*scope_p, *district_p, *counts_p, *arrived_p, *params, *spells_p, *covers_p, *spell_counts_p,
                         *params, *also[1]])
            return cur.fetchall()

    def _live_people_facts(self) -> dict[str, list[tuple]]:
        """The chain's live subtree (a village/community, and the root unit): its cases, measures and
        incomplete ledger lines, read from its people in ONE statement — the people (current
        residents and past spells of its households, with the days they cover) read once as a
        materialised CTE, then each kind of fact by the people's ``resident_id`` — instead of three
        statements each reading the same households and residents again (docs/benchmarks.md, "One
        read of the chain's people"). Rows as ``cases`` / ``measures`` / ``ledger`` read them with
        ``_located``, by kind: {"c": …, "m": …, "l": …}; cases on a unit included."""
        if self._live_rows is not None:
            return self._live_rows
        t = _tables()
        on = self.on
        scope, scope_p = self.path_sql("su.path", heavy=True)
        households = f"{t['unit']} su JOIN {t['household']} h ON h.unit_id = su.id"
        district, district_p = self.district_sql("h")
        spells, spells_p = self._spells_sql(heavy=True)
        # The current residents in the root's district; the past spells in it, whose people (and their
        # facts, joined below by the person's id) may live in another district now.
        people = (f"SELECT h.unit_id AS unit_id, h.registered_on AS h_on, r.id AS rid, r.name AS name, "
                  f"r.id_masked AS r_masked, r.moved_on AS since, CAST(NULL AS date) AS until "
                  f"FROM {households} JOIN {t['resident']} r ON r.district_code = h.district_code "
                  f"AND r.household_id = h.id WHERE {scope}{district} "
                  f"UNION ALL SELECT p.unit_id, p.registered_on, r.id, r.name, r.id_masked, p.from_on, p.until_on "
                  f"FROM {spells} JOIN {t['resident']} r ON r.id = p.resident_id")
        materialized = "MATERIALIZED "  # PostgreSQL ≥ 12 and SQLite ≥ 3.35: read once, used three times

        def lived(day: str) -> str:  # the person lived in the household on ``day``, registered then
            return (f"(x.since IS NULL OR x.since <= {day}) AND (x.until IS NULL OR x.until >= {day}) "
                    f"AND (x.h_on IS NULL OR x.h_on <= {day})")

        window = [window_start(on, self.param("window_days", 8)), on]
        review_start = window_start(on, self.param("ledger_review_days", 30))
        entry, entry_p = residence.registered("e", on)
        nd, nt = "CAST(NULL AS date)", "CAST(NULL AS varchar(40))"
        join, cond, unit_p = self._in_scope_sql("c.unit_id", heavy=True)
        case_district, case_district_p = self.district_sql("c")
        sql = (f"WITH x AS {materialized}({people}) "
               f"SELECT 'c', x.unit_id, c.reported_on, {nd}, {nt}, c.resident_id, x.name, c.id_masked, {nt}, {nt} "
               f"FROM x JOIN {t['case']} c ON c.resident_id = x.rid WHERE c.reported_on >= %s AND c.reported_on <= %s "
               f"AND {lived('c.reported_on')} "
               f"UNION ALL SELECT 'c', c.unit_id, c.reported_on, {nd}, {nt}, NULL, NULL, c.id_masked, {nt}, {nt} "
               f"FROM {t['case']} c{join} WHERE c.resident_id IS NULL AND c.unit_id IS NOT NULL "
               f"AND c.reported_on >= %s AND c.reported_on <= %s{case_district}{cond} "
               f"UNION ALL SELECT 'm', x.unit_id, m.start_on, m.end_on, m.kind, m.resident_id, x.name, m.id_masked, {nt}, {nt} "
               f"FROM x JOIN {t['measure']} m ON m.resident_id = x.rid WHERE m.start_on <= %s AND m.end_on >= %s "
               f"AND {lived('%s')} "
               f"UNION ALL SELECT 'l', x.unit_id, e.reviewed_on, {nd}, {nt}, x.rid, x.name, x.r_masked, e.needs, e.helper "
               f"FROM x JOIN {t['ledger']} e ON e.resident_id = x.rid WHERE e.tags <> '' AND (e.needs = '' "
               f"OR e.helper = '' OR e.reviewed_on IS NULL OR e.reviewed_on < %s OR e.reviewed_on > %s) AND {entry} "
               f"AND {lived('%s')}")
        params = [*scope_p, *district_p, *spells_p, *window, *window, *case_district_p, *unit_p, on, on, on, on, on,
                  review_start, on, *entry_p, on, on, on]
        out: dict[str, list[tuple]] = {"c": [], "m": [], "l": []}
        with connection.cursor() as cur:
            cur.execute(sql, params)
            for tag, uid, a, b, kind, rid, name, masked, needs, helper in cur.fetchall():
                if tag == "c":
                    out["c"].append((uid, a, rid, name, masked))
                elif tag == "m":
                    out["m"].append((uid, kind, a, b, rid, name, masked))
                else:
                    out["l"].append((uid, rid, name, masked, needs, helper, a))
        self._live_rows = out
        return out

    def cases(self):
        """(unit_id, reported_on, resident_id, name, masked ID) of the cases within the window: a case
        on a person counts where the person lived on its report date, a case on a unit on the unit.
        In a chain (``live``), only the live subtree's cases: the other committees' come from their
        stored rows (``Evaluation.rollup``)."""
        t = _tables()
        start = window_start(self.on, self.param("window_days", 8))
        window = [start, self.on]
        if self.live is not None:
            rows = self._live_people_facts()["c"]
            return sorted(((u, _as_date(d), rid, name, masked) for u, d, rid, name, masked in rows),
                          key=lambda x: (x[0], x[1], x[2] or 0, x[4] or "", x[3] or ""))
        join, cond, scope_p = self._in_scope_sql("c.unit_id", heavy=True)
        district, district_p = self.district_sql("c")  # a case on a unit is kept in the unit's district
        on_units = (f"SELECT c.unit_id, c.reported_on, NULL, NULL, c.id_masked FROM {t['case']} c{join} "
                    f"WHERE c.resident_id IS NULL AND c.unit_id IS NOT NULL AND c.reported_on >= %s "
                    f"AND c.reported_on <= %s{district}{cond}", [*window, *district_p, *scope_p])
        rows = self._located("c.reported_on, c.resident_id, r.name, c.id_masked", t["case"], "c",
                             "c.resident_id IS NOT NULL AND c.reported_on >= %s AND c.reported_on <= %s", window,
                             "c.reported_on", heavy=True, also=on_units)
        # Sorted: the order of the rows of a unit is that of its reason's samples, whichever query
        # read them (the chain's from the live subtree, the full evaluation's from the facts).
        return sorted(((u, _as_date(d), rid, name, masked) for u, d, rid, name, masked in rows),
                      key=lambda x: (x[0], x[1], x[2] or 0, x[4] or "", x[3] or ""))

    def measures(self):
        """(unit_id, kind, start_on, end_on, resident_id, name, masked ID) of the measures covering D,
        each in the unit where its person lives on D (units.residence). In a chain (``live``), read
        from the live subtree's people only: the other committees' come from their stored rows."""
        t = _tables()
        if self.live is not None:
            rows = self._live_people_facts()["m"]
        else:
            rows = self._located("m.kind, m.start_on, m.end_on, m.resident_id, r.name, m.id_masked", t["measure"], "m",
                                 "m.resident_id IS NOT NULL AND m.start_on <= %s AND m.end_on >= %s", [self.on, self.on],
                                 self.on, heavy=True)
        return sorted(((u, kind, _as_date(a), _as_date(b), rid, name, masked) for u, kind, a, b, rid, name, masked in rows),
                      key=lambda x: (x[0], x[1], x[2], x[3], x[4], x[6] or "", x[5] or ""))

    def zones(self):
        from wuyiqu.health.models import RiskZone

        # The root's ancestors lie in its district too (the district is the tree's top): one shard on Citus.
        qs = self.in_district(RiskZone.objects.filter(Q(end_on__isnull=True) | Q(end_on__gte=self.on),
                                                      start_on__lte=self.on))
        if self.root is not None:
            qs = qs.filter(Q(unit__path__startswith=self.root.path) | Q(unit__code__in=self.root.ancestor_codes))
        return list(qs.values_list("unit_id", "zone_type", "start_on", "end_on", "unit__path", "unit__code", "unit__name"))

    def ledger(self):
        """(unit_id, resident_id, name, masked ID, needs, helper, reviewed_on) of the incomplete or
        unreviewed ledger entries registered on D, each in the unit where its person lives on D."""
        t = _tables()
        start = window_start(self.on, self.param("ledger_review_days", 30))
        entry, entry_p = residence.registered("e", self.on)
        rows = self._live_people_facts()["l"] if self.live is not None else self._located(
            "r.id, r.name, r.id_masked, e.needs, e.helper, e.reviewed_on", t["ledger"], "e",
            f"e.tags <> '' AND (e.needs = '' OR e.helper = '' OR e.reviewed_on IS NULL OR e.reviewed_on < %s "
            f"OR e.reviewed_on > %s) AND {entry}", [start, self.on, *entry_p], self.on, heavy=True)
        # Sorted, as the cases are: the order of a unit's reason samples, whichever query read them.
        return sorted(((u, rid, name, masked, needs, helper, _as_date_or_none(reviewed))
                       for u, rid, name, masked, needs, helper, reviewed in rows), key=lambda x: (x[0], x[1]))

    def inspections(self):
        from wuyiqu.inspections.models import Inspection

        start = window_start(self.on, self.param("inspection_days", 7))
        qs = self.in_district(Inspection.objects.filter(inspected_on__gte=start, inspected_on__lte=self.on))
        sql, params = self.scoped(qs, "unit__path", heavy=True).order_by("inspected_on").values_list(
            "unit_id", "item", "inspected_on", "passed").query.sql_with_params()
        with connection.cursor() as cur:  # plain rows: no per-row converters on 100,000s of rows
            cur.execute(sql, params)
            return [(u, item, _as_date(d), bool(ok)) for u, item, d, ok in cur.fetchall()]

    def latest_before(self, unit_ids: list[int], before: dt.date) -> list[tuple]:
        """(unit id, item, latest date) of the inspections of ``unit_ids`` dated before ``before``: the
        last one outside the window, for the reason of an item not inspected within it. One query."""
        from wuyiqu.inspections.models import Inspection

        table = Inspection._meta.db_table
        if connection.vendor == "postgresql":
            source, unit, params = "unnest(%s::bigint[]) AS p(unit_id)", "p.unit_id", [unit_ids]
        else:
            import json

            source, unit, params = "json_each(%s) AS p", "p.value", [json.dumps(unit_ids)]
        district, district_p = "", []
        if self.root is not None:  # the root's district named: one shard on Citus
            from wuyiqu.units.models import district_of

            district, district_p = " AND i.district_code = %s", [district_of(self.root.path)]
        sql = (f"SELECT i.unit_id, i.item, MAX(i.inspected_on) FROM {source} JOIN {table} i ON i.unit_id = {unit} "
               f"WHERE i.inspected_on < %s{district} GROUP BY i.unit_id, i.item")
        with connection.cursor() as cur:
            cur.execute(sql, [*params, before, *district_p])
            return [(u, item, _as_date(d)) for u, item, d in cur.fetchall()]

    def incidents(self):
        """(unit_id, occurred_on, type, handled on D) of the incidents of the window. A negative
        opinion whose handling the street accepted on or before D no longer counts — unless the
        street sent that handling back by D (``OpinionReturn``: an acceptance then counts from its
        day to the day before the return). The handling day shown is the one standing on D."""
        from django.db.models import Exists, OuterRef, Subquery

        from wuyiqu.inspections.models import Incident, OpinionReturn

        on = self.on
        start = window_start(on, self.param("window_days", 8))
        # Correlated on the district too: on Citus a subquery over a distributed table must join the
        # outer one on the distribution column (then it runs on each shard).
        returns = OpinionReturn.objects.filter(district_code=OuterRef("district_code"), incident=OuterRef("pk"),
                                               returned_on__gt=on)
        accepted_then = Exists(returns.filter(accepted_on__lte=on))
        handled_then = Subquery(returns.filter(handled_on__lte=on).order_by("returned_on").values("handled_on")[:1])
        qs = (self.in_district(Incident.objects.filter(occurred_on__gte=start, occurred_on__lte=on))
              .exclude(Q(incident_type="negative_opinion") & (Q(accepted_on__lte=on) | accepted_then))
              .annotate(handled_then=handled_then))
        return [(u, d, kind, handled if handled is not None and handled <= on else then)
                for u, d, kind, handled, then in self.scoped(qs, "unit__path", heavy=True).values_list(
                    "unit_id", "occurred_on", "incident_type", "handled_on", "handled_then")]

    def nat_people(self, unit_ids: list[int], start: dt.date) -> list[tuple]:
        """(household unit id, resident id, name, masked ID, bedridden, kept third birthday, tested within the
        window) of the residents of the households on ``unit_ids`` registered there by D, in
        resident order (for the names in a failing nat_participation's reason). One query."""
        t = _tables()
        arrived, arrived_p = residence.arrived("r", self.on)
        counts, counts_p = residence.registered("h", self.on)
        if connection.vendor == "postgresql":
            def units(a: str) -> tuple[str, str]:
                return f"unnest(%s::bigint[]) AS {a}(unit_id)", f"{a}.unit_id"

            params = [unit_ids]
        else:
            import json

            def units(a: str) -> tuple[str, str]:
                return f"json_each(%s) AS {a}", f"{a}.value"

            params = [json.dumps(unit_ids)]
        (source, unit), (t_source, t_unit) = units("p"), units("tp")
        # Tested: among the results of these units' residents (their ids found first, then the
        # (resident_id, sampled_on) index; uncorrelated, as ``_tested_sql`` and for the same reason),
        # in the root's district where there is one.
        district, district_p = "", []
        if self.root is not None:
            from wuyiqu.units.models import district_of

            district, district_p = " AND n.district_code = %s", [district_of(self.root.path)]
        th_district, th_district_p = self.district_sql("th")
        h_district, h_district_p = self.district_sql("h")
        # The tested joined as a set (a derived table), not probed per resident from the select list:
        # without a root the statement is not routed to one shard, and Citus refuses that subplan then.
        tested = (f"LEFT JOIN (SELECT DISTINCT n.resident_id FROM {t['nat']} n WHERE n.sampled_on >= %s "
                  f"AND n.sampled_on <= %s{district} AND n.resident_id IN (SELECT tr.id FROM {t_source} "
                  f"JOIN {t['household']} th ON th.unit_id = {t_unit}{th_district} "
                  f"JOIN {t['resident']} tr ON tr.district_code = th.district_code AND tr.household_id = th.id)) tn "
                  f"ON tn.resident_id = r.id")
        sql = (f"SELECT h.unit_id, r.id, r.name, r.id_masked, r.bedridden, r.turns_three_on, "
               f"CASE WHEN tn.resident_id IS NULL THEN 0 ELSE 1 END "
               f"FROM {source} JOIN {t['household']} h ON h.unit_id = {unit}{h_district} "
               f"JOIN {t['resident']} r ON r.district_code = h.district_code AND r.household_id = h.id {tested} "
               f"WHERE {arrived} AND {counts} ORDER BY r.id")
        with connection.cursor() as cur:
            cur.execute(sql, [*params, *h_district_p, start, self.on, *district_p, *params, *th_district_p,
                              *arrived_p, *counts_p])
            return [(*row[:6], bool(row[6])) for row in cur.fetchall()]

    def surveys(self):
        from wuyiqu.inspections.models import Survey

        start = window_start(self.on, self.param("survey_days", 30))
        qs = self.in_district(Survey.objects.filter(surveyed_on__gte=start, surveyed_on__lte=self.on))
        return list(self.scoped(qs, "unit__path", heavy=True).order_by("surveyed_on").values_list(
            "unit_id", "surveyed_on", "awareness", "approval", "participation"))

    def titles(self) -> set[int]:
        from wuyiqu.certification.models import Title

        qs = self.in_district(Title.objects.filter(Q(withdrawn_on__isnull=True) | Q(withdrawn_on__gt=self.on),
                                                   named_on__lte=self.on))
        return set(self.scoped(qs, "unit__path", heavy=True).values_list("unit_id", flat=True))

    def applications(self):
        from wuyiqu.applications.models import Application

        qs = self.in_district(Application.objects.all())
        return list(self.scoped(qs, "unit__path", heavy=True).order_by("opened_at", "id").values_list(
            "id", "unit_id", "title", "status", "unit_signed_on"))

# --- the walk ------------------------------------------------------------------------------------------


def evaluate(on: dt.date, *, root=None, profile: Profile | None = None, profile_row=None) -> list[UnitEvaluation]:
    """Judge every titled unit in the subtree of ``root`` (a Unit; None: the whole tree) on ``on``.
    Returns the evaluations in tree order (by path). Reads only; a fixed number of queries."""
    if profile is None:
        profile = parsed_profile(profile_row or profile_row_in_force(on))
    return _Evaluator(on, profile, root).run()


def evaluate_chain(on: dt.date, unit, *, profile: Profile | None = None) -> list[UnitEvaluation]:
    """``unit`` and every titled unit above it, judged after a new fact about ``unit``. Returns them
    bottom-up, with the same verdicts as a full evaluation.

    When the highest titled ancestor is a street and ``unit`` lies in (or is) one of its villages /
    communities, only that committee's subtree is read in full; the street takes the verdicts and
    rolled-up facts of its other committees from the day's stored evaluations, if every one of them
    is stored for ``on`` with this profile and is fresh (``_stored_committees``). Otherwise the
    street's whole subtree is read, as ``evaluate(on, root=street)`` does."""
    from wuyiqu.units.models import Unit

    if profile is None:
        profile = parsed_profile(profile_row_in_force(on))
    codes = unit.ancestor_codes
    tops = {u.code: u for u in Unit.objects.filter(code__in=codes, kind__in=EVALUATED_KINDS)}
    top = next((tops[c] for c in codes if c in tops), unit)
    wanted = set(codes) | {unit.code}
    committee = unit if unit.kind in C.COMMITTEES else next(
        (tops[c] for c in reversed(codes) if c in tops and tops[c].kind in C.COMMITTEES), None)
    results = None
    if top.kind == "street" and committee is not None and committee.pk != top.pk:
        stored = _stored_committees(on, profile, top, committee)
        if stored is not None:
            results = _Evaluator(on, profile, top, live=committee, stored=stored).run()
    if results is None:
        results = evaluate(on, root=top, profile=profile)
    return sorted((e for e in results if e.unit.code in wanted), key=lambda e: -len(e.unit.path))


# Audit actions that change no fact the evaluator reads (looks at personal data, exports, the
# evaluations and supervision summaries themselves). Any other action counts as a possible change:
# an action added later makes stored verdicts stale, never wrongly fresh.
READ_ONLY_ACTIONS = (
    "health.view_timeline", "health.view_testing", "health.view_measures", "health.export_testing",
    "health.export_measures", "resident.reveal", "special_population.view", "notifications.read", "api.read",
    "standards.store_evaluations", "supervision.daily", "supervision.recheck",
)


ROLLUP_KEYS = {"households", "nat", "unverified", "ledger", "cases", "measures", "incidents"}


def _stored_committees(on: dt.date, profile: Profile, street, live) -> dict[int, tuple] | None:
    """The day's stored evaluations of the street's villages/communities other than ``live``, as
    {unit id: (eligible, named, failed ids, rollup)}, or None when they cannot stand in for a live
    evaluation: a child of the street that is not a village/community, a committee without a row for
    ``on`` made with this profile (name and version) and its rollup, or a stale row.

    Freshness: a stored row is stale when a fact may have changed after it was stored. Every write
    that matters records an audit event (``wuyiqu.audit.actions.record``), so the rows are fresh when
    no audit event other than ``READ_ONLY_ACTIONS`` was recorded after the oldest of them, except
    events on units inside ``live``'s subtree (the new fact, read live anyway) that are not imports.
    An event without a unit counts as a change anywhere. Facts written without an audit event (raw SQL, the shell)
    are not seen: after such a write, store the day's evaluations again (``wuyiqu evaluate --store``)."""
    from wuyiqu.audit.models import AuditEvent
    from wuyiqu.units.models import Unit, district_of

    from .models import Evaluation

    children = list(Unit.objects.filter(parent_id=street.pk).values_list("id", "kind"))
    if any(kind not in C.COMMITTEES for _id, kind in children):
        return None
    others = [uid for uid, _kind in children if uid != live.pk]
    if not others:
        return {}
    rows = list(Evaluation.objects.filter(district_code=district_of(street.path), on=on, unit_id__in=others,
                                          profile_version=f"{profile.name} {profile.version}", rollup__isnull=False)
                .values_list("unit_id", "eligible", "named", "failed", "rollup", "created_at"))
    # Rows stored before the rollups carried cases and measures cannot stand in for the committee.
    if len(rows) != len(others) or any(not ROLLUP_KEYS <= set(r[4]) for r in rows):
        return None
    since = min(r[5] for r in rows)
    # Events inside the live subtree are read live, except imports: an import scoped there may move
    # residents or households in from another committee, whose stored counts would then be stale.
    changed = (AuditEvent.objects.filter(at__gt=since).exclude(action__in=READ_ONLY_ACTIONS)
               .filter(Q(unit__isnull=True) | ~Q(unit__path__startswith=live.path) | Q(action__startswith="imports.")))
    if changed.exists():
        return None
    return {uid: (eligible, named, failed, rollup) for uid, eligible, named, failed, rollup, _at in rows}


class _Beside:
    """``fn()`` run in a thread on that thread's own database connection, beside the caller's work;
    ``result()`` waits for it and returns its value (or raises its exception).

    Used for the one query that dominates a whole-tree evaluation on PostgreSQL (nucleic-acid
    participation, ~1.3 s of server CPU on the district-sized world): the server runs it on one core
    while this process reads and walks everything else on the other. Only outside a transaction:
    another connection cannot see a transaction's uncommitted rows. Like every other query of the
    evaluation outside a transaction, it sees what was committed when it started."""

    def __init__(self, fn):
        self._fn = fn
        self._value = self._error = None
        self._thread = threading.Thread(target=self._work, name="wuyiqu-evaluate-beside", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc
        finally:
            connections.close_all()  # this thread's connections only (they are per thread)

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _beside_allowed(root) -> bool:
    """Whether a whole-tree evaluation may run its participation query on a second connection."""
    return (root is None and connection.vendor == "postgresql" and not connection.in_atomic_block
            and getattr(settings, "WUYIQU_EVALUATE_CONCURRENT", True))


class _Node:
    __slots__ = ("ref", "depth", "children", "facts", "cases", "measures", "incidents", "households",
                 "unverified", "nat_required", "nat_tested", "ledger", "zones_self",
                 "zones_below", "zones_above", "inspections", "survey", "verdicts")

    def __init__(self, ref: C.UnitRef, depth: int):
        self.ref = ref
        self.depth = depth
        self.children: list[_Node] = []
        self.cases: list[C.CaseFact] = []
        self.measures: list[C.MeasureFact] = []
        self.incidents: list[C.IncidentFact] = []
        self.households = 0
        # Sampled only where there is something (most units have none): 10,000s fewer objects.
        self.unverified: C.Sampled | None = None
        self.nat_required = 0
        self.nat_tested = 0
        self.ledger: C.Sampled | None = None
        self.zones_self: list[C.ZoneFact] = []
        self.zones_below: list[C.ZoneFact] = []
        self.zones_above: list[C.ZoneFact] = []
        self.inspections: dict[str, C.InspectionFact] = {}
        self.survey: C.SurveyFact | None = None
        self.verdicts: list[C.Verdict] = []


_NONE = C.Sampled()  # shared by the units with nothing to sample; the criteria only read facts


def _stored_person(person: C.PersonRef) -> list:
    """A person of a stored rollup: the name masked as ``PersonRef.label`` shows it (which masks it
    again to the same text), so no stored row holds a whole name."""
    name = person.name
    return [person.resident_id, name[0] + "*" * max(1, len(name) - 1) if name else "", person.id_masked]


def _sampled(value) -> C.Sampled:
    count, samples = value
    return C.Sampled(count, [(label, item) for label, item in samples])


class _Evaluator:
    """Judges the titled units below ``root`` (see ``evaluate``). With ``live`` and ``stored`` (the
    chain, see ``evaluate_chain``): judges ``live``'s subtree and ``root`` only; the committees of
    ``stored`` ({unit id: (eligible, named, failed, rollup)}) give their stored verdict and facts."""

    def __init__(self, on: dt.date, profile: Profile, root, *, live=None, stored: dict[int, tuple] | None = None):
        self.on = on
        self.profile = profile
        self.root = root
        self.live = live if root is not None else None
        self.stored = stored or {}
        self.q = _Gather(on, profile, root, self.live)
        self.scope_prefix = root.path if root is not None else "/"
        self._specs: dict[str, list] = {}
        # The reasons' texts in the active language, looked up once for the whole walk.
        self.msgs = C.messages()

    def _level_specs(self, level: str) -> list:
        specs = self._specs.get(level)
        if specs is None:
            specs = self._specs[level] = [(C.REGISTRY[c.id], c) for c in self.profile.criteria_for(level)]
        return specs

    def run(self) -> list[UnitEvaluation]:
        # The walk allocates a million small objects, none of them in reference cycles: the cyclic
        # garbage collector, which would traverse them again and again (more so with an earlier
        # evaluation still in memory), is paused meanwhile; reference counting still frees them, and
        # a cycle made after all would be collected at the next collection after the walk.
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._run()
        finally:
            if paused:
                gc.enable()

    def _run(self) -> list[UnitEvaluation]:
        on, q, msgs = self.on, self.q, self.msgs
        nat = _Beside(q.nat) if _beside_allowed(self.root) else None
        nodes: dict[int, _Node] = {}
        order: list[_Node] = []  # by depth, parents first
        in_scope_prefix = self.scope_prefix
        for uid, code, name, kind, path, parent_id, depth in q.units():
            node = _Node(C.UnitRef(uid, code, name, kind, path, parent_id), depth)
            nodes[uid] = node
            order.append(node)
        for node in order:
            parent = nodes.get(node.ref.parent_id)
            if parent is not None:
                parent.children.append(node)
        scope = [n for n in order if n.ref.path.startswith(in_scope_prefix)]
        by_path = {n.ref.path: n for n in order} if self.live is not None else {}

        # Facts on each unit itself.
        for uid, reported_on, rid, rname, id_masked in q.cases():
            if uid in nodes:
                person = C.PersonRef(rid, rname or "", id_masked) if (rid or id_masked) else None
                nodes[uid].cases.append(C.CaseFact(reported_on, person, nodes[uid].ref.name))
        for uid, kind, start_on, end_on, rid, rname, id_masked in q.measures():
            if uid in nodes:
                nodes[uid].measures.append(C.MeasureFact(kind, start_on, end_on, C.PersonRef(rid, rname or "", id_masked)))
        for uid, occurred_on, itype, handled_on in q.incidents():
            if uid in nodes:
                n = nodes[uid]
                n.incidents.append(C.IncidentFact(occurred_on, itype, n.ref.code, n.ref.name,
                                                  handled_on if handled_on is not None and handled_on <= on else None))
        for uid, count in q.households():
            if uid in nodes:
                nodes[uid].households += count
        for uid, code, address in q.unverified_households():
            node = nodes.get(uid)
            if node is not None:
                if node.unverified is None:
                    node.unverified = C.Sampled()
                node.unverified.add(address or code, {"type": "household", "code": code})
        for uid, rid, rname, id_masked, needs, helper, reviewed_on in q.ledger():
            if uid in nodes:
                label = C.ledger_label(msgs, C.PersonRef(rid, rname or "", id_masked), needs, helper, reviewed_on)
                if nodes[uid].ledger is None:
                    nodes[uid].ledger = C.Sampled()
                nodes[uid].ledger.add(label, {"type": "resident", "id": rid})
        for uid, item, inspected_on, passed in q.inspections():
            if uid in nodes:  # ordered by date: the last one seen is the latest
                nodes[uid].inspections[item] = C.InspectionFact(inspected_on, passed)
        for uid, surveyed_on, a, b, c in q.surveys():
            if uid in nodes:
                nodes[uid].survey = C.SurveyFact(surveyed_on, a, b, c)
        named_ids = q.titles()
        for uid, zone_type, start_on, end_on, zpath, zcode, zname in q.zones():
            fact = dict(zone_type=zone_type, start_on=start_on, end_on=end_on, unit_code=zcode, unit_name=zname)
            z = nodes.get(uid)
            if z is not None:
                z.zones_self.append(C.ZoneFact(relation="self", **fact))
                above = nodes.get(z.ref.parent_id)
            else:  # a chain: a unit below another committee, not loaded — below that committee
                above = self._committee_of(zpath, by_path)
            while above is not None:
                above.zones_below.append(C.ZoneFact(relation="below", **fact))
                above = nodes.get(above.ref.parent_id)

        for uid, required, tested in (nat.result() if nat is not None else q.nat()):
            if uid in nodes:
                nodes[uid].nat_required += int(required)
                nodes[uid].nat_tested += int(tested or 0)

        # Committees judged from the day's stored rows: their rolled-up facts, which the queries
        # above did not read (they read only the live subtree), go up to the street as if read.
        for uid, (_eligible, _named, _failed, rollup) in self.stored.items():
            node = nodes.get(uid)
            if node is not None:
                node.households = rollup["households"]
                node.unverified = _sampled(rollup["unverified"])
                node.nat_required, node.nat_tested = rollup["nat"]
                node.ledger = _sampled(rollup["ledger"])
                node.cases = [C.CaseFact(_as_date(d), None if p is None else C.PersonRef(*p), unit_name)
                              for d, p, unit_name in rollup["cases"]]
                node.measures = [C.MeasureFact(kind, _as_date(a), _as_date(b), C.PersonRef(*p))
                                 for kind, a, b, p in rollup["measures"]]
                node.incidents = [C.IncidentFact(_as_date(d), kind, code, name, _as_date_or_none(handled))
                                  for d, kind, code, name, handled in rollup["incidents"]]

        # Zones on units above cover everything below: push them down, parents first.
        for node in order:
            parent = nodes.get(node.ref.parent_id)
            if parent is not None and (parent.zones_above or parent.zones_self):
                node.zones_above = parent.zones_above + [
                    C.ZoneFact(z.zone_type, z.start_on, z.end_on, z.unit_code, z.unit_name, "above")
                    for z in parent.zones_self]

        # Roll facts up: children before parents.
        for node in reversed(order):
            parent = nodes.get(node.ref.parent_id)
            if parent is None or not node.ref.path.startswith(in_scope_prefix):
                continue
            parent.cases.extend(node.cases)
            parent.measures.extend(node.measures)
            parent.incidents.extend(node.incidents)
            parent.households += node.households
            if node.unverified is not None:
                if parent.unverified is None:
                    parent.unverified = C.Sampled()
                parent.unverified.merge(node.unverified)
            parent.nat_required += node.nat_required
            parent.nat_tested += node.nat_tested
            if node.ledger is not None:
                if parent.ledger is None:
                    parent.ledger = C.Sampled()
                parent.ledger.merge(node.ledger)

        apps = self._applications(nodes)
        signatures = self._signature_facts(nodes, apps)
        results: list[UnitEvaluation] = []
        live_prefix = self.live.path if self.live is not None else None
        for node in sorted(scope, key=lambda n: -n.depth):
            level = node.ref.kind
            if level not in EVALUATED_KINDS:
                continue
            if live_prefix is not None and node.ref.path != self.scope_prefix and not node.ref.path.startswith(live_prefix):
                # Outside the live subtree: a stored committee gives its verdict to the street;
                # the units below it are not judged (the street looks only at its committees).
                if node.ref.id in self.stored:
                    eligible, named, failed, _rollup = self.stored[node.ref.id]
                    failed = set(failed)
                    self._pass_up(nodes, C.Verdict(node.ref, named, eligible,
                                                   {spec.id: spec.id not in failed for _fn, spec in self._level_specs(level)}))
                continue
            app = apps.get(node.ref.id)
            facts = C.UnitFacts(
                unit=node.ref, level=level, on=on, cases=node.cases, measures=node.measures,
                zones=node.zones_self + node.zones_below + node.zones_above, households=node.households,
                unverified=node.unverified or _NONE, nat_required=node.nat_required,
                nat_tested=node.nat_tested, ledger_incomplete=node.ledger or _NONE, incidents=node.incidents, inspections=node.inspections,
                survey=node.survey, application=app, descendants=node.verdicts, msgs=msgs,
                named=node.ref.id in named_ids,
            )
            if node.ref.id in signatures:
                facts.unsigned = signatures[node.ref.id]
                facts.signed = facts.households - facts.unsigned.count
            evaluation = self._judge(facts, node.ref.id in named_ids)
            if level in C.COMMITTEES:
                evaluation.rollup = {
                    "households": node.households, "nat": [node.nat_required, node.nat_tested],
                    "unverified": [facts.unverified.count, facts.unverified.samples],
                    "ledger": [facts.ledger_incomplete.count, facts.ledger_incomplete.samples],
                    # The cases of the window and the measures covering D in the subtree, in order
                    # (the street's reasons sample them), names masked as every reason shows them.
                    "cases": [[c.reported_on.isoformat(), None if c.person is None else _stored_person(c.person),
                               c.unit_name] for c in node.cases],
                    "measures": [[x.kind, x.start_on.isoformat(), x.end_on.isoformat(), _stored_person(x.person)]
                                 for x in node.measures],
                    "incidents": [[i.occurred_on.isoformat(), i.incident_type, i.unit_code, i.unit_name,
                                   i.handled_on.isoformat() if i.handled_on else None] for i in node.incidents],
                }
            results.append(evaluation)
            self._pass_up(nodes, C.Verdict(node.ref, evaluation.named, evaluation.eligible,
                                           {c.id: c.passed for c in evaluation.criteria}))
        results.sort(key=lambda e: e.unit.path)
        self._name_nat_people(results, nodes)
        self._date_old_inspections(results, nodes)
        return results

    def _committee_of(self, path: str, by_path: dict[str, _Node]) -> _Node | None:
        """In a chain, the loaded committee (a child of the street) whose subtree holds ``path``."""
        root = self.root.path
        if not path.startswith(root) or path == root:
            return None
        return by_path.get(root + path[len(root):].split("/", 1)[0] + "/")

    def _date_old_inspections(self, results: list[UnitEvaluation], nodes: dict[int, _Node]) -> None:
        """Give the date of the last inspection before the window in the reason of an item that was not
        inspected within it ("近7天无口罩佩戴检查（最近一次 2022-11-20）"): one query for the units
        concerned, after the walk (the verdict cannot change: such an inspection is outside the
        window); their inspection criteria are judged again with it."""
        wanted: dict[int, list[tuple[UnitEvaluation, int]]] = {}
        for ev in results:
            node = nodes[ev.unit.id]
            for i, c in enumerate(ev.criteria):
                if c.passed:
                    continue
                spec = self.profile.get(c.id)
                items = C.inspected_items(spec, ev.level) if spec is not None else ()
                if any(item not in node.inspections for item in items):
                    wanted.setdefault(ev.unit.id, []).append((ev, i))
        if not wanted:
            return
        # The inspections read by the walk go back the longest window of the profile (``_Gather``):
        # an item missing from them has none since that window's start.
        start = window_start(self.on, self.q.param("inspection_days", 7))
        older: dict[int, dict[str, C.InspectionFact]] = {}
        for uid, item, day in self.q.latest_before(sorted(wanted), start):
            older.setdefault(uid, {})[item] = C.InspectionFact(day, True)
        for uid, found in older.items():
            node = nodes[uid]
            facts = C.UnitFacts(unit=node.ref, level=node.ref.kind, on=self.on,
                                inspections={**found, **node.inspections}, msgs=self.msgs)
            for ev, i in wanted[uid]:
                spec = self.profile.get(ev.criteria[i].id)
                ev.criteria[i] = C.REGISTRY[spec.id](facts, spec)

    def _name_nat_people(self, results: list[UnitEvaluation], nodes: dict[int, _Node]) -> None:
        """Name who is missing and who is exempt in the reason of each failing ``nat_participation``
        (masked, the first few of each): one query over the residents of the failing units, the
        smallest first, at most ``NAT_NAMES_MAX_RESIDENTS`` in all (a failing village of 10,000
        people keeps its counts; its buildings name theirs). The counts stay the evaluation's; the
        names are read among the unit's present residents registered there by D (one who lived
        there on D and has moved away since is counted but not named)."""
        spec = self.profile.get("nat_participation")
        failing = {ev.unit.id: (ev, i) for ev in results for i, c in enumerate(ev.criteria)
                   if c.id == "nat_participation" and not c.passed}
        if spec is None or not failing:
            return
        chosen: set[int] = set()
        budget = NAT_NAMES_MAX_RESIDENTS
        for uid in sorted(failing, key=lambda u: nodes[u].nat_required):
            size = nodes[uid].nat_required
            if size > NAT_NAMES_MAX_PER_UNIT or size > budget:
                continue
            chosen.add(uid)
            budget -= size
        if not chosen:
            return
        holders: set[int] = set()  # every unit below a chosen one (the households' units among them)
        stack = [nodes[uid] for uid in chosen]
        while stack:
            n = stack.pop()
            holders.add(n.ref.id)
            stack.extend(n.children)
        below: dict[int, _Node] = {}  # a chain naming the street's people: the units not loaded, by committee
        if self.live is not None and self.root.pk in chosen:
            from wuyiqu.units.models import Unit

            by_path = {n.ref.path: n for n in nodes.values()}
            for uid, path in Unit.objects.filter(_Gather._below("path", self.root.path)).values_list("id", "path"):
                if uid not in nodes:
                    below[uid] = self._committee_of(path, by_path)
            holders |= set(below)
        age = int(spec.params["exempt_under_age"])
        rows = self.q.nat_people(sorted(holders), window_start(self.on, spec.params["nat_days"]))
        grown_by = _third_birthday_by(self.on, age)
        missing: dict[int, C.Sampled] = {uid: C.Sampled() for uid in chosen}
        exempt: dict[int, C.Sampled] = {uid: C.Sampled() for uid in chosen}
        msgs = self.msgs
        for unit_id, rid, name, id_masked, bedridden, turns_three_on, tested in rows:
            person = C.PersonRef(rid, name or "", id_masked)
            if bedridden or (turns_three_on is not None and _as_date(turns_three_on) > grown_by):
                why = msgs.text("exempt_bedridden") if bedridden else msgs.text("exempt_young", age=age)
                entry, into = (msgs.text("person_exempt", person=person.label(msgs), why=why), exempt)
            elif not tested:
                entry, into = (person.label(msgs), missing)
            else:
                continue
            node = nodes.get(unit_id) or below.get(unit_id)
            while node is not None:  # the row counts for every chosen unit above its household
                if node.ref.id in into:
                    into[node.ref.id].add(entry, {"type": "resident", "id": rid})
                node = nodes.get(node.ref.parent_id)
        for uid in chosen:
            # A new result in the same list (the supervision pass holds the same evaluation objects).
            ev, i = failing[uid]
            ev.criteria[i] = C.with_nat_people(ev.criteria[i], msgs, missing[uid], exempt[uid])

    @staticmethod
    def _pass_up(nodes: dict[int, _Node], verdict: C.Verdict) -> None:
        above = nodes.get(verdict.unit.parent_id)
        while above is not None:
            above.verdicts.append(verdict)
            above = nodes.get(above.ref.parent_id)

    def _applications(self, nodes: dict[int, _Node]) -> dict[int, C.ApplicationFact]:
        """Per unit: its open application for its title, else its latest one."""
        from wuyiqu.applications.models import OPEN_STATUSES

        open_values = {s.value for s in OPEN_STATUSES}
        chosen: dict[int, tuple[bool, C.ApplicationFact]] = {}
        for app_id, uid, title, status, unit_signed_on in self.q.applications():  # oldest first
            node = nodes.get(uid)
            if node is None or C.TITLE_KINDS.get(node.ref.kind) != title:
                continue
            is_open = status in open_values
            current = chosen.get(uid)
            if current is None or is_open or not current[0]:
                chosen[uid] = (is_open, C.ApplicationFact(app_id, status, unit_signed_on))
        return {uid: fact for uid, (_, fact) in chosen.items()}

    def _signature_facts(self, nodes, apps) -> dict[int, C.Sampled]:
        """Per co-signing unit (building, compound, group) with an application: the households below
        it without a co-signature on it by ``on`` (count + the first few). One query."""
        wanted = {app.id: uid for uid, app in apps.items()
                  if nodes[uid].ref.kind in CO_SIGNED_KINDS and nodes[uid].ref.path.startswith(self.scope_prefix)}
        out = {uid: C.Sampled() for uid in wanted.values()}
        pairs = []
        for app_id, uid in sorted(wanted.items()):
            stack = [nodes[uid]]
            while stack:
                n = stack.pop()
                pairs.append((app_id, n.ref.id))
                stack.extend(n.children)
        for app_id, code, address in self.q.unsigned_households(pairs):
            out[wanted[app_id]].add(address or code, {"type": "household", "code": code})
        return out

    def _judge(self, facts: C.UnitFacts, named: bool) -> UnitEvaluation:
        results = [fn(facts, spec) for fn, spec in self._level_specs(facts.level)]
        eligible = all(r.passed for r in results)
        ev = UnitEvaluation(facts.unit, facts.level, C.TITLE_KINDS[facts.level], eligible, named, results)
        if not eligible:
            failing_time = [r for r in results if not r.passed and r.time_based]
            ev.other_failures = [r.id for r in results if not r.passed and not r.time_based]
            if failing_time:
                if any(r.clears_on is None for r in failing_time):
                    ev.waits_on_open_zone = True
                else:
                    ev.earliest_pass_on = max(r.clears_on for r in failing_time)
        return ev
