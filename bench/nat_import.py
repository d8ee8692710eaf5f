"""The nat-results import vs. a raw bulk load of the same rows into the same table, in one run.

    .venv/bin/python bench/nat_import.py --db sqlite       # bench/out/nat_bench.sqlite3
    .venv/bin/python bench/nat_import.py --db postgres     # database wuyiqu_bench_nat
    .venv/bin/python bench/nat_import.py --db postgres --residents 100000   # a quick look

1. Makes (once, kept between runs) a world of N residents (bench/nat_world.py) and a results file
   of one mass-testing round: every resident once, yesterday, plus 1 % people not on the register
   and a few positives.
2. Raw load: the file's rows turned into exactly the rows the import stores (hash, resident, unit,
   UTC time, date, result) BEFORE the clock starts, then timed: COPY FROM STDIN into
   health_natresult (PostgreSQL) or executemany INSERT (SQLite), one transaction.
3. Empties the table and times the project import as a user runs it: ``wuyiqu import nat-results
   FILE`` in a child process (Django start-up included), whose peak RSS is read back with
   getrusage(RUSAGE_CHILDREN). Then the same file again (idempotent: adds nothing).
4. Prints both rates and the ratio import/raw (target: within 3x).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nat_world  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
NULL = "\\N"  # COPY text format


def _raw_rows(path: Path, db: str) -> list:
    """The rows the import would store, computed without the import's code paths."""
    from django.db import connection

    from wuyiqu.lib import crypto

    c = crypto.cipher()
    with connection.cursor() as cur:
        cur.execute("SELECT r.id_hash, r.id, h.unit_id FROM units_resident r JOIN units_household h ON h.id = r.household_id")
        people = {h: (rid, uid) for h, rid, uid in cur.fetchall()}
    rows = []
    utc8 = dt.timedelta(hours=8)
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            number, at, result = line.rstrip("\n").split(",")
            h = c.lookup_hash(number)
            rid, uid = people.get(h, (None, None))
            value = "positive" if result == "阳性" else "negative"
            if db == "postgres":
                r_text, u_text = (NULL, NULL) if rid is None else (rid, uid)
                rows.append(f"{h}\t{r_text}\t{u_text}\t{at}+08\t{at[:10]}\t{value}\n")
            else:
                utc = (dt.datetime.fromisoformat(at) - utc8).strftime("%Y-%m-%d %H:%M:%S")
                rows.append((h, rid, uid, utc, at[:10], value))
    return rows


def _empty_table() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("TRUNCATE health_natresult" if connection.vendor == "postgresql" else "DELETE FROM health_natresult")
        cur.execute("DELETE FROM health_positivecase WHERE source = 'nat'")


def _raw_load(rows: list) -> float:
    from django.db import connection, transaction

    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        if connection.vendor == "postgresql":
            buf = "".join(rows)
            with cur.cursor.copy("COPY health_natresult (id_hash, resident_id, unit_id, sampled_at, sampled_on, result) "
                                 "FROM STDIN") as copy:
                for i in range(0, len(buf), 1 << 22):
                    copy.write(buf[i:i + (1 << 22)])
        else:
            cur.executemany("INSERT INTO health_natresult (id_hash, resident_id, unit_id, sampled_at, sampled_on, result) "
                            "VALUES (%s, %s, %s, %s, %s, %s)", rows)
    return time.perf_counter() - t0


# ``python -m wuyiqu import …`` that prints, at exit, its own peak RSS (VmHWM of its memory map) and
# CPU seconds: getrusage(RUSAGE_CHILDREN) counts, in ru_maxrss, the pages of this bench process at the
# fork (the raw rows it held: ~600 MiB), which the runs before 2026-12-07 reported as the import's.
_MEASURED = (
    "import atexit, resource, runpy, sys\n"
    "def _report():\n"
    "    hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
    "    u = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    print(f'BENCH rss_kib={hwm} cpu={u.ru_utime + u.ru_stime:.2f}', file=sys.stderr)\n"
    "atexit.register(_report)\n"
    "sys.argv = ['wuyiqu', *sys.argv[1:]]\n"
    "runpy.run_module('wuyiqu', run_name='__main__')\n"
)


def _project_import(path: Path, url: str) -> tuple[float, str, float, float]:
    """(wall seconds, summary line, peak RSS MiB, CPU seconds) of the import in a process of its own."""
    env = dict(os.environ, DATABASE_URL=url)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _MEASURED, "import", "nat-results", str(path)], env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"import failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")
    rss, cpu = (float(x.split("=")[1]) for x in done.stderr.rsplit("BENCH ", 1)[1].split())
    return seconds, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "", rss / 1024, cpu


def _count() -> int:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM health_natresult")
        return cur.fetchone()[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--residents", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    url = nat_world.setup_django(args.db)
    nat_world.ensure_residents(args.residents)

    from django.utils import timezone

    from wuyiqu.health.nat_import import ensure_nat_partitions

    day = timezone.localdate() - dt.timedelta(days=1)
    path = OUT / f"nat_{args.residents}_{day:%Y%m%d}.csv"
    OUT.mkdir(exist_ok=True)
    if not path.exists():
        nat_world.write_results_file(path, args.residents, day)
    ensure_nat_partitions(day, day)
    _empty_table()
    rows = _raw_rows(path, args.db)
    n = len(rows)

    raw_s = _raw_load(rows)
    assert _count() == n
    del rows
    _empty_table()

    load_before = os.getloadavg()[0]
    imp_s, summary, rss_mb, imp_cpu = _project_import(path, url)
    assert _count() == n, (_count(), n)
    again_s, again, _rss, _cpu = _project_import(path, url)
    assert _count() == n

    print(f"database       {args.db}  ({url.split('@')[-1]})")
    print(f"rows           {n:,}  ({args.residents:,} residents; file {path.stat().st_size / 1e6:.0f} MB)")
    print(f"raw load       {raw_s:7.2f} s   {n / raw_s:>10,.0f} rows/s")
    print(f"import         {imp_s:7.2f} s   {n / imp_s:>10,.0f} rows/s   ratio import/raw {imp_s / raw_s:.2f}  "
          f"(target <= 3)   peak RSS {rss_mb:.0f} MiB   client CPU {imp_cpu:.1f} s")
    print(f"  summary:     {summary}")
    print(f"re-import      {again_s:7.2f} s   {n / again_s:>10,.0f} rows/s   {again}")
    print(f"load average   {load_before:.1f} at the import's start, {os.getloadavg()[0]:.1f} at the end "
          f"({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
