"""Does a year of results slow down today's import or the recent-window query? (PostgreSQL)

    .venv/bin/python bench/nat_partitions.py                       # 30,000,000 rows of history
    .venv/bin/python bench/nat_partitions.py --history 3000000     # a quick look

Uses the world of bench/nat_world.py (1,000,000 residents by default) and yesterday's round file
of bench/nat_import.py. Two phases on the same database, the same window contents in both:

A. "empty": the table holds only the 7-day window — today's round imported (timed, the project
   import ``wuyiqu import nat-results``), plus the six days before it as daily rounds.
B. "a year": the table holds HISTORY rows over the 365 days before the round, as daily rounds of
   HISTORY/365 residents each, made by SQL (generate_series, loaded week by week into the weekly
   partitions: the table is what is measured, not Python), then today's round imported (timed).

In both, the recent-window query — the latest test within 7 days of each resident of one community —
is timed (median of 7) and its EXPLAIN printed, which shows that only the window's weekly
partitions are scanned.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nat_world  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"

WINDOW_QUERY = """
SELECT r.id, t.sampled_at, t.result
FROM units_resident r
JOIN units_household h ON h.id = r.household_id
JOIN units_unit u ON u.id = h.unit_id
LEFT JOIN LATERAL (
    SELECT n.sampled_at, n.result FROM health_natresult n
    WHERE n.resident_id = r.id AND n.sampled_on BETWEEN %(start)s AND %(end)s
    ORDER BY n.sampled_on DESC, n.sampled_at DESC LIMIT 1
) t ON true
WHERE u.path LIKE %(prefix)s
"""


def _sql(cur, sql: str, params=None):
    # Without parameters the text goes as it is (it holds SQL's own % operator).
    cur.execute(sql, params) if params else cur.execute(sql)


def _people_table(cur) -> int:
    """bench_people(idx, id_hash, resident_id, unit_id): residents numbered 0..N-1 for generate_series."""
    _sql(cur, "DROP TABLE IF EXISTS bench_people")
    _sql(cur, """CREATE UNLOGGED TABLE bench_people AS
                 SELECT (row_number() OVER (ORDER BY r.id) - 1)::int AS idx, r.id_hash, r.id AS resident_id, h.unit_id
                 FROM units_resident r JOIN units_household h ON h.id = r.household_id""")
    _sql(cur, "ALTER TABLE bench_people ADD PRIMARY KEY (idx)")
    _sql(cur, "SELECT count(*) FROM bench_people")
    return cur.fetchone()[0]


def _round_select(day: dt.date, day_no: int, per_day: int, people: int) -> str:
    """SELECT of one daily round: per_day distinct residents sampled on ``day`` between 07:00 and 19:00."""
    return f"""
        SELECT p.id_hash, p.resident_id, p.unit_id,
               ('{day}'::date + time '07:00' + ((g * 7919) % 43200) * interval '1 second') AT TIME ZONE 'Asia/Shanghai',
               '{day}'::date, CASE WHEN g % 50000 = 7 THEN 'positive' ELSE 'negative' END
        FROM generate_series(0, {per_day - 1}) g
        JOIN bench_people p ON p.idx = ({day_no}::bigint * {per_day} + g) % {people}"""


def _empty(cur) -> None:
    """No rows and no weekly partitions: only the DEFAULT one."""
    from wuyiqu.health.nat_import import existing_partitions

    for name in sorted(existing_partitions()):
        if name != "health_natresult_default":
            _sql(cur, f"DROP TABLE {name}")
    _sql(cur, "TRUNCATE health_natresult")
    _sql(cur, "DELETE FROM health_positivecase WHERE source = 'nat'")


def _load_days(cur, days: list[dt.date], per_day: int, people: int) -> float:
    """Daily rounds on ``days``, week by week: each week's rows go into a fresh table that is then
    attached as the week's partition (PostgreSQL builds its indexes once, sorted)."""
    from wuyiqu.health.nat_import import existing_partitions, partition_name, week_start

    t0 = time.perf_counter()
    _sql(cur, "SET maintenance_work_mem = '256MB'")
    weeks: dict[dt.date, list[dt.date]] = {}
    for d in days:
        weeks.setdefault(week_start(d), []).append(d)
    have = existing_partitions()
    for monday, week_days in sorted(weeks.items()):
        name = partition_name(monday)
        selects = " UNION ALL ".join(_round_select(d, (d - dt.date(2000, 1, 1)).days, per_day, people) for d in week_days)
        if name in have:
            _sql(cur, f"INSERT INTO health_natresult {selects}")
            continue
        _sql(cur, f"CREATE TABLE {name} (LIKE health_natresult INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        _sql(cur, f"INSERT INTO {name} {selects}")
        _sql(cur, f"ALTER TABLE {name} ADD CONSTRAINT {name}_range CHECK (sampled_on >= '{monday}' AND "
                  f"sampled_on < '{monday + dt.timedelta(days=7)}')")  # lets ATTACH skip its validation scan
        _sql(cur, f"ALTER TABLE health_natresult ATTACH PARTITION {name} FOR VALUES FROM ('{monday}') TO "
                  f"('{monday + dt.timedelta(days=7)}')")
        _sql(cur, f"ALTER TABLE {name} DROP CONSTRAINT {name}_range")
        print(f"  week {monday}: {len(week_days) * per_day:,} rows  ({time.perf_counter() - t0:.0f}s)", flush=True)
    _sql(cur, "ANALYZE health_natresult")
    return time.perf_counter() - t0


def _import(path: Path, url: str) -> float:
    import os

    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "wuyiqu", "import", "nat-results", str(path)],
                          env=dict(os.environ, DATABASE_URL=url), capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"import failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0


def _window(cur, params: dict) -> tuple[float, int, str]:
    timings = []
    for _i in range(7):
        t0 = time.perf_counter()
        _sql(cur, WINDOW_QUERY, params)
        rows = cur.fetchall()
        timings.append(time.perf_counter() - t0)
    _sql(cur, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + WINDOW_QUERY, params)
    plan = "\n".join(r[0] for r in cur.fetchall())
    return statistics.median(timings), sum(1 for r in rows if r[1] is not None), plan


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--history", type=int, default=30_000_000, help="rows over the year before the round")
    args = parser.parse_args(argv)
    url = nat_world.setup_django("postgres")
    nat_world.ensure_residents(args.residents)

    from django.db import connection
    from django.utils import timezone

    day = timezone.localdate() - dt.timedelta(days=1)
    path = OUT / f"nat_{args.residents}_{day:%Y%m%d}.csv"
    OUT.mkdir(exist_ok=True)
    if not path.exists():
        nat_world.write_results_file(path, args.residents, day)
    per_day = args.history // 365
    connection.ensure_connection()
    connection.connection.autocommit = True
    with connection.cursor() as cur:
        people = _people_table(cur)
        # The community with the most residents (a building's parent path is its community's).
        _sql(cur, """SELECT p.path, count(*) FROM units_resident r JOIN units_household h ON h.id = r.household_id
                     JOIN units_unit b ON b.id = h.unit_id JOIN units_unit p ON p.id = b.parent_id
                     WHERE p.kind = 'community' GROUP BY p.path ORDER BY 2 DESC, 1 LIMIT 1""")
        community_path = cur.fetchone()[0]
        params = {"start": day - dt.timedelta(days=6), "end": day, "prefix": community_path + "%"}
        _sql(cur, "SELECT count(*) FROM units_resident r JOIN units_household h ON h.id = r.household_id "
                  "JOIN units_unit u ON u.id = h.unit_id WHERE u.path LIKE %(prefix)s", params)
        community_residents = cur.fetchone()[0]
        window_days = [day - dt.timedelta(days=k) for k in range(6, 0, -1)]

        print(f"A. empty table: import {day} round, then the 6 days before it ({per_day:,}/day)", flush=True)
        _empty(cur)
        imp_a = _import(path, url)
        _load_days(cur, window_days, per_day, people)
        q_a, found_a, _plan = _window(cur, params)
        _sql(cur, "SELECT count(*) FROM health_natresult")
        rows_a = cur.fetchone()[0]

        print(f"B. a year: {per_day * 365:,} rows over the 365 days before {day}, then import the round", flush=True)
        _empty(cur)
        load_s = _load_days(cur, [day - dt.timedelta(days=k) for k in range(365, 0, -1)], per_day, people)
        _sql(cur, "SELECT count(*) FROM health_natresult")
        history = cur.fetchone()[0]
        imp_b = _import(path, url)
        q_b, found_b, plan = _window(cur, params)
        _sql(cur, "SELECT count(*) FROM health_natresult")
        rows_b = cur.fetchone()[0]
        _sql(cur, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'health_natresult'::regclass")
        partitions = cur.fetchone()[0]
        _sql(cur, "DROP TABLE bench_people")

    n = sum(1 for _ in open(path, encoding="utf-8")) - 1
    print()
    print(f"round file                {n:,} rows ({day}); community {community_path} with {community_residents:,} residents")
    print(f"history load (SQL)        {history:,} rows in {load_s:.0f}s; {partitions} partitions")
    print(f"                          A: empty ({rows_a:,} rows)   B: a year ({rows_b:,} rows)   B/A")
    print(f"daily import              {imp_a:8.2f} s          {imp_b:8.2f} s              {imp_b / imp_a:.2f}")
    print(f"7-day window query        {q_a * 1000:8.1f} ms         {q_b * 1000:8.1f} ms             {q_b / q_a:.2f}"
          f"   ({found_a:,} / {found_b:,} residents with a test)")
    print("EXPLAIN (phase B):")
    print(plan)


if __name__ == "__main__":
    main()
