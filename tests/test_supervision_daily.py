"""Warnings (警示提醒) opening, rectifying and expiring across days, and the idempotent daily run."""

from __future__ import annotations

import datetime

import pytest
from django.core.management import call_command
from test_standards_world import BUILDING_ITEMS, D, days, inspect, make_resident, make_unit, nat
from test_supervision_world import ALL, SHANGHAI, at, current_codes, named_street

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.audit.models import AuditEvent
from wuyiqu.certification.models import Title
from wuyiqu.health.models import PositiveCase
from wuyiqu.inspections.actions import do_record_inspection
from wuyiqu.notifications.models import Notification
from wuyiqu.standards.evaluator import evaluate
from wuyiqu.standards.models import Evaluation
from wuyiqu.supervision.models import TitleEvent, Warning
from wuyiqu.supervision.services import run_daily
from wuyiqu.units.models import Household, HouseholdVerification

pytestmark = pytest.mark.django_db


def failing_masks_on_b9(u):
    with at(D):
        do_record_inspection(actor=None, unit=u["B9"], inspected_on=D, results={"masks": False}, inspector="王")


def people(u):
    head = do_create_user(actor=None, username="b9head", password="x-long-password-1", role="building_head",
                          unit=u["B9"], display_name="楼栋长")
    staff = do_create_user(actor=None, username="t1cstaff", password="x-long-password-1", role="community_staff",
                           unit=u["T1C"], display_name="社区")
    other = do_create_user(actor=None, username="t1vstaff", password="x-long-password-1", role="community_staff",
                           unit=u["T1V"], display_name="村")
    return head, staff, other


def test_a_failed_inspection_opens_a_warning_at_once_and_tells_the_responsible_people():
    u = named_street()
    head, staff, other = people(u)
    failing_masks_on_b9(u)
    w = Warning.objects.get()
    assert (w.unit_id, w.criterion, w.status, w.opened_on, w.deadline, w.opened_by) == (
        u["B9"].pk, "mask_compliance", "open", D, D + days(3), None)
    assert w.title == Title.objects.get(unit=u["B9"])
    assert w.created_at == datetime.datetime(2022, 11, 28, 10, 0, tzinfo=SHANGHAI)
    assert current_codes() == ALL  # a warn criterion withdraws nothing at once
    assert Notification.objects.filter(user=head, text__contains="警示").exists()
    assert Notification.objects.filter(user=staff, text__contains="警示").exists()
    assert not Notification.objects.filter(user=other).exists()


def test_a_warning_closes_as_rectified_when_the_criterion_passes_again():
    u = named_street()
    failing_masks_on_b9(u)
    with at(D + days(1)):
        do_record_inspection(actor=None, unit=u["B9"], inspected_on=D + days(1), results={"masks": True},
                             inspector="王")
    w = Warning.objects.get()
    assert (w.status, w.closed_on) == ("rectified", D + days(1))
    with at(D + days(3)):
        run_daily(on=D + days(3))
    assert current_codes() == ALL


def test_a_warning_still_failing_at_its_deadline_withdraws_the_title_and_the_cascade_follows():
    u = named_street()
    failing_masks_on_b9(u)
    for n in (1, 2):
        with at(D + days(n)):
            out = run_daily(on=D + days(n))
        assert out.withdrawn == [] and Warning.objects.get().status == "open"
    with at(D + days(3)):
        out = run_daily(on=D + days(3))
    # B9 (directly under the community) is neither named nor eligible now: the community fails
    # children_free, and the street (over its communities) with it. The compound and the village stay.
    assert sorted(out.withdrawn) == ["T1", "T1C", "T1C-B9"]
    assert current_codes() == ALL - {"T1", "T1C", "T1C-B9"}
    w = Warning.objects.get()
    assert (w.status, w.closed_on) == ("expired", D + days(3))
    b9 = Title.objects.get(unit=u["B9"])
    assert b9.withdrawn_on == D + days(3) and "警示逾期未整改" in b9.withdrawn_reason
    assert "规范佩戴口罩" in b9.withdrawn_reason
    assert TitleEvent.objects.get(unit=u["B9"]).warning == w


def test_the_daily_run_opens_warnings_for_failures_it_finds_and_stores_the_day():
    u = named_street()
    inspect(u["B2"], ["masks"], D, passed=False)  # written behind supervision's back
    with at(D):
        out = run_daily(on=D)
    assert out.opened == 1 and Warning.objects.get().unit_id == u["B2"].pk
    assert Evaluation.objects.filter(on=D).count() == out.evaluated == 8
    assert Evaluation.objects.get(on=D, unit=u["B2"]).failed == ["mask_compliance"]


def snapshot():
    return (
        sorted(Title.objects.values_list("id", "withdrawn_on", "withdrawn_reason")),
        sorted(Warning.objects.values_list("id", "status", "closed_on", "deadline")),
        TitleEvent.objects.count(), Notification.objects.count(), AuditEvent.objects.count(),
        sorted(Evaluation.objects.values_list("id", "unit_id", "on", "eligible", "named", "created_at")),
    )


def test_running_the_day_twice_changes_nothing_the_second_time():
    u = named_street()
    people(u)
    failing_masks_on_b9(u)
    inspect(u["B1"], BUILDING_ITEMS, D, passed=True)
    with at(D + days(3)):
        first = run_daily(on=D + days(3))
        before = snapshot()
        second = run_daily(on=D + days(3))
    assert first.withdrawn and first.stored == 8
    assert (second.withdrawn, second.opened, second.rectified, second.expired, second.closed, second.stored) == (
        [], 0, 0, 0, 0, 0)
    assert snapshot() == before
    assert Evaluation.objects.filter(on=D + days(3), named=False).count() == 3


def test_the_command_prints_the_counts(capsys):
    named_street()
    with at(D):
        call_command("supervise", "--date", D.isoformat())
    out = capsys.readouterr().out
    assert "评估 8 个单位" in out and "摘牌 0" in out


def test_a_warning_opened_meanwhile_by_another_check_is_not_doubled(monkeypatch):
    """The race: two checks both read no open warning and both open one; the partial unique index
    keeps one and the second insert is ignored instead of failing the import that triggered it."""
    from wuyiqu.supervision import services

    u = named_street()
    failing_masks_on_b9(u)
    assert Warning.objects.count() == 1
    monkeypatch.setattr(services, "_open_warnings", lambda on, targets, districts, scope=None: {})
    with at(D):
        out = services.recheck_after_facts({u["B9"].pk}, source="test")
    assert out.opened == 1  # it tried
    assert Warning.objects.filter(status="open").count() == 1


def test_a_person_with_many_notices_in_one_pass_gets_one_summary(monkeypatch):
    from wuyiqu.supervision import notices

    u = named_street()
    head, staff, _other = people(u)
    street_staff = do_create_user(actor=None, username="st", password="x-long-password-1", role="street_staff",
                                  unit=u["T1"], display_name="街道")
    monkeypatch.setattr(notices, "DIGEST_OVER", 2)
    for key in ("B1", "B2", "B9"):
        inspect(u[key], ["masks"], D, passed=False)
    with at(D):
        run_daily(on=D)
    # Three warnings below the community and the street: more than 2 each for staff and street staff.
    assert list(Notification.objects.filter(user=staff).values_list("text", flat=True)) == [
        "【监督】本次检查涉及您负责的单位 3 项摘牌、警示或整改变化，请逐一查看各单位的监督记录"]
    assert Notification.objects.filter(user=street_staff).count() == 1
    assert Notification.objects.filter(user=head).count() == 1  # B9's own warning, as it is
    assert "口罩" in Notification.objects.get(user=head).text


def second_district() -> dict:
    """Another district beside named_street's: S └ S1 街道 └ S1C 社区 ─ S1C-B1, S1C-B2 (both named, one
    household each, everything good on D) — then a positive case in B1 and a failed mask check in B2,
    both written behind supervision's back."""
    s = {"S": make_unit("S", "district", name="另一区")}
    s["S1"] = make_unit("S1", "street", s["S"], "另一街道")
    s["S1C"] = make_unit("S1C", "community", s["S1"], "另一社区")
    for key in ("B1", "B2"):
        s[key] = make_unit(f"S1C-{key}", "building", s["S1C"], f"另一社区{key}栋")
        hh = Household.objects.create(code=f"S1C-{key}-101", unit=s[key], address=f"另一社区{key}栋101")
        HouseholdVerification.objects.create(household=hh, verified_on=D)
        resident = make_resident(hh)
        nat(resident, D)
        inspect(s[key], BUILDING_ITEMS, D)
        Title.objects.create(unit=s[key], title="无疫楼栋", named_on=D - days(30))
    case_of = make_resident(Household.objects.get(unit=s["B1"]), name="李四")
    PositiveCase.objects.create(resident=case_of, unit=s["B1"], id_hash=case_of.id_hash, reported_on=D,
                                case_type="confirmed")
    inspect(s["B2"], ["masks"], D, passed=False)
    return s


def test_a_city_is_run_one_district_at_a_time_with_the_verdicts_of_one_pass():
    u = named_street()
    failing_masks_on_b9(u)  # district T: a warning open before the run, still failing, not yet due
    s = second_district()
    with at(D):
        out = run_daily(on=D)
    assert out.withdrawn == ["S1C-B1"]
    assert out.opened == 1 and Warning.objects.get(unit=s["B2"]).status == "open"
    # S's pass neither saw nor closed T's open warning (it reads and closes only its own district's).
    assert Warning.objects.get(unit=u["B9"]).status == "open"
    # Both districts' days are stored (S's pass did not replace T's rows), with the verdicts one
    # evaluation of the whole tree gives after the withdrawal.
    assert out.evaluated == out.stored == Evaluation.objects.filter(on=D).count() == 8 + 4
    stored = {e.unit_id: (e.eligible, e.named, e.failed) for e in Evaluation.objects.filter(on=D)}
    assert stored == {e.unit.id: (e.eligible, e.named, e.failed) for e in evaluate(D)}
    assert sorted(AuditEvent.objects.filter(action="supervision.daily").values_list("detail__scope", flat=True)) == [
        "/S/", "/T/"]
    before = snapshot()
    with at(D):
        again = run_daily(on=D)
    assert (again.withdrawn, again.opened, again.rectified, again.expired, again.closed, again.stored) == (
        [], 0, 0, 0, 0, 0)
    assert snapshot() == before
