"""Residents import vs. a raw bulk load of the same rows, in one run, on SQLite or PostgreSQL.

    .venv/bin/python bench/world.py --residents 1000000
    .venv/bin/python bench/import_residents.py --db sqlite          # a temporary SQLite file
    .venv/bin/python bench/import_residents.py --db postgres        # database wuyiqu_bench_imports

1. Loads units.csv and households.csv of bench/out through the import (once per database).
2. Empties the residents table, then times ``run_import(kind="residents")`` on residents.csv: read,
   check, encrypt, hash, write — everything the import does.
3. Dumps the rows the import wrote (already encrypted, hashed, masked), empties the table again and
   times loading exactly those rows "raw" into the same table with its indexes: COPY FROM STDIN of
   the dumped text on PostgreSQL, executemany of the prepared tuples on SQLite, one transaction.
4. Prints both rates, the ratio (target: import within 4x of raw) and the peak RSS of the process
   after the import (resource.getrusage), which shows the import's memory stays bounded.

Keys: WUYIQU_ENV=test (fixed test keys) unless WUYIQU_DATA_KEY/WUYIQU_SECRET_KEY are set.
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nat_world  # noqa: E402  (bench/nat_world.py: the database set-up)

OUT = Path(__file__).resolve().parent / "out"
PG_URL = "postgres://postgres@127.0.0.1:5432/wuyiqu_bench_imports"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    """CPU time of this process plus, on PostgreSQL, of its server backend (same machine: /proc).
    Unlike wall time this barely moves with the load other people put on a shared machine."""
    from django.db import connection

    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        except OSError:
            pass  # the server is on another machine: client CPU only
    return total


DIRECTORY = "units_residentdirectory"


def _setup(db: str, sqlite_path: Path | None, keep: bool) -> None:
    url = os.environ.get("BENCH_DATABASE_URL", PG_URL) if db == "postgres" else f"sqlite:///{sqlite_path}"
    nat_world.use_database(url, fresh=not keep)  # the bench owns this database: start from nothing


def _clear_residents() -> None:
    from django.db import connection, transaction

    from wuyiqu.units.models import Resident, SpecialPopulationEntry

    table = Resident._meta.db_table
    with transaction.atomic(), connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(f"TRUNCATE {table}, {DIRECTORY} CASCADE")  # the bench database holds no other facts
        else:
            cur.execute(f"DELETE FROM {SpecialPopulationEntry._meta.db_table}")
            cur.execute(f"DELETE FROM {table}")
            cur.execute(f"DELETE FROM {DIRECTORY}")
    if connection.vendor == "sqlite":
        with connection.cursor() as cur:
            cur.execute("VACUUM")
    else:
        with connection.cursor() as cur:
            cur.execute(f"VACUUM ANALYZE {table}")
            cur.execute(f"VACUUM ANALYZE {DIRECTORY}")


def _dump(path: Path) -> int:
    """Write the resident table's rows (RESIDENT_COPY_COLUMNS) to ``path``; return the count."""
    from django.db import connection

    from wuyiqu.imports.kinds.people import RESIDENT_COPY_COLUMNS
    from wuyiqu.units.models import Resident

    cols = ", ".join(RESIDENT_COPY_COLUMNS)
    table = Resident._meta.db_table
    n = 0
    with connection.cursor() as cur, open(path, "wb") as f:
        if connection.vendor == "postgresql":
            with cur.connection.cursor() as pg, pg.copy(f"COPY {table} ({cols}) TO STDOUT") as copy:
                for chunk in copy:
                    f.write(chunk)
            cur.execute(f"SELECT count(*) FROM {table}")
            n = cur.fetchone()[0]
        else:
            cur.execute(f"SELECT {cols} FROM {table} ORDER BY id")
            while rows := cur.fetchmany(50_000):
                pickle.dump([tuple(r) for r in rows], f, protocol=pickle.HIGHEST_PROTOCOL)
                n += len(rows)
    return n


def _raw_load(path: Path) -> tuple[float, float]:
    """Load the dumped rows into the (empty) residents table in one transaction; return (wall, CPU)
    seconds spent in the database calls and the commit (reading the dump file is not counted)."""
    from django.db import connection, transaction

    from wuyiqu.imports.kinds.people import RESIDENT_COPY_COLUMNS
    from wuyiqu.units.models import Resident

    cols = ", ".join(RESIDENT_COPY_COLUMNS)
    table = Resident._meta.db_table
    wall = cpu = 0.0
    with open(path, "rb") as f:
        atomic = transaction.atomic()
        atomic.__enter__()
        with connection.cursor() as cur:
            if connection.vendor == "postgresql":
                t0, c0 = time.perf_counter(), _cpu_seconds()
                with cur.connection.cursor() as pg, pg.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    while chunk := f.read(1 << 20):
                        copy.write(chunk)
                wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
            else:
                sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join(['%s'] * len(RESIDENT_COPY_COLUMNS))})"
                while True:
                    try:
                        rows = pickle.load(f)
                    except EOFError:
                        break
                    t0, c0 = time.perf_counter(), _cpu_seconds()
                    cur.executemany(sql, rows)
                    wall, cpu = wall + time.perf_counter() - t0, cpu + _cpu_seconds() - c0
        # The same data as the import stores: each resident's entry in the city-wide directory too.
        t0, c0 = time.perf_counter(), _cpu_seconds()
        with connection.cursor() as cur:
            cur.execute(f"INSERT INTO {DIRECTORY} (id_hash, district_code) SELECT id_hash, district_code FROM {table}")
        atomic.__exit__(None, None, None)  # the commit
        wall, cpu = wall + time.perf_counter() - t0, cpu + _cpu_seconds() - c0
    return wall, cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), required=True)
    parser.add_argument("--dir", type=Path, default=OUT, help="where world.py wrote the files")
    parser.add_argument("--sqlite-path", type=Path, default=None, help="default: a temporary file")
    parser.add_argument("--reimport", action="store_true", help="also time importing the same file again")
    parser.add_argument("--keep", action="store_true",
                        help="PostgreSQL: keep the database and its units/households from an earlier run of the same world")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="wuyiqu-bench-"))
    sqlite_path = args.sqlite_path or tmp / "bench.sqlite3"
    _setup(args.db, sqlite_path, args.keep)

    from wuyiqu.imports.services import run_import
    from wuyiqu.units.models import Household

    phases: dict[str, tuple[float, float]] = {}  # phase -> (wall, CPU) when first seen

    def progress(phase: str, done: int, total: int) -> None:
        if phase not in phases:
            phases[phase] = (time.perf_counter(), _cpu_seconds())

    def importing(kind: str, name: str):
        phases.clear()
        t0 = time.perf_counter()
        phases["start"] = (t0, _cpu_seconds())
        job = run_import(kind=kind, path=args.dir / name, skip_invalid=False, progress=progress)
        took = time.perf_counter() - t0
        if job.status != "succeeded":
            sys.exit(f"{kind}: {job.message} {job.errors[:5]}")
        return job, took

    if not Household.objects.exists():
        for kind, name in (("units", "units.csv"), ("households", "households.csv")):
            job, took = importing(kind, name)
            print(f"{kind:<11} {job.rows_total:>9,} rows in {took:7.1f}s = {job.rows_total / took:>9,.0f} rows/s "
                  f"(created {job.created:,})")

    _clear_residents()
    rss_before = _rss_mb()
    cpu0 = _cpu_seconds()
    job, t_import = importing("residents", "residents.csv")
    cpu_import = _cpu_seconds() - cpu0
    rss_import = _rss_mb()
    n = job.created
    print(f"import      {n:>9,} rows in {t_import:7.1f}s = {n / t_import:>9,.0f} rows/s "
          f"(created {job.created:,}, unchanged {job.unchanged:,})")
    if "write" in phases:  # where the time went: check pass vs write pass (with the commit)
        (w0, c0), (w2, c2) = phases["start"], phases["write"]
        print(f"  check pass {w2 - w0:6.1f}s wall / {c2 - c0:5.1f}s CPU; "
              f"write pass {w0 + t_import - w2:6.1f}s wall / {c0 + cpu_import - c2:5.1f}s CPU")
    if args.reimport:
        job2, t_again = importing("residents", "residents.csv")
        print(f"re-import   {job2.rows_total:>9,} rows in {t_again:7.1f}s = {job2.rows_total / t_again:>9,.0f} rows/s "
              f"(created {job2.created:,}, unchanged {job2.unchanged:,})")

    dump = tmp / "residents.dump"
    dumped = _dump(dump)
    _clear_residents()
    t_raw, cpu_raw = _raw_load(dump)
    print(f"raw load    {dumped:>9,} rows in {t_raw:7.1f}s = {dumped / t_raw:>9,.0f} rows/s "
          f"({'COPY FROM STDIN' if args.db == 'postgres' else 'executemany'}, same table and indexes)")
    print(f"ratio import/raw: {t_import / t_raw:.2f}x wall (target <= 4x); "
          f"CPU {cpu_import:.1f}s / {cpu_raw:.1f}s = {cpu_import / cpu_raw:.2f}x"
          f"{' (client + server backend)' if args.db == 'postgres' else ''}")
    print(f"peak RSS: {rss_before:,.0f} MB before the import, {rss_import:,.0f} MB after it")
    dump.unlink()
    if not args.sqlite_path and args.db == "sqlite":
        for p in tmp.glob("bench.sqlite3*"):
            p.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
