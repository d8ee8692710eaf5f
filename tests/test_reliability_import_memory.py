"""Bounded memory for import files (issue 14, 8): a 200 MiB CSV whose rows were only commas took
3.4 GiB and a minute and then reported "共0行". A line longer than a row can be is refused before
the csv module holds it, and rows of only empty cells are counted and refused beyond
``IMPORT_MAX_EMPTY_ROWS`` with a message that says so; empty rows below a sheet's last row with data
are not rows at all. The full-size figures are bench/hostile_imports.py --memory (docs/reliability.md)."""

from __future__ import annotations

import time
import tracemalloc

import openpyxl
import pytest
from hostile_files import ZH, csv_text, fingerprint
from test_reliability_hostile_imports import people, place, utf8

from wuyiqu.imports import parsers
from wuyiqu.imports.models import ImportStatus
from wuyiqu.imports.services import run_import

pytestmark = pytest.mark.django_db
__all__ = ["place"]  # the fixture, used by name

HEAD = ",".join(ZH).encode() + b"\r\n"


def test_the_longest_line_follows_the_column_and_cell_limits(settings):
    assert parsers.Limits.from_settings().line_bytes == 200 * 10_003 * 3
    settings.IMPORT_MAX_COLUMNS, settings.IMPORT_MAX_CELL_CHARS = 10, 100
    assert parsers.Limits.from_settings().line_bytes == 65_536  # never below 64 KiB


def test_one_line_of_commas_is_refused_after_reading_its_limit_in_bounded_memory(place, tmp_path):
    path = tmp_path / "commas.csv"
    with open(path, "wb") as out:
        out.write(HEAD)
        for _ in range(40):
            out.write(b"," * (1 << 20))  # 40 MiB without a line end: 40 million empty cells
    before = fingerprint()
    tracemalloc.start()
    try:
        with pytest.raises(parsers.FileError) as refused:
            list(parsers.iter_raw_rows(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(refused.value) == "第2行超过 5.7\xa0MB 还没有换行（一行最多200列、每格10000个字符），不是正常的表格文件，未导入"
    assert peak < 16 * 2**20, peak  # the old reader held the line and a list of its cells: gigabytes
    job = run_import(kind="residents", path=path)
    assert job.status == ImportStatus.FAILED and job.message == str(refused.value)
    assert fingerprint() == before


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_a_long_line_among_short_ones_is_named(place, tmp_path, settings, ending):
    settings.IMPORT_MAX_COLUMNS, settings.IMPORT_MAX_CELL_CHARS = 5, 20  # lines of at most 64 KiB
    rows = ending.join([b"a,b"] * 7 + [b"x" * 70_000] + [b"c,d"] * 3)
    path = tmp_path / "r.csv"
    path.write_bytes(HEAD.rstrip(b"\r\n") + ending + rows + ending)
    with pytest.raises(parsers.FileError, match="^第9行超过 64.0\xa0KB 还没有换行"):
        parsers.check_line_lengths(path, parsers.Limits.from_settings())
    path.write_bytes(HEAD.rstrip(b"\r\n") + ending + ending.join([b"a,b"] * 50_000) + ending)  # many chunks
    parsers.check_line_lengths(path, parsers.Limits.from_settings())


def test_rows_of_only_commas_are_counted_and_refused_early(place, tmp_path, settings):
    settings.IMPORT_MAX_EMPTY_ROWS = 1000
    path = tmp_path / "empty-rows.csv"
    path.write_bytes(HEAD + b",,,,\r\n" * 200_000)
    before = fingerprint()
    started = time.monotonic()
    job = run_import(kind="residents", path=path)
    assert job.status == ImportStatus.FAILED
    assert job.message == ("文件中的空行（只有逗号或空格的行）超过1000行（从第2行起），未导入：这不是正常的表格；"
                           "请删除空行，或只选中有数据的区域另存后重新导入")
    assert "共0行" not in job.message and fingerprint() == before
    assert time.monotonic() - started < 30  # it stops at row 1002, not at row 200,001


def test_empty_rows_below_the_limit_are_skipped_as_before(place, tmp_path, settings):
    settings.IMPORT_MAX_EMPTY_ROWS = 10
    rows = people(place, 2, start=70)
    text = csv_text(ZH, rows[:1]) + ",,,,\r\n" * 10 + csv_text(ZH, rows[1:]).split("\r\n", 1)[1]
    path = tmp_path / "r.csv"
    path.write_bytes(utf8(text))
    job = run_import(kind="residents", path=path)
    assert (job.status, job.created) == (ImportStatus.SUCCEEDED, 2), job.message


def test_empty_rows_below_a_sheets_last_row_are_not_rows(place, tmp_path, settings):
    settings.IMPORT_MAX_EMPTY_ROWS = 100
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(ZH)
    for row in people(place, 2, start=80):
        ws.append(row)
    for r in range(4, 504):  # 500 rows of blank cells below the data, as a sheet formatted far down
        ws.cell(row=r, column=2, value=" ")
    path = tmp_path / "r.xlsx"
    wb.save(path)
    job = run_import(kind="residents", path=path)
    assert (job.status, job.created) == (ImportStatus.SUCCEEDED, 2), job.message
    ws.cell(row=504, column=1, value="数据在空行下面")  # now the 500 blank rows are inside the table
    wb.save(path)
    job = run_import(kind="residents", path=path)
    assert job.status == ImportStatus.FAILED and "空行" in job.message and "从第4行起" in job.message


# --- spreadsheets: an .xlsx is streamed, an .xls or .ods is held whole under the child's cap -------------


def _shared_string_workbook(rows: int) -> bytes:
    """An .xlsx as Excel and WPS write a ledger: every text in the shared strings, the sheet referring
    to them; ``rows`` people with distinct numbers and names (so nothing compresses beyond the ratio)."""
    import random
    import zlib

    from hostile_files import SHEET_HEAD, SHEET_TAIL, _deflate, xlsx_from_sheet

    rnd = random.Random(14)
    strings = [*ZH[:3]]
    sheet = [SHEET_HEAD, b'<row r="1">', *(b'<c r="%s1" t="s"><v>%d</v></c>' % (c, i) for i, c in enumerate((b"A", b"B", b"C"))),
             b"</row>"]
    for r in range(2, rows + 2):
        base = len(strings)
        strings += [f"5001{rnd.randrange(10**13, 10**14)}", f"居民{rnd.randrange(10**6)}", f"H{rnd.randrange(10**8)}"]
        sheet.append(b'<row r="%d"><c r="A%d" t="s"><v>%d</v></c><c r="B%d" t="s"><v>%d</v></c>'
                     b'<c r="C%d" t="s"><v>%d</v></c><c r="D%d"><v>%d</v></c></row>'
                     % (r, r, base, r, base + 1, r, base + 2, r, 13800000000 + r))
    sheet.append(SHEET_TAIL)
    xml = b"".join(sheet)
    sst = ('<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
           + "".join(f"<si><t>{s}</t></si>" for s in strings) + "</sst>").encode()
    return xlsx_from_sheet(xml, extra=[("xl/sharedStrings.xml", _deflate(sst), zlib.crc32(sst), len(sst), 8)])


def _read_all(path) -> tuple[int, int]:
    """(rows read, the converter child's peak RSS in bytes) of reading ``path`` through the reader."""
    with parsers.open_tables(path) as tables:
        n = sum(1 for _ in parsers.table_rows(tables[0]))
    return n, parsers.last_conversion["peak_rss_bytes"]


def test_an_xlsx_is_read_in_memory_that_does_not_grow_with_the_sheet(tmp_path):
    small, big = tmp_path / "small.xlsx", tmp_path / "big.xlsx"
    small.write_bytes(_shared_string_workbook(5_000))
    big.write_bytes(_shared_string_workbook(100_000))
    with parsers.sealed.open_plain(big) as f, parsers.zipfile.ZipFile(f) as zf:
        unpacked = sum(m.file_size for m in zf.infolist())
    assert unpacked > 24 * 2**20
    assert _read_all(small)[0] == 5_001
    small_peak = parsers.last_conversion["peak_rss_bytes"]
    rows, big_peak = _read_all(big)
    assert rows == 100_001
    # calamine held the sheet as a grid: ~1.6 bytes of memory per byte of XML (471 MiB for a
    # million rows). Streamed, 20 times the rows cost only their shared strings (~5 MiB here).
    # (The full-size figures, at the limits: bench/hostile_imports.py --memory, docs/reliability.md.)
    assert big_peak - small_peak < 12 * 2**20, (small_peak, big_peak)
    assert big_peak < 64 * 2**20, big_peak


def test_shared_strings_beyond_what_the_reader_holds_are_refused(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "strings.xlsx"
    path.write_bytes(_shared_string_workbook(3_000))
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run([sys.executable, "-m", "wuyiqu.imports.xlsx_convert", str(path), str(out), "0", "--plain",
                           "--strings-bytes=65536"], capture_output=True, check=False)
    assert done.returncode == parsers.xlsx_convert.EXIT_TOO_LARGE
    assert done.stderr.decode().strip() == "共享字符串表（工作表中的文字）超过 0.0625 MB"
    assert not (out / "0.csv").exists()


def test_an_xls_whose_sheet_would_not_fit_under_the_cap_is_refused_quickly(place, tmp_path):
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("花名册")
    for c, header in enumerate(ZH):
        ws.write(0, c, header)
    ws.write(65535, 255, "x")  # IV65536: calamine's grid for this sheet is 16.7 million cells (1 GiB uncapped)
    path = tmp_path / "far.xls"
    wb.save(str(path))
    before = fingerprint()
    started = time.monotonic()
    job = run_import(kind="residents", path=path)
    assert job.status == ImportStatus.FAILED
    assert job.message == ("读取 .xls 文件所需的内存超过上限 480.0\xa0MB（这种格式要把整张工作表读入内存：工作表太大，"
                           "或范围过大，例如远处有一个单元格），未导入；请另存为 .xlsx（逐行读取）或 CSV 后导入")
    assert time.monotonic() - started < 30  # uncapped it took 45 s and 1 GiB
    assert fingerprint() == before
