"""What linking earlier facts costs a residents import (PostgreSQL), and the plan of its UPDATE.

    .venv/bin/python bench/relink_residents.py                                  # 100,000 residents, 1,000,000 results
    .venv/bin/python bench/relink_residents.py --residents 20000 --results 200000 --weeks 4   # a quick look

Database: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/wuyiqu_bench_relink, made if
missing). The world of bench/nat_world.py (buildings of 100 residents in households of 4) is made
with N residents, their rows written to a residents file and then deleted: the households stay,
the people are "not registered yet". Then, by SQL (generate_series, week by week into the weekly
partitions), RESULTS nucleic-acid results are stored unmatched — nine in ten for the N people about
to be registered, one in ten for strangers who never are — spread over WEEKS weeks, plus a positive
case for 1 % and a close-contact measure for 5 % of the N people, also unmatched.

1. "without": the residents file imported with linking switched off (as before): the time.
2. The EXPLAIN (ANALYZE, BUFFERS) of the results UPDATE for one import batch of 5,000 hashes, rolled
   back: every weekly partition is entered by its primary key on the hashes.
3. The residents deleted again (the facts are still unmatched), then "with": the same file imported
   with linking: the time, the time inside ``link_facts``, and what it linked.
4. ``wuyiqu relink-facts`` run right after (nothing left: what the idempotent run costs), then again
   after all facts were made unmatched (the whole-table statement the administrator runs once).
5. On the linked, analysed table: the plan and time of one batch's results UPDATE (5,000 people's
   results made unmatched again, rolled back): as planned; with sequential and bitmap scans off;
   and with only each partition's primary key on the hashes left as a path.

Wall and CPU (this process + its PostgreSQL backend) are printed: the machine is shared, the CPU
figure moves less with other people's load.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nat_world  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
PG_URL = "postgres://postgres@127.0.0.1:5432/wuyiqu_bench_relink"
BATCH = 5000  # the residents kind's batch size


def _cpu() -> float:
    """CPU seconds of this process and of its PostgreSQL backend (same machine, /proc)."""
    import resource

    from django.db import connection

    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        pass
    return total


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _residents_file(path: Path) -> tuple[int, list[str]]:
    """Write the registered residents (in id order: resident i holds nat_world.id_number(i)) as a
    residents import file; return how many and their hashes in the same order."""
    from django.db import connection

    n = 0
    hashes = []
    with connection.cursor() as cur, open(path, "w", encoding="utf-8") as f:
        f.write("id_number,name,household_code\n")
        cur.execute("SELECT r.id_hash, h.code FROM units_resident r JOIN units_household h ON h.id = r.household_id "
                    "ORDER BY r.id")
        for i, (h, code) in enumerate(cur.fetchall()):
            f.write(f"{nat_world.id_number(i)},居民,{code}\n")
            hashes.append(h)
            n += 1
    return n, hashes


def _delete_residents() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("DELETE FROM units_specialpopulationentry")
        cur.execute("DELETE FROM units_resident")
        cur.execute("DELETE FROM units_residentdirectory")
        cur.execute("VACUUM ANALYZE units_resident")


def _store_facts(hashes: list[str], results: int, weeks: int) -> dict[str, int]:
    """Unmatched results, cases and measures (see the module docstring); returns the counts."""
    import datetime as dt

    from django.db import connection

    from wuyiqu.health.nat_import import IdHasher, ensure_nat_partitions

    n = len(hashes)
    strangers = max(1, n // 10)
    hasher = IdHasher()
    stranger_hashes = [hasher(nat_world.stranger_id_number(i)) for i in range(strangers)]
    per_person = max(1, (results * 9 // 10) // n)
    per_stranger = max(1, (results - per_person * n) // strangers)
    last = dt.date(2022, 11, 27)
    first = last - dt.timedelta(days=weeks * 7 - 1)
    ensure_nat_partitions(first, last)
    span = (last - first).days + 1
    with connection.cursor() as cur:
        for table in ("health_natresult", "health_positivecase", "health_measure"):
            cur.execute(f"TRUNCATE {table}" if table == "health_natresult" else f"DELETE FROM {table}")
        cur.execute("DROP TABLE IF EXISTS bench_people")
        cur.execute("CREATE UNLOGGED TABLE bench_people (idx int PRIMARY KEY, id_hash text, stranger bool)")
        with cur.connection.cursor() as pg, pg.copy("COPY bench_people FROM STDIN") as copy:
            for i, h in enumerate(hashes):
                copy.write_row((i, h, False))
            for i, h in enumerate(stranger_hashes):
                copy.write_row((n + i, h, True))
        for stranger, per in ((False, per_person), (True, per_stranger)):
            # Test k of a person on day (idx + k * span / per) of the span, at a time of day from idx.
            cur.execute(f"""
                INSERT INTO health_natresult (id_hash, resident_id, unit_id, sampled_at, sampled_on, result)
                SELECT p.id_hash, NULL, NULL,
                       (d + time '07:00' + ((p.idx * 7919) %% 43200) * interval '1 second') AT TIME ZONE 'Asia/Shanghai',
                       d, 'negative'
                FROM bench_people p CROSS JOIN generate_series(0, {per - 1}) k
                CROSS JOIN LATERAL (SELECT %s::date + ((p.idx + k * {span} / {per}) %% {span})::int AS d) day
                WHERE p.stranger = %s""", [first, stranger])
        # Unmatched, unscoped: kept in the district "" (PersonFact's docstring).
        cur.execute("""INSERT INTO health_positivecase (id_hash, id_masked, resident_id, unit_id, district_code, source,
                                                         created_at, reported_on, case_type)
                       SELECT id_hash, '', NULL, NULL, '', 'import', now(), %s::date - (idx %% 20), 'confirmed'
                       FROM bench_people WHERE NOT stranger AND idx %% 100 = 3""", [last])
        cur.execute("""INSERT INTO health_measure (id_hash, id_masked, resident_id, unit_id, district_code, source,
                                                    created_at, kind, start_on, end_on, origin)
                       SELECT id_hash, '', NULL, NULL, '', 'import', now(), 'close_contact', %s::date - (idx %% 30),
                              %s::date - (idx %% 30) + 7, ''
                       FROM bench_people WHERE NOT stranger AND idx %% 20 = 5""", [last, last])
        cur.execute("ANALYZE health_natresult")
        cur.execute("ANALYZE health_positivecase")
        cur.execute("ANALYZE health_measure")
        counts = {}
        for name, table in (("results", "health_natresult"), ("cases", "health_positivecase"),
                            ("measures", "health_measure")):
            cur.execute(f"SELECT count(*) FROM {table}")
            counts[name] = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'health_natresult'::regclass")
        counts["partitions"] = cur.fetchone()[0]
    return counts


def _import(path: Path) -> tuple[float, float, object]:
    from wuyiqu.imports.services import run_import

    t0, c0 = time.perf_counter(), _cpu()
    job = run_import(kind="residents", path=path)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    if job.status != "succeeded":
        sys.exit(f"import failed: {job.message}")
    return wall, cpu, job


def _explain(hashes: list[str]) -> str:
    from django.db import connection, transaction

    from wuyiqu.health.linking import link_statement

    sql = link_statement("health_natresult", by_hash=True, returning=False)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql, [hashes, hashes])
        # The filter lines repeat the 5,000 hashes: cut them short.
        plan = "\n".join(r[0] if len(r[0]) <= 160 else r[0][:150] + " …" for r in cur.fetchall())
        transaction.set_rollback(True)
    return plan


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--results", type=int, default=1_000_000)
    parser.add_argument("--weeks", type=int, default=10, help="weeks (partitions) the results are spread over")
    args = parser.parse_args(argv)
    os.environ.setdefault("BENCH_DATABASE_URL", PG_URL)
    nat_world.setup_django("postgres")

    from wuyiqu.health import linking
    from wuyiqu.health.actions import do_relink_facts

    print(f"load average before: {_loadavg()}", flush=True)
    nat_world.ensure_residents(args.residents)
    OUT.mkdir(exist_ok=True)
    path = OUT / "relink_residents.csv"
    n, hashes = _residents_file(path)
    from django.db import connection

    with connection.cursor() as cur:  # facts of an earlier run point at the residents kept from it
        cur.execute("TRUNCATE health_natresult")
        cur.execute("DELETE FROM health_positivecase")
        cur.execute("DELETE FROM health_measure")
    _delete_residents()
    t0 = time.perf_counter()
    counts = _store_facts(hashes, args.results, args.weeks)
    print(f"stored unmatched in {time.perf_counter() - t0:.0f}s: {counts['results']:,} results in "
          f"{counts['partitions']} partitions, {counts['cases']:,} cases, {counts['measures']:,} measures; "
          f"{n:,} residents to import", flush=True)

    real_link = linking.link_facts
    linking.link_facts = lambda hashes: linking.LinkedFacts()
    try:
        base_wall, base_cpu, _job = _import(path)
    finally:
        linking.link_facts = real_link
    print(f"\n1. import without linking: {base_wall:.1f}s wall, {base_cpu:.1f}s CPU", flush=True)

    print(f"\n2. EXPLAIN of the results UPDATE for one batch of {BATCH:,} hashes (rolled back):", flush=True)
    print(_explain(hashes[:BATCH]), flush=True)

    _delete_residents()
    spent = [0.0]

    def timed(hashes):
        t = time.perf_counter()
        try:
            return real_link(hashes)
        finally:
            spent[0] += time.perf_counter() - t

    linking.link_facts = timed
    try:
        wall, cpu, job = _import(path)
    finally:
        linking.link_facts = real_link
    from wuyiqu.audit.models import AuditEvent

    linked = AuditEvent.objects.get(action="imports.run", target_id=str(job.pk)).detail["facts_linked"]
    print(f"\n3. import with linking: {wall:.1f}s wall, {cpu:.1f}s CPU; inside link_facts {spent[0]:.1f}s "
          f"({len(hashes) // BATCH + (1 if len(hashes) % BATCH else 0)} batches); linked {linked}")
    print(f"   with/without: {wall / base_wall:.2f}x wall, {cpu / base_cpu:.2f}x CPU", flush=True)

    t0 = time.perf_counter()
    again = do_relink_facts(actor=None)
    print(f"\n4. relink-facts with nothing left: {time.perf_counter() - t0:.1f}s, linked {again.as_detail()}")

    with connection.cursor() as cur:
        for table in ("health_natresult", "health_positivecase", "health_measure"):
            cur.execute(f"UPDATE {table} SET resident_id = NULL, unit_id = NULL WHERE id_hash <> ''")
            cur.execute(f"VACUUM ANALYZE {table}")
    t0, c0 = time.perf_counter(), _cpu()
    everything = do_relink_facts(actor=None)
    print(f"   relink-facts of everything: {time.perf_counter() - t0:.1f}s wall, {_cpu() - c0:.1f}s CPU, "
          f"linked {everything.as_detail()}")
    print("\n5. one batch's results UPDATE on the linked table (ANALYZEd; 5,000 people made unmatched "
          "again, rolled back), as planned and with sequential and bitmap scans off:", flush=True)
    with connection.cursor() as cur:
        cur.execute("ANALYZE health_natresult")
    off = ("enable_seqscan", "enable_bitmapscan")
    for label, settings, pk_only in (("as planned", (), False), ("seq and bitmap scans off", off, False),
                                     ("primary key only", off, True)):
        plan, seconds = _explain_unlinked(hashes[len(hashes) // 2:len(hashes) // 2 + BATCH], settings, pk_only)
        print(f"--- {label}: {seconds:.2f}s\n{plan}", flush=True)
    print(f"load average after: {_loadavg()}", flush=True)


def _explain_unlinked(hashes: list[str], off: tuple[str, ...], pk_only: bool) -> tuple[str, float]:
    """The plan of linking ``hashes``' results after making them unmatched, all rolled back. With
    ``pk_only`` the ``resident_id IS NULL`` test is written so that no index can serve it, which
    leaves the primary key on the hashes as the only index path."""
    from django.db import connection, transaction

    from wuyiqu.health.linking import link_statement

    sql = link_statement("health_natresult", by_hash=True, returning=False)
    if pk_only:
        sql = sql.replace("f.resident_id IS NULL", "(f.resident_id + 0) IS NULL")
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE health_natresult SET resident_id = NULL, unit_id = NULL WHERE id_hash = ANY(%s)", [hashes])
        for setting in off:
            cur.execute(f"SET LOCAL {setting} = off")
        t = time.perf_counter()
        cur.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY ON) " + sql, [hashes, hashes])
        seconds = time.perf_counter() - t
        lines = [r[0] for r in cur.fetchall()]
        transaction.set_rollback(True)
    keep = [line if len(line) <= 160 else line[:150] + " …" for line in lines
            if "Update on health_natresult_" not in line and "Filter: ((" not in line]
    return "\n".join(keep), seconds


if __name__ == "__main__":
    main()
