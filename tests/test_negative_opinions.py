"""Negative opinions (负面舆情) can be handled: 处置完毕 (date + note) by the village/community, accepted by
the street; from the acceptance on the opinion no longer fails no_negative_opinion, so a warning on it
can be cleared within its deadline, and the reason says so (issue 16, item 4)."""

from __future__ import annotations

import pytest
from test_standards_world import D, days
from test_supervision_world import ALL, at, current_codes, named_street

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.audit.models import AuditEvent
from wuyiqu.inspections.actions import (
    OpinionRefused,
    do_accept_opinion_handling,
    do_mark_opinion_handled,
    do_record_incident,
    do_return_opinion_handling,
)
from wuyiqu.inspections.models import Incident, OpinionReturn
from wuyiqu.standards.evaluator import evaluate
from wuyiqu.supervision.models import Warning
from wuyiqu.supervision.services import run_daily

pytestmark = pytest.mark.django_db
PASSWORD = "x-long-password-1"


@pytest.fixture
def world():
    u = named_street()
    staff = do_create_user(actor=None, username="t1cstaff", password=PASSWORD, role="community_staff", unit=u["T1C"])
    street = do_create_user(actor=None, username="t1street", password=PASSWORD, role="street_staff", unit=u["T1"])
    with at(D):
        opinion = do_record_incident(actor=staff, unit=u["B9"], occurred_on=D, incident_type="negative_opinion",
                                     description="业主群抱怨物资配送慢")
    return u, staff, street, opinion


def opinion_result(unit, on):
    ev = next(e for e in evaluate(on, root=unit) if e.unit.code == unit.code)
    return next(c for c in ev.criteria if c.id == "no_negative_opinion")


def test_the_warning_and_the_reason_agree_on_how_to_clear_it(world):
    u, staff, street, opinion = world
    warning = Warning.objects.get(unit=u["B9"], criterion="no_negative_opinion")
    assert (warning.opened_on, warning.deadline) == (D, D + days(3))
    # No day after the deadline is offered as the way out: handling is.
    assert "起满" not in warning.detail and "经街道认可后即不再计入" in warning.detail
    assert "2022-11-28 测试社区9号楼 负面舆情" in warning.detail


def test_handled_and_accepted_the_opinion_stops_failing_and_the_warning_closes(world):
    u, staff, street, opinion = world
    with at(D + days(1)):
        do_mark_opinion_handled(actor=staff, incident=opinion, handled_on=D + days(1), note="已上门解释并加派配送人员")
        pending = opinion_result(u["B9"], D + days(1))
        assert not pending.passed and "2022-11-29 已处置完毕，待街道认可" in pending.detail
        assert Warning.objects.get(unit=u["B9"], criterion="no_negative_opinion").status == "open"
        do_accept_opinion_handling(actor=street, incident=opinion)
    # The building and the community above it (the opinion counts for it too): every
    # warning on it is re-checked at once and closes as rectified.
    warnings = Warning.objects.filter(criterion="no_negative_opinion")
    assert {w.unit.code for w in warnings} == {"T1C-B9", "T1C"}
    assert {(w.status, w.closed_on) for w in warnings} == {("rectified", D + days(1))}
    assert opinion_result(u["B9"], D + days(1)).passed
    assert not opinion_result(u["B9"], D).passed  # on D it was not accepted yet: D's verdict stands
    with at(D + days(3)):
        out = run_daily(on=D + days(3))
    assert out.withdrawn == [] and current_codes() == ALL
    assert set(AuditEvent.objects.filter(action__startswith="inspections.opinion_").values_list("action", flat=True)) == {
        "inspections.opinion_handled", "inspections.opinion_accepted"}


def test_unhandled_the_warning_expires_into_withdrawal(world):
    u, staff, street, opinion = world
    with at(D + days(3)):
        out = run_daily(on=D + days(3))
    assert "T1C-B9" in out.withdrawn


@pytest.mark.parametrize("handled_on, note, field, reason", [
    (D, "  ", "note", "处置情况说明不能为空"),
    (D + days(2), "已处置", "handled_on", "晚于今天"),
    (D - days(1), "已处置", "handled_on", "早于舆情发生日期2022-11-28"),
])
def test_bad_handling_is_refused_naming_the_field_and_changes_nothing(world, handled_on, note, field, reason):
    u, staff, street, opinion = world
    with at(D + days(1)), pytest.raises(OpinionRefused, match=reason) as refused:
        do_mark_opinion_handled(actor=staff, incident=opinion, handled_on=handled_on, note=note)
    assert refused.value.field == field
    opinion.refresh_from_db()
    assert (opinion.handled_on, opinion.handled_note) == (None, "")


def test_the_street_cannot_accept_what_was_not_handled_nor_twice(world):
    u, staff, street, opinion = world
    with at(D), pytest.raises(OpinionRefused, match="尚未登记处置完毕"):
        do_accept_opinion_handling(actor=street, incident=opinion)
    with at(D):
        do_mark_opinion_handled(actor=staff, incident=opinion, handled_on=D, note="已处置")
        do_accept_opinion_handling(actor=street, incident=opinion)
        with pytest.raises(OpinionRefused, match="已于2022-11-28认可"):
            do_accept_opinion_handling(actor=street, incident=opinion)
        with pytest.raises(OpinionRefused, match="不能再修改"):
            do_mark_opinion_handled(actor=staff, incident=opinion, handled_on=D, note="改一下")


def test_only_negative_opinions_are_handled(world):
    u, staff, street, opinion = world
    with at(D):
        fight = do_record_incident(actor=staff, unit=u["B9"], occurred_on=D, incident_type="fight", description="x")
        with pytest.raises(OpinionRefused, match="只有负面舆情"):
            do_mark_opinion_handled(actor=staff, incident=fight, handled_on=D, note="已处置")


def test_the_pages_let_the_community_handle_and_the_street_accept(world, client):
    u, staff, street, opinion = world
    base = f"/units/{u['B9'].code}/incidents/"
    with at(D):
        client.force_login(street)
        assert client.post(f"{base}{opinion.pk}/handled/", {"handled_on": "2022-11-28", "note": "x"}).status_code == 403
        client.force_login(staff)
        page = client.get(base).content.decode()
        assert "登记处置完毕" in page and "未处置完毕" in page
        empty = client.post(f"{base}{opinion.pk}/handled/", {"handled_on": "2022-11-28", "note": ""}, follow=True)
        assert "处置情况说明不能为空" in empty.content.decode()
        assert Incident.objects.get(pk=opinion.pk).handled_on is None
        client.post(f"{base}{opinion.pk}/handled/", {"handled_on": "2022-11-28", "note": "已处置"})
        assert client.post(f"{base}{opinion.pk}/accept/").status_code == 403
        client.force_login(street)
        assert "认可处置结果" in client.get(base).content.decode()
        client.post(f"{base}{opinion.pk}/accept/")
    opinion.refresh_from_db()
    assert (opinion.handled_on, opinion.accepted_on, opinion.accepted_by) == (D, D, street)
    assert Warning.objects.get(unit=u["B9"], criterion="no_negative_opinion").status == "rectified"


def test_the_street_sends_an_accepted_handling_back_and_the_opinion_fails_again_from_that_day(world):
    """退回 with a reason: the opinion counts again from the day of the return (a new warning), the
    days it stood accepted stay so, and the community can handle it again."""
    u, staff, street, opinion = world
    with at(D + days(1)):
        do_mark_opinion_handled(actor=staff, incident=opinion, handled_on=D + days(1), note="已上门解释")
        do_accept_opinion_handling(actor=street, incident=opinion)
    assert opinion_result(u["B9"], D + days(1)).passed
    with at(D + days(2)):
        do_return_opinion_handling(actor=street, incident=opinion, reason="群内仍有投诉，未见配送改进")
    opinion.refresh_from_db()
    assert (opinion.handled_on, opinion.handled_note, opinion.accepted_on) == (None, "", None)
    back = OpinionReturn.objects.get(incident=opinion)
    assert (back.handled_on, back.handled_note, back.accepted_on, back.returned_on, back.returned_by, back.reason) == (
        D + days(1), "已上门解释", D + days(1), D + days(2), street, "群内仍有投诉，未见配送改进")
    again = opinion_result(u["B9"], D + days(2))
    assert not again.passed and "待街道认可" not in again.detail
    assert opinion_result(u["B9"], D + days(1)).passed  # accepted that day: the past stays true
    pending = opinion_result(u["B9"], D)
    assert not pending.passed and "已处置完毕" not in pending.detail  # handled only on D+1
    reopened = Warning.objects.filter(unit=u["B9"], criterion="no_negative_opinion").order_by("opened_on")
    assert [(w.status, w.opened_on) for w in reopened] == [("rectified", D), ("open", D + days(2))]
    assert AuditEvent.objects.filter(action="inspections.opinion_returned", unit=u["B9"]).count() == 1
    with at(D + days(3)):  # handled and accepted anew
        do_mark_opinion_handled(actor=staff, incident=opinion, handled_on=D + days(3), note="已加派配送人员")
        assert "2022-11-28 测试社区9号楼 负面舆情（2022-12-01 已处置完毕，待街道认可）" in opinion_result(
            u["B9"], D + days(3)).detail
        do_accept_opinion_handling(actor=street, incident=opinion)
    assert opinion_result(u["B9"], D + days(3)).passed and not opinion_result(u["B9"], D + days(2)).passed


def test_a_handling_not_yet_accepted_can_be_sent_back_and_its_day_stays_in_past_reasons(world):
    u, staff, street, opinion = world
    with at(D + days(1)):
        do_mark_opinion_handled(actor=staff, incident=opinion, handled_on=D, note="已处置")
        do_return_opinion_handling(actor=street, incident=opinion, reason="说明不清")
    assert not opinion_result(u["B9"], D + days(1)).passed
    assert "待街道认可" in opinion_result(u["B9"], D).detail  # on D it stood handled, awaiting the street
    assert "待街道认可" not in opinion_result(u["B9"], D + days(1)).detail


@pytest.mark.parametrize("handled, reason, field, message", [
    (True, "  ", "reason", "退回理由不能为空"),
    (False, "说明不清", "handled_on", "尚未登记处置完毕，无可退回"),
])
def test_a_bad_return_is_refused_naming_the_field_and_changes_nothing(world, handled, reason, field, message):
    u, staff, street, opinion = world
    with at(D):
        if handled:
            do_mark_opinion_handled(actor=staff, incident=opinion, handled_on=D, note="已处置")
        with pytest.raises(OpinionRefused, match=message) as refused:
            do_return_opinion_handling(actor=street, incident=opinion, reason=reason)
    assert refused.value.field == field
    opinion.refresh_from_db()
    assert (opinion.handled_on is not None) == handled and not OpinionReturn.objects.exists()


def test_the_street_sends_back_on_the_page_and_the_community_sees_why(world, client):
    u, staff, street, opinion = world
    base = f"/units/{u['B9'].code}/incidents/"
    with at(D):
        do_mark_opinion_handled(actor=staff, incident=opinion, handled_on=D, note="已处置")
        client.force_login(staff)
        assert "退回处置结果" not in client.get(base).content.decode()
        assert client.post(f"{base}{opinion.pk}/return/", {"reason": "x"}).status_code == 403
        client.force_login(street)
        assert "退回处置结果" in client.get(base).content.decode()
        empty = client.post(f"{base}{opinion.pk}/return/", {"reason": ""}, follow=True).content.decode()
        assert "退回理由不能为空" in empty and not OpinionReturn.objects.exists()
        client.post(f"{base}{opinion.pk}/return/", {"reason": "未附回访记录"})
        client.force_login(staff)
        page = client.get(base).content.decode()
    assert "街道 2022-11-28 退回处置结果：未附回访记录" in page and "登记处置完毕" in page
    assert Incident.objects.get(pk=opinion.pk).handled_on is None
