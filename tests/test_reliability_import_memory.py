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
