"""The registry kinds: units, households, residents, verifications, special-population."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from conftest import HONGQI_VILLAGE, TIANQIAO_COMMUNITY, WENLONG_COMMUNITY

from wuyiqu.imports.models import ImportStatus
from wuyiqu.imports.services import run_import
from wuyiqu.lib import crypto
from wuyiqu.lib.idcard import check_digit
from wuyiqu.units.models import (
    Household,
    HouseholdVerification,
    Resident,
    SpecialPopulationEntry,
    Unit,
    UnitKind,
)


def valid_id(n: int, birth: str = "19800101") -> str:
    first17 = f"500110{birth}{n:03d}"
    return first17 + check_digit(first17)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def building_in(community: str) -> Unit:
    return Unit.objects.filter(path__contains=f"/{community}/", kind=UnitKind.BUILDING).order_by("code").first()


# --- units ----------------------------------------------------------------------------------------

UNIT_HEADER = ["编码", "名称", "类型", "上级编码"]


def test_units_with_chinese_kinds_and_parents_earlier_in_the_file(world, tmp_path):
    rows = [
        [f"{WENLONG_COMMUNITY}-C90", "新建花园", "小区", WENLONG_COMMUNITY],  # parent exists already
        [f"{WENLONG_COMMUNITY}-C90-B01", "新建花园1栋", "楼栋", f"{WENLONG_COMMUNITY}-C90"],  # parent in the file
        [f"{WENLONG_COMMUNITY}-C90-B01-U1", "1单元", "entrance", f"{WENLONG_COMMUNITY}-C90-B01"],
        [f"{HONGQI_VILLAGE}-G90", "红旗村九十社", "社", HONGQI_VILLAGE],
    ]
    job = run_import(kind="units", path=write_csv(tmp_path / "u.csv", UNIT_HEADER, rows))
    assert (job.status, job.created) == (ImportStatus.SUCCEEDED, 4), job.errors
    entrance = Unit.objects.get(code=f"{WENLONG_COMMUNITY}-C90-B01-U1")
    community = Unit.objects.get(code=WENLONG_COMMUNITY)
    assert entrance.kind == UnitKind.ENTRANCE
    assert entrance.path == f"{community.path}{WENLONG_COMMUNITY}-C90/{WENLONG_COMMUNITY}-C90-B01/{entrance.code}/"
    assert entrance.depth == community.depth + 3
    assert entrance.parent.code == f"{WENLONG_COMMUNITY}-C90-B01"
    assert Unit.objects.get(code=f"{HONGQI_VILLAGE}-G90").kind == UnitKind.GROUP
    rows[0][1] = "新建家园"
    again = run_import(kind="units", path=write_csv(tmp_path / "u2.csv", UNIT_HEADER, rows))
    assert (again.created, again.updated, again.unchanged) == (0, 1, 3)
    assert Unit.objects.get(code=f"{WENLONG_COMMUNITY}-C90").name == "新建家园"


def test_units_refuse_a_parent_of_the_wrong_kind(world, tmp_path):
    building = building_in(WENLONG_COMMUNITY)
    rows = [
        ["X-C1", "错层小区", "小区", building.code],  # a compound under a building
        ["X-V1", "错村", "村", WENLONG_COMMUNITY],  # a village under a community
        ["X-B1", "无上级楼", "楼栋", ""],
        ["X-B2", "孤楼", "楼栋", "NO-SUCH"],
        ["X-B3", "怪楼", "宿舍", WENLONG_COMMUNITY],
    ]
    before = Unit.objects.count()
    job = run_import(kind="units", path=write_csv(tmp_path / "u.csv", UNIT_HEADER, rows))
    assert job.status == ImportStatus.FAILED
    assert Unit.objects.count() == before
    errors = {e["line"]: e for e in job.errors}
    assert errors[2]["field"] == "parent_code" and "小区的上级不能是楼栋" in errors[2]["message"]
    assert "村的上级不能是社区" in errors[3]["message"]
    assert "必须填写上级编码" in errors[4]["message"]
    assert "不存在" in errors[5]["message"]
    assert errors[6]["field"] == "kind" and "无法识别" in errors[6]["message"]


def test_units_refuse_moving_or_rekinding_an_existing_unit(world, tmp_path):
    building = building_in(WENLONG_COMMUNITY)
    rows = [[building.code, building.name, "楼栋", TIANQIAO_COMMUNITY], [WENLONG_COMMUNITY, "文龙", "村", "500110002"]]
    job = run_import(kind="units", path=write_csv(tmp_path / "u.csv", UNIT_HEADER, rows))
    errors = {e["line"]: e["message"] for e in job.errors}
    assert "不能移动" in errors[2] and "不能改变类型" in errors[3]


def test_units_child_of_an_invalid_row_is_invalid_too(world, tmp_path):
    rows = [["X-C1", "", "小区", WENLONG_COMMUNITY], ["X-C1-B1", "1栋", "楼栋", "X-C1"]]
    job = run_import(kind="units", path=write_csv(tmp_path / "u.csv", UNIT_HEADER, rows), skip_invalid=True)
    assert (job.invalid, job.created) == (2, 0)


def test_units_scope(alice, tmp_path):
    rows = [[f"{WENLONG_COMMUNITY}-C91", "我的小区", "小区", WENLONG_COMMUNITY],
            [f"{TIANQIAO_COMMUNITY}-C91", "别人的小区", "小区", TIANQIAO_COMMUNITY]]
    job = run_import(kind="units", path=write_csv(tmp_path / "u.csv", UNIT_HEADER, rows), actor=alice,
                     scope=alice.unit, skip_invalid=True)
    assert (job.created, job.invalid) == (1, 1)
    assert "不在您的管辖范围内" in job.errors[0]["message"] and job.errors[0]["line"] == 3


# --- households and verifications -----------------------------------------------------------------

HH_HEADER = ["户编码", "所属单位编码", "地址", "核实日期"]


def test_households_with_verification_dates(world, tmp_path):
    b = building_in(WENLONG_COMMUNITY)
    rows = [["T-H1", b.code, "测试1室", "2022-11-20"], ["T-H2", b.code, "测试2室", ""]]
    job = run_import(kind="households", path=write_csv(tmp_path / "h.csv", HH_HEADER, rows))
    assert (job.status, job.created) == (ImportStatus.SUCCEEDED, 2)
    h1 = Household.objects.get(code="T-H1")
    assert h1.unit == b and h1.address == "测试1室"
    assert list(h1.verifications.values_list("verified_on", flat=True)) == [dt.date(2022, 11, 20)]
    assert not HouseholdVerification.objects.filter(household__code="T-H2").exists()
    again = run_import(kind="households", path=write_csv(tmp_path / "h.csv", HH_HEADER, rows))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    rows[1][3] = "2022-11-21"
    third = run_import(kind="households", path=write_csv(tmp_path / "h.csv", HH_HEADER, rows))
    assert (third.updated, third.unchanged) == (1, 1)
    assert HouseholdVerification.objects.filter(household__code="T-H2").count() == 1


def test_households_refuse_bad_dates_and_units_that_cannot_hold_households(world, tmp_path):
    b = building_in(WENLONG_COMMUNITY)
    rows = [["T-H1", b.code, "1室", "2022-02-30"], ["T-H2", WENLONG_COMMUNITY, "2室", ""],
            ["T-H3", b.code, "3室", "20221120"], ["T-H4", b.code, "", ""]]
    job = run_import(kind="households", path=write_csv(tmp_path / "h.csv", HH_HEADER, rows))
    errors = {e["line"]: e for e in job.errors}
    assert errors[2]["field"] == "verified_on" and "不存在" in errors[2]["message"]
    assert errors[3]["field"] == "unit_code" and "户只能属于楼栋、单元或社" in errors[3]["message"]
    assert "格式不对" in errors[4]["message"]
    assert errors[5]["field"] == "address"
    assert not Household.objects.filter(code__startswith="T-H").exists()


def test_households_scope(alice, tmp_path):
    rows = [["T-H1", building_in(TIANQIAO_COMMUNITY).code, "1室", ""]]
    job = run_import(kind="households", path=write_csv(tmp_path / "h.csv", HH_HEADER, rows), actor=alice,
                     scope=alice.unit)
    assert job.status == ImportStatus.FAILED and "不在您的管辖范围内" in job.errors[0]["message"]


def test_verifications(world, tmp_path):
    hh = Household.objects.order_by("code")[:2]
    header = ["户编码", "核实日期", "核实人"]
    rows = [[hh[0].code, "2022-11-25", "网格员甲"], [hh[1].code, "2022-11-25", ""], ["NOPE", "2022-11-25", ""]]
    job = run_import(kind="verifications", path=write_csv(tmp_path / "v.csv", header, rows), skip_invalid=True)
    assert (job.created, job.invalid) == (2, 1)
    v = HouseholdVerification.objects.get(household=hh[0], verified_on=dt.date(2022, 11, 25))
    assert v.verifier == "网格员甲"
    rows[0][2] = "网格员乙"
    again = run_import(kind="verifications", path=write_csv(tmp_path / "v.csv", header, rows[:2]))
    assert (again.created, again.updated, again.unchanged) == (0, 1, 1)
    v.refresh_from_db()
    assert v.verifier == "网格员乙"


# --- residents -----------------------------------------------------------------------------------

def test_residents_are_stored_encrypted_with_sex_and_no_birth_date(world, tmp_path):
    hh = Household.objects.filter(unit__path__contains=f"/{WENLONG_COMMUNITY}/").first()
    woman = "11010519491231002X"  # the GB 11643 example: born 1949-12-31, female
    header = ["身份证号", "姓名", "户编码", "联系电话", "免检(卧床)"]
    rows = [[woman.lower(), "赵老太", hh.code, "13912345678", "卧床"], [valid_id(3), "钱先生", hh.code, "", "否"]]
    job = run_import(kind="residents", path=write_csv(tmp_path / "r.csv", header, rows))
    assert job.created == 2, job.errors
    r = Resident.objects.get(name="赵老太")
    assert r.turns_three_on is None and r.sex == "F" and r.bedridden and r.age_on(dt.date(2022, 12, 31)) == 73
    assert r.id_hash == crypto.cipher().lookup_hash(woman)
    assert r.id_masked == "110**************X" and r.phone_masked == "139******78"
    assert woman.encode() not in bytes(r.id_enc)
    assert r.reveal_id_number() == woman and r.reveal_phone() == "13912345678"
    m = Resident.objects.get(name="钱先生")
    assert (m.sex, m.bedridden, m.phone_enc, m.phone_hash) == ("M", False, None, "")


def test_residents_bad_values(world, tmp_path):
    hh = Household.objects.first()
    header = ["身份证号", "姓名", "户编码", "联系电话", "免检(卧床)"]
    rows = [
        ["500110198002300011", "甲", hh.code, "", ""],  # 1980-02-30
        [valid_id(1)[:17], "乙", hh.code, "", ""],  # 17 characters
        [valid_id(2), "", hh.code, "", ""],
        [valid_id(3), "丁", hh.code, "1381234567", ""],  # 10 digits
        [valid_id(4), "戊", hh.code, "", "也许"],
    ]
    job = run_import(kind="residents", path=write_csv(tmp_path / "r.csv", header, rows))
    errors = {e["line"]: e for e in job.errors}
    assert "出生日期19800230不存在" in errors[2]["message"]
    assert "18位" in errors[3]["message"]
    assert errors[4]["field"] == "name" and "不能为空" in errors[4]["message"]
    assert errors[5]["field"] == "phone"
    assert errors[6]["field"] == "exempt"
    assert job.status == ImportStatus.FAILED


def test_residents_moving_household_and_phone_change_is_an_update(world, tmp_path):
    a, b = Household.objects.filter(unit__path__contains=f"/{WENLONG_COMMUNITY}/").order_by("code")[:2]
    header = ["id_number", "name", "household_code", "phone"]
    run_import(kind="residents", path=write_csv(tmp_path / "r.csv", header, [[valid_id(5), "孙", a.code, "13800000000"]]))
    job = run_import(kind="residents", path=write_csv(tmp_path / "r.csv", header, [[valid_id(5), "孙", b.code, "13900000000"]]))
    assert (job.created, job.updated) == (0, 1)
    r = Resident.objects.get(id_hash=crypto.cipher().lookup_hash(valid_id(5)))
    assert r.household == b and r.reveal_phone() == "13900000000"


# --- special population --------------------------------------------------------------------------

SP_HEADER = ["身份证号", "类别", "需求", "帮扶人", "复核日期"]


def test_special_population_tags_and_empty_needs(world, tmp_path):
    residents = list(Resident.objects.order_by("id")[:2])
    numbers = [r.reveal_id_number() for r in residents]
    rows = [[numbers[0], "慢性病患者、独居老人", "每周送药", "网格员甲", "2022-11-20"],
            [numbers[1], "孕产妇;残疾人", "", "", ""]]
    job = run_import(kind="special-population", path=write_csv(tmp_path / "s.csv", SP_HEADER, rows))
    assert (job.status, job.created) == (ImportStatus.SUCCEEDED, 2), job.errors
    e0 = SpecialPopulationEntry.objects.get(resident=residents[0])
    assert e0.tag_list == ["elderly_alone", "chronic"] and e0.needs == "每周送药" and e0.reviewed_on == dt.date(2022, 11, 20)
    e1 = SpecialPopulationEntry.objects.get(resident=residents[1])
    assert e1.tag_list == ["pregnant", "disabled"] and (e1.needs, e1.helper, e1.reviewed_on) == ("", "", None)
    again = run_import(kind="special-population", path=write_csv(tmp_path / "s.csv", SP_HEADER, rows))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


def test_special_population_refuses_unknown_tags_and_unregistered_people(world, tmp_path):
    number = Resident.objects.first().reveal_id_number()
    rows = [[number, "独居老人、学生", "", "", ""], [valid_id(999, "19700101"), "孕产妇", "", "", ""], [number, "", "", "", ""]]
    job = run_import(kind="special-population", path=write_csv(tmp_path / "s.csv", SP_HEADER, rows))
    errors = {e["line"]: e for e in job.errors}
    assert errors[2]["field"] == "tags" and "“学生”无法识别" in errors[2]["message"]
    assert errors[3]["field"] == "id_number" and "未找到" in errors[3]["message"]
    assert "类别不能为空" in errors[4]["message"]
    assert not SpecialPopulationEntry.objects.exists()


def test_special_population_scope(alice, tmp_path):
    theirs = Resident.objects.filter(household__unit__path__contains=f"/{TIANQIAO_COMMUNITY}/").first()
    rows = [[theirs.reveal_id_number(), "独居老人", "", "", ""]]
    job = run_import(kind="special-population", path=write_csv(tmp_path / "s.csv", SP_HEADER, rows), actor=alice,
                     scope=alice.unit)
    # The words an unknown number gets: the answer does not tell that the number is registered elsewhere.
    assert job.status == ImportStatus.FAILED and job.errors[0]["message"] == "本辖区未找到该身份证号的居民，请先导入居民"


@pytest.mark.parametrize("kind", ["residents", "households"])
def test_set_based_writes_use_a_bounded_number_of_queries(world, tmp_path, kind, django_assert_max_num_queries):
    b = building_in(WENLONG_COMMUNITY)
    if kind == "households":
        path = write_csv(tmp_path / "h.csv", HH_HEADER, [[f"Q-H{i}", b.code, f"{i}室", "2022-11-01"] for i in range(300)])
    else:
        hh = Household.objects.filter(unit=b).first()
        path = write_csv(tmp_path / "r.csv", ["身份证号", "姓名", "户编码"],
                         [[valid_id(i, "19900101"), f"人{i}", hh.code] for i in range(300)])
    # 300 rows in one batch: job + audit rows and a handful of set-based queries, not one per row.
    with django_assert_max_num_queries(25):
        job = run_import(kind=kind, path=path)
    assert job.created == 300
