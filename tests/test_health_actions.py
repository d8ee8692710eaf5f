"""health.actions: recording facts, the boundaries of "under measure on D", early end and extension."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import TIANQIAO_COMMUNITY, WENLONG_COMMUNITY

from wuyiqu.audit.models import AuditEvent
from wuyiqu.health import actions, selectors
from wuyiqu.health.models import (
    CaseType,
    Measure,
    MeasureChange,
    MeasureKind,
    PositiveCase,
    RiskZone,
    ZoneType,
)
from wuyiqu.lib import dates
from wuyiqu.lib.idcard import check_digit
from wuyiqu.units.models import Resident, Unit, UnitKind

DAY = dt.timedelta(days=1)


def outsider_id(seq: int = 1) -> str:
    """A valid ID number of nobody in the generated world (a Beijing region code it never uses)."""
    first17 = f"11010119800101{seq:03d}"
    return first17 + check_digit(first17)


def resident_in(code: str) -> Resident:
    return Resident.objects.filter(household__unit__path__contains=f"/{code}/").order_by("id").first()


def community(code: str) -> Unit:
    return Unit.objects.get(code=code)


@pytest.fixture
def today():
    return dates.today()


def record_contact(resident, start, end, actor=None):
    return actions.do_record_measure(actor=actor, kind=MeasureKind.CLOSE_CONTACT,
                                     id_number=resident.reveal_id_number(), start_on=start, end_on=end)


def test_it_records_a_measure_on_the_residents_household_unit(world, alice, today):
    r = resident_in(WENLONG_COMMUNITY)
    m = record_contact(r, today - 3 * DAY, today + 4 * DAY, actor=alice)
    assert (m.resident_id, m.unit_id) == (r.pk, r.household.unit_id)
    assert m.id_hash == r.id_hash and m.id_masked == r.id_masked
    assert AuditEvent.objects.filter(action="health.record_measure", target_id=str(m.pk), actor=alice).count() == 1


def test_under_measure_boundaries(world, today):
    wenlong = community(WENLONG_COMMUNITY)
    rs = list(Resident.objects.filter(household__unit__path__startswith=wenlong.path).order_by("id")[:3])
    ended_yesterday = record_contact(rs[0], today - 10 * DAY, today - DAY)
    ends_today = record_contact(rs[1], today - 10 * DAY, today)
    starts_today = record_contact(rs[2], today, today + 7 * DAY)
    under_today = set(selectors.measures_on(wenlong, on=today).values_list("pk", flat=True))
    assert ended_yesterday.pk not in under_today  # ended yesterday: free today
    assert ends_today.pk in under_today  # the end day still counts
    assert starts_today.pk in under_today
    # Seen from yesterday, the measure starting today has not started yet ("starts tomorrow").
    under_yesterday = set(selectors.measures_on(wenlong, on=today - DAY).values_list("pk", flat=True))
    assert starts_today.pk not in under_yesterday
    assert {ended_yesterday.pk, ends_today.pk} <= under_yesterday
    # Kind filter and subtree: nothing of 文龙社区 shows under 天桥社区.
    assert not selectors.measures_on(community(TIANQIAO_COMMUNITY), on=today).exists()
    assert not selectors.measures_on(wenlong, on=today, kind=MeasureKind.HOME_QUARANTINE).exists()


def test_future_dates_are_refused_except_the_end_of_a_measure(world, today):
    r = resident_in(WENLONG_COMMUNITY)
    with pytest.raises(actions.FactRefused, match="日期不能晚于今天"):
        actions.do_record_case(actor=None, id_number=r.reveal_id_number(), reported_on=today + DAY,
                               case_type=CaseType.CONFIRMED)
    with pytest.raises(actions.FactRefused, match="开始日期不能晚于今天"):
        record_contact(r, today + DAY, today + 5 * DAY)
    with pytest.raises(actions.FactRefused, match="到达日期不能晚于今天"):
        actions.do_record_measure(actor=None, kind=MeasureKind.RETURNEE, id_number=r.reveal_id_number(),
                                  start_on=today + DAY, end_on=today + 7 * DAY, origin="某市")
    with pytest.raises(actions.FactRefused, match="日期不能晚于今天"):
        actions.do_record_risk_zone(actor=None, unit=community(WENLONG_COMMUNITY), zone_type=ZoneType.HIGH,
                                    start_on=today + DAY)
    assert not PositiveCase.objects.exists() and not Measure.objects.exists() and not RiskZone.objects.exists()
    # A returnee's end of control lies ahead naturally.
    m = actions.do_record_measure(actor=None, kind=MeasureKind.RETURNEE, id_number=r.reveal_id_number(),
                                  start_on=today - DAY, end_on=today + 6 * DAY, origin="某省某市")
    assert m.end_on == today + 6 * DAY and m.origin == "某省某市"


def test_bad_measures_are_refused_with_a_reason(world, today):
    r = resident_in(WENLONG_COMMUNITY)
    with pytest.raises(actions.FactRefused, match="不能早于开始日期"):
        record_contact(r, today - DAY, today - 2 * DAY)
    with pytest.raises(actions.FactRefused, match="校验位"):
        wrong = outsider_id()[:-1] + ("1" if outsider_id().endswith("0") else "0")
        actions.do_record_measure(actor=None, kind=MeasureKind.CLOSE_CONTACT, id_number=wrong,
                                  start_on=today, end_on=today)
    with pytest.raises(actions.FactRefused, match="来源地不能为空"):
        actions.do_record_measure(actor=None, kind=MeasureKind.RETURNEE, id_number=r.reveal_id_number(),
                                  start_on=today, end_on=today, origin=" ")
    record_contact(r, today - DAY, today + DAY)
    with pytest.raises(actions.FactRefused, match="已登记"):
        record_contact(r, today - DAY, today + 3 * DAY)
    assert Measure.objects.count() == 1


def test_an_unmatched_id_is_kept_with_resident_and_unit_empty(world, today):
    m = actions.do_record_measure(actor=None, kind=MeasureKind.HOME_QUARANTINE, id_number=outsider_id(),
                                  start_on=today, end_on=today + DAY)
    c = actions.do_record_case(actor=None, id_number=outsider_id(), reported_on=today, case_type=CaseType.ASYMPTOMATIC)
    for fact in (m, c):
        assert fact.resident_id is None and fact.unit_id is None and fact.id_hash
    # Recording the unmatched case again adds nothing (the partial unique key covers NULL units).
    with pytest.raises(actions.FactRefused, match="已登记"):
        actions.do_record_case(actor=None, id_number=outsider_id(), reported_on=today, case_type=CaseType.ASYMPTOMATIC)
    assert PositiveCase.objects.count() == 1


def test_a_case_on_a_unit_counts_for_that_unit_and_above(world, today):
    building = Unit.objects.filter(path__contains=f"/{WENLONG_COMMUNITY}/", kind=UnitKind.BUILDING).first()
    case = actions.do_record_case(actor=None, unit=building, reported_on=today - 7 * DAY, case_type=CaseType.CONFIRMED)
    assert case.unit_id == building.pk and case.id_hash == "" and case.resident_id is None
    wenlong = community(WENLONG_COMMUNITY)
    assert list(selectors.cases_within(wenlong, on=today, days=8)) == [case]  # D-7 is inside 8 days
    assert not selectors.cases_within(wenlong, on=today, days=7).exists()  # ... and outside 7
    assert not selectors.cases_within(community(TIANQIAO_COMMUNITY), on=today, days=8).exists()
    with pytest.raises(actions.FactRefused, match="二选一"):
        actions.do_record_case(actor=None, unit=building, id_number=outsider_id(), reported_on=today,
                               case_type=CaseType.CONFIRMED)
    with pytest.raises(actions.FactRefused, match="已登记"):
        actions.do_record_case(actor=None, unit=building, reported_on=today - 7 * DAY, case_type=CaseType.CONFIRMED)


def test_end_early_writes_a_change_with_the_reason_and_an_audit_row(world, alice, today):
    m = record_contact(resident_in(WENLONG_COMMUNITY), today - 5 * DAY, today + 5 * DAY)
    actions.do_end_measure_early(m, actor=alice, on=today - DAY, reason="核酸连续阴性，经评估解除")
    m.refresh_from_db()
    assert m.end_on == today - DAY
    change = MeasureChange.objects.get(measure=m)
    assert (change.old_end_on, change.new_end_on, change.reason, change.actor) == (
        today + 5 * DAY, today - DAY, "核酸连续阴性，经评估解除", alice)
    event = AuditEvent.objects.get(action="health.end_measure_early", target_id=str(m.pk))
    assert event.actor == alice and event.detail["reason"] == "核酸连续阴性，经评估解除"
    assert m.pk not in set(selectors.measures_on(community(WENLONG_COMMUNITY), on=today).values_list("pk", flat=True))


@pytest.mark.parametrize(("on_offset", "reason", "message"), [
    (-6, "原因", "不能早于开始日期"),  # before the start
    (5, "原因", "应早于原结束日期"),  # not earlier than the current end
    (1, "原因", "解除日期不能晚于今天"),  # in the future
    (0, "  ", "请填写原因"),
])
def test_an_illegal_early_end_is_refused_and_changes_nothing(world, alice, today, on_offset, reason, message):
    m = record_contact(resident_in(WENLONG_COMMUNITY), today - 5 * DAY, today + 5 * DAY)
    with pytest.raises(actions.FactRefused, match=message):
        actions.do_end_measure_early(m, actor=alice, on=today + on_offset * DAY, reason=reason)
    m.refresh_from_db()
    assert m.end_on == today + 5 * DAY
    assert not MeasureChange.objects.exists()
    assert not AuditEvent.objects.filter(action="health.end_measure_early").exists()


def test_extension_is_audited_and_refuses_to_shorten_or_reopen(world, alice, today):
    m = record_contact(resident_in(WENLONG_COMMUNITY), today - 5 * DAY, today + 2 * DAY)
    with pytest.raises(actions.FactRefused, match="应晚于原结束日期"):
        actions.do_extend_measure(m, actor=alice, until=today + 2 * DAY, reason="复检")
    with pytest.raises(actions.FactRefused, match="应晚于原结束日期"):
        actions.do_extend_measure(m, actor=alice, until=today, reason="复检")
    actions.do_extend_measure(m, actor=alice, until=today + 9 * DAY, reason="同住人员转阳，延长隔离")
    m.refresh_from_db()
    assert m.end_on == today + 9 * DAY
    change = MeasureChange.objects.get(measure=m)
    assert (change.old_end_on, change.new_end_on, change.reason) == (today + 2 * DAY, today + 9 * DAY,
                                                                       "同住人员转阳，延长隔离")
    assert AuditEvent.objects.get(action="health.extend_measure").detail["reason"] == "同住人员转阳，延长隔离"
    old = record_contact(resident_in(TIANQIAO_COMMUNITY), today - 20 * DAY, today - 10 * DAY)
    with pytest.raises(actions.FactRefused, match="已于.*结束"):
        actions.do_extend_measure(old, actor=alice, until=today + DAY, reason="补录")


def test_risk_zone_ongoing_covers_the_unit_its_ancestors_and_descendants(world, alice, today):
    building = Unit.objects.filter(path__contains=f"/{WENLONG_COMMUNITY}/", kind=UnitKind.BUILDING).first()
    zone = actions.do_record_risk_zone(actor=alice, unit=building, zone_type=ZoneType.TEMPORARY,
                                       start_on=today - 30 * DAY)
    assert zone.end_on is None
    for unit in (building, building.parent, community(WENLONG_COMMUNITY), world):
        assert list(selectors.risk_zones_covering(unit, on=today)) == [zone]
    assert not selectors.risk_zones_covering(community(TIANQIAO_COMMUNITY), on=today).exists()
    assert not selectors.risk_zones_covering(building, on=today - 31 * DAY).exists()
    # A community-wide zone covers a building below it.
    actions.do_record_risk_zone(actor=alice, unit=community(TIANQIAO_COMMUNITY), zone_type=ZoneType.HIGH,
                                start_on=today - DAY, end_on=today - DAY)
    tianqiao_building = Unit.objects.filter(path__contains=f"/{TIANQIAO_COMMUNITY}/", kind=UnitKind.BUILDING).first()
    assert selectors.risk_zones_covering(tianqiao_building, on=today - DAY).count() == 1
    assert not selectors.risk_zones_covering(tianqiao_building, on=today).exists()  # ended yesterday
    with pytest.raises(actions.FactRefused, match="不能早于开始日期"):
        actions.do_end_risk_zone(zone, actor=alice, on=today - 31 * DAY, reason="解封")
    actions.do_end_risk_zone(zone, actor=alice, on=today - DAY, reason="连续无新增，解除管控")
    zone.refresh_from_db()
    assert zone.end_on == today - DAY
    assert AuditEvent.objects.get(action="health.end_risk_zone").detail["reason"] == "连续无新增，解除管控"
    with pytest.raises(actions.FactRefused, match="已于"):
        actions.do_end_risk_zone(zone, actor=alice, on=today, reason="再次")
