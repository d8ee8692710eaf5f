"""Import kinds of epidemic facts: cases, close-contacts, home-quarantines, returnees, risk-zones."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import TIANQIAO_COMMUNITY, WENLONG_COMMUNITY
from django.db import connection
from django.test.utils import CaptureQueriesContext
from openpyxl import Workbook

from wuyiqu.audit.models import AuditEvent
from wuyiqu.health.models import HeldFacts, Measure, MeasureKind, PositiveCase, RiskZone, ZoneType
from wuyiqu.imports.models import ImportStatus
from wuyiqu.imports.services import run_import
from wuyiqu.lib import dates
from wuyiqu.lib.idcard import check_digit
from wuyiqu.units.models import Resident, Unit, UnitKind

DAY = dt.timedelta(days=1)


def outsider_id(seq: int = 1) -> str:
    first17 = f"11010119800101{seq:03d}"
    return first17 + check_digit(first17)


def residents_of(code: str, n: int) -> list[Resident]:
    return list(Resident.objects.filter(household__unit__path__contains=f"/{code}/").order_by("id")[:n])


def csv_file(tmp_path, name: str, lines: list[str], encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


@pytest.fixture
def today():
    return dates.today()


def test_close_contacts_from_a_gbk_file_count_matched_and_unmatched(world, tmp_path, today):
    rs = residents_of(WENLONG_COMMUNITY, 2)
    lines = ["身份证号,开始日期,结束日期",
             f"{rs[0].reveal_id_number()},{today - 3 * DAY},{today + 4 * DAY}",
             f"{rs[1].reveal_id_number()},{today - 8 * DAY},{today - DAY}",
             f"{outsider_id()},{today - 2 * DAY},{today + 5 * DAY}"]
    path = csv_file(tmp_path, "密接.csv", lines, encoding="gbk")
    job = run_import(kind="close-contacts", path=path)
    assert job.status == ImportStatus.SUCCEEDED, job.errors
    assert (job.created, job.unmatched, job.invalid, job.duplicate) == (3, 1, 0, 0)
    assert Measure.objects.filter(kind=MeasureKind.CLOSE_CONTACT).count() == 3
    unmatched = Measure.objects.get(resident__isnull=True)
    assert unmatched.unit_id is None and unmatched.id_masked.startswith("110*")
    matched = Measure.objects.get(resident=rs[0])
    assert matched.unit_id == rs[0].household.unit_id
    # Re-importing the same file adds nothing twice; the unmatched row is still reported as unmatched.
    again = run_import(kind="close-contacts", path=path)
    assert (again.status, again.created, again.unchanged, again.unmatched) == (ImportStatus.SUCCEEDED, 0, 3, 1)
    assert Measure.objects.count() == 3
    assert AuditEvent.objects.filter(action="imports.run").count() == 2  # one audit row per import


def test_duplicates_inside_one_file_are_reported_and_imported_once(world, tmp_path, today):
    r = residents_of(WENLONG_COMMUNITY, 1)[0]
    row = f"{r.reveal_id_number()},{today - 3 * DAY},{today + 4 * DAY}"
    path = csv_file(tmp_path, "hq.csv", ["id_number,start_on,end_on", row, row.lower()])
    job = run_import(kind="home-quarantines", path=path)
    assert (job.status, job.created, job.duplicate) == (ImportStatus.SUCCEEDED, 1, 1)
    assert "与第2行重复" in job.errors[0]["message"]
    assert Measure.objects.get().kind == MeasureKind.HOME_QUARANTINE


def test_a_file_with_a_bad_row_imports_nothing_and_names_the_rows(world, tmp_path, today):
    r = residents_of(WENLONG_COMMUNITY, 1)[0]
    bad_check = outsider_id()[:-1] + ("1" if outsider_id().endswith("0") else "0")
    lines = ["身份证号,开始日期,结束日期",
             f"{r.reveal_id_number()},{today - 3 * DAY},{today + 4 * DAY}",
             f"{bad_check},{today - 3 * DAY},{today + 4 * DAY}",
             f"{outsider_id(2)},{today + DAY},{today + 4 * DAY}",
             f"{outsider_id(3)},{today - DAY},{today - 2 * DAY}"]
    job = run_import(kind="close-contacts", path=csv_file(tmp_path, "bad.csv", lines))
    assert job.status == ImportStatus.FAILED and job.invalid == 3
    by_line = {e["line"]: e for e in job.errors}
    assert "校验位" in by_line[3]["message"] and by_line[3]["field"] == "id_number"
    assert by_line[4]["message"] == "开始日期不能晚于今天" and by_line[4]["field"] == "start_on"
    assert "不能早于开始日期" in by_line[5]["message"] and by_line[5]["field"] == "end_on"
    assert not Measure.objects.exists()
    skipped = run_import(kind="close-contacts", path=csv_file(tmp_path, "bad.csv", lines), skip_invalid=True)
    assert (skipped.status, skipped.created, skipped.invalid) == (ImportStatus.SUCCEEDED, 1, 3)


def test_returnees_with_english_aliases_and_control_until_ahead(world, tmp_path, today):
    r = residents_of(TIANQIAO_COMMUNITY, 1)[0]
    lines = ["id_number,origin,arrived_on,control_until",
             f"{r.reveal_id_number()},上海市浦东新区,{today - 2 * DAY},{today + 5 * DAY}",
             f"{outsider_id()},,{today - 2 * DAY},{today + 5 * DAY}"]
    job = run_import(kind="returnees", path=csv_file(tmp_path, "r.csv", lines), skip_invalid=True)
    assert (job.created, job.invalid) == (1, 1)
    assert job.errors[0]["field"] == "origin"
    m = Measure.objects.get()
    assert (m.kind, m.origin, m.start_on, m.end_on) == (MeasureKind.RETURNEE, "上海市浦东新区", today - 2 * DAY,
                                                        today + 5 * DAY)


def test_a_measure_stored_with_another_end_is_a_row_error_not_a_silent_change(world, tmp_path, today):
    r = residents_of(WENLONG_COMMUNITY, 1)[0]
    first = csv_file(tmp_path, "a.csv", ["id_number,start_on,end_on", f"{r.reveal_id_number()},{today - DAY},{today + DAY}"])
    assert run_import(kind="close-contacts", path=first).created == 1
    changed = csv_file(tmp_path, "b.csv", ["id_number,start_on,end_on", f"{r.reveal_id_number()},{today - DAY},{today + 9 * DAY}"])
    job = run_import(kind="close-contacts", path=changed)
    assert job.status == ImportStatus.FAILED and "提前解除或延期" in job.errors[0]["message"]
    assert Measure.objects.get().end_on == today + DAY


def test_cases_by_id_number_or_unit_code_xlsx(world, tmp_path, today):
    r = residents_of(WENLONG_COMMUNITY, 1)[0]
    building = Unit.objects.filter(path__contains=f"/{WENLONG_COMMUNITY}/", kind=UnitKind.BUILDING).first()
    wb = Workbook()
    ws = wb.active
    ws.append(["身份证号", "单位编码", "报告日期", "类型"])
    ws.append([r.reveal_id_number(), None, (today - DAY).isoformat(), "确诊"])
    ws.append([None, building.code, today.isoformat(), "无症状"])
    ws.append([outsider_id(), None, today.isoformat(), "asymptomatic"])
    ws.append([r.reveal_id_number(), building.code, today.isoformat(), "确诊"])  # both: refused
    ws.append([None, "nosuchunit", today.isoformat(), "确诊"])
    ws.append([None, building.code, (today + DAY).isoformat(), "确诊"])
    ws.append([None, building.code, today.isoformat(), "阳性"])
    path = tmp_path / "cases.xlsx"
    wb.save(path)
    job = run_import(kind="cases", path=path, skip_invalid=True)
    assert (job.created, job.unmatched, job.invalid) == (3, 1, 4), job.errors
    messages = {e["line"]: e["message"] for e in job.errors}
    assert "须填且只填一项" in messages[5]
    assert "不存在" in messages[6]
    assert messages[7] == "报告日期不能晚于今天"
    assert "无法识别" in messages[8]
    on_unit = PositiveCase.objects.get(id_hash="")
    assert (on_unit.unit_id, on_unit.case_type) == (building.pk, "asymptomatic")
    assert PositiveCase.objects.get(resident=r).unit_id == r.household.unit_id
    again = run_import(kind="cases", path=path, skip_invalid=True)
    assert (again.created, again.unchanged) == (0, 3)
    assert PositiveCase.objects.count() == 3


def test_risk_zones_ongoing_then_ended_by_a_later_file(world, tmp_path, today):
    wenlong = Unit.objects.get(code=WENLONG_COMMUNITY)
    start = today - 10 * DAY
    ongoing = csv_file(tmp_path, "z1.csv", ["单位编码,类型,开始日期,结束日期", f"{wenlong.code},高风险区,{start},"], "gbk")
    job = run_import(kind="risk-zones", path=ongoing)
    assert job.created == 1
    zone = RiskZone.objects.get()
    assert (zone.unit_id, zone.zone_type, zone.end_on) == (wenlong.pk, ZoneType.HIGH, None)
    assert run_import(kind="risk-zones", path=ongoing).unchanged == 1
    ended = csv_file(tmp_path, "z2.csv", ["unit_code,type,start_on,end_on", f"{wenlong.code},high,{start},{today - DAY}"])
    job = run_import(kind="risk-zones", path=ended)
    assert (job.created, job.updated) == (0, 1)
    zone.refresh_from_db()
    assert zone.end_on == today - DAY
    # Once ended, a file cannot quietly make it ongoing again, nor move its end.
    assert run_import(kind="risk-zones", path=ongoing).status == ImportStatus.FAILED
    future = csv_file(tmp_path, "z3.csv", ["unit_code,type,start_on,end_on", f"{wenlong.code},temporary,{today},{today + DAY}"])
    job = run_import(kind="risk-zones", path=future)
    assert job.status == ImportStatus.FAILED and job.errors[0]["message"] == "结束日期不能晚于今天"
    assert RiskZone.objects.count() == 1


def test_a_scoped_import_holds_people_outside_the_scope_and_refuses_units_outside_it(world, alice, tmp_path, today):
    # A person registered in the sibling community gets the answer an unknown number gets (unmatched:
    # the import must not tell whether a number is registered elsewhere); the fact is not attached to
    # them but held for the street. Another unit's code is still refused.
    mine, theirs = residents_of(WENLONG_COMMUNITY, 1)[0], residents_of(TIANQIAO_COMMUNITY, 1)[0]
    lines = ["id_number,start_on,end_on",
             f"{mine.reveal_id_number()},{today - DAY},{today + DAY}",
             f"{theirs.reveal_id_number()},{today - DAY},{today + DAY}",
             f"{outsider_id()},{today - DAY},{today + DAY}"]
    job = run_import(kind="close-contacts", path=csv_file(tmp_path, "c.csv", lines), actor=alice, scope=alice.unit)
    assert job.status == ImportStatus.SUCCEEDED, job.message
    assert (job.created, job.unmatched, job.errors) == (3, 2, [])
    assert Measure.objects.get(id_hash=mine.id_hash).resident_id == mine.pk
    held = Measure.objects.get(id_hash=theirs.id_hash)
    assert (held.resident_id, held.unit_id, held.scope_unit_id) == (None, None, alice.unit_id)
    assert list(HeldFacts.objects.values_list("resident_id", "scope_unit_id", "measures")) == [
        (theirs.pk, alice.unit_id, 1)]
    zones = csv_file(tmp_path, "z.csv", ["unit_code,type,start_on", f"{TIANQIAO_COMMUNITY},high,{today}"])
    refused = run_import(kind="risk-zones", path=zones, actor=alice, scope=alice.unit)
    assert refused.status == ImportStatus.FAILED and "管辖范围" in refused.errors[0]["message"]
    assert not RiskZone.objects.exists()


def test_write_is_set_based(world, tmp_path, today):
    def import_queries(n: int, start: dt.date) -> int:
        rs = residents_of(WENLONG_COMMUNITY, n) + residents_of(TIANQIAO_COMMUNITY, n)
        lines = ["id_number,start_on,end_on"] + [f"{r.reveal_id_number()},{start},{today + DAY}" for r in rs]
        lines += [f"{outsider_id(i)},{start},{today + DAY}" for i in range(1, n + 1)]
        with CaptureQueriesContext(connection) as queries:
            job = run_import(kind="close-contacts", path=csv_file(tmp_path, f"many{n}.csv", lines))
        assert (job.created, job.unmatched) == (3 * n, n)
        return len(queries)

    # 12 rows or 120 rows: the same queries (job bookkeeping, one look-up of people and stored keys
    # per batch, one insert), never one per row.
    assert import_queries(4, today - 2 * DAY) == import_queries(40, today - DAY)
