"""Every fact by hand (issue 15): each form records through the import kind's validation, names the
field it refuses, writes nothing then, says which units it re-checked, is audited, and is a 404 for
volunteers and outside the scope."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import WENLONG_COMMUNITY

from wuyiqu.audit.models import AuditEvent
from wuyiqu.certification.models import Title
from wuyiqu.health.models import Measure, MeasureKind, PositiveCase, RiskZone
from wuyiqu.lib import dates
from wuyiqu.units.models import (
    Household,
    HouseholdVerification,
    Resident,
    SpecialPopulationEntry,
    Unit,
    UnitKind,
)

pytestmark = pytest.mark.django_db

# A valid number (GB 11643 check digit) nobody in the generated world holds.
NEW_ID = "11010519491231002X"
BAD_ID = "110105194912310021"  # wrong check digit


def alices_building() -> Unit:
    return Unit.objects.filter(path__startswith=f"/500110/500110002/{WENLONG_COMMUNITY}/",
                               kind=UnitKind.BUILDING, households__isnull=False).order_by("code").first()


def resident_in(unit: Unit) -> Resident:
    return Resident.objects.filter(household__unit=unit).order_by("pk").first()


def name_the(unit: Unit) -> Title:
    return Title.objects.create(unit=unit, title=unit.title, named_on=dates.today() - dt.timedelta(days=20))


def messages_of(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def form_audits(kind: str):
    return AuditEvent.objects.filter(action="imports.record_row", detail__kind=kind)


def today() -> str:
    return dates.today().isoformat()


# --- cases -------------------------------------------------------------------------------------------

def test_it_records_a_case_withdraws_the_named_building_and_says_so(world, alice, client_for):
    building = alices_building()
    name_the(building)
    person = resident_in(building)
    c = client_for(alice)
    r = c.post(f"/units/{building.code}/record/cases/",
               {"id_number": person.reveal_id_number(), "reported_on": today(), "type": "confirmed"}, follow=True)
    assert r.status_code == 200
    case = PositiveCase.objects.get()
    assert (case.resident_id, case.unit_id, case.source) == (person.pk, building.pk, "import")
    text = messages_of(r)
    # The chain from the building up, and what the re-check did to the named building.
    assert "已复核" in text and building.name in text and building.parent.name in text
    assert "摘牌" in text
    assert Title.objects.get(unit=building).withdrawn_on == dates.today()
    audit = form_audits("cases").get()
    assert audit.actor == alice and audit.detail["created"] == 1
    assert audit.detail["recheck"]["withdrawn"] == [building.code]
    assert person.reveal_id_number() not in str(audit.detail)  # masked only


def test_a_case_with_a_wrong_check_digit_names_the_field_and_writes_nothing(world, alice, client_for):
    building = alices_building()
    r = client_for(alice).post(f"/units/{building.code}/record/cases/",
                               {"id_number": BAD_ID, "reported_on": today(), "type": "confirmed"})
    assert r.status_code == 400
    body = r.content.decode()
    assert "身份证号：" in body and "校验" in body
    assert 'id="f-id_number"' in body and 'aria-invalid="true"' in body
    assert not PositiveCase.objects.exists() and not form_audits("cases").exists()


def test_the_refusal_is_translated_with_the_page(world, alice, client_for):
    building = alices_building()
    c = client_for(alice)
    c.cookies["django_language"] = "en"
    r = c.post(f"/units/{building.code}/record/close-contacts/",
               {"id_number": BAD_ID, "start_on": today(), "end_on": today()})
    assert r.status_code == 400
    body = r.content.decode()
    assert "Not saved, nothing was changed" in body and "ID number：" in body
    assert "check digit" in body.lower()
    assert not Measure.objects.exists()


def test_a_case_in_the_future_is_refused_on_its_report_date(world, alice, client_for):
    building = alices_building()
    tomorrow = (dates.today() + dt.timedelta(days=1)).isoformat()
    r = client_for(alice).post(f"/units/{building.code}/record/cases/",
                               {"id_number": resident_in(building).reveal_id_number(), "reported_on": tomorrow,
                                "type": "confirmed"})
    assert r.status_code == 400
    assert "报告日期：报告日期不能晚于今天" in r.content.decode()
    assert not PositiveCase.objects.exists()


def test_a_case_on_the_unit_itself_needs_no_id_number(world, alice, client_for):
    building = alices_building()
    r = client_for(alice).post(f"/units/{building.code}/record/cases/",
                               {"on_unit": "1", "reported_on": today(), "type": "asymptomatic"}, follow=True)
    assert r.status_code == 200
    case = PositiveCase.objects.get()
    assert (case.unit_id, case.id_hash, case.case_type) == (building.pk, "", "asymptomatic")
    assert "没有现行称号" in messages_of(r)


def test_a_case_both_on_a_person_and_on_the_unit_is_refused_as_a_file_row_is(world, alice, client_for):
    building = alices_building()
    r = client_for(alice).post(f"/units/{building.code}/record/cases/",
                               {"on_unit": "1", "id_number": NEW_ID, "reported_on": today(), "type": "confirmed"})
    assert r.status_code == 400
    assert "身份证号和单位编码须填且只填一项" in r.content.decode()
    assert not PositiveCase.objects.exists()


def test_the_same_case_twice_is_stored_once_and_the_page_says_nothing_changed(world, alice, client_for):
    building = alices_building()
    data = {"id_number": resident_in(building).reveal_id_number(), "reported_on": today(), "type": "confirmed"}
    c = client_for(alice)
    c.post(f"/units/{building.code}/record/cases/", data)
    r = c.post(f"/units/{building.code}/record/cases/", data, follow=True)
    assert PositiveCase.objects.count() == 1 and form_audits("cases").count() == 1
    assert "未作更改" in messages_of(r)


# --- measures ------------------------------------------------------------------------------------------

def test_it_starts_a_close_contact_and_withdraws_the_named_compound(world, alice, client_for):
    building = alices_building()
    compound = building.parent
    name_the(compound)
    person = resident_in(building)
    end = (dates.today() + dt.timedelta(days=6)).isoformat()
    r = client_for(alice).post(f"/units/{building.code}/record/close-contacts/",
                               {"id_number": person.reveal_id_number(), "start_on": today(), "end_on": end},
                               follow=True)
    m = Measure.objects.get()
    assert (m.kind, m.resident_id, m.end_on.isoformat()) == (MeasureKind.CLOSE_CONTACT, person.pk, end)
    text = messages_of(r)
    assert compound.name in text and "摘牌" in text
    assert Title.objects.get(unit=compound).withdrawn_on is not None


def test_a_measure_ending_before_it_starts_names_the_end_date(world, alice, client_for):
    building = alices_building()
    yesterday = (dates.today() - dt.timedelta(days=1)).isoformat()
    r = client_for(alice).post(f"/units/{building.code}/record/home-quarantines/",
                               {"id_number": resident_in(building).reveal_id_number(), "start_on": today(),
                                "end_on": yesterday})
    assert r.status_code == 400
    body = r.content.decode()
    assert "结束日期：结束日期" in body and "不能早于开始日期" in body
    assert not Measure.objects.exists()


def test_a_returnee_without_origin_names_the_origin(world, alice, client_for):
    building = alices_building()
    r = client_for(alice).post(f"/units/{building.code}/record/returnees/",
                               {"id_number": resident_in(building).reveal_id_number(), "origin": "",
                                "arrived_on": today(), "control_until": today()})
    assert r.status_code == 400
    assert "来源地：来源地不能为空" in r.content.decode()
    assert not Measure.objects.exists()


def test_a_returnee_is_recorded_with_origin(world, carol, client_for):
    building = alices_building()
    r = client_for(carol).post(f"/units/{building.code}/record/returnees/",
                               {"id_number": resident_in(building).reveal_id_number(), "origin": "某省某市",
                                "arrived_on": today(), "control_until": today()}, follow=True)
    assert r.status_code == 200
    assert Measure.objects.get().origin == "某省某市"


def test_a_person_registered_outside_the_scope_gets_the_answer_of_an_unknown_number(world, bob, client_for):
    """bob may record in 天桥社区; a fact on a resident registered in 文龙社区 is answered exactly like one
    on a number nobody holds (no existence oracle), and attached to nobody: it waits for the street."""
    from wuyiqu.health.models import HeldFacts

    tianqiao = Unit.objects.filter(path__startswith="/500110/500110002/500110002014/",
                                   kind=UnitKind.BUILDING).first()
    theirs = resident_in(alices_building())
    answers = []
    for number in (theirs.reveal_id_number(), NEW_ID):
        r = client_for(bob).post(f"/units/{tianqiao.code}/record/close-contacts/",
                                 {"id_number": number, "start_on": today(), "end_on": today()}, follow=True)
        assert r.status_code == 200
        answers.append(messages_of(r))
    assert answers[0] == answers[1] and "本辖区尚无该身份证号的登记居民" in answers[0]
    assert list(Measure.objects.values_list("resident_id", flat=True)) == [None, None]
    assert HeldFacts.objects.get().resident_id == theirs.pk


def _measure(alice, client_for, building):
    end = (dates.today() + dt.timedelta(days=5)).isoformat()
    client_for(alice).post(f"/units/{building.code}/record/close-contacts/",
                           {"id_number": resident_in(building).reveal_id_number(), "start_on": today(), "end_on": end})
    return Measure.objects.get()


def test_it_extends_a_measure_with_a_reason_and_says_which_units(world, alice, client_for):
    building = alices_building()
    m = _measure(alice, client_for, building)
    until = (m.end_on + dt.timedelta(days=3)).isoformat()
    r = client_for(alice).post(f"/measures/{m.pk}/extend/", {"on": until, "reason": "复查阳性"}, follow=True)
    m.refresh_from_db()
    assert m.end_on.isoformat() == until and m.changes.get().reason == "复查阳性"
    assert "已保存" in messages_of(r) and building.name in messages_of(r)


def test_an_extension_without_reason_names_the_reason_and_changes_nothing(world, alice, client_for):
    building = alices_building()
    m = _measure(alice, client_for, building)
    end = m.end_on
    r = client_for(alice).post(f"/measures/{m.pk}/extend/", {"on": (end + dt.timedelta(days=3)).isoformat(),
                                                              "reason": " "}, follow=True)
    m.refresh_from_db()
    assert m.end_on == end and not m.changes.exists()
    assert "原因：请填写原因" in messages_of(r)


def test_it_ends_a_measure_early_and_rechecks_the_chain(world, alice, client_for):
    building = alices_building()
    m = _measure(alice, client_for, building)
    r = client_for(alice).post(f"/measures/{m.pk}/end-early/", {"on": today(), "reason": "核酸阴性，解除"},
                               follow=True)
    m.refresh_from_db()
    assert m.end_on == dates.today()
    assert "已复核" in messages_of(r) and building.name in messages_of(r)


def test_an_early_end_after_the_current_end_names_the_date(world, alice, client_for):
    building = alices_building()
    m = _measure(alice, client_for, building)
    r = client_for(alice).post(f"/measures/{m.pk}/end-early/",
                               {"on": (m.end_on + dt.timedelta(days=1)).isoformat(), "reason": "x"}, follow=True)
    assert "解除日期：" in messages_of(r)
    assert not m.changes.exists()


# --- risk zones ------------------------------------------------------------------------------------------

def test_it_declares_and_lifts_a_risk_zone(world, alice, client_for):
    community = Unit.objects.get(code=WENLONG_COMMUNITY)
    compound = alices_building().parent
    name_the(compound)  # below the zone: a zone counts for the units below (no_risk_zone: not buildings)
    c = client_for(alice)
    start = (dates.today() - dt.timedelta(days=2)).isoformat()
    r = c.post(f"/units/{community.code}/record/risk-zones/", {"type": "high", "start_on": start, "end_on": ""},
               follow=True)
    zone = RiskZone.objects.get()
    assert zone.unit == community and zone.end_on is None
    text = messages_of(r)
    assert "及其下级单位" in text and compound.name in text and "摘牌" in text
    assert Title.objects.get(unit=compound).withdrawn_on == dates.today()
    page = c.get(f"/units/{community.code}/record/risk-zones/").content.decode()
    assert f"/units/{community.code}/risk-zones/{zone.pk}/lift/" in page
    r = c.post(f"/units/{community.code}/risk-zones/{zone.pk}/lift/", {"end_on": today()}, follow=True)
    zone.refresh_from_db()
    assert zone.end_on == dates.today() and "已保存" in messages_of(r)
    assert form_audits("risk-zones").count() == 2


def test_lifting_a_zone_before_its_start_is_refused_and_changes_nothing(world, alice, client_for):
    community = Unit.objects.get(code=WENLONG_COMMUNITY)
    c = client_for(alice)
    c.post(f"/units/{community.code}/record/risk-zones/", {"type": "temporary", "start_on": today()})
    zone = RiskZone.objects.get()
    before = (dates.today() - dt.timedelta(days=3)).isoformat()
    r = c.post(f"/units/{community.code}/risk-zones/{zone.pk}/lift/", {"end_on": before}, follow=True)
    zone.refresh_from_db()
    assert zone.end_on is None
    assert "结束日期：" in messages_of(r) and "不能早于开始日期" in messages_of(r)


# --- households, residents, the ledger, verifications -----------------------------------------------------

def test_it_adds_a_household_to_a_building(world, alice, client_for):
    building = alices_building()
    r = client_for(alice).post(f"/units/{building.code}/record/households/",
                               {"code": f"{building.code}-999", "address": "1栋999室", "verified_on": today()},
                               follow=True)
    h = Household.objects.get(code=f"{building.code}-999")
    assert h.unit == building and h.verifications.get().verified_on == dates.today()
    assert "已复核" in messages_of(r)


def test_a_household_counts_from_its_registration_day_and_is_not_verified_before_it(world, alice, client_for):
    building = alices_building()
    c = client_for(alice)
    registered = (dates.today() - dt.timedelta(days=2)).isoformat()
    before = (dates.today() - dt.timedelta(days=5)).isoformat()
    r = c.post(f"/units/{building.code}/record/households/",
               {"code": f"{building.code}-998", "address": "1栋998室", "verified_on": before, "registered_on": registered})
    assert r.status_code == 400
    assert "核实日期" in r.content.decode() and not Household.objects.filter(code=f"{building.code}-998").exists()
    c.post(f"/units/{building.code}/record/households/",
           {"code": f"{building.code}-998", "address": "1栋998室", "registered_on": registered})
    assert Household.objects.get(code=f"{building.code}-998").registered_on.isoformat() == registered


def test_a_household_code_in_use_is_refused_and_the_household_is_not_moved(world, alice, client_for):
    building = alices_building()
    other = Household.objects.exclude(unit=building).filter(unit__path__startswith=building.parent.path).first()
    r = client_for(alice).post(f"/units/{building.code}/record/households/",
                               {"code": other.code, "address": "别处"})
    assert r.status_code == 400
    assert "户编码：该户编码已登记" in r.content.decode()
    other.refresh_from_db()
    assert other.unit_id != building.pk and other.address != "别处"


def test_households_are_added_only_to_buildings_entrances_and_groups(world, alice, client_for):
    compound = alices_building().parent
    assert client_for(alice).get(f"/units/{compound.code}/record/households/").status_code == 404


def test_it_adds_a_resident_to_a_household(world, alice, client_for):
    household = Household.objects.filter(unit=alices_building()).first()
    r = client_for(alice).post(f"/households/{household.code}/residents/add/",
                               {"id_number": NEW_ID.lower(), "name": "新居民", "phone": "13800138000", "exempt": "1"},
                               follow=True)
    person = Resident.objects.get(name="新居民")
    assert person.household == household and person.bedridden and person.reveal_id_number() == NEW_ID
    assert person.phone_masked.startswith("138") and "已保存" in messages_of(r)


def test_a_registered_person_is_not_added_twice_nor_moved_by_the_add_form(world, alice, client_for):
    building = alices_building()
    person = resident_in(building)
    other = Household.objects.filter(unit=building).exclude(pk=person.household_id).first()
    r = client_for(alice).post(f"/households/{other.code}/residents/add/",
                               {"id_number": person.reveal_id_number(), "name": "改名"})
    assert r.status_code == 400
    assert "身份证号：该身份证号已登记为居民" in r.content.decode()
    person.refresh_from_db()
    assert person.household_id != other.pk and person.name != "改名"


def test_a_bad_phone_names_the_phone(world, alice, client_for):
    household = Household.objects.filter(unit=alices_building()).first()
    r = client_for(alice).post(f"/households/{household.code}/residents/add/",
                               {"id_number": NEW_ID, "name": "新居民", "phone": "12345"})
    assert r.status_code == 400
    assert "联系电话：" in r.content.decode()
    assert not Resident.objects.filter(name="新居民").exists()


def test_it_adds_edits_and_reviews_a_ledger_entry_with_its_helper(world, alice, client_for):
    building = alices_building()
    person = Resident.objects.filter(household__unit=building, special_entry__isnull=True).first()
    yesterday = (dates.today() - dt.timedelta(days=1)).isoformat()
    c = client_for(alice)
    r = c.post(f"/units/{building.code}/record/special-population/",
               {"id_number": person.reveal_id_number(), "tags": ["elderly_alone", "chronic"], "needs": "",
                "helper": "", "reviewed_on": "", "registered_on": yesterday}, follow=True)
    entry = SpecialPopulationEntry.objects.get(resident=person)
    assert (entry.tags, entry.helper, entry.reviewed_on) == ("elderly_alone,chronic", "", None)
    assert entry.registered_on.isoformat() == yesterday
    assert "已保存" in messages_of(r)
    # The missing helper, filled in by hand.
    r = c.post(f"/residents/{person.pk}/ledger/", {"tags": ["elderly_alone", "chronic"], "needs": "送药",
                                                   "helper": "王网格", "reviewed_on": ""}, follow=True)
    entry.refresh_from_db()
    assert (entry.needs, entry.helper) == ("送药", "王网格")
    assert entry.registered_on.isoformat() == yesterday  # an empty date keeps the one registered
    r = c.post(f"/residents/{person.pk}/ledger/review/", follow=True)
    entry.refresh_from_db()
    assert entry.reviewed_on == dates.today() and entry.helper == "王网格"
    assert form_audits("special-population").count() == 3


def test_a_ledger_entry_without_a_category_names_the_category(world, alice, client_for):
    person = resident_in(alices_building())
    r = client_for(alice).post(f"/residents/{person.pk}/ledger/", {"needs": "x", "helper": "y"})
    assert r.status_code == 400
    assert "类别：类别不能为空" in r.content.decode()
    assert not SpecialPopulationEntry.objects.filter(resident=person, needs="x").exists()


def test_one_tap_verifies_a_household_with_htmx_and_without(world, alice, client_for):
    building = alices_building()
    household = Household.objects.filter(unit=building).first()
    HouseholdVerification.objects.filter(household=household).delete()
    c = client_for(alice)
    page = c.get(f"/units/{building.code}/").content.decode()
    assert f"/households/{household.code}/verify/" in page
    r = c.post(f"/households/{household.code}/verify/", {"next": f"/units/{building.code}/"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200
    body = r.content.decode()
    assert "今日已核实" in body and "已复核" in body and f'id="verify-{household.pk}"' in body
    v = HouseholdVerification.objects.get(household=household)
    assert (v.verified_on, v.verifier) == (dates.today(), "alice")
    # Without JavaScript: a plain POST comes back to the page it was on; twice is harmless.
    r = c.post(f"/households/{household.code}/verify/", {"next": f"/units/{building.code}/"})
    assert r.status_code == 302 and r["Location"] == f"/units/{building.code}/"
    assert HouseholdVerification.objects.filter(household=household).count() == 1
    assert form_audits("verifications").count() == 1


def test_an_unsafe_next_is_ignored(world, alice, client_for):
    household = Household.objects.filter(unit=alices_building()).first()
    r = client_for(alice).post(f"/households/{household.code}/verify/", {"next": "https://evil.example/"})
    assert r.status_code == 302 and r["Location"] == f"/households/{household.code}/"


def test_it_takes_a_person_off_the_register_with_a_reason(world, alice, client_for):
    building = alices_building()
    name_the(building)
    person = resident_in(building)
    number = person.reveal_id_number()
    c = client_for(alice)
    end = (dates.today() + dt.timedelta(days=5)).isoformat()
    c.post(f"/units/{building.code}/record/close-contacts/", {"id_number": number, "start_on": today(), "end_on": end})
    assert Title.objects.get(unit=building).withdrawn_on is not None  # the close contact withdrew it
    r = c.post(f"/residents/{person.pk}/remove/", {"reason": "已迁往外省"}, follow=True)
    assert r.status_code == 200
    assert not Resident.objects.filter(pk=person.pk).exists()
    m = Measure.objects.get()
    assert (m.resident_id, m.unit_id) == (None, None)  # unmatched: the person lives in no unit now
    assert "移出登记" in messages_of(r) and building.name in messages_of(r)
    audit = AuditEvent.objects.get(action="units.remove_resident")
    assert audit.detail["reason"] == "已迁往外省" and audit.detail["measures"] == 1
    assert number not in str(audit.detail)
    # Registered again: the measure is linked again, as any fact stored before its person.
    household = Household.objects.filter(unit=building).first()
    c.post(f"/households/{household.code}/residents/add/", {"id_number": number, "name": "回来了"})
    m.refresh_from_db()
    assert m.resident_id == Resident.objects.get(name="回来了").pk


def test_a_removal_without_reason_names_the_reason_and_removes_nobody(world, alice, client_for):
    person = resident_in(alices_building())
    r = client_for(alice).post(f"/residents/{person.pk}/remove/", {"reason": "  "})
    assert r.status_code == 400
    assert "原因：请填写原因" in r.content.decode()
    assert Resident.objects.filter(pk=person.pk).exists()
    assert not AuditEvent.objects.filter(action="units.remove_resident").exists()


def test_it_moves_a_person_and_rechecks_both_homes(world, alice, client_for):
    from wuyiqu.units.models import PastResidence

    building = alices_building()
    person = resident_in(building)
    old = person.household
    # A household of another building of the community (perhaps in one of its entrances).
    target = (Household.objects.filter(unit__path__startswith=f"/500110/500110002/{WENLONG_COMMUNITY}/")
              .exclude(unit__path__startswith=building.path).select_related("unit__parent").first())
    target_building = target.unit if target.unit.kind == UnitKind.BUILDING else target.unit.parent
    name_the(target_building)
    c = client_for(alice)
    end = (dates.today() + dt.timedelta(days=5)).isoformat()
    c.post(f"/units/{building.code}/record/close-contacts/",
           {"id_number": person.reveal_id_number(), "start_on": today(), "end_on": end})
    assert Title.objects.get(unit=target_building).withdrawn_on is None  # not yet: the person lives elsewhere
    r = c.post(f"/residents/{person.pk}/move/", {"household_code": target.code, "moved_on": today()}, follow=True)
    assert r.status_code == 200
    person.refresh_from_db()
    assert (person.household_id, person.moved_on) == (target.pk, dates.today())
    assert PastResidence.objects.get(resident=person).household_id == old.pk
    text = messages_of(r)
    assert building.name in text and target_building.name in text and "摘牌" in text
    # The close contact now lives in the named building: withdrawn in the move's transaction.
    assert Title.objects.get(unit=target_building).withdrawn_on == dates.today()
    assert AuditEvent.objects.filter(action="units.move_resident", actor=alice).count() == 1


def test_a_move_to_an_unknown_or_foreign_household_names_the_household_code(world, alice, client_for):
    person = resident_in(alices_building())
    foreign = Household.objects.filter(unit__path__startswith="/500110/500110002/500110002014/").first()
    c = client_for(alice)
    for code in ("NOPE-1", foreign.code):
        r = c.post(f"/residents/{person.pk}/move/", {"household_code": code, "moved_on": today()})
        assert r.status_code == 400
        assert "迁入户编码：" in r.content.decode() and "不存在" in r.content.decode()
    person.refresh_from_db()
    assert person.household.unit == alices_building()
    assert not AuditEvent.objects.filter(action="units.move_resident").exists()


def test_a_move_dated_tomorrow_names_the_date(world, alice, client_for):
    building = alices_building()
    person = resident_in(building)
    target = Household.objects.filter(unit=building).exclude(pk=person.household_id).first()
    tomorrow = (dates.today() + dt.timedelta(days=1)).isoformat()
    r = client_for(alice).post(f"/residents/{person.pk}/move/", {"household_code": target.code, "moved_on": tomorrow})
    assert r.status_code == 400
    assert "迁入日期：" in r.content.decode()
    person.refresh_from_db()
    assert person.household_id != target.pk


def test_a_new_resident_counts_from_the_day_given(world, alice, client_for):
    household = Household.objects.filter(unit=alices_building()).first()
    arrived = (dates.today() - dt.timedelta(days=3)).isoformat()
    client_for(alice).post(f"/households/{household.code}/residents/add/",
                           {"id_number": NEW_ID, "name": "新居民", "moved_on": arrived})
    assert Resident.objects.get(name="新居民").moved_on.isoformat() == arrived


# --- who gets the forms -----------------------------------------------------------------------------------

def _urls(building: Unit) -> list[tuple[str, str]]:
    household = Household.objects.filter(unit=building).first()
    person = resident_in(building)
    zone = RiskZone.objects.create(unit=building, zone_type="high", start_on=dates.today())
    urls = [("get", f"/units/{building.code}/record/{kind}/") for kind in
            ("cases", "close-contacts", "home-quarantines", "returnees", "risk-zones", "households",
             "special-population")]
    return urls + [
        ("post", f"/units/{building.code}/risk-zones/{zone.pk}/lift/"),
        ("get", f"/households/{household.code}/residents/add/"),
        ("post", f"/households/{household.code}/verify/"),
        ("get", f"/residents/{person.pk}/ledger/"),
        ("post", f"/residents/{person.pk}/ledger/review/"),
        ("post", f"/residents/{person.pk}/remove/"),
        ("post", f"/residents/{person.pk}/move/"),
    ]


def test_outside_the_scope_every_form_is_a_404(world, bob, client_for):
    c = client_for(bob)
    for method, url in _urls(alices_building()):
        assert getattr(c, method)(url).status_code == 404, url
    assert not HouseholdVerification.objects.filter(verifier="bob").exists()


def test_a_building_head_gets_no_form_even_on_his_own_building(world, dave, client_for):
    c = client_for(dave)
    building = dave.unit
    for method, url in _urls(building):
        assert getattr(c, method)(url).status_code == 404, url
    page = c.get(f"/units/{building.code}/").content.decode()
    assert "/record/" not in page and "/verify/" not in page


def test_staff_see_the_forms_on_their_unit_pages(world, alice, client_for):
    building = alices_building()
    c = client_for(alice)
    page = c.get(f"/units/{building.code}/").content.decode()
    for kind in ("cases", "close-contacts", "home-quarantines", "returnees", "risk-zones", "households"):
        assert f"/units/{building.code}/record/{kind}/" in page
    household = Household.objects.filter(unit=building).first()
    page = c.get(f"/households/{household.code}/").content.decode()
    assert f"/households/{household.code}/residents/add/" in page
    measures = c.get(f"/units/{WENLONG_COMMUNITY}/measures/").content.decode()
    for kind in ("close-contacts", "home-quarantines", "returnees"):
        assert f"/units/{WENLONG_COMMUNITY}/record/{kind}/" in measures
    for kind in ("cases", "households"):
        form = c.get(f"/units/{building.code}/record/{kind}/")
        assert form.status_code == 200 and 'name="viewport"' in form.content.decode()
