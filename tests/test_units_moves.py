"""Moves (SPEC §7 "Time"): ``do_move_resident`` and the residents import's ``moved_on``, on the
hand-built street of the supervision tests (every unit named, the clock on D)."""

from __future__ import annotations

import pytest
from conftest import TIANQIAO_COMMUNITY, WENLONG_COMMUNITY
from test_standards_world import D, days, id_number, make_resident
from test_supervision_world import ALL, at, current_codes, named_street

from wuyiqu.audit.models import AuditEvent
from wuyiqu.health.actions import do_record_measure
from wuyiqu.imports.services import run_import
from wuyiqu.supervision.models import TitleEvent
from wuyiqu.units.actions import MoveRefused, do_move_resident
from wuyiqu.units.models import Household, PastResidence, Resident
from wuyiqu.units.residence import history_of

pytestmark = pytest.mark.django_db


def resident_of(unit) -> Resident:
    return Resident.objects.filter(household__unit=unit).order_by("id").first()


def close_contact(resident, start, end) -> None:
    do_record_measure(actor=None, kind="close_contact", id_number=resident.reveal_id_number(), start_on=start,
                      end_on=end)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the action -------------------------------------------------------------------------------------------

def test_a_close_contact_moving_into_a_named_building_withdraws_it_in_the_same_request():
    u = named_street()
    with at(D):
        person = resident_of(u["B9"])
        close_contact(person, D - days(2), D + days(5))
        assert "T1C-B9" not in current_codes()  # where the person lives today
        with_b1 = current_codes()
        assert {"T1C-C1-B1", "T1C-C1"} <= with_b1
        do_move_resident(actor=None, resident=person, household_code=f"{u['B1'].code}-101")
    assert current_codes() == with_b1 - {"T1C-C1-B1", "T1C-C1"}
    event = TitleEvent.objects.get(unit=u["B1"])
    assert event.source == "units.move_resident" and "无密接人员" in event.reason
    person.refresh_from_db()
    assert (person.household.code, person.moved_on) == (f"{u['B1'].code}-101", D)
    spell = PastResidence.objects.get(resident=person)
    assert (spell.household.unit, spell.from_on, spell.until_on) == (u["B9"], None, D - days(1))
    audit = AuditEvent.objects.get(action="units.move_resident")
    assert audit.detail["from_unit"] == "T1C-B9" and audit.detail["to_unit"] == "T1C-C1-B1"
    assert audit.unit == u["T1C"]  # the lowest unit holding both homes


def test_a_move_dated_in_the_past_closes_the_old_spell_the_day_before():
    u = named_street()
    person = resident_of(u["B1"])
    with at(D):
        do_move_resident(actor=None, resident=person, household_code=f"{u['B9'].code}-101", moved_on=D - days(3))
        do_move_resident(actor=None, resident=person, household_code=f"{u['G1'].code}-H1", moved_on=D - days(1))
    spells = history_of(Resident.objects.get(pk=person.pk))
    assert [(s.household_code, s.from_on, s.until_on) for s in spells] == [
        (f"{u['B1'].code}-101", None, D - days(4)),
        (f"{u['B9'].code}-101", D - days(3), D - days(2)),
        (f"{u['G1'].code}-H1", D - days(1), None),
    ]


def test_moving_again_on_the_day_of_arrival_keeps_no_empty_spell():
    u = named_street()
    person = resident_of(u["B1"])
    with at(D):
        do_move_resident(actor=None, resident=person, household_code=f"{u['B9'].code}-101", moved_on=D)
        do_move_resident(actor=None, resident=person, household_code=f"{u['G1'].code}-H1", moved_on=D)
    assert list(PastResidence.objects.filter(resident=person).values_list("household__unit__code", "until_on")) == [
        ("T1C-C1-B1", D - days(1))]


@pytest.mark.parametrize(("code", "moved_on", "field", "words"), [
    ("NO-SUCH-HOUSEHOLD", D, "household_code", "不存在"),
    ("T1C-C1-B1-101", D, "household_code", "已登记在户"),  # where the person lives
    ("T1C-B9-101", D + days(1), "moved_on", "不能晚于今天"),
    ("T1C-B9-101", D - days(10), "moved_on", "不能早于该居民上次迁入的日期"),
    ("T1C-B9-101", D.replace(year=1970), "moved_on", "不能早于出生日期"),
])
def test_a_bad_move_is_refused_naming_the_field_and_changes_nothing(code, moved_on, field, words):
    u = named_street()
    person = resident_of(u["B1"])
    Resident.objects.filter(pk=person.pk).update(moved_on=D - days(5))
    before = (AuditEvent.objects.count(), TitleEvent.objects.count())
    with at(D), pytest.raises(MoveRefused) as refused:
        do_move_resident(actor=None, resident=person, household_code=code, moved_on=moved_on)
    assert refused.value.field == field and words in refused.value.message, refused.value.message
    person.refresh_from_db()
    assert (person.household.unit, person.moved_on) == (u["B1"], D - days(5))
    assert not PastResidence.objects.exists()
    assert (AuditEvent.objects.count(), TitleEvent.objects.count()) == before
    assert current_codes() == ALL


def test_a_move_into_a_household_outside_the_actors_scope_reads_as_missing(alice):
    """alice works for 文龙社区: 天桥社区's households do not exist for her."""
    ours = Household.objects.filter(unit__path__contains=f"/{WENLONG_COMMUNITY}/").order_by("code")
    person = Resident.objects.filter(household=ours[0]).first()
    theirs = Household.objects.filter(unit__path__contains=f"/{TIANQIAO_COMMUNITY}/").first()
    with pytest.raises(MoveRefused) as refused:
        do_move_resident(actor=alice, resident=person, household_code=theirs.code)
    assert refused.value.field == "household_code" and theirs.code in refused.value.message
    assert not PastResidence.objects.exists()
    moved = do_move_resident(actor=alice, resident=person, household_code=ours[1].code)
    assert moved.household == ours[1]
    assert AuditEvent.objects.get(action="units.move_resident").actor == alice


# --- the residents import -----------------------------------------------------------------------------------

HEADER = "id_number,name,household_code,moved_on\n"


def test_an_import_row_with_moved_on_moves_the_person_and_rechecks_both_homes(tmp_path):
    u = named_street()
    with at(D):
        person = resident_of(u["B9"])
        close_contact(person, D - days(2), D + days(5))
        path = write(tmp_path, "r.csv", HEADER + f"{person.reveal_id_number()},{person.name},{u['B1'].code}-102,\n")
        job = run_import(kind="residents", path=path)
    assert (job.status, job.updated) == ("succeeded", 1), job.errors
    assert current_codes() == ALL - {"T1C-B9", "T1C", "T1", "T1C-C1-B1", "T1C-C1"}
    assert TitleEvent.objects.get(unit=u["B1"]).source == "import:residents"
    person.refresh_from_db()
    assert person.moved_on == D  # empty: the day of the import
    assert AuditEvent.objects.get(action="imports.run").detail["moves"] == 1
    with at(D):  # the same file again: nothing changes
        again = run_import(kind="residents", path=path)
    assert (again.status, again.created, again.updated, again.unchanged) == ("succeeded", 0, 0, 1)
    assert PastResidence.objects.count() == 1


def test_a_first_registration_with_moved_on_counts_from_that_day(tmp_path):
    u = named_street()
    hh = f"{u['B1'].code}-101"
    new, old = id_number(D.replace(year=1990)), id_number(D.replace(year=1991))
    path = write(tmp_path, "r.csv", HEADER + f"{new},新人,{hh},{D - days(2)}\n{old},老住户,{hh},\n")
    with at(D):
        job = run_import(kind="residents", path=path)
    assert (job.status, job.created) == ("succeeded", 2), job.errors
    assert dict(Resident.objects.filter(name__in=["新人", "老住户"]).values_list("name", "moved_on")) == {
        "新人": D - days(2), "老住户": None}
    assert not PastResidence.objects.exists()


def test_bad_move_rows_are_refused_by_row_and_field_and_nothing_is_imported(tmp_path):
    u = named_street()
    a, b, c = (Resident.objects.filter(household__unit=u[k]).first() for k in ("B1", "B9", "G1"))
    Resident.objects.filter(pk=b.pk).update(moved_on=D - days(5))
    rows = [
        f"{a.reveal_id_number()},{a.name},NO-SUCH,",  # line 2: a household that does not exist
        f"{b.reveal_id_number()},{b.name},{u['B1'].code}-101,{D - days(6)}",  # line 3: before the last move
        f"{c.reveal_id_number()},{c.name},{u['B1'].code}-101,{D + days(1)}",  # line 4: in the future
    ]
    path = write(tmp_path, "r.csv", HEADER + "\n".join(rows) + "\n")
    with at(D):
        job = run_import(kind="residents", path=path)
    assert job.status == "failed"
    assert {(e["line"], e["field"]) for e in job.errors} == {(2, "household_code"), (3, "moved_on"), (4, "moved_on")}
    messages = {e["line"]: e["message"] for e in job.errors}
    assert "NO-SUCH" in messages[2] and str(D - days(5)) in messages[3] and "不能晚于今天" in messages[4]
    assert not PastResidence.objects.exists()
    assert set(Resident.objects.filter(pk__in=[a.pk, b.pk, c.pk]).values_list("household__unit__code", flat=True)) == {
        "T1C-C1-B1", "T1C-B9", "T1V-G1"}
    assert current_codes() == ALL


def test_a_different_arrival_in_the_same_household_corrects_a_first_registration_only(tmp_path):
    u = named_street()
    a = resident_of(u["B1"])
    line = f"{a.reveal_id_number()},{a.name},{a.household.code},{D - days(3)}\n"
    with at(D):
        job = run_import(kind="residents", path=write(tmp_path, "r.csv", HEADER + line))
        assert (job.status, job.updated) == ("succeeded", 1), job.errors
        a.refresh_from_db()
        assert a.moved_on == D - days(3)
        do_move_resident(actor=None, resident=a, household_code=f"{u['B9'].code}-101", moved_on=D - days(1))
        back = f"{a.reveal_id_number()},{a.name},{u['B9'].code}-101,{D}\n"
        refused = run_import(kind="residents", path=write(tmp_path, "r2.csv", HEADER + back))
    assert refused.status == "failed" and refused.errors[0]["field"] == "moved_on"
    assert "迁入日期不能改为" in refused.errors[0]["message"]


def test_households_and_ledger_entries_take_a_registration_date(tmp_path):
    u = named_street()
    person = make_resident(Household.objects.get(code=f"{u['B1'].code}-101"))
    hh = write(tmp_path, "h.csv", f"code,unit_code,address,registered_on\n{u['B1'].code}-103,{u['B1'].code},1栋103,"
                                  f"{D - days(1)}\n{u['B1'].code}-101,{u['B1'].code},{u['B1'].name}101,\n")
    sp = write(tmp_path, "s.csv", f"id_number,tags,needs,helper,reviewed_on,registered_on\n"
                                  f"{person.reveal_id_number()},独居老人,送药,李四,{D},{D}\n")
    future = write(tmp_path, "f.csv", f"code,unit_code,address,registered_on\n{u['B1'].code}-104,{u['B1'].code},x,"
                                      f"{D + days(1)}\n")
    with at(D):
        assert run_import(kind="households", path=hh).status == "succeeded"
        assert run_import(kind="special-population", path=sp).status == "succeeded"
        bad = run_import(kind="households", path=future)
    assert dict(Household.objects.filter(unit=u["B1"]).values_list("code", "registered_on")) == {
        f"{u['B1'].code}-101": None, f"{u['B1'].code}-102": None, f"{u['B1'].code}-103": D - days(1)}
    assert person.special_entry.registered_on == D
    assert bad.status == "failed" and bad.errors[0]["field"] == "registered_on"


def test_a_back_dated_case_of_a_person_who_moved_since_withdraws_their_home_of_that_day_at_once(tmp_path):
    from wuyiqu.health.actions import do_record_case
    from wuyiqu.health.models import PositiveCase

    u = named_street()
    person = resident_of(u["B9"])
    with at(D):
        do_move_resident(actor=None, resident=person, household_code=f"{u['G1'].code}-H1", moved_on=D - days(1))
        assert current_codes() == ALL
        do_record_case(actor=None, reported_on=D - days(3), case_type="confirmed", id_number=person.reveal_id_number())
    assert PositiveCase.objects.get().unit == u["B9"]  # where the person lived on the case's date
    assert current_codes() == ALL - {"T1C-B9", "T1C", "T1"}
    other = resident_of(u["B2"])
    with at(D):
        do_move_resident(actor=None, resident=other, household_code=f"{u['G1'].code}-H2", moved_on=D - days(1))
        path = write(tmp_path, "c.csv", f"id_number,reported_on,type\n{other.reveal_id_number()},{D - days(2)},confirmed\n")
        assert run_import(kind="cases", path=path).status == "succeeded"
    assert current_codes() == ALL - {"T1C-B9", "T1C", "T1", "T1C-C1-B2", "T1C-C1"}
