"""Hostile import files (issue 9): every case of the corpus gives a clear Chinese report, naming the
line (and column) where there is one, and changes nothing in the database — through `run_import`,
through `wuyiqu import`, and through the upload page. The files are made here, by code.

The corpus table with the expected reports is in docs/reliability.md (Hostile files); a million
duplicate rows run in bench/hostile_imports.py, 100,000 here.
"""

from __future__ import annotations

import base64
import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import openpyxl
import pytest
from conftest import WENLONG_COMMUNITY
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils.html import escape
from hostile_files import (
    HOUSEHOLD_HEADER,
    PNG,
    ZH,
    bad_check_digit,
    bomb_by_ratio,
    bomb_by_size,
    csv_text,
    far_cell,
    fingerprint,
    lying_sizes,
    valid_id,
    xlsx_rows,
)
from import_flow import confirm
from test_standards_world import make_resident, make_unit

from wuyiqu.audit.models import AuditEvent
from wuyiqu.imports.models import ImportJob, ImportStatus
from wuyiqu.imports.services import run_import
from wuyiqu.units.models import Household, Resident, Unit, UnitKind

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Place:
    household: str  # a household code in 文龙社区
    building: str  # a building code in 文龙社区


@dataclass(frozen=True)
class Case:
    """One hostile file: how to make it, what the report must say, and (row cases) which bad rows."""

    id: str
    filename: str
    make: Callable[[Place], bytes]
    says: tuple[str, ...]
    kind: str = "residents"
    bad_rows: tuple[tuple[int, str], ...] = ()  # (line, column key) when the refusal is per row
    settings: dict = field(default_factory=dict)


def people(place: Place, n: int = 2, start: int = 1) -> list[list[str]]:
    return [[valid_id(start + i), f"测试{i}", place.household, "", ""] for i in range(n)]


def utf8(text: str) -> bytes:
    return text.encode("utf-8")


def mixed_encodings(p: Place) -> bytes:
    head = utf8(csv_text(ZH, []))
    return head + f"{valid_id(1)},张三,{p.household},,\r\n".encode() + f"{valid_id(2)},李四,{p.household},,\r\n".encode("gbk")


def mixed_after_english_header(p: Place) -> bytes:
    # "张三" in UTF-8 happens to be valid GB18030 too: only its line decoding as UTF-8 gives it away.
    head = b"id_number,name,household_code,phone,exempt\r\n"
    return head + f"{valid_id(1)},张三,{p.household},,\r\n".encode() + f"{valid_id(2)},李四,{p.household},,\r\n".encode("gbk")


def latin1(p: Place) -> bytes:
    return b"id_number,name,household_code,phone,exempt\r\n" + f"{valid_id(1)},Jos\xe9,{p.household},,\r\n".encode("latin-1")


def utf16_without_bom(p: Place) -> bytes:
    return csv_text(ZH, people(p)).encode("utf-16-le")


def nul_in_a_cell(p: Place) -> bytes:
    rows = people(p, 3)
    rows[1][1] = "王\x00五"
    return utf8(csv_text(ZH, rows))


def ten_megabyte_cell_csv(p: Place) -> bytes:
    rows = people(p)
    rows[1][1] = "长" * (10 * 1024 * 1024 // 3)
    return utf8(csv_text(ZH, rows))


def ten_megabyte_cell_xlsx(p: Place) -> bytes:
    rows = people(p)
    rows[0][1] = base64.b64encode(os.urandom(7 * 1024 * 1024)).decode()  # 9.3 MiB that does not compress
    return xlsx_rows([ZH, *rows])


def long_cell(p: Place) -> bytes:
    rows = people(p)
    rows[1][4] = "卧" * 10_001
    return utf8(csv_text(ZH, rows))


def truncated_xlsx(p: Place) -> bytes:
    data = xlsx_rows([ZH, *people(p, 50)])
    return data[: len(data) // 2]


def zip_not_xlsx(p: Place) -> bytes:
    buf = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "hello")
    return buf.getvalue()


def many_columns_header(p: Place) -> bytes:
    return utf8(csv_text(ZH + [f"列{i}" for i in range(5000)], people(p)))


def many_columns_row(p: Place) -> bytes:
    rows = people(p, 3)
    rows[2] = rows[2] + ["x"] * 5000
    return utf8(csv_text(ZH, rows))


def unterminated_quote(p: Place) -> bytes:
    return utf8(csv_text(ZH, people(p)) + f'{valid_id(9)},"赵六,{p.household},,\r\n{valid_id(10)},钱七,{p.household},,\r\n')


def quote_then_text(p: Place) -> bytes:
    return utf8(csv_text(ZH, people(p)) + f'{valid_id(9)},"赵"六,{p.household},,\r\n')


def households(p: Place, dates: list[str]) -> bytes:
    rows = [[f"{p.building}-HX{i:02d}", p.building, f"新楼{i}室", d] for i, d in enumerate(dates, start=1)]
    return utf8(csv_text(HOUSEHOLD_HEADER, rows))


CASES = [
    # --- encodings -------------------------------------------------------------------------------------
    Case("mixed-utf8-and-gbk", "r.csv", mixed_encodings, ("混用了不同的编码", "第1行是 UTF-8", "第3行不是（可能是 GBK）")),
    Case("mixed-after-english-header", "r.csv", mixed_after_english_header,
         ("混用了不同的编码", "第2行是 UTF-8", "第3行不是")),
    Case("latin-1", "r.csv", latin1, ("无法识别文件的编码", "第2行")),
    Case("utf-16-without-bom", "r.csv", utf16_without_bom, ("无法识别文件的编码（第1行", "没有 BOM 的 UTF-16")),
    Case("nul-byte", "r.csv", nul_in_a_cell, ("第3行第2列含有空字符（NUL）",)),
    Case("gbk-header-of-another-kind", "r.csv",
         lambda p: csv_text(HOUSEHOLD_HEADER, [["H1", p.building, "地址", ""]]).encode("gbk"),
         ("缺少必填列：身份证号、姓名", "无法识别的列：所属单位编码、地址、核实日期", "按 GBK 编码读取")),
    # --- cells, rows, columns ---------------------------------------------------------------------------
    Case("10-mb-cell-csv", "r.csv", ten_megabyte_cell_csv, ("第3行超过 5.7\xa0MB 还没有换行", "每格10000个字符")),
    Case("10-mb-cell-xlsx", "r.xlsx", ten_megabyte_cell_xlsx, ("第2行第2列的单元格超过上限10000个字符",)),
    Case("cell-over-the-limit", "r.csv", long_cell, ("第3行第5列的单元格超过上限10000个字符",)),
    Case("5000-header-columns", "r.csv", many_columns_header, ("第1行有5005列，超过上限200列",)),
    Case("5000-columns-in-a-row", "r.csv", many_columns_row, ("第4行有5005列，超过上限200列",)),
    Case("rows-over-the-limit", "r.csv", lambda p: utf8(csv_text(ZH, people(p, 6))), ("文件超过5行的上限",),
         settings={"IMPORT_MAX_ROWS": 5}),
    Case("file-over-the-limit", "r.csv", lambda p: utf8(csv_text(ZH, people(p, 6))), ("文件太大",),
         settings={"IMPORT_MAX_UPLOAD_BYTES": 200}),
    Case("unterminated-quote", "r.csv", unterminated_quote, ("第4行的引号没有结束",)),
    Case("text-after-closing-quote", "r.csv", quote_then_text, ("第4行：引号结束后应紧跟逗号",)),
    # --- not what they claim ----------------------------------------------------------------------------
    Case("empty-file", "r.csv", lambda p: b"", ("文件是空的",)),
    Case("blank-lines-only", "r.csv", lambda p: b"\r\n  \r\n,,,\r\n", ("文件是空的",)),
    Case("png-named-xlsx", "r.xlsx", lambda p: PNG, ("文件内容是PNG 图片，不是 CSV 或 Excel",)),
    Case("png-named-csv", "r.csv", lambda p: PNG, ("文件内容是PNG 图片",)),
    Case("exe-named-csv", "r.csv", lambda p: b"MZ\x90\x00\x03" + bytes(200), ("文件内容是Windows 程序",)),
    Case("csv-named-xlsx", "r.xlsx", lambda p: utf8(csv_text(ZH, people(p))), ("扩展名是 .xlsx，但内容不是 Excel 文件",)),
    Case("xlsx-named-csv", "r.csv", lambda p: xlsx_rows([ZH, *people(p)]), ("扩展名是“.csv”", "请使用 .xlsx 扩展名")),
    Case("old-xls", "r.xls", lambda p: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), ("旧版 .xls",)),
    Case("truncated-xlsx", "r.xlsx", truncated_xlsx, ("Excel 文件已损坏或不完整",)),
    Case("zip-that-is-not-xlsx", "r.xlsx", zip_not_xlsx, ("ZIP 压缩包，但不是 Excel",)),
    # Found by fuzz/fuzz_xlsx.py: Python's zipfile raised NotImplementedError, the import crashed.
    Case("zip-of-an-unknown-version", "r.xlsx", lambda p: xlsx_rows([ZH, *people(p)], needs_version=216),
         ("Excel 文件已损坏或不完整",)),
    # --- zip bombs --------------------------------------------------------------------------------------
    Case("zip-bomb-ratio", "r.xlsx", lambda p: bomb_by_ratio(64), ("压缩比为", "超过上限 100:1", "压缩炸弹")),
    Case("zip-bomb-600-parts", "r.xlsx", lambda p: bomb_by_size(600), ("Excel 文件解压后有", "超过上限 512.0", "压缩炸弹")),
    Case("zip-lying-about-sizes", "r.xlsx", lambda p: lying_sizes(32), ("无法读取 Excel 文件", "Bad CRC-32")),
    Case("cell-in-XFD1048576", "r.xlsx", lambda p: far_cell(ZH),
         # streamed (issue 14): no grid is built; the million empty rows above the cell are refused
         ("空行", "超过100000行（从第2行起）")),
    # --- headers ----------------------------------------------------------------------------------------
    Case("missing-header", "r.csv", lambda p: utf8(csv_text(ZH[1:], [r[1:] for r in people(p)])),
         ("缺少必填列：身份证号",)),
    Case("extra-header-and-missing", "r.csv",
         lambda p: utf8(csv_text([*ZH[1:], "备注"], [[*r[1:], "x"] for r in people(p)])),
         ("缺少必填列：身份证号", "无法识别的列：备注")),
    Case("duplicate-header", "r.csv", lambda p: utf8(csv_text([*ZH, "身份证"], [[*r, r[0]] for r in people(p)])),
         ("第1行：A列“身份证号”和F列“身份证”都对应“身份证号”（重复的列）",)),
    Case("mismatched-headers", "r.csv", lambda p: utf8(csv_text(["a", "b"], [["1", "2"]])),
         ("前20行中找不到列标题行（应含有身份证号、姓名、户编码等列）",)),
    # --- bad rows ----------------------------------------------------------------------------------------
    Case("broken-check-digit", "r.csv",
         lambda p: utf8(csv_text(ZH, [*people(p), [bad_check_digit(5), "错号", p.household, "", ""]])),
         ("共1行有错误，未导入任何数据",), bad_rows=((4, "id_number"),)),
    Case("impossible-dates", "h.csv", lambda p: households(p, ["2022-11-20", "2022-02-30", "2022-13-01"]),
         ("共2行有错误",), kind="households", bad_rows=((3, "verified_on"), (4, "verified_on"))),
]


@pytest.fixture
def small_place(db) -> Place:
    """A street, a community, a building, a household and three residents: enough for every case of
    the corpus, and a fraction of the full world's set-up time on PostgreSQL."""
    district = make_unit("T", "district")
    community = make_unit("T1C", "community", make_unit("T1", "street", district))
    building = make_unit("T1C-B1", "building", community, "1栋")
    household = Household.objects.create(code="T1C-B1-101", unit=building, address="1栋101室")
    for name in ("张三", "李四", "王五"):
        make_resident(household, name=name)
    return Place(household.code, building.code)


@pytest.fixture
def place(world) -> Place:
    household = Household.objects.filter(unit__path__contains=f"/{WENLONG_COMMUNITY}/").order_by("code").first()
    building = Unit.objects.filter(path__contains=f"/{WENLONG_COMMUNITY}/", kind=UnitKind.BUILDING,
                                   children__isnull=True).order_by("code").first()
    return Place(household.code, building.code)


def assert_refused(case: Case, job: ImportJob, before: dict[str, str]) -> None:
    assert job.status == ImportStatus.FAILED, job.message
    for words in case.says:
        assert words in job.message, job.message
    assert [(e["line"], e["field"]) for e in job.errors] == list(case.bad_rows)
    assert fingerprint() == before
    assert job.created == job.updated == job.unchanged == 0
    assert AuditEvent.objects.filter(action="imports.run", detail__status="failed").count() == 1


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_run_import_refuses_the_file_and_changes_nothing(small_place, tmp_path, case):
    path = tmp_path / case.filename
    path.write_bytes(case.make(small_place))
    before = fingerprint()
    with override_settings(**case.settings):
        started = time.monotonic()
        job = run_import(kind=case.kind, path=path)
        took = time.monotonic() - started
    assert_refused(case, job, before)
    assert ImportJob.objects.count() == 1
    assert took < 10, f"{case.id} took {took:.1f}s"


# The command only prints what run_import reports: one case of each group is enough here.
CLI_CASES = [c for c in CASES if c.id in {"mixed-utf8-and-gbk", "10-mb-cell-csv", "rows-over-the-limit",
                                          "unterminated-quote", "png-named-xlsx", "zip-bomb-ratio",
                                          "cell-in-XFD1048576", "missing-header", "broken-check-digit",
                                          "impossible-dates"}]


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.id)
def test_the_import_command_prints_the_report_and_exits_1(small_place, tmp_path, case):
    path = tmp_path / case.filename
    path.write_bytes(case.make(small_place))
    before = fingerprint()
    stderr = io.StringIO()
    with override_settings(**case.settings), pytest.raises(CommandError) as refused:
        call_command("import", case.kind, str(path), "--no-progress", stderr=stderr)
    assert refused.value.returncode == 1
    for words in case.says:
        assert words in str(refused.value)
    printed = stderr.getvalue()
    for line, _field in case.bad_rows:
        assert f"第{line}行 " in printed
    assert fingerprint() == before


WEB_CASES = [c for c in CASES if c.id in {"mixed-utf8-and-gbk", "nul-byte", "png-named-xlsx", "zip-bomb-ratio",
                                          "cell-in-XFD1048576", "broken-check-digit", "10-mb-cell-csv"}]


@pytest.mark.parametrize("case", WEB_CASES, ids=lambda c: c.id)
def test_the_upload_page_reports_the_refusal_and_changes_nothing(place, alice, client_for, tmp_path, settings,
                                                                 django_capture_on_commit_callbacks, case):
    settings.MEDIA_ROOT = tmp_path / "media"
    client = client_for(alice)
    before = fingerprint()
    upload = SimpleUploadedFile(case.filename, case.make(place), content_type="application/octet-stream")
    with django_capture_on_commit_callbacks(execute=True):  # the immediate task backend runs the job
        response = client.post(f"/units/{WENLONG_COMMUNITY}/import/", {"kind": case.kind, "file": upload})
        job = confirm(client, response)  # a file with bad rows is previewed first; confirmed, it imports nothing
    assert ImportJob.objects.count() == 1
    assert_refused(case, job, before)
    page = client.get(f"/imports/{job.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert escape(job.message) in html  # the report is on the page, as the job holds it
    for line, _field in case.bad_rows:
        assert f'<td data-label="行号">{line}</td>' in html


# --- what is accepted, read right ------------------------------------------------------------------------


def names_of(household: str) -> set[str]:
    return set(Resident.objects.filter(household__code=household).values_list("name", flat=True))


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be", "gbk", "gb18030"])
def test_boms_and_chinese_encodings_are_read_cleanly(place, tmp_path, encoding):
    rows = people(place, 2, start=30)
    rows[0][1], rows[1][1] = "张三丰", "欧阳娜娜"
    data = csv_text(ZH, rows).encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data  # the codec without BOM; Excel's "Unicode text" writes one
    path = tmp_path / "r.csv"
    path.write_bytes(data)
    job = run_import(kind="residents", path=path)
    assert (job.status, job.created) == (ImportStatus.SUCCEEDED, 2), job.message
    assert {"张三丰", "欧阳娜娜"} <= names_of(place.household)
    assert not any(n.startswith("\ufeff") for n in names_of(place.household))


@pytest.mark.parametrize("ending", ["\r\n", "\n", "\r"])
def test_any_line_ending_and_quoted_newlines_keep_the_spreadsheet_rows(place, tmp_path, ending):
    rows = people(place, 3, start=40)
    rows[0][1] = "多行\n名字"
    rows[2][0] = bad_check_digit(42)  # reported on spreadsheet row 4, although the text has an extra line
    path = tmp_path / "r.csv"
    path.write_bytes(csv_text(ZH, rows, lineterminator=ending).encode())
    job = run_import(kind="residents", path=path)
    assert job.status == ImportStatus.FAILED
    assert [(e["line"], e["field"]) for e in job.errors] == [(4, "id_number")]
    rows[2][0] = valid_id(42)
    path.write_bytes(csv_text(ZH, rows, lineterminator=ending).encode())
    job = run_import(kind="residents", path=path)
    assert (job.status, job.created) == (ImportStatus.SUCCEEDED, 3), job.message
    assert "多行\n名字" in names_of(place.household)


def test_a_file_of_headers_only_imports_nothing_and_says_so(place, tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(utf8(csv_text(ZH, [])))
    before = fingerprint()
    job = run_import(kind="residents", path=path)
    assert (job.status, job.rows_total, job.created) == (ImportStatus.SUCCEEDED, 0, 0)
    assert job.message.startswith("共0行")
    assert fingerprint() == before


def test_trailing_empty_columns_do_not_count_against_the_column_limit(place, tmp_path):
    rows = [r + [""] * 1000 for r in people(place, 2, start=50)]
    path = tmp_path / "r.csv"
    path.write_bytes(utf8(csv_text(ZH + [""] * 1000, rows)))
    job = run_import(kind="residents", path=path)
    assert (job.status, job.created) == (ImportStatus.SUCCEEDED, 2), job.message


def test_a_sheet_starting_lower_down_keeps_its_row_numbers(place, tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append([])
    ws.append([])
    ws.append(ZH)  # row 3
    ws.append(people(place, 1, start=60)[0])
    ws.append([bad_check_digit(61), "错号", place.household, "", ""])  # row 5
    path = tmp_path / "r.xlsx"
    wb.save(path)
    job = run_import(kind="residents", path=path)
    assert [(e["line"], e["field"]) for e in job.errors] == [(5, "id_number")]


# --- formulas: kept as text, never a formula in an export ---------------------------------------------------

FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@SUM(A1:A9)", "=HYPERLINK(\"http://x\",\"点我\")"]


def test_formula_cells_are_stored_as_text_and_exported_as_text(place, tmp_path, alice, client_for):
    path = tmp_path / "r.csv"
    rows = [[valid_id(70 + i), f, place.household, "", ""] for i, f in enumerate(FORMULAS)]
    path.write_bytes(utf8(csv_text(ZH, rows)))
    job = run_import(kind="residents", path=path)
    assert (job.status, job.created) == (ImportStatus.SUCCEEDED, len(FORMULAS)), job.message
    assert set(FORMULAS) <= names_of(place.household)
    response = client_for(alice).get(f"/units/{WENLONG_COMMUNITY}/testing/export.xlsx")
    assert response.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(response.content))
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
    assert all(c.data_type != "f" for c in cells)
    values = {c.value for c in cells}
    for formula in FORMULAS:
        assert "'" + formula in values and formula not in values


# --- a flood of duplicate rows -------------------------------------------------------------------------------


def test_100000_duplicate_rows_of_a_registered_person_change_nothing(place, tmp_path):
    """The first row matches the registered person (unchanged); the 99,999 copies are reported as
    duplicates, the job keeps the first 1000 of them. bench/hostile_imports.py runs a million."""
    person = Resident.objects.select_related("household").order_by("pk").first()
    row = f"{person.reveal_id_number()},{person.name},{person.household.code},{person.reveal_phone()},\r\n".encode()
    path = tmp_path / "r.csv"
    path.write_bytes(",".join(ZH).encode() + b"\r\n" + row * 100_000)
    before = fingerprint()
    reported = []
    started = time.monotonic()
    job = run_import(kind="residents", path=path, report=reported.append)
    took = time.monotonic() - started
    assert (job.status, job.rows_total, job.unchanged, job.duplicate, job.created) == (
        ImportStatus.SUCCEEDED, 100_000, 1, 99_999, 0), job.message
    assert len(reported) == 99_999 and len(job.errors) == 1000
    assert job.errors[0] == {"line": 3, "field": "", "header": "", "message": "与第2行重复，已跳过"}
    assert fingerprint() == before
    assert took < 60, took


def test_duplicates_with_one_bad_row_write_nothing(place, tmp_path):
    row = f"{valid_id(80)},重复,{place.household},,\r\n".encode()
    bad = f"{bad_check_digit(81)},错号,{place.household},,\r\n".encode()
    path = tmp_path / "r.csv"
    path.write_bytes(",".join(ZH).encode() + b"\r\n" + row * 5000 + bad + row * 5000)
    before = fingerprint()
    job = run_import(kind="residents", path=path)
    assert (job.status, job.invalid, job.duplicate) == (ImportStatus.FAILED, 1, 9999)
    assert any(e["line"] == 5002 and e["field"] == "id_number" for e in job.errors)
    assert fingerprint() == before


def test_the_import_command_prints_every_bad_row_but_counts_repeated_ones_after_100(small_place, tmp_path):
    """SPEC §7: each bad row is printed with its reason. Repeated rows are printed up to 100 and then
    counted, so that a file of a million copies does not print a million lines."""
    import importlib

    DUPLICATES_SHOWN = importlib.import_module("wuyiqu.imports.management.commands.import").DUPLICATES_SHOWN
    row = people(small_place, 1)[0]
    bad = [[bad_check_digit(n), f"错号{n}", small_place.household, "", ""] for n in range(1, 151)]
    path = tmp_path / "r.csv"
    path.write_bytes(utf8(csv_text(ZH, [row] * 301 + bad)))
    stderr = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import", "residents", str(path), "--no-progress", stderr=stderr)
    printed = stderr.getvalue().splitlines()
    assert sorted({int(line[1:line.index("行")]) for line in printed if "身份证号" in line}) == list(
        range(303, 453))  # every bad row: lines 303-452 (the header is line 1, the first copy line 2)
    assert len([line for line in printed if "重复" in line and line.startswith("第")]) == DUPLICATES_SHOWN
    assert printed[-1] == f"另有 {300 - DUPLICATES_SHOWN} 行重复未逐行列出（共 300 行重复）"
