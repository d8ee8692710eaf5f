"""Immediate revocation when facts arrive: the cascade goes exactly as far as the criteria say."""

from __future__ import annotations

import datetime

import pytest
from test_standards_world import D, days
from test_supervision_world import ALL, SHANGHAI, at, current_codes, named_street

from wuyiqu.audit.models import AuditEvent
from wuyiqu.certification.models import Title
from wuyiqu.health.actions import do_record_case, do_record_risk_zone
from wuyiqu.supervision.models import TitleEvent
from wuyiqu.supervision.services import recheck_after_facts
from wuyiqu.units.models import Resident

pytestmark = pytest.mark.django_db


def id_number_of(resident: Resident) -> str:
    return resident.reveal_id_number()


def test_nothing_fails_nothing_is_withdrawn():
    u = named_street()
    with at(D):
        out = recheck_after_facts({u["B1"].pk}, source="test")
    assert out.withdrawn == [] and current_codes() == ALL
    assert not AuditEvent.objects.filter(action__startswith="supervision").exists()


def test_a_case_in_a_building_withdraws_the_building_its_compound_community_and_street():
    u = named_street()
    r = Resident.objects.filter(household__unit=u["B1"]).first()
    with at(D):
        do_record_case(actor=None, reported_on=D - days(1), case_type="confirmed", id_number=id_number_of(r))
    # no_case rolls up: B1, C1, T1C and T1 all have the case among their residents. B2 and B9
    # (other buildings), the village and its group do not.
    assert current_codes() == ALL - {"T1C-C1-B1", "T1C-C1", "T1C", "T1"}
    b1 = Title.objects.get(unit=u["B1"])
    assert b1.withdrawn_on == D
    assert "近8天无疫情" in b1.withdrawn_reason and "阳性" in b1.withdrawn_reason
    assert TitleEvent.objects.filter(kind="withdrawn", source="health.record_case").count() == 4
    event = TitleEvent.objects.get(unit=u["B1"])
    assert (event.criteria, event.on, event.title) == (["no_case"], D, b1)
    assert event.at == datetime.datetime(2022, 11, 28, 10, 0, tzinfo=SHANGHAI)
    assert AuditEvent.objects.filter(action="supervision.recheck").count() == 1


def test_a_case_outside_the_window_withdraws_nothing():
    u = named_street()
    r = Resident.objects.filter(household__unit=u["B1"]).first()
    with at(D):
        do_record_case(actor=None, reported_on=D - days(8), case_type="confirmed", id_number=id_number_of(r))
    assert current_codes() == ALL


def test_a_building_withdrawn_by_hand_takes_its_compound_and_through_it_the_community():
    """B1 still passes its own standard, but C1 needs every building *named* (children_named) and
    C1, failing that, is neither named nor eligible: the community fails children_free, and so the street."""
    from wuyiqu.supervision.actions import do_withdraw_title

    u = named_street()
    from wuyiqu.accounts.actions import do_create_user

    erin = do_create_user(actor=None, username="cmd", password="x-long-password-1", role="command", unit=u["T"],
                          display_name="cmd")
    with at(D):
        do_withdraw_title(actor=erin, unit=u["B1"], reason="核查发现申报材料不实")
    assert current_codes() == ALL - {"T1C-C1-B1", "T1C-C1", "T1C", "T1"}
    c1 = Title.objects.get(unit=u["C1"])
    assert "所有楼栋均为无疫楼栋" in c1.withdrawn_reason
    assert "所辖社、小区、楼栋均获称号或达标" in Title.objects.get(unit=u["T1C"]).withdrawn_reason


def test_a_loose_building_withdrawn_by_hand_leaves_the_community_named_while_it_stays_eligible():
    """children_free accepts named OR eligible: B9 (directly under the community) lost its title but
    still meets its standard, so 测试社区 keeps its title."""
    from wuyiqu.accounts.actions import do_create_user
    from wuyiqu.supervision.actions import do_withdraw_title

    u = named_street()
    erin = do_create_user(actor=None, username="cmd", password="x-long-password-1", role="command", unit=u["T"],
                          display_name="cmd")
    with at(D):
        out = do_withdraw_title(actor=erin, unit=u["B9"], reason="误报")
    assert out.withdrawn == ["T1C-B9"]
    assert current_codes() == ALL - {"T1C-B9"}


def test_a_case_on_the_community_itself_withdraws_it_and_the_street_but_not_the_units_below():
    u = named_street()
    with at(D):
        do_record_case(actor=None, reported_on=D, case_type="asymptomatic", unit=u["T1C"])
    assert current_codes() == ALL - {"T1C", "T1"}
    assert "近8天无疫情" in Title.objects.get(unit=u["T1C"]).withdrawn_reason


def test_a_risk_zone_on_the_community_withdraws_the_units_it_covers_above_and_below():
    u = named_street()
    with at(D):
        do_record_risk_zone(actor=None, unit=u["T1C"], zone_type="high", start_on=D)
    # no_risk_zone is not a building criterion; the compound (below), the community and the street
    # (above) fail it. The buildings keep their titles; the compound falls, and the community with it.
    assert current_codes() == ALL - {"T1C-C1", "T1C", "T1"}


def test_a_refused_fact_withdraws_nothing():
    from wuyiqu.health.actions import FactRefused

    u = named_street()
    r = Resident.objects.filter(household__unit=u["B1"]).first()
    with at(D), pytest.raises(FactRefused):
        do_record_case(actor=None, reported_on=D + days(1), case_type="confirmed", id_number=id_number_of(r))
    assert current_codes() == ALL


def test_a_fact_reads_only_its_community_and_judges_the_named_street_from_it():
    from wuyiqu.health.models import PositiveCase

    u = named_street()
    PositiveCase.objects.create(unit=u["B2"], id_hash="", reported_on=D, case_type="confirmed")
    with at(D):
        out = recheck_after_facts({u["B2"].pk}, source="test")
    assert sorted(e.unit.code for e in out.results) == ["T1C", "T1C-B9", "T1C-C1", "T1C-C1-B1", "T1C-C1-B2"]
    assert sorted(out.withdrawn) == ["T1", "T1C", "T1C-C1", "T1C-C1-B2"]
    street = Title.objects.get(unit=u["T1"])
    assert "近8天无疫情：测试社区：" in street.withdrawn_reason  # judged from its community
    assert "no_case" not in street.withdrawn_reason  # a page shows the criterion's name, never its id


def test_a_case_recorded_on_the_street_itself_is_judged_on_the_whole_street():
    u = named_street()
    with at(D):
        do_record_case(actor=None, reported_on=D, case_type="confirmed", unit=u["T1"])
    assert current_codes() == ALL - {"T1"}


def test_a_street_whose_community_still_passes_keeps_its_title_when_a_building_below_goes_by_hand():
    from wuyiqu.accounts.actions import do_create_user
    from wuyiqu.supervision.actions import do_withdraw_title

    u = named_street()
    erin = do_create_user(actor=None, username="cmd", password="x-long-password-1", role="command", unit=u["T"],
                          display_name="cmd")
    with at(D):
        do_withdraw_title(actor=erin, unit=u["G1"], reason="核查")
    # 测试村 accepts a group that is eligible though not named (children_free); the street keeps its title.
    assert current_codes() == ALL - {"T1V-G1"}
