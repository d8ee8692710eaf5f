"""The set-based evaluator on a district-sized world, against its raw queries and a naive baseline.

    .venv/bin/python bench/evaluate_world.py --db sqlite            # bench/out/evaluate_bench.sqlite3
    .venv/bin/python bench/evaluate_world.py --db postgres          # database wuyiqu_bench_eval
    .venv/bin/python bench/evaluate_world.py --db postgres --rebuild
    .venv/bin/python bench/evaluate_world.py --db postgres --compare-participation   # + the query shapes
    .venv/bin/python bench/evaluate_world.py --db postgres --moves 10000   # + 1 % of residents moved after D

1. Builds (once; kept between runs, ``--rebuild`` to redo) a world straight in the database with
   INSERT … SELECT (generate_series on PostgreSQL, a recursive CTE on SQLite): 20 streets, 440
   villages/communities, ~19,800 buildings in compounds, groups, ~345,000 households, ~1,035,000
   residents, 8 days of facts: ~3.9 million NatResult rows, cases, measures, risk zones,
   inspections, incidents, surveys, applications with co-signatures, titles, a special-population
   ledger. Only the evaluation is measured, not the build.
2. Times, in one run: the full evaluation of every titled unit (best of 3); the evaluator's raw
   aggregate queries alone (the same SQL, rows fetched, nothing rolled up or judged); after storing
   the day's evaluations, the chain of one building and its ancestors after a new positive case
   (checked against evaluating the street's whole subtree); and a naive evaluator (a dozen
   queries per unit) on a sample of units, extrapolated to all of them. CPU time is this
   process's, plus its server backend's on PostgreSQL.
3. With ``--moves N``: N residents moved on D+1, so that on D they count through their past spells
   (SPEC §7 "Time"); the full evaluation and the chain on D timed again, the verdicts asserted
   unchanged, the moves undone.
4. Prints the figures and the ratios (targets: full < 3 s; full within 5x of the raw queries;
   chain < 100 ms).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OUT = Path(__file__).resolve().parent / "out"
PG_URL = "postgres://postgres@127.0.0.1:5432/wuyiqu_bench_eval"
D = dt.date(2022, 11, 28)
STREETS, COMMITTEES_PER_STREET = 20, 22
COMPOUNDS, BUILDINGS_PER_COMPOUND, LOOSE_BUILDINGS = 8, 8, 2
GROUPS = 8
HOUSEHOLDS_PER_BUILDING, HOUSEHOLDS_PER_GROUP, MEMBERS = 15, 40, 3


def setup(db: str, rebuild: bool) -> None:
    os.environ.setdefault("WUYIQU_ENV", "test")
    if db == "postgres":
        url = os.environ.get("BENCH_DATABASE_URL", PG_URL)
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if exists and rebuild:
                conn.execute(f'DROP DATABASE "{name}"')
                exists = None
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
        os.environ["DATABASE_URL"] = url
    else:
        OUT.mkdir(exist_ok=True)
        path = OUT / "evaluate_bench.sqlite3"
        if rebuild and path.exists():
            path.unlink()
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wuyiqu.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _sql(cur, sql: str, params=None) -> None:
    cur.execute(sql, params)


def build() -> None:
    """Fill the database; skipped when the world is there already."""
    from django.db import connection, transaction

    from wuyiqu.units.models import Unit

    if Unit.objects.filter(code="BD").exists():
        return
    pg = connection.vendor == "postgresql"
    t0 = time.perf_counter()
    units: list[tuple] = []  # (id, code, name, kind, parent_id, path, depth)
    next_id = [0]

    def add(code, name, kind, parent):
        next_id[0] += 1
        path = (parent[5] if parent else "/") + code + "/"
        row = (next_id[0], code, name, kind, parent[0] if parent else None, path, parent[6] + 1 if parent else 0)
        units.append(row)
        return row

    district = add("BD", "基准区", "district", None)
    for s in range(STREETS):
        street = add(f"S{s:02d}", f"第{s}街道", "street", district)
        for k in range(COMMITTEES_PER_STREET):
            village = k % 3 == 2
            comm = add(f"{street[1]}K{k:02d}", f"第{s}街道{k}{'村' if village else '社区'}",
                       "village" if village else "community", street)
            if village:
                for g in range(GROUPS):
                    add(f"{comm[1]}-G{g}", f"{comm[2]}{g + 1}社", "group", comm)
                continue
            for c in range(COMPOUNDS):
                cpd = add(f"{comm[1]}-C{c}", f"{comm[2]}{c + 1}号小区", "compound", comm)
                for b in range(BUILDINGS_PER_COMPOUND):
                    add(f"{cpd[1]}-B{b}", f"{cpd[2]}{b + 1}栋", "building", cpd)
            for b in range(LOOSE_BUILDINGS):
                add(f"{comm[1]}-B{b}", f"{comm[2]}{b + 1}号楼", "building", comm)
    d = D.isoformat()
    now = "now()" if pg else "datetime('now')"

    def date_minus(expr: str) -> str:
        return f"(DATE '{d}' - ({expr})::int)" if pg else f"date('{d}', (-({expr})) || ' days')"

    with transaction.atomic(), connection.cursor() as cur:
        cur.executemany("INSERT INTO units_unit (id, code, name, kind, parent_id, path, depth) VALUES (%s,%s,%s,%s,%s,%s,%s)",
                        units)
        if pg:
            _sql(cur, "SELECT setval(pg_get_serial_sequence('units_unit','id'), (SELECT max(id) FROM units_unit))")
        _sql(cur, "CREATE TEMP TABLE nums (n integer PRIMARY KEY)")
        if pg:
            _sql(cur, "INSERT INTO nums SELECT generate_series(1, 40)")
        else:
            _sql(cur, "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 40) "
                      "INSERT INTO nums SELECT n FROM s")
        district_sql = "split_part(u.path, '/', 2)" if pg else "substr(u.path, 2, instr(substr(u.path, 2), '/') - 1)"
        _sql(cur, f"""INSERT INTO units_household (code, unit_id, district_code, address)
            SELECT u.code || '-' || n.n, u.id, {district_sql}, u.name || n.n || '室' FROM units_unit u JOIN nums n
            ON n.n <= CASE WHEN u.kind = 'building' THEN {HOUSEHOLDS_PER_BUILDING} ELSE {HOUSEHOLDS_PER_GROUP} END
            WHERE u.kind IN ('building', 'group')""")
        rid = "(h.id * 3 + n.n)"
        id_hash = f"lpad({rid}::text, 64, '0')" if pg else f"printf('%064d', {rid})"
        blob = "'\\x00'::bytea" if pg else "X'00'"
        # 1 in 33 a child born 2021-10-01 (third birthday kept: exempt on D); the others have none.
        turns = f"CASE WHEN {rid} % 33 = 0 THEN {'DATE ' if pg else ''}'2024-10-01' ELSE NULL END"
        _sql(cur, f"""INSERT INTO units_resident (household_id, district_code, name, id_enc, id_hash, id_masked,
                turns_three_on, sex, phone_enc, phone_hash, phone_masked, bedridden)
            SELECT h.id, h.district_code, '张三', {blob}, {id_hash}, '500**************0', {turns}, 'M', NULL, '', '',
                   {rid} % 97 = 0
            FROM units_household h JOIN nums n ON n.n <= {MEMBERS}""")
        _sql(cur, "INSERT INTO units_residentdirectory (id_hash, district_code) "
                  "SELECT id_hash, district_code FROM units_resident")
        _sql(cur, f"""INSERT INTO units_householdverification (household_id, district_code, verified_on, verifier)
            SELECT id, district_code, {date_minus('id % 32')}, '' FROM units_household""")
        _sql(cur, "CREATE TEMP TABLE days (d integer PRIMARY KEY)")
        _sql(cur, "INSERT INTO days (d) VALUES " + ",".join(f"({i})" for i in range(8)))
    if pg:
        from wuyiqu.health.nat_import import ensure_nat_partitions

        ensure_nat_partitions(D - dt.timedelta(days=7), D)
    with transaction.atomic(), connection.cursor() as cur:
        at = (f"((DATE '{d}' - d.d) + TIME '01:00')::timestamp AT TIME ZONE 'UTC'" if pg
              else f"date('{d}', '-' || d.d || ' days') || ' 01:00:00'")
        district_sql = "split_part(u.path, '/', 2)" if pg else "substr(u.path, 2, instr(substr(u.path, 2), '/') - 1)"
        _sql(cur, f"""INSERT INTO health_natresult (district_code, id_hash, resident_id, unit_id, sampled_at, sampled_on,
                result)
            SELECT {district_sql}, r.id_hash, r.id, h.unit_id, {at}, {date_minus('d.d')}, 'negative'
            FROM units_resident r JOIN units_household h ON h.id = r.household_id JOIN units_unit u ON u.id = h.unit_id
            JOIN days d ON (r.id + d.d) % 2 = 0
            WHERE r.id % 50 <> 0""")
    with transaction.atomic(), connection.cursor() as cur:
        _sql(cur, f"""INSERT INTO health_positivecase (resident_id, district_code, unit_id, id_hash, id_masked, source,
                created_at, reported_on, case_type)
            SELECT r.id, r.district_code, h.unit_id, r.id_hash, r.id_masked, 'import', {now}, {date_minus('r.id % 10')}, 'confirmed'
            FROM units_resident r JOIN units_household h ON h.id = r.household_id WHERE r.id % 5000 = 7""")
        _sql(cur, f"""INSERT INTO health_measure (resident_id, district_code, unit_id, id_hash, id_masked, source,
                created_at, kind, start_on, end_on, origin)
            SELECT r.id, r.district_code, h.unit_id, r.id_hash, r.id_masked, 'import', {now},
                CASE r.id % 3 WHEN 0 THEN 'close_contact' WHEN 1 THEN 'home_quarantine' ELSE 'returnee' END,
                {date_minus('r.id % 10')}, {date_minus('(r.id % 10) - 7')}, ''
            FROM units_resident r JOIN units_household h ON h.id = r.household_id WHERE r.id % 500 = 3""")
        _sql(cur, f"""INSERT INTO health_riskzone (unit_id, district_code, zone_type, start_on, end_on, created_at)
            SELECT id, {district_sql.replace('u.path', 'path')}, 'high', {date_minus('3')}, CASE WHEN id % 2 = 0 THEN NULL ELSE {date_minus('-2')} END, {now}
            FROM units_unit WHERE kind = 'compound' AND id % 300 = 5""")
        _sql(cur, "CREATE TEMP TABLE items (kind varchar(12), item varchar(16))")
        pairs = [(k, i) for k in ("building", "compound") for i in
                 ("masks", "entrance", "vehicles", "visitors", "disinfection", "garbage", "environment")]
        pairs += [(k, i) for k in ("group", "village", "community") for i in
                  ("masks", "environment", "garbage", "weekly_cleaning")]
        cur.executemany("INSERT INTO items (kind, item) VALUES (%s, %s)", pairs)
        for back in ("u.id % 5", "10 + u.id % 3"):
            _sql(cur, f"""INSERT INTO inspections_inspection (district_code, unit_id, inspected_on, item, passed,
                    inspector, note, evidence, created_at)
                SELECT {district_sql}, u.id, {date_minus(back)}, i.item, u.id % 23 <> 0, '', '', '', {now}
                FROM units_unit u JOIN items i ON i.kind = u.kind""")
        _sql(cur, f"""INSERT INTO inspections_incident (district_code, unit_id, occurred_on, incident_type, description,
                evidence, created_at)
            SELECT {district_sql.replace('u.path', 'path')}, id, {date_minus('id % 12')}, CASE WHEN id % 2 = 0 THEN 'fight' ELSE 'negative_opinion' END, '', '', {now}
            FROM units_unit WHERE kind = 'building' AND id % 400 = 9""")
        _sql(cur, f"""INSERT INTO inspections_survey (district_code, unit_id, surveyed_on, awareness, approval,
                participation)
            SELECT {district_sql.replace('u.path', 'path')}, id, {date_minus('id % 40')}, 0.95, CASE WHEN id % 7 = 0 THEN 0.85 ELSE 0.93 END, 0.92
            FROM units_unit WHERE kind IN ('village', 'community')""")
        title = ("CASE u.kind WHEN 'building' THEN '无疫楼栋' WHEN 'compound' THEN '无疫小区' WHEN 'group' THEN '无疫社' "
                 "WHEN 'village' THEN '无疫村' WHEN 'community' THEN '无疫社区' ELSE '无疫街道' END")
        _sql(cur, f"""INSERT INTO applications_application (district_code, unit_id, title, status, opened_at,
                unit_signed_on)
            SELECT {district_sql}, u.id, {title}, 'draft', {now},
                   CASE WHEN u.kind IN ('village', 'community', 'street') AND u.id % 2 = 0 THEN {date_minus('2')} END
            FROM units_unit u
            WHERE (u.kind IN ('building', 'group') AND u.id % 10 < 3) OR u.kind IN ('village', 'community', 'street')""")
        _sql(cur, f"""INSERT INTO applications_cosignature (district_code, application_id, household_id, signed_on,
                source, created_at)
            SELECT a.district_code, a.id, h.id, {date_minus('1')}, 'paper', {now}
            FROM applications_application a JOIN units_household h ON h.district_code = a.district_code
                AND h.unit_id = a.unit_id WHERE h.id % 97 <> 0""")
        _sql(cur, f"""INSERT INTO certification_title (district_code, unit_id, title, named_on, withdrawn_reason)
            SELECT {district_sql}, u.id, {title}, {date_minus('20')}, '' FROM units_unit u
            WHERE u.kind IN ('building', 'group') AND u.id % 5 = 0""")
        _sql(cur, f"""INSERT INTO units_specialpopulationentry (resident_id, district_code, tags, needs, helper,
                reviewed_on)
            SELECT id, district_code, 'elderly_alone', '送药', CASE WHEN id % 200 = 0 THEN '' ELSE '王五' END, {date_minus('id % 35')}
            FROM units_resident WHERE id % 20 = 0""")
    with connection.cursor() as cur:
        # VACUUM, not only ANALYZE: it sets the visibility map, without which every index-only probe
        # of the nucleic-acid index also reads the heap (what autovacuum does in time on a real system).
        cur.execute("VACUUM ANALYZE" if pg else "ANALYZE")
    print(f"built the world in {time.perf_counter() - t0:.0f} s")


def counts() -> dict[str, int]:
    from django.db import connection

    out = {}
    with connection.cursor() as cur:
        for table in ("units_unit", "units_household", "units_resident", "health_natresult", "health_positivecase",
                      "health_measure", "inspections_inspection", "applications_cosignature", "certification_title"):
            cur.execute(f"SELECT count(*) FROM {table}")
            out[table] = cur.fetchone()[0]
    return out


def server_cpu():
    """A function giving the CPU seconds used so far by this connection's PostgreSQL backend (the
    server runs on this machine: /proc/<pid>/stat), or None on SQLite (the database is in-process)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    count_beside_backends()
    return lambda: _backend_cpu(pid) + BESIDE_CPU[0]


def _backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by the server process ``pid``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


BESIDE_CPU = [0.0]  # server CPU of the evaluator's second connections (its ``_Beside`` queries)


def count_beside_backends() -> None:
    """Make every query the evaluator runs beside the rest (on PostgreSQL the whole tree's
    participation, on a second connection in a thread) add its server backend's CPU to BESIDE_CPU,
    read before that connection closes (one ``SELECT pg_backend_pid()`` more)."""
    from wuyiqu.standards import evaluator as E

    real_init = E._Beside.__init__
    if getattr(real_init, "counted", False):
        return

    def init(self, fn):
        def measured():
            from django.db import connection

            with connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                pid = cur.fetchone()[0]
            before = _backend_cpu(pid)
            try:
                return fn()
            finally:
                BESIDE_CPU[0] += _backend_cpu(pid) - before

        real_init(self, measured)

    init.counted = True
    E._Beside.__init__ = init


def raw_queries() -> None:
    """The evaluator's aggregate queries alone, rows fetched, nothing rolled up or judged."""
    from wuyiqu.standards.evaluator import (
        _Beside,
        _beside_allowed,
        _Gather,
        parsed_profile,
        profile_row_in_force,
    )

    profile = parsed_profile(profile_row_in_force(D))
    g = _Gather(D, profile, None)
    # As the evaluator runs them: on PostgreSQL participation on a second connection beside the rest
    # (WUYIQU_EVALUATE_CONCURRENT, the default), so that the raw limit is the database's limit too.
    nat = _Beside(g.nat) if _beside_allowed(None) else None
    for method in ("units", "households", "unverified_households", "cases", "measures", "zones", "ledger",
                   "inspections", "incidents", "surveys", "titles"):
        getattr(g, method)()
    g.unsigned_households([(a[0], a[1]) for a in g.applications()])  # (the evaluator adds the units below)
    nat.result() if nat is not None else g.nat()


def compare_participation(backend) -> None:
    """PostgreSQL: the whole tree's participation count as the evaluator runs it (the window's tested
    residents read once, DISTINCT ON) against the earlier one index probe per resident, and the same
    join without any participation; serial plans, 3 rounds alternating, best of each; the counts
    must agree."""
    from django.db import connection

    grown_by, start = D, D - dt.timedelta(days=6)
    base = ("SELECT h.unit_id, COUNT(*){} FROM units_resident r JOIN units_household h ON h.id = r.household_id {}"
            "WHERE r.bedridden = false AND (r.turns_three_on IS NULL OR r.turns_three_on <= %s) GROUP BY h.unit_id")
    shapes = {
        "DISTINCT ON (now)": (base.format(
            ", COUNT(t.resident_id)", "LEFT JOIN (SELECT DISTINCT ON (resident_id) resident_id FROM health_natresult "
            "WHERE sampled_on >= %s AND sampled_on <= %s ORDER BY resident_id) t ON t.resident_id = r.id "), [start, D]),
        "probe per resident (before)": (base.format(
            ", SUM(CASE WHEN EXISTS (SELECT 1 FROM health_natresult n WHERE n.resident_id = r.id AND n.sampled_on >= %s "
            "AND n.sampled_on <= %s) THEN 1 ELSE 0 END)", ""), [start, D]),
        "no participation (the join alone)": (base.format("", ""), []),
    }
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in shapes}
    results = {}
    with connection.cursor() as cur:
        cur.execute("SET max_parallel_workers_per_gather = 0")
        for _ in range(3):
            for name, (sql, params) in shapes.items():
                t, c = time.perf_counter(), time.process_time() + backend()
                cur.execute(sql, [*params, grown_by])
                results[name] = sorted(cur.fetchall())
                times[name].append((time.perf_counter() - t, time.process_time() + backend() - c))
        cur.execute("RESET max_parallel_workers_per_gather")
    now, before = list(shapes)[:2]
    assert results[now] == results[before], "the two participation counts differ"
    for name, runs in times.items():
        print(f"participation, {name}: {min(w for w, _ in runs):.2f} s wall, CPU {min(c for _, c in runs):.2f} s "
              f"(runs {', '.join(f'{w:.2f}/{c:.2f}' for w, c in runs)} wall/CPU)")


def naive_unit(unit, on: dt.date) -> None:
    """A per-unit evaluator as one would write it without thinking about sets: ~13 queries a unit."""
    from django.db.models import Exists, Max, OuterRef, Q

    from wuyiqu.applications.models import Application, CoSignature
    from wuyiqu.certification.models import Title
    from wuyiqu.health.models import Measure, NatResult, PositiveCase, RiskZone
    from wuyiqu.inspections.models import Incident, Inspection, Survey
    from wuyiqu.lib.dates import window_start
    from wuyiqu.units.models import Household, HouseholdVerification, Resident, SpecialPopulationEntry

    p = unit.path
    PositiveCase.objects.filter(unit__path__startswith=p, reported_on__gte=window_start(on, 8), reported_on__lte=on).count()
    Measure.objects.filter(unit__path__startswith=p, start_on__lte=on, end_on__gte=on).count()
    RiskZone.objects.filter(Q(unit__path__startswith=p) | Q(unit__code__in=unit.ancestor_codes), start_on__lte=on).count()
    Household.objects.filter(unit__path__startswith=p).count()
    HouseholdVerification.objects.filter(household__unit__path__startswith=p,
                                         verified_on__gte=window_start(on, 30)).values("household_id").distinct().count()
    tested = NatResult.objects.filter(resident_id=OuterRef("pk"), sampled_on__gte=window_start(on, 7), sampled_on__lte=on)
    base = Resident.objects.filter(Q(turns_three_on__isnull=True) | Q(turns_three_on__lte=on),
                                   household__unit__path__startswith=p, bedridden=False)
    base.count()
    base.filter(Exists(tested)).count()
    SpecialPopulationEntry.objects.filter(resident__household__unit__path__startswith=p, helper="").count()
    list(Inspection.objects.filter(unit=unit, inspected_on__lte=on).values("item").annotate(last=Max("inspected_on")))
    Incident.objects.filter(unit__path__startswith=p, occurred_on__gte=window_start(on, 8)).count()
    Survey.objects.filter(unit=unit, surveyed_on__lte=on).order_by("-surveyed_on").first()
    Title.objects.filter(unit=unit, withdrawn_on__isnull=True).exists()
    app = Application.objects.filter(unit=unit).order_by("-opened_at").first()
    if app:
        CoSignature.objects.filter(application=app).count()


def with_moves(n: int, results, building, backend) -> None:
    """Move ``n`` residents (every k-th by id) into another household on D+1, so that on D each of them
    counts through a past spell (``units.residence``); time the full evaluation (best of 3) and the
    chain of ``building`` (best of 5) on D, assert that the verdicts on D are those without the moves
    (a move after D changes nothing on D), then undo the moves. Written with plain SQL, committed:
    the participation query runs on a second connection on PostgreSQL, which sees only what is."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from wuyiqu.standards.evaluator import evaluate, evaluate_chain
    from wuyiqu.units.models import Household, PastResidence, Resident

    res, past, hh = Resident._meta.db_table, PastResidence._meta.db_table, Household._meta.db_table
    rng = random.Random(2)
    with connection.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {res}")
        step = max(1, cur.fetchone()[0] // n)
        cur.execute(f"SELECT id, household_id, district_code FROM {res} WHERE MOD(id, %s) = 0 ORDER BY id", [step])
        people = cur.fetchall()[:n]
        cur.execute(f"SELECT id, district_code FROM {hh}")
        households: dict[str, list[int]] = {}
        for h, district in cur.fetchall():
            households.setdefault(district, []).append(h)
    # Within the person's district (a move to another one is a delete and an insert: units.relocation).
    moves = [(rid, old, rng.choice(households[district]), district) for rid, old, district in people]
    after = D + dt.timedelta(days=1)
    with transaction.atomic(), connection.cursor() as cur:
        cur.executemany(f"INSERT INTO {past} (resident_id, household_id, district_code, from_on, until_on) "
                        "VALUES (%s, %s, %s, NULL, %s)", [(rid, old, district, D) for rid, old, _new, district in moves])
        cur.executemany(f"UPDATE {res} SET household_id = %s, moved_on = %s WHERE district_code = %s AND id = %s",
                        [(new, after, district, rid) for rid, _old, new, district in moves])
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(f"ANALYZE {past}")

    def verdicts(evaluations):
        return {e.unit.code: (e.eligible, e.named, tuple(e.failed)) for e in evaluations}

    try:
        walls, cpus = [], []
        for _ in range(3):
            t, c = time.perf_counter(), time.process_time() + backend()
            with CaptureQueriesContext(connection) as q:
                moved = evaluate(D)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() + backend() - c)
        assert verdicts(moved) == verdicts(results), "a move after D changed a verdict on D"
        chain_walls = []
        for _ in range(5):
            t = time.perf_counter()
            evaluate_chain(D, building)
            chain_walls.append(time.perf_counter() - t)
        print(f"with {len(moves):,} residents moved on D+1 (counted on D through their past spells): full evaluation "
              f"{len(q.captured_queries)} queries, {min(walls):.2f} s wall (runs {', '.join(f'{x:.2f}' for x in walls)}), "
              f"CPU {min(cpus):.2f} s, the same verdicts as without the moves; chain {min(chain_walls) * 1000:.0f} ms "
              f"(runs: {', '.join(f'{x * 1000:.0f}' for x in chain_walls)} ms)")
    finally:
        with transaction.atomic(), connection.cursor() as cur:
            cur.executemany(f"UPDATE {res} SET household_id = %s, moved_on = NULL WHERE id = %s",
                            [(old, rid) for rid, old, _new in moves])
            cur.execute(f"DELETE FROM {past}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--naive-sample", type=int, default=150)
    ap.add_argument("--compare-participation", action="store_true",
                    help="PostgreSQL: also time the participation query against the earlier probe per resident")
    ap.add_argument("--moves", type=int, default=0,
                    help="then move N residents on D+1 (their past spells cover D), time the full evaluation and "
                         "the chain on D again, assert the same verdicts, and undo the moves")
    args = ap.parse_args()
    setup(args.db, args.rebuild)
    build()
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from wuyiqu.audit import actions as audit
    from wuyiqu.health.models import PositiveCase
    from wuyiqu.standards.actions import do_store_evaluations
    from wuyiqu.standards.evaluator import EVALUATED_KINDS, evaluate, evaluate_chain
    from wuyiqu.units.models import Resident, Unit

    print(f"database: {connection.vendor}; world: {counts()}")
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (the machine is shared)")
    # Full evaluation and raw queries alternate, 3 rounds, so that both see the same load; the
    # minimum of each is kept. CPU time is this process's (on SQLite that includes the database).
    # On PostgreSQL the CPU of the server backend is added (parallel workers, if the planner uses
    # them, are not counted).
    backend = server_cpu() or (lambda: 0.0)
    full_wall, full_cpu, raw_wall, raw_cpu = [], [], [], []
    for _ in range(3):
        t, c = time.perf_counter(), time.process_time() + backend()
        with CaptureQueriesContext(connection) as q:
            results = evaluate(D)
        full_wall.append(time.perf_counter() - t)
        full_cpu.append(time.process_time() + backend() - c)
        t, c = time.perf_counter(), time.process_time() + backend()
        raw_queries()
        raw_wall.append(time.perf_counter() - t)
        raw_cpu.append(time.process_time() + backend() - c)
    full, raw = min(full_wall), min(raw_wall)
    eligible = sum(r.eligible for r in results)
    where = "this process" if connection.vendor == "sqlite" else "this process + its PostgreSQL backend"
    print(f"full evaluation: {len(results)} units ({eligible} eligible), {len(q.captured_queries)} queries: "
          f"{full:.2f} s wall (runs {', '.join(f'{x:.2f}' for x in full_wall)}); "
          f"CPU of {where} {min(full_cpu):.2f} s")
    print(f"raw aggregate queries alone: {raw:.2f} s wall (runs {', '.join(f'{x:.2f}' for x in raw_wall)}); "
          f"CPU {min(raw_cpu):.2f} s -> full/raw = {full / raw:.2f}x wall, {min(full_cpu) / min(raw_cpu):.2f}x CPU"
          " (target within 5x)")

    if args.compare_participation and connection.vendor == "postgresql":
        compare_participation(backend)

    # The chain: the day's evaluations stored (as the daily supervision run does), then a new
    # positive case in a building, recorded with its audit event as health.record_case does.
    t = time.perf_counter()
    do_store_evaluations(on=D, results=results)
    print(f"stored the day's {len(results)} evaluations in {time.perf_counter() - t:.1f} s (not measured below)")
    building = Unit.objects.filter(kind="building", path__contains="-C3-").order_by("id")[500]
    resident = Resident.objects.filter(household__unit=building).first()

    def summary(e):
        return (e.unit.code, e.eligible, e.named, [(c.id, c.passed, c.detail, c.items) for c in e.criteria])

    with transaction.atomic():
        PositiveCase.objects.create(resident=resident, unit=building, id_hash="bench-" + str(resident.pk),
                                    reported_on=D, case_type="confirmed")
        audit.record(actor=None, action="health.record_case", unit=building, detail={"bench": True})
        chain_times, chain_cpu = [], []
        for _ in range(5):
            t, c = time.perf_counter(), time.process_time() + backend()
            with CaptureQueriesContext(connection) as cq:
                chain = evaluate_chain(D, building)
            chain_times.append(time.perf_counter() - t)
            chain_cpu.append(time.process_time() + backend() - c)
        assert all("no_case" in e.failed for e in chain), [e.failed for e in chain]
        street = Unit.objects.get(code=chain[-1].unit.code)
        t = time.perf_counter()
        live = {e.unit.code: summary(e) for e in evaluate(D, root=street)}
        street_time = time.perf_counter() - t
        assert [summary(e) for e in chain] == [live[e.unit.code] for e in chain], "chain differs from the street's evaluation"
        transaction.set_rollback(True)
    print(f"one building + its {len(chain) - 1} titled ancestors after a new case (the street from its other "
          f"committees' stored rows), {len(cq.captured_queries)} queries: {min(chain_times) * 1000:.0f} ms wall "
          f"(runs: {', '.join(f'{x * 1000:.0f}' for x in chain_times)} ms), CPU {min(chain_cpu) * 1000:.0f} ms; "
          f"same verdicts and reasons as evaluating the street's whole subtree ({street_time * 1000:.0f} ms)")

    if args.moves:
        with_moves(args.moves, results, building, backend)

    titled = list(Unit.objects.filter(kind__in=EVALUATED_KINDS).only("id", "code", "path", "kind"))
    sample = random.Random(1).sample(titled, min(args.naive_sample, len(titled)))
    t = time.perf_counter()
    with CaptureQueriesContext(connection) as nq:
        for unit in sample:
            naive_unit(unit, D)
    per_unit = (time.perf_counter() - t) / len(sample)
    naive_total = per_unit * len(titled)
    print(f"naive per-unit evaluator: {per_unit * 1000:.1f} ms/unit, {len(nq.captured_queries) / len(sample):.1f} "
          f"queries/unit, measured on a random sample of {len(sample)} units and extrapolated to {len(titled)}: "
          f"{naive_total:.0f} s -> the set-based evaluator is {naive_total / full:.0f}x faster")


if __name__ == "__main__":
    main()
