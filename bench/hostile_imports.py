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


def _xlsx_member_stream(path: Path, parts: dict[str, bytes], sheet_chunks, shared_chunks=None) -> Path:
    """An .xlsx at ``path`` whose sheet (and shared strings) are written from iterators of XML bytes,
    deflated as they come: files of hundreds of MiB unpacked without holding them."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for name, data in parts.items():
            z.writestr(name, data)
        for name, chunks in (("xl/worksheets/sheet1.xml", sheet_chunks), ("xl/sharedStrings.xml", shared_chunks)):
            if chunks is None:
                continue
            with z.open(name, "w", force_zip64=True) as out:
                for chunk in chunks:
                    out.write(chunk)
    return path


def spreadsheet_files(folder: Path, person_household: str) -> list[tuple[str, Path]]:
    """Part 5's spreadsheets at the limits (issue 14: every import file within them under 512 MiB)."""
    import random
    import zipfile

    import xlwt
    from hostile_files import SHEET_HEAD, SHEET_TAIL, WORKBOOK_MEMBERS, ZH, valid_id
    from ledger_files import ods

    from wuyiqu.imports.parsers import Limits

    limits = Limits.from_settings()
    rnd = random.Random(14)
    parts = {name: text.encode() for name, text in WORKBOOK_MEMBERS.items()}
    ids = [valid_id(i % 1000, birth=f"19{50 + i // 1000 % 50:02d}0101") for i in range(1000)]
    files = []

    def head_row():
        return b'<row r="1">' + b"".join(b'<c r="%s1" t="inlineStr"><is><t>%s</t></is></c>' % (chr(65 + i).encode(), h.encode())
                                         for i, h in enumerate(ZH)) + b"</row>"

    # 1. A million rows as Excel writes them: every text a shared string (distinct names), the sheet
    #    referring to them.
    n = 1_000_000

    def shared_sheet():
        yield SHEET_HEAD + head_row()
        block = []
        for r in range(2, n + 2):
            block.append(b'<row r="%d"><c r="A%d" t="s"><v>%d</v></c><c r="B%d" t="s"><v>%d</v></c>'
                         b'<c r="C%d" t="s"><v>%d</v></c><c r="D%d"><v>%d</v></c></row>'
                         % (r, r, (r - 2) % 1000, r, 1000 + r - 2, r, 1000 + n, r, 13800000000 + r % 10**8))
            if len(block) == 10_000:
                yield b"".join(block)
                block = []
        yield b"".join(block) + SHEET_TAIL

    def shared_strings():
        yield b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        yield "".join(f"<si><t>{i}</t></si>" for i in ids).encode()
        for start in range(0, n, 10_000):
            yield "".join(f"<si><t>居民{rnd.randrange(10**8)}</t></si>" for _ in range(start, start + 10_000)).encode()
        yield f"<si><t>{person_household}</t></si></sst>".encode()

    files.append(("a million rows, .xlsx with shared strings",
                  _xlsx_member_stream(folder / "million.xlsx", parts, shared_sheet(), shared_strings())))
    if os.environ.get("BENCH_ONLY_SPREADSHEETS") == "million":  # the one a person would import
        return files

    # 2. A sheet at the unpacked limit: 1,048,575 rows with a long remark, inline strings (openpyxl's way).
    budget = limits.xlsx_unpacked_bytes - 64 * 1024
    alphabet = "社区居民楼栋单元户号门牌核酸检测阴性阳性隔离管控备注说明已未"

    def limit_sheet():
        yield SHEET_HEAD + head_row()
        written, r, block = 0, 2, []
        while r <= 1_048_576:
            remark = "".join(rnd.choices(alphabet, k=120)).encode()
            row = (b'<row r="%d"><c r="A%d" t="inlineStr"><is><t>%s</t></is></c><c r="B%d" t="inlineStr"><is><t>\xe5\xb1\x85%d</t></is></c>'
                   b'<c r="C%d" t="inlineStr"><is><t>%s</t></is></c><c r="F%d" t="inlineStr"><is><t>%s</t></is></c></row>'
                   % (r, r, ids[r % 1000].encode(), r, r, r, person_household.encode(), r, remark))
            if written + len(row) + len(SHEET_TAIL) > budget:
                break
            block.append(row)
            written += len(row)
            r += 1
            if len(block) == 10_000:
                yield b"".join(block)
                block = []
        yield b"".join(block) + SHEET_TAIL

    files.append(("a sheet at the 512 MiB unpacked limit, .xlsx",
                  _xlsx_member_stream(folder / "at-the-limit.xlsx", parts, limit_sheet())))

    # 3. Shared strings just under what the reader holds (256 MiB): long distinct texts, a tiny sheet.
    def big_strings():
        yield b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        total = 0
        while total < 250 * 2**20:
            chunk = "".join(f"<si><t>{''.join(rnd.choices(alphabet, k=300))}</t></si>" for _ in range(1000)).encode()
            total += len(chunk)
            yield chunk
        yield b"</sst>"

    small_sheet = [SHEET_HEAD + head_row() + b'<row r="2"><c r="A2" t="s"><v>0</v></c></row>' + SHEET_TAIL]
    files.append(("250 MiB of shared strings, .xlsx",
                  _xlsx_member_stream(folder / "strings.xlsx", parts, iter(small_sheet), big_strings())))

    # 4. Rows of only empty cells (styled, as a sheet formatted far down) to row 1,048,576.
    def empty_rows():
        yield SHEET_HEAD + head_row()
        for start in range(2, 1_048_577, 10_000):
            yield b"".join(b'<row r="%d">' % r + b"".join(b'<c r="%s%d" s="%d"/>' % (c, r, rnd.randrange(64))
                                                              for c in (b"A", b"B", b"C", b"D", b"E")) + b"</row>"
                           for r in range(start, min(start + 10_000, 1_048_577)))
        yield SHEET_TAIL

    files.append(("1,048,575 rows of empty styled cells, .xlsx",
                  _xlsx_member_stream(folder / "empty-cells.xlsx", parts, empty_rows())))

    # 5. The .xls (calamine holds a sheet whole): the longest sheet the format has, and one far cell.
    for label, name, far in (("65,535 rows (the .xls maximum)", "longest.xls", False),
                             ("one cell in IV65536, .xls", "far.xls", True)):
        wb = xlwt.Workbook(encoding="utf-8")
        ws = wb.add_sheet("花名册")
        for c, h in enumerate(ZH):
            ws.write(0, c, h)
        for r in range(1, 10 if far else 65_536):
            for c, v in enumerate((ids[r % 1000], f"居民{r}", person_household)):
                ws.write(r, c, v)
        if far:
            ws.write(65_535, 255, "x")
        wb.save(str(folder / name))
        files.append((label, folder / name))

    # 6. The .ods (calamine reads the whole document): 200,000 rows, and 600,000 (beyond the cap).
    for count in (200_000, 600_000):
        rows = [ZH] + [[ids[r % 1000], f"居民{r}", person_household, "", ""] for r in range(count)]
        path = folder / f"rows-{count}.ods"
        path.write_bytes(ods([("花名册", rows)]))
        del rows
        files.append((f"{count:,} rows, .ods", path))
    for _what, path in files:
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as z:
                assert sum(m.file_size for m in z.infolist()) <= limits.xlsx_unpacked_bytes, path
    return files


def memory(folder: Path, url: str, size: int, rows: int) -> None:
    """Part 5: each file imported in a process of its own; its wall time, peak RSS and answer."""
    import json
    import subprocess

    from wuyiqu.lib import sealed
    from wuyiqu.units.models import Resident

    if os.environ.get("BENCH_ONLY_SPREADSHEETS"):  # "1": every spreadsheet; "million": the million-row .xlsx
        files = []
    else:
        files = memory_files(folder, size, rows)
    if files:
        plain_valid = files[-1][1]
        sealed_valid = folder / "valid-sealed.csv"
        with open(plain_valid, "rb") as f:
            sealed.seal(sealed_valid, iter(lambda: f.read(MIB), b""))
        files.append((f"{rows:,} valid rows, sealed web upload", sealed_valid))
    household = Resident.objects.select_related("household").order_by("pk").first().household.code
    files += spreadsheet_files(folder, household)
    print(f"bounded memory: each file in its own process (peak RSS of that process; load {os.getloadavg()[0]:.1f})")
    for what, path in files:
        env = {**os.environ, "DATABASE_URL": url}
        done = subprocess.run([sys.executable, __file__, "--one", str(path)], env=env, capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            print(f"  {what}: the process failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        child = f", converter child {r['child_rss']:.0f} MiB" if r.get("child_rss") else ""
        print(f"  {what} ({path.stat().st_size / MIB:.0f} MiB): {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU "
              f"(+ {r['child_cpu']:.1f} s in children), peak RSS {r['rss']:.0f} MiB{child} — "
              f"{r['status']}: {r['message'][:160]} (load {os.getloadavg()[0]:.1f})", flush=True)
        path.unlink()


def one(path: Path) -> None:
    """``--one``: import ``path`` as residents in this process and print what it cost, as JSON."""
    import json

    nat_world.use_database(os.environ["DATABASE_URL"])
    from wuyiqu.imports import parsers
    from wuyiqu.imports.services import run_import

    start, cpu = time.monotonic(), time.process_time()
    job = run_import(kind="residents", path=path, report=lambda problem: None)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = parsers.last_conversion["peak_rss_bytes"]  # the converter's own peak (VmHWM), when it finished
    print(json.dumps({"status": job.status, "message": job.message, "rows": job.rows_total,
                      "wall": time.monotonic() - start, "cpu": time.process_time() - cpu,
                      "child_cpu": children.ru_utime + children.ru_stime,
                      "child_rss": child / MIB if child else None,
                      # VmHWM: this program's own peak; ru_maxrss also counts the bench's pages at the fork
                      "rss": parsers.xlsx_convert._peak_rss_kib() / 1024}))


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
