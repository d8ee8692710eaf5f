"""The import engine: file formats, headers, all-or-nothing, --skip-invalid, re-import, duplicates,
scope, progress, the CLI's exit code and templates. Small files; the million-row run is in bench/."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from conftest import TIANQIAO_COMMUNITY, WENLONG_COMMUNITY
from openpyxl import Workbook, load_workbook

from wuyiqu.audit.models import AuditEvent
from wuyiqu.imports import services
from wuyiqu.imports.models import ImportJob, ImportStatus
from wuyiqu.imports.parsers import iter_records, open_tables, plan_tables
from wuyiqu.imports.registry import all_kinds, get_kind
from wuyiqu.imports.services import build_template, run_import
from wuyiqu.lib.idcard import check_digit
from wuyiqu.units.models import Household, Resident

ZH = ["身份证号", "姓名", "户编码", "联系电话", "免检(卧床)"]
EN = ["id_number", "name", "household_code", "phone", "exempt"]


def valid_id(n: int, birth: str = "19800101") -> str:
    first17 = f"500110{birth}{n:03d}"
    return first17 + check_digit(first17)


def bad_check_digit(n: int) -> str:
    good = valid_id(n)
    return good[:17] + ("0" if good[17] != "0" else "1")


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, header: list[str], rows: list[list]) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def household_in(community_code: str) -> Household:
    return Household.objects.filter(unit__path__contains=f"/{community_code}/").order_by("code").first()


def people_rows(household: Household, count: int = 3, start: int = 1) -> list[list[str]]:
    return [[valid_id(start + i), f"测试{i}", household.code, "13812345678" if i % 2 == 0 else "", ""]
            for i in range(count)]


@pytest.fixture
def hh(world):
    return household_in(WENLONG_COMMUNITY)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_it_reads_csv_in_utf8_with_or_without_bom_and_gbk(hh, tmp_path, encoding):
    rows = people_rows(hh)
    rows[0][1] = "张三丰"  # non-ASCII that GBK and UTF-8 encode differently
    path = write_csv(tmp_path / "r.csv", ZH, rows, encoding)
    before = Resident.objects.count()
    job = run_import(kind="residents", path=path)
    assert job.status == ImportStatus.SUCCEEDED, job.message
    assert (job.created, job.invalid) == (3, 0)
    assert Resident.objects.count() == before + 3
    assert Resident.objects.filter(name="张三丰", household=hh).exists()


def test_it_reads_xlsx_with_numeric_cells(hh, tmp_path):
    # Spreadsheets turn phones into numbers: 13812345678.0 must come back as the typed text.
    path = write_xlsx(tmp_path / "r.xlsx", ZH, [[valid_id(1), "李四", hh.code, 13812345678, None]])
    job = run_import(kind="residents", path=path)
    assert job.status == ImportStatus.SUCCEEDED, job.message
    r = Resident.objects.get(name="李四")
    assert r.reveal_phone() == "13812345678"
    assert r.reveal_id_number() == valid_id(1)


def test_it_accepts_english_headers(hh, tmp_path):
    path = write_csv(tmp_path / "r.csv", EN, people_rows(hh, 2))
    job = run_import(kind="residents", path=path)
    assert (job.status, job.created) == (ImportStatus.SUCCEEDED, 2)


def test_a_missing_required_header_is_one_clear_message(hh, tmp_path):
    path = write_csv(tmp_path / "r.csv", ["姓名", "户编码", "备注"], [["王五", hh.code, "x"]])
    before = Resident.objects.count()
    job = run_import(kind="residents", path=path)
    assert job.status == ImportStatus.FAILED
    assert "缺少必填列：身份证号" in job.message
    assert "无法识别的列：备注" in job.message
    assert Resident.objects.count() == before


def test_an_invalid_row_imports_nothing_and_every_bad_row_is_listed(hh, tmp_path):
    rows = people_rows(hh, 3)
    rows.insert(1, [bad_check_digit(50), "坏一", hh.code, "", ""])  # line 3
    rows.append([valid_id(60), "坏二", "NO-SUCH-HOUSEHOLD", "", ""])  # line 6
    rows.append([valid_id(61), "坏三", hh.code, "12345", ""])  # line 7
    path = write_csv(tmp_path / "r.csv", ZH, rows)
    before = Resident.objects.count()
    seen = []
    job = run_import(kind="residents", path=path, report=seen.append)
    assert job.status == ImportStatus.FAILED
    assert Resident.objects.count() == before
    assert job.invalid == 3 and job.created == 0
    by_line = {e["line"]: e for e in job.errors}
    assert sorted(by_line) == [3, 6, 7]
    assert by_line[3]["field"] == "id_number" and "校验位" in by_line[3]["message"]
    assert by_line[6]["field"] == "household_code" and "不存在" in by_line[6]["message"]
    assert by_line[7]["field"] == "phone"
    assert sorted(p.line for p in seen) == [3, 6, 7]
    assert "未导入任何数据" in job.message


def test_skip_invalid_imports_the_good_rows_and_reports_the_rest(hh, tmp_path):
    rows = people_rows(hh, 3)
    rows.append([bad_check_digit(50), "坏", hh.code, "", ""])
    path = write_csv(tmp_path / "r.csv", ZH, rows)
    job = run_import(kind="residents", path=path, skip_invalid=True)
    assert job.status == ImportStatus.SUCCEEDED
    assert (job.created, job.invalid, job.rows_total) == (3, 1, 4)
    assert [e["line"] for e in job.errors] == [5]
    assert not Resident.objects.filter(name="坏").exists()


def test_reimporting_the_same_file_creates_nothing_twice(hh, tmp_path):
    path = write_csv(tmp_path / "r.csv", ZH, people_rows(hh, 4))
    first = run_import(kind="residents", path=path)
    count = Resident.objects.count()
    again = run_import(kind="residents", path=path)
    assert (first.created, first.updated, first.unchanged) == (4, 0, 0)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    assert Resident.objects.count() == count
    rows = people_rows(hh, 4)
    rows[2][1] = "改名"
    changed = run_import(kind="residents", path=write_csv(tmp_path / "r2.csv", ZH, rows))
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 3)
    assert Resident.objects.filter(name="改名").count() == 1


def test_duplicates_in_one_file_are_reported_and_imported_once(hh, tmp_path):
    rows = people_rows(hh, 2)
    rows.append(list(rows[0]))  # line 4 repeats line 2
    path = write_csv(tmp_path / "r.csv", ZH, rows)
    job = run_import(kind="residents", path=path)
    assert job.status == ImportStatus.SUCCEEDED
    assert (job.created, job.duplicate, job.invalid) == (2, 1, 0)
    assert job.errors == [{"line": 4, "field": "", "header": "", "message": "与第2行重复，已跳过"}]


def test_a_crash_while_writing_leaves_the_database_as_it_was(hh, tmp_path, monkeypatch):
    kind = type(get_kind("residents"))
    monkeypatch.setattr(kind, "batch_size", 2)
    real_write = kind.write
    calls = []

    def write_then_fail(self, batch, ctx):
        calls.append(len(batch))
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_write(self, batch, ctx)

    monkeypatch.setattr(kind, "write", write_then_fail)
    path = write_csv(tmp_path / "r.csv", ZH, people_rows(hh, 5))
    before = Resident.objects.count()
    with pytest.raises(RuntimeError):
        run_import(kind="residents", path=path)
    assert calls == [2, 2]  # the first batch was written, then rolled back
    assert Resident.objects.count() == before
    job = ImportJob.objects.get()
    assert job.status == ImportStatus.FAILED and "disk full" in job.message


def test_scope_refuses_rows_outside_the_uploaders_unit(alice, tmp_path):
    mine, theirs = household_in(WENLONG_COMMUNITY), household_in(TIANQIAO_COMMUNITY)
    rows = [[valid_id(1), "本社区", mine.code, "", ""], [valid_id(2), "外社区", theirs.code, "", ""]]
    path = write_csv(tmp_path / "r.csv", ZH, rows)
    job = run_import(kind="residents", path=path, actor=alice, scope=alice.unit)
    assert job.status == ImportStatus.FAILED
    assert job.errors[0]["line"] == 3 and "不在您的管辖范围内" in job.errors[0]["message"]
    ok = run_import(kind="residents", path=path, actor=alice, scope=alice.unit, skip_invalid=True)
    assert (ok.created, ok.invalid) == (1, 1)
    assert ok.created_by == alice and ok.scope == alice.unit


def test_scope_neither_moves_nor_refuses_a_resident_registered_outside(alice, tmp_path):
    # No refusal that would tell the number is registered elsewhere: the row counts as created, as an
    # unknown number's does (tests/test_cross_scope.py compares the two answers), a transfer request
    # goes to the street, and the person is neither moved nor renamed until it is approved.
    from wuyiqu.units.models import TransferRequest

    theirs = Resident.objects.filter(household__unit__path__contains=f"/{TIANQIAO_COMMUNITY}/").first()
    number = theirs.reveal_id_number()
    path = write_csv(tmp_path / "r.csv", ZH, [[number, "搬来", household_in(WENLONG_COMMUNITY).code, "", ""]])
    job = run_import(kind="residents", path=path, actor=alice, scope=alice.unit)
    assert job.status == ImportStatus.SUCCEEDED and job.errors == []
    assert (job.created, job.updated) == (1, 0)
    theirs.refresh_from_db()
    assert theirs.name != "搬来" and TransferRequest.objects.get().resident == theirs


def test_every_import_writes_one_job_and_one_audit_row(hh, tmp_path):
    good = write_csv(tmp_path / "g.csv", ZH, people_rows(hh, 2))
    bad = write_csv(tmp_path / "b.csv", ZH, [[bad_check_digit(1), "坏", hh.code, "", ""]])
    before = AuditEvent.objects.filter(action="imports.run").count()
    j1 = run_import(kind="residents", path=good)
    j2 = run_import(kind="residents", path=bad)
    events = AuditEvent.objects.filter(action="imports.run").order_by("id")
    assert events.count() == before + 2
    e1, e2 = list(events)[-2:]
    assert (e1.target_id, e1.detail["created"], e1.detail["status"]) == (str(j1.pk), 2, "succeeded")
    assert (e2.target_id, e2.detail["invalid"], e2.detail["status"]) == (str(j2.pk), 1, "failed")


def test_progress_is_reported_for_both_passes(hh, tmp_path, monkeypatch):
    monkeypatch.setattr(type(get_kind("residents")), "batch_size", 2)
    path = write_csv(tmp_path / "r.csv", ZH, people_rows(hh, 5))
    seen = []
    job = run_import(kind="residents", path=path, progress=lambda phase, done, total: seen.append((phase, done, total)))
    assert ("check", 5, 5) in seen
    assert [s for s in seen if s[0] == "write"] == [("write", 2, 5), ("write", 4, 5), ("write", 5, 5)]
    job.refresh_from_db()
    assert (job.rows_done, job.rows_total, job.progress_percent) == (5, 5, 100)


def test_an_xls_or_garbage_file_fails_with_a_reason(world, tmp_path):
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    job = run_import(kind="residents", path=tmp_path / "old.xls")
    assert job.status == ImportStatus.FAILED and ".xlsx" in job.message
    (tmp_path / "bad.xlsx").write_bytes(b"not a zip")
    job = run_import(kind="residents", path=tmp_path / "bad.xlsx")
    assert job.status == ImportStatus.FAILED and "Excel" in job.message
    (tmp_path / "empty.csv").write_bytes(b"")
    job = run_import(kind="residents", path=tmp_path / "empty.csv")
    assert job.status == ImportStatus.FAILED and "空" in job.message


def test_unknown_kind_is_refused_before_any_job(world, tmp_path):
    with pytest.raises(KeyError):
        run_import(kind="nonsense", path=tmp_path / "x.csv")
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize("kind", ["units", "households", "residents", "verifications", "special-population"])
def test_template_round_trip_has_the_chinese_headers(world, tmp_path, kind):
    data = build_template(kind)
    path = tmp_path / f"{kind}.xlsx"
    path.write_bytes(data)
    k = get_kind(kind)
    ws = load_workbook(path).worksheets[0]
    headers = [c.value for c in ws[1]]
    assert headers == [c.header for c in k.columns]
    assert all(c.comment is not None for c in ws[1])
    with open_tables(path) as tables:  # the template alone is a valid, empty file
        assert list(iter_records(tables, plan_tables(tables, k), k.columns)) == []
    job = run_import(kind=kind, path=path)
    assert (job.status, job.rows_total) == (ImportStatus.SUCCEEDED, 0)


def test_a_filled_template_imports(hh, tmp_path):
    path = tmp_path / "t.xlsx"
    path.write_bytes(build_template("residents"))
    wb = load_workbook(path)
    wb.worksheets[0].append([valid_id(7), "模板人", hh.code, "023-48612345", "卧床"])
    wb.save(path)
    job = run_import(kind="residents", path=path)
    assert job.created == 1
    r = Resident.objects.get(name="模板人")
    assert r.bedridden and r.reveal_phone() == "023-48612345"


def test_registry_kinds_are_registered():
    assert {"units", "households", "residents", "verifications", "special-population"} <= set(all_kinds())


# --- the console command -------------------------------------------------------------------------

def _cli(argv, monkeypatch, tmp_path):
    from django.db import connections

    from wuyiqu.cli import main

    monkeypatch.chdir(tmp_path)  # keep the CLI away from any ./var of the checkout
    # run_from_argv closes every connection when the command ends; the test's transaction must survive.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code
    return 0


def test_cli_exits_1_and_prints_every_bad_row(hh, tmp_path, monkeypatch, capsys):
    rows = people_rows(hh, 2)
    rows.append([bad_check_digit(9), "坏", hh.code, "", ""])
    rows.append([valid_id(10), "坏", hh.code, "abc", ""])
    path = write_csv(tmp_path / "r.csv", ZH, rows)
    before = Resident.objects.count()
    code = _cli(["import", "residents", str(path)], monkeypatch, tmp_path)
    err = capsys.readouterr().err
    assert code == 1
    assert "第4行 身份证号：" in err and "第5行 联系电话：" in err
    assert Resident.objects.count() == before


def test_cli_skip_invalid_prints_a_summary(hh, tmp_path, monkeypatch, capsys):
    rows = people_rows(hh, 2)
    rows.append([bad_check_digit(9), "坏", hh.code, "", ""])
    path = write_csv(tmp_path / "r.csv", ZH, rows)
    code = _cli(["import", "residents", str(path), "--skip-invalid"], monkeypatch, tmp_path)
    out = capsys.readouterr()
    assert code == 0
    assert "created=2 updated=0 unchanged=0 invalid=1 duplicate=0" in out.out
    assert "第4行" in out.err
    code = _cli(["import", "residents", str(path), "--skip-invalid"], monkeypatch, tmp_path)
    assert code == 0 and "created=0 updated=0 unchanged=2" in capsys.readouterr().out


def test_cli_writes_a_template(world, tmp_path, monkeypatch):
    code = _cli(["import", "households", str(tmp_path / "h.xlsx"), "--template"], monkeypatch, tmp_path)
    assert code == 0
    assert [c.value for c in load_workbook(tmp_path / "h.xlsx").worksheets[0][1]] == ["户编码", "所属单位编码", "地址", "核实日期",
                                                                                   "登记日期"]


def test_summary_line_is_chinese():
    job = ImportJob(rows_total=5, created=3, updated=1, unchanged=0, invalid=1, duplicate=0)
    assert services.summary(job) == "共5行，新增3，更新1，未变0，错误1，重复0"
