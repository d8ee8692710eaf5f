"""Hostile import files at full size, in one run, on SQLite or PostgreSQL (docs/reliability.md).

    .venv/bin/python bench/hostile_imports.py --db sqlite       # a temporary SQLite file
    .venv/bin/python bench/hostile_imports.py --db postgres     # database wuyiqu_bench_hostile (dropped first)

On the test world (the real divisions and 600 generated residents), through ``run_import``:

1. a million duplicate rows of one registered resident (CI runs 100,000): one row unchanged,
   999,999 reported duplicates, the job keeps 1000 of them; nothing in the database changes;
2. the same million with one row with a bad check digit in the middle: refused, that row on the
   job's report, nothing changed;
3. the zip bombs and the far cell at the default limits: how long the refusal takes;
4. what reading an XLSX in the child process costs against reading it in-process with calamine, as
   the imports did before (100,000 residents rows, one pass);
5. ``--memory``: files at the upload limit (200 MiB) built to exhaust memory — one line of commas,
   rows of only commas (narrow and wide), one unterminated line, one endless quoted cell — and a
   million valid rows read from a plain file and from a sealed web upload; each imported in a
   process of its own (``--one``), so that its peak RSS is its own.

Prints wall time, CPU time of this process and of the children, peak RSS, and whether the
database's fingerprint (every table but the job and audit rows) is unchanged; and what the reader's
checks cost against a bare ``csv.reader`` over the million rows.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # hostile_files: the corpus builders and the fingerprint
sys.path.insert(0, str(ROOT / "bench"))

import nat_world  # noqa: E402  (bench/nat_world.py: the database set-up)

PG_URL = "postgres://postgres@127.0.0.1:5432/wuyiqu_bench_hostile"


def _setup(db: str, sqlite_path: Path) -> None:
    os.environ["WUYIQU_ENV"] = "test"  # the fixed test keys
    url = os.environ.get("BENCH_DATABASE_URL", PG_URL) if db == "postgres" else f"sqlite:///{sqlite_path}"
    nat_world.use_database(url, fresh=True)
    from wuyiqu.units.actions import do_load_divisions, do_load_generated_world
    from wuyiqu.units.generator import generate_world
    from wuyiqu.units.models import Unit

    do_load_divisions()
    committees = list(Unit.objects.filter(code__in=["500110002015", "500110002014", "500110002208"])
                      .order_by("code").values_list("code", "name", "kind"))
    do_load_generated_world(world=generate_world(committees, residents=600, seed=7))


class Clock:
    def __enter__(self):
        self.wall = time.monotonic()
        self.cpu = time.process_time()
        self.children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return self

    def __exit__(self, *exc):
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.wall = time.monotonic() - self.wall
        self.cpu = time.process_time() - self.cpu
        self.child_cpu = (after.ru_utime + after.ru_stime) - (self.children.ru_utime + self.children.ru_stime)

    def __str__(self):
        # The children's peak RSS is not shown: it counts the parent's pages copied by fork before exec.
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return (f"{self.wall:7.2f} s wall, {self.cpu:6.2f} s CPU here, {self.child_cpu:5.2f} s CPU in children; "
                f"peak RSS {rss:.0f} MiB here")


def million_duplicates(folder: Path, rows: int) -> None:
    from hostile_files import ZH, bad_check_digit, fingerprint

    from wuyiqu.imports.services import run_import
    from wuyiqu.units.models import Resident

    person = Resident.objects.select_related("household").order_by("pk").first()
    row = f"{person.reveal_id_number()},{person.name},{person.household.code},{person.reveal_phone()},\r\n".encode()
    path = folder / "duplicates.csv"
    path.write_bytes(",".join(ZH).encode() + b"\r\n" + row * rows)
    size = path.stat().st_size / 2**20
    before = fingerprint()
    with Clock() as clock:
        job = run_import(kind="residents", path=path, report=lambda problem: None)
    print(f"{rows:,} duplicate rows ({size:.0f} MiB): {job.status}, rows={job.rows_total:,} unchanged={job.unchanged} "
          f"duplicate={job.duplicate:,} kept on the job={len(job.errors)}; database unchanged: {fingerprint() == before}")
    print(f"    {clock}")

    bad = f"{bad_check_digit(5)},错号,{person.household.code},,\r\n".encode()
    half = rows // 2
    path.write_bytes(",".join(ZH).encode() + b"\r\n" + row * half + bad + row * (rows - half - 1))
    with Clock() as clock:
        job = run_import(kind="residents", path=path, report=lambda problem: None)
    shown = [e for e in job.errors if e["field"] == "id_number"]
    print(f"the same with one bad check digit at line {half + 2:,}: {job.status}, invalid={job.invalid} "
          f"duplicate={job.duplicate:,}, the bad row on the job's report: {bool(shown)}; "
          f"database unchanged: {fingerprint() == before}")
    print(f"    {clock}")
    reader_cost(path)
    path.unlink()


def reader_cost(path: Path) -> None:
    """What the checks of the reader cost: every row of ``path`` through ``iter_raw_rows`` (encoding
    detection, NUL scan, strict CSV, limits) against a bare ``csv.reader`` loop over the same file."""
    import csv

    from wuyiqu.imports import parsers

    with Clock() as bare, open(path, encoding="utf-8-sig", newline="") as f:
        n = sum(1 for row in csv.reader(f) if [c.strip() for c in row])
    with Clock() as checked:
        m = sum(1 for _ in parsers.iter_raw_rows(path))
    assert n == m
    print(f"reading those {n:,} rows: bare csv.reader {bare.cpu:.2f} s CPU, iter_raw_rows {checked.cpu:.2f} s CPU "
          f"({checked.cpu / bare.cpu:.2f}x)")


def bombs(folder: Path) -> None:
    from hostile_files import ZH, bomb_by_ratio, bomb_by_size, far_cell, fingerprint

    from wuyiqu.imports.services import run_import

    before = fingerprint()
    for name, make in (("zip bomb, one sheet at ~400:1 (64 MiB unpacked)", lambda: bomb_by_ratio(64)),
                       ("zip bomb, 600 parts of ~1 MiB (590 MiB unpacked)", lambda: bomb_by_size(600)),
                       ("one cell in XFD1048576 (child aborts)", lambda: far_cell(ZH))):
        path = folder / "bomb.xlsx"
        path.write_bytes(make())
        with Clock() as clock:
            job = run_import(kind="residents", path=path)
        print(f"{name}, {path.stat().st_size / 1024:.0f} KiB: {job.status} — {job.message}")
        print(f"    {clock}")
    print(f"database unchanged: {fingerprint() == before}")


def xlsx_cost(folder: Path, rows: int) -> None:
    from hostile_files import ZH, valid_id
    from openpyxl import Workbook
    from python_calamine import CalamineWorkbook

    from wuyiqu.imports import parsers

    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(ZH)
    for i in range(rows):
        ws.append([valid_id(i % 1000, birth=f"19{50 + i // 1000 % 50:02d}0101"), f"居民{i}", "500110002015-H0001",
                   "13812345678", ""])
    path = folder / "residents.xlsx"
    wb.save(path)
    with Clock() as in_process:
        with open(path, "rb") as f:
            sheet = CalamineWorkbook.from_filelike(f).get_sheet_by_index(0)
        n = sum(1 for row in sheet.iter_rows() if [parsers._cell_text(v) for v in row])
    with Clock() as child:
        m = sum(1 for _ in parsers.iter_raw_rows(path))
    assert n == m == rows + 1
    print(f"XLSX of {rows:,} rows ({path.stat().st_size / 2**20:.1f} MiB), one pass:")
    print(f"    in-process calamine (before): {in_process}")
    print(f"    child process + CSV (now):    {child}")
    print(f"    ratio (wall): {child.wall / in_process.wall:.2f}x")


MIB = 2**20


def _write_repeated(path: Path, head: bytes, unit: bytes, size: int, tail: bytes = b"") -> Path:
    """``head`` then ``unit`` repeated up to ``size`` bytes, then ``tail``, written a MiB at a time."""
    block = unit * max(1, MIB // len(unit))
    with open(path, "wb") as out:
        out.write(head)
        written = len(head)
        while written + len(block) <= size - len(tail):
            out.write(block)
            written += len(block)
        out.write(unit * ((size - len(tail) - written) // len(unit)) + tail)
    return path


def memory_files(folder: Path, size: int, rows: int) -> list[tuple[str, Path]]:
    """The files of part 5: (what it is, path)."""
    from hostile_files import ZH, valid_id

    from wuyiqu.units.models import Resident

    head = ",".join(ZH).encode() + b"\r\n"
    person = Resident.objects.select_related("household").order_by("pk").first()
    files = [
        ("one line of commas", _write_repeated(folder / "commas-line.csv", head, b",", size)),
        ("rows of only commas (5 cells)", _write_repeated(folder / "commas-rows.csv", head, b",,,,\r\n", size)),
        ("rows of only commas (200 cells)", _write_repeated(folder / "commas-wide.csv", head, b"," * 199 + b"\r\n", size)),
        ("one unterminated line of letters", _write_repeated(folder / "letters.csv", head, b"a", size)),
        ("one endless quoted cell", _write_repeated(folder / "quoted.csv", head + b'"', b"x\r\n", size)),
    ]
    lines = [f"{valid_id(i % 1000, birth=f'19{50 + i // 1000 % 50:02d}0101')},居民,{person.household.code},,\r\n"
             for i in range(1000)]
    valid = folder / "valid.csv"
    with open(valid, "wb") as out:
        out.write(head)
        block = "".join(lines).encode()
        for _ in range(rows // 1000):
            out.write(block)
    files.append((f"{rows:,} valid rows, plain file (the console's)", valid))
    return files


def memory(folder: Path, url: str, size: int, rows: int) -> None:
    """Part 5: each file imported in a process of its own; its wall time, peak RSS and answer."""
    import json
    import subprocess

    from wuyiqu.lib import sealed

    files = memory_files(folder, size, rows)
    plain_valid = files[-1][1]
    sealed_valid = folder / "valid-sealed.csv"
    with open(plain_valid, "rb") as f:
        sealed.seal(sealed_valid, iter(lambda: f.read(MIB), b""))
    files.append((f"{rows:,} valid rows, sealed web upload", sealed_valid))
    print(f"bounded memory: each file in its own process (peak RSS of that process; load {os.getloadavg()[0]:.1f})")
    for what, path in files:
        env = {**os.environ, "DATABASE_URL": url}
        done = subprocess.run([sys.executable, __file__, "--one", str(path)], env=env, capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            print(f"  {what}: the process failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  {what} ({path.stat().st_size / MIB:.0f} MiB): {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU, "
              f"peak RSS {r['rss']:.0f} MiB — "
              f"{r['status']}: {r['message'][:160]}")
        path.unlink()


def one(path: Path) -> None:
    """``--one``: import ``path`` as residents in this process and print what it cost, as JSON."""
    import json

    nat_world.use_database(os.environ["DATABASE_URL"])
    from wuyiqu.imports.services import run_import

    start, cpu = time.monotonic(), time.process_time()
    job = run_import(kind="residents", path=path, report=lambda problem: None)
    print(json.dumps({"status": job.status, "message": job.message, "rows": job.rows_total,
                      "wall": time.monotonic() - start, "cpu": time.process_time() - cpu,
                      "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rows", type=int, default=1_000_000, help="duplicate rows (default a million)")
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    parser.add_argument("--memory", action="store_true", help="only part 5 (bounded memory)")
    parser.add_argument("--size-mib", type=int, default=200, help="size of the files of part 5 (default 200)")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one)
        return
    with tempfile.TemporaryDirectory(prefix="wuyiqu-bench-hostile-") as tmp:
        folder = Path(tmp)
        _setup(args.db, folder / "bench.sqlite3")
        print(f"[{args.db}] load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        if args.memory:
            memory(folder, os.environ["DATABASE_URL"], args.size_mib * MIB, args.rows)
        else:
            million_duplicates(folder, args.rows)
            bombs(folder)
            xlsx_cost(folder, args.xlsx_rows)
        print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
