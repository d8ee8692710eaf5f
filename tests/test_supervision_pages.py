"""The history page (scoped timeline) and the manual actions on it: roles, reasons, CSRF, audit;
a withdrawn unit can apply again."""

from __future__ import annotations

import pytest
from django.test import Client
from test_standards_world import D, days
from test_supervision_world import ALL, at, current_codes, named_street

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.audit.models import AuditEvent
from wuyiqu.certification.models import Title
from wuyiqu.standards.actions import do_store_evaluations
from wuyiqu.supervision.models import TitleEvent, Warning

pytestmark = pytest.mark.django_db


def user(name, role, unit):
    return do_create_user(actor=None, username=name, password="x-long-password-1", role=role, unit=unit,
                          display_name=name)


@pytest.fixture
def street():
    u = named_street()
    u["command"] = user("cmd", "command", u["T"])
    u["street"] = user("st", "street_staff", u["T1"])
    u["staff"] = user("cs", "community_staff", u["T1C"])
    u["village"] = user("vs", "community_staff", u["T1V"])
    u["head"] = user("head", "building_head", u["B9"])
    return u


def client_of(person):
    c = Client()
    c.force_login(person)
    return c


def test_the_history_page_is_scoped(street):
    u = street
    with at(D):
        assert client_of(u["staff"]).get("/units/T1C-B9/history/").status_code == 200
        assert client_of(u["head"]).get("/units/T1C-B9/history/").status_code == 200
        assert client_of(u["village"]).get("/units/T1C-B9/history/").status_code == 404
        assert client_of(u["head"]).get("/units/T1C/history/").status_code == 404
        assert client_of(u["staff"]).get("/units/NOPE/history/").status_code == 404
        assert client_of(u["staff"]).get("/units/T1C-C1-B2-U1/history/").status_code == 404  # an entrance: no title
        assert Client().get("/units/T1C-B9/history/").status_code == 302  # to the login


def test_the_timeline_lists_naming_warning_withdrawal_reinstatement_and_evaluations_in_date_order(street):
    from wuyiqu.supervision.actions import do_issue_warning, do_reinstate_title, do_withdraw_title

    u = street
    with at(D):
        do_store_evaluations(on=D)
        do_issue_warning(actor=u["street"], unit=u["B9"], detail="楼道堆放杂物")
    with at(D + days(1)):
        do_withdraw_title(actor=u["command"], unit=u["B9"], reason="核查")
    with at(D + days(2)):
        do_reinstate_title(actor=u["command"], title=Title.objects.get(unit=u["B9"]), reason="核查有误")
        resp = client_of(u["staff"]).get("/units/T1C-B9/history/")
    html = resp.content.decode()
    order = [html.index(f'data-kind="{k}"') for k in ("named", "evaluation", "warning", "withdrawn", "reinstated")]
    assert order == sorted(order), html
    assert "楼道堆放杂物" in html and "核查有误" in html


def test_street_staff_may_warn_but_community_staff_may_not(street):
    u = street
    with at(D):
        resp = client_of(u["staff"]).post("/units/T1C-B9/history/warn/", {"reason": "垃圾未分类"}, follow=True)
        assert "须由" in resp.content.decode() and not Warning.objects.exists()
        resp = client_of(u["street"]).post("/units/T1C-B9/history/warn/", {"reason": "", "days": "3"}, follow=True)
        assert "请填写原因" in resp.content.decode() and not Warning.objects.exists()
        client_of(u["street"]).post("/units/T1C-B9/history/warn/", {"reason": "垃圾未分类", "days": "5"})
    w = Warning.objects.get()
    assert (w.criterion, w.opened_by, w.deadline) == ("manual", u["street"], D + days(5))
    assert AuditEvent.objects.filter(action="supervision.warn", actor=u["street"]).count() == 1


def test_a_manual_warning_is_closed_by_a_person_and_expires_without_withdrawing(street):
    from wuyiqu.notifications.models import Notification
    from wuyiqu.supervision.services import run_daily

    u = street
    with at(D):
        client_of(u["street"]).post("/units/T1C-B9/history/warn/", {"reason": "垃圾未分类", "days": "1"})
        client_of(u["street"]).post("/units/T1C-B9/history/warn/", {"reason": "楼道杂物", "days": "1"})
    first, second = Warning.objects.order_by("id")
    with at(D + days(1)):
        client_of(u["street"]).post(f"/units/T1C-B9/history/warnings/{first.pk}/close/", {"reason": "已整改"})
        run_daily(on=D + days(1))
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("rectified", "expired")
    assert current_codes() == ALL
    assert Notification.objects.filter(user=u["command"], text__contains="人工警示").exists()


def test_only_the_command_withdraws_and_reinstates_with_a_reason(street):
    u = street
    with at(D):
        resp = client_of(u["street"]).post("/units/T1C-B9/history/withdraw/", {"reason": "x"}, follow=True)
        assert current_codes() == ALL and "须由" in resp.content.decode()
        client_of(u["command"]).post("/units/T1C-B9/history/withdraw/", {"reason": ""})
        assert current_codes() == ALL
        client_of(u["command"]).post("/units/T1C-B9/history/withdraw/", {"reason": "材料不实"})
        assert current_codes() == ALL - {"T1C-B9"}
        client_of(u["street"]).post("/units/T1C-B9/history/reinstate/", {"reason": "误摘"})
        assert current_codes() == ALL - {"T1C-B9"}
        client_of(u["command"]).post("/units/T1C-B9/history/reinstate/", {"reason": "误摘"})
        assert current_codes() == ALL
    assert list(TitleEvent.objects.values_list("kind", "actor__username")) == [("withdrawn", "cmd"), ("reinstated", "cmd")]
    assert AuditEvent.objects.filter(action__in=["supervision.withdraw", "supervision.reinstate"]).count() == 2


def test_a_title_still_failing_a_revoke_criterion_is_not_reinstated(street):
    from wuyiqu.health.actions import do_record_case
    from wuyiqu.supervision.actions import SupervisionRefused, do_reinstate_title

    u = street
    with at(D):
        do_record_case(actor=None, reported_on=D, case_type="confirmed", unit=u["B9"])
        with pytest.raises(SupervisionRefused, match="近8天无疫情：近8天有 1 例") as refused:
            do_reinstate_title(actor=u["command"], title=Title.objects.get(unit=u["B9"]), reason="误摘")
        assert "no_case" not in str(refused.value)  # the criterion by its name, never its id (issue 18)
    assert Title.objects.get(unit=u["B9"]).withdrawn_on == D


def test_the_forms_need_the_csrf_token(street):
    c = Client(enforce_csrf_checks=True)
    c.force_login(street["command"])
    with at(D):
        assert c.post("/units/T1C-B9/history/withdraw/", {"reason": "x"}).status_code == 403
    assert current_codes() == ALL


def test_a_withdrawn_unit_can_apply_again(street):
    from wuyiqu.applications.actions import ApplicationRefused, do_open_application
    from wuyiqu.supervision.actions import do_withdraw_title

    u = street
    with at(D):
        with pytest.raises(ApplicationRefused):
            do_open_application(actor=u["head"], unit=u["B9"])
        do_withdraw_title(actor=u["command"], unit=u["B9"], reason="核查")
        app = do_open_application(actor=u["head"], unit=u["B9"])
    assert app.unit_id == u["B9"].pk and app.status == "draft"


def test_the_unit_page_links_to_the_history_and_the_public_page_says_withdrawn(street):
    from wuyiqu.supervision.actions import do_withdraw_title

    u = street
    title = Title.objects.get(unit=u["B9"])
    title.certificate_number = "WYQ-2022-000009"
    title.save(update_fields=["certificate_number"])
    with at(D):
        assert "/units/T1C-B9/history/" in client_of(u["staff"]).get("/units/T1C-B9/").content.decode()
        assert 'data-current="true"' in Client().get("/verify/WYQ-2022-000009/").content.decode()
        do_withdraw_title(actor=u["command"], unit=u["B9"], reason="核查")
        page = Client().get("/verify/WYQ-2022-000009/").content.decode()
    assert "已摘牌（2022-11-28）" in page and 'data-current="false"' in page
