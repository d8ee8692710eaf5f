"""Importing ledgers as offices keep them (issue 17): the corpus of tests/ledger_files.py imported to
the right records or refused with the right message and nothing changed; other kinds' office files;
the preview, the remembered mapping, the error workbook and the command's mapping."""

from __future__ import annotations

import datetime as dt
import io
import json

import openpyxl
import pytest
from django.core.management import CommandError, call_command
from hostile_files import fingerprint
from ledger_files import LEDGERS, OFFICE, Ledger, Town, delimited, office_rows, people, xls, xlsx
from test_standards_world import make_resident, make_unit

from wuyiqu.audit.models import AuditEvent
from wuyiqu.health.models import NatResult
from wuyiqu.imports import errorbook
from wuyiqu.imports.models import ColumnMapping, ImportJob, ImportStatus
from wuyiqu.imports.registry import get_kind
from wuyiqu.imports.services import run_import
from wuyiqu.lib import crypto
from wuyiqu.units.models import Household, Resident, SpecialPopulationEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def town(db) -> Town:
    district = make_unit("L", "district")
    community = make_unit("L1C", "community", make_unit("L1", "street", district))
    b1 = make_unit("L1C-B1", "building", community, "1号楼")
    b2 = make_unit("L1C-B2", "building", community, "2号楼")
    h1 = Household.objects.create(code="L1C-B1-101", unit=b1, address="1号楼101")
    h2 = Household.objects.create(code="L1C-B2-201", unit=b2, address="2号楼201")
    return Town(h1.code, h2.code)


def resident(number: str) -> Resident | None:
    return Resident.objects.select_related("household").filter(id_hash=crypto.cipher().lookup_hash(number)).first()


@pytest.mark.parametrize("ledger", LEDGERS, ids=lambda led: led.id)
def test_each_ledger_imports_to_the_right_records_or_is_refused_with_the_right_message(town, tmp_path, ledger: Ledger):
    path = tmp_path / ledger.filename
    path.write_bytes(ledger.make(town))
    before = fingerprint()
    job = run_import(kind=ledger.kind, path=path, mapping=ledger.mapping or None, sheets=list(ledger.sheets) or None)
    if ledger.expect is None:
        assert job.status == ImportStatus.FAILED, job.message
        for words in ledger.refused:
            assert words in job.message, job.message
        assert [(e["line"], e["field"]) for e in job.errors] == list(ledger.bad_rows)
        for words in ledger.bad_says:
            assert words in job.errors[0]["message"], job.errors[0]
        assert fingerprint() == before
        return
    expected = ledger.expect(town)
    assert (job.status, job.created, job.invalid) == (ImportStatus.SUCCEEDED, len(expected), 0), job.message
    assert Resident.objects.count() == len(expected)
    for person in expected:
        r = resident(person.id_number)
        assert r is not None, person
        assert (r.name, r.household.code, r.reveal_phone(), r.bedridden) == (
            person.name, person.household, person.phone, person.bedridden)


def test_a_refused_row_in_a_second_sheet_is_named_by_its_sheet_and_row(town, tmp_path):
    ledger = next(led for led in LEDGERS if led.id == "xlsx-bad-row-named-by-sheet")
    path = tmp_path / ledger.filename
    path.write_bytes(ledger.make(town))
    job = run_import(kind="residents", path=path)
    assert [(e["sheet"], e["line"], e["header"]) for e in job.errors] == [("2号楼", 4, "公民身份号码")]
    assert job.layout["sheets"][1]["header_line"] == 2


def test_the_corpus_covers_at_least_twenty_shapes():
    assert len({led.id for led in LEDGERS}) >= 20
    assert {led.filename.rsplit(".", 1)[1] for led in LEDGERS} >= {"xlsx", "xls", "ods", "csv", "txt"}


# --- other kinds' office files ----------------------------------------------------------------------------


def test_nat_results_with_office_words_dates_and_weak_positives(town, tmp_path):
    ps = [make_resident(Household.objects.get(code=town.h1), name=f"受检{i}") for i in range(4)]
    numbers = [p.reveal_id_number() for p in ps]
    rows = [["序号", "姓名", "证件号码", "采样时间", "检测结果"],
            [1, "受检0", numbers[0], "2022年11月28日 8:30", "阴性"],
            [2, "受检1", numbers[1], 44893.375, "弱阳性"],  # an Excel serial: 2022-11-28 09:00
            [3, "受检2", numbers[2], "2022.11.28 10:05", "阳性"],
            [4, "受检3", numbers[3], "2022/11/28 10:06:30", "阴性"]]
    path = tmp_path / "核酸.xlsx"
    path.write_bytes(xlsx([("核酸检测名单", [["11月28日核酸检测名单"], *rows, ["合计：4人"]])]))
    job = run_import(kind="nat-results", path=path)
    assert (job.status, job.created) == (ImportStatus.SUCCEEDED, 4), job.message
    stored = {r.resident_id: (r.sampled_at.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%H:%M:%S"), r.result)
              for r in NatResult.objects.all()}
    assert stored == {ps[0].pk: ("08:30:00", "negative"), ps[1].pk: ("09:00:00", "positive"),
                      ps[2].pk: ("10:05:00", "positive"), ps[3].pk: ("10:06:30", "negative")}


def test_special_population_ledger_with_every_date_form(town, tmp_path):
    ps = [make_resident(Household.objects.get(code=town.h1), name=f"台账{i}") for i in range(5)]
    dates = ["2022年11月28日", "2022.11.28", "2022/11/28", 44893, "２０２２－１１－２８"]
    header = ["序号", "姓名", "身份证号码", "人员类别", "帮扶需求", "帮扶责任人", "复核日期"]
    rows = [[i, p.name, p.reveal_id_number(), "独居老人", "送药", "网格员甲", d]
            for i, (p, d) in enumerate(zip(ps, dates, strict=True), start=1)]
    path = tmp_path / "特殊人群台账.xls"
    path.write_bytes(xls([("台账", [["特殊人群台账"], header, *rows, ["填表人：某某"]])]))
    job = run_import(kind="special-population", path=path)
    assert (job.status, job.created) == (ImportStatus.SUCCEEDED, 5), job.message
    assert set(SpecialPopulationEntry.objects.values_list("reviewed_on", "helper", "needs")) == {
        (dt.date(2022, 11, 28), "网格员甲", "送药")}


def test_households_with_room_numbers_and_addresses(town, tmp_path):
    rows = [["序号", "房号", "所属楼栋编码", "门牌号"], [1, "L1C-B1-102", "L1C-B1", "1号楼102"],
            [2, "L1C-B1-103", "L1C-B1", "1号楼103"]]
    path = tmp_path / "住户.csv"
    path.write_bytes(delimited([["1号楼住户登记表"], *rows]).encode("gbk"))
    job = run_import(kind="households", path=path)
    assert (job.status, job.created) == (ImportStatus.SUCCEEDED, 2), job.message
    assert Household.objects.get(code="L1C-B1-103").address == "1号楼103"


# --- preview, remembered mappings, the error workbook ------------------------------------------------------


def test_a_preview_counts_everything_and_writes_nothing_then_the_job_runs_for_real(town, tmp_path):
    ps = people(town)
    make_resident(Household.objects.get(code=town.h2), name="旧人")  # not in the file
    path = tmp_path / "花名册.xlsx"
    rows = office_rows(ps)
    rows.append([4, "错号", ps[0].id_number[:17] + "Y", "", town.h1])
    path.write_bytes(xlsx([("Sheet1", [OFFICE, *rows])]))
    before = fingerprint()
    job = run_import(kind="residents", path=path, dry_run=True)
    assert (job.status, job.created, job.updated, job.unchanged, job.invalid) == (ImportStatus.PREVIEWED, 3, 0, 0, 1)
    assert [(e["line"], e["field"]) for e in job.errors] == [(5, "id_number")]
    assert job.layout["mapping"] == {"序号": "", "姓名": "name", "公民身份号码": "id_number", "手机号": "phone",
                                     "房号": "household_code"}
    assert job.layout["sheets"][0]["samples"][0][2] == ps[0].id_number[:3] + "*" * 14 + ps[0].id_number[-1:]
    assert fingerprint() == before
    assert AuditEvent.objects.filter(action="imports.preview").count() == 1
    # Confirmed with 跳过错误行: the same job, for real.
    job.dry_run, job.skip_invalid, job.status = False, True, ImportStatus.PENDING
    job.save()
    job = run_import(kind="residents", path=path, job=job)
    assert (job.status, job.created, job.invalid) == (ImportStatus.SUCCEEDED, 3, 1), job.message
    assert Resident.objects.count() == 4


def test_a_remembered_mapping_is_used_for_the_same_shape_in_the_same_unit(town, tmp_path):
    ledger = next(led for led in LEDGERS if led.id == "csv-own-words-with-a-mapping")
    path = tmp_path / "花名册.csv"
    path.write_bytes(ledger.make(town))
    job = run_import(kind="residents", path=path, dry_run=True, scope=Household.objects.get(code=town.h1).unit.parent)
    assert job.status == ImportStatus.FAILED and "找不到列标题行" in job.message
    assert job.layout["sheets"][0]["headers"] == ["编号", "人员名", "证件", "住户"]  # for the page that fixes it
    community = Household.objects.get(code=town.h1).unit.parent
    ColumnMapping.objects.create(unit=community, kind="residents", shape=job.layout["shape"], columns=ledger.mapping)
    again = run_import(kind="residents", path=path, scope=community)
    assert (again.status, again.created) == (ImportStatus.SUCCEEDED, 3), again.message
    assert again.layout["remembered"] is True
    elsewhere = run_import(kind="residents", path=path, scope=Household.objects.get(code=town.h2).unit)
    assert elsewhere.status == ImportStatus.FAILED  # another unit has not confirmed this mapping


def test_the_error_workbook_has_the_users_columns_a_reason_and_the_bad_cells_filled(town, tmp_path):
    ps = people(town, 4)
    rows = office_rows(ps)
    rows[1][2] = "5.00222E+17"
    rows[3][4] = "没有这户"
    path = tmp_path / "花名册.xlsx"
    path.write_bytes(xlsx([("花名册", [["标题"], OFFICE, *rows])]))
    job = run_import(kind="residents", path=path)
    assert job.status == ImportStatus.FAILED and job.invalid == 2
    assert b"5.00222E+17" not in bytes(job.error_workbook)  # kept encrypted
    ws = openpyxl.load_workbook(io.BytesIO(errorbook.decrypt(job.error_workbook)))["花名册"]
    values = [[c.value for c in row] for row in ws.iter_rows()]
    assert values[0] == [*OFFICE, "错误原因"]
    assert [v[1] for v in values[1:]] == [ps[1].name, ps[3].name]
    assert "科学计数法" in values[1][5] and "户编码“没有这户”不存在" in values[2][5]
    filled = [[c.column_letter for c in row if c.fill.fgColor.rgb.endswith(errorbook._RED)] for row in ws.iter_rows()]
    assert filled == [[], ["C", "F"], ["E", "F"]]
    # Fixed and sent back, the workbook imports: its 错误原因 column is not imported.
    wb = openpyxl.load_workbook(io.BytesIO(errorbook.decrypt(job.error_workbook)))
    wb["花名册"]["C2"] = ps[1].id_number
    wb["花名册"]["E3"] = town.h1
    wb.save(tmp_path / "改正.xlsx")
    fixed = run_import(kind="residents", path=tmp_path / "改正.xlsx")
    assert (fixed.status, fixed.created) == (ImportStatus.SUCCEEDED, 2), fixed.message


def hidden_sheet_workbook(town: Town, fmt: str) -> bytes:
    """This month's sheet, and last year's list hidden beside it (as offices keep old data)."""
    current, old = office_rows(people(town)), office_rows(people(town, 2, start=60))
    if fmt == "xls":
        import xlwt

        wb = xlwt.Workbook(encoding="utf-8")
        for name, rows, hidden in (("花名册", current, False), ("去年名单", old, True)):
            ws = wb.add_sheet(name)
            for r, row in enumerate([OFFICE, *rows]):
                for c, value in enumerate(row):
                    ws.write(r, c, value)
            if hidden:
                ws.visibility = 1
        out = io.BytesIO()
        wb.save(out)
        return out.getvalue()
    wb = openpyxl.Workbook()
    wb.active.title = "花名册"
    for row in [OFFICE, *current]:
        wb.active.append(row)
    ws = wb.create_sheet("去年名单")
    for row in [OFFICE, *old]:
        ws.append(row)
    ws.sheet_state = "hidden"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


HIDDEN = "已隐藏（隐藏的工作表通常是旧数据；要导入它，请取消隐藏后重新上传）"


@pytest.mark.parametrize("fmt", ["xlsx", "xls"])
def test_a_hidden_sheet_is_not_imported_and_the_preview_and_the_command_say_so(town, tmp_path, capsys, fmt):
    path = tmp_path / f"花名册.{fmt}"
    path.write_bytes(hidden_sheet_workbook(town, fmt))
    job = run_import(kind="residents", path=path, dry_run=True)
    assert (job.status, job.created) == (ImportStatus.PREVIEWED, 3), job.message
    assert job.layout["skipped"] == [["去年名单", HIDDEN]]
    call_command("import", "residents", str(path), "--no-progress", "--preview")
    assert f"未导入工作表“去年名单”：{HIDDEN}" in capsys.readouterr().out
    with pytest.raises(CommandError, match="^工作表“去年名单”已隐藏，未导入；要导入它，请在 Excel 或 WPS 中取消隐藏后重新上传$"):
        call_command("import", "residents", str(path), "--no-progress", "--sheet", "去年名单")
    job = run_import(kind="residents", path=path)
    assert (job.status, job.created) == (ImportStatus.SUCCEEDED, 3), job.message
    assert not any(resident(p.id_number) for p in people(town, 2, start=60))


def test_a_workbook_of_only_hidden_sheets_says_which_are_hidden(town, tmp_path):
    import zlib

    from hostile_files import SHEET_HEAD, SHEET_TAIL, WORKBOOK_MEMBERS, _deflate, inline_row, raw_zip

    members = dict(WORKBOOK_MEMBERS)  # openpyxl refuses to save such a workbook; Excel keeps one open
    members["xl/workbook.xml"] = members["xl/workbook.xml"].replace(
        '<sheet name="Sheet1" sheetId="1" r:id="rId1"/>', '<sheet name="花名册" sheetId="1" state="hidden" r:id="rId1"/>')
    members["xl/worksheets/sheet1.xml"] = (SHEET_HEAD + inline_row(1, OFFICE) + SHEET_TAIL).decode()
    path = tmp_path / "hidden.xlsx"
    path.write_bytes(raw_zip([(n, _deflate(t.encode()), zlib.crc32(t.encode()), len(t.encode()), 8)
                              for n, t in members.items()]))
    job = run_import(kind="residents", path=path)
    assert job.status == ImportStatus.FAILED
    assert job.message == "Excel 文件中没有可见的工作表（已隐藏的工作表不导入：花名册）；请在 Excel 或 WPS 中取消隐藏后重新上传"


# --- the command ------------------------------------------------------------------------------------------


def test_the_command_prints_the_mapping_it_used_and_takes_one_from_a_file(town, tmp_path, capsys):
    ledger = next(led for led in LEDGERS if led.id == "csv-own-words-with-a-mapping")
    path = tmp_path / "花名册.csv"
    path.write_bytes(ledger.make(town))
    with pytest.raises(CommandError, match="找不到列标题行"):
        call_command("import", "residents", str(path), "--no-progress")
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(ledger.mapping, ensure_ascii=False), encoding="utf-8")
    call_command("import", "residents", str(path), "--no-progress", "--mapping", str(mapping))
    out = capsys.readouterr().out
    assert "第1行是列标题，数据从第2行起" in out
    assert "B列 人员名 → 姓名 (name)" in out and "A列 编号 → 不导入" in out
    printed = json.loads(out.split("对应关系（可存为文件，用 --mapping 指定）：")[1].splitlines()[0])
    assert printed == ledger.mapping
    assert "created=3" in out


def test_the_command_previews_and_chooses_sheets(town, tmp_path, capsys):
    ledger = next(led for led in LEDGERS if led.id == "xls-one-sheet-per-building")
    path = tmp_path / "各楼栋.xls"
    path.write_bytes(ledger.make(town))
    call_command("import", "residents", str(path), "--no-progress", "--preview")
    out = capsys.readouterr().out
    assert "工作表“1号楼”第2行是列标题" in out and "未导入工作表“说明”：找不到列标题" in out
    assert "created=4" in out and "preview, nothing written" in out
    assert not Resident.objects.exists()
    call_command("import", "residents", str(path), "--no-progress", "--sheet", "1号楼")
    assert Resident.objects.count() == 2
    with pytest.raises(CommandError, match="文件中没有工作表“3号楼”"):
        call_command("import", "residents", str(path), "--no-progress", "--sheet", "3号楼")


def test_a_mapping_to_a_field_the_kind_does_not_have_is_refused(town, tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(delimited([OFFICE, *office_rows(people(town))]).encode())
    job = run_import(kind="residents", path=path, mapping={"手机号": "mobile"})
    assert job.status == ImportStatus.FAILED and "“手机号”对应的字段“mobile”不是本类型的列" in job.message
    assert ImportJob.objects.count() == 1 and not Resident.objects.exists()


def test_finding_the_header_reads_only_the_first_rows_of_a_big_file(town, tmp_path, monkeypatch):
    from wuyiqu.imports import parsers

    ps = people(town, 100) * 50  # 5,000 rows
    path = tmp_path / "大名单.csv"
    path.write_bytes(delimited([["标题"], OFFICE, *office_rows(ps)]).encode())
    read = []

    def counted(table, limits=None):
        for row in parsers._iter_csv(table.path, limits or parsers.Limits.from_settings(), table.encoding,
                                     table.delimiter):
            read.append(row[0])
            yield row

    monkeypatch.setattr(parsers, "table_rows", counted)
    with parsers.open_tables(path) as tables:
        layout = parsers.plan_tables(tables, get_kind("residents"))
    assert layout.sheets[0].header_line == 2
    assert len(read) <= parsers.headers.SEARCH_ROWS + parsers.headers.SAMPLE_ROWS + 2
