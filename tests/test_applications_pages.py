"""The application pages: queue (待办) per role and scope, the application page with the frozen
self-assessment beside today's, the review form, the village's overview of everything below it."""

from __future__ import annotations

import pytest
import time_machine
from test_applications_world import NOW, build, name_through_chain, people, sign_all

from wuyiqu.applications.actions import do_open_application, do_review_application, do_submit_application
from wuyiqu.applications.models import Application, ApplicationStatus
from wuyiqu.inspections.models import Inspection

S = ApplicationStatus


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def w(db):
    u = build()
    return u, people(u)


def submitted(u, p, key="B1", applicant="hank"):
    app = do_open_application(actor=p[applicant], unit=u[key])
    sign_all(app)
    return do_submit_application(actor=p[applicant], application=app)


def test_each_reviewer_sees_the_application_in_their_queue_at_their_step_only(w, client_for):
    u, p = w
    app = submitted(u, p)
    expected = {"community_review": "cora", "street_review": "sam", "health_review": "hugo", "command_review": "cmd"}
    while app.status in expected:
        for name in ("cora", "sam", "hugo", "cmd", "tom", "otto", "vera"):
            html = client_for(p[name]).get("/applications/queue/").content.decode()
            listed = f'data-application="{app.pk}"' in html
            assert listed == (name == expected[app.status]), (app.status, name)
        app = do_review_application(app, actor=p[expected[app.status]], decision="approve", opinion="同意")


def test_a_reviewer_of_another_street_sees_nothing(w, client_for):
    u, p = w
    app = submitted(u, p)
    do_review_application(app, actor=p["cora"], decision="approve", opinion="受理")
    c = client_for(p["tom"])
    assert "没有待办的申请" in c.get("/applications/queue/").content.decode()
    for url in (f"/applications/{app.pk}/", f"/applications/{app.pk}/progress/", f"/applications/{app.pk}/poster/"):
        assert c.get(url).status_code == 404, url
    r = c.post(f"/applications/{app.pk}/review/", {"decision": "approve", "opinion": "同意", "seen_status": "street_review"})
    assert r.status_code == 404
    assert Application.objects.get(pk=app.pk).status == S.STREET_REVIEW


def test_the_wrong_role_gets_403_on_the_review(w, client_for):
    u, p = w
    app = submitted(u, p)
    r = client_for(p["hugo"]).post(f"/applications/{app.pk}/review/",
                                   {"decision": "approve", "opinion": "同意", "seen_status": "community_review"})
    assert r.status_code == 403
    assert Application.objects.get(pk=app.pk).status == S.COMMUNITY_REVIEW


def test_the_review_form_needs_an_opinion_and_says_so(w, client_for):
    u, p = w
    app = submitted(u, p)
    c = client_for(p["cora"])
    page = c.get(f"/applications/{app.pk}/").content.decode()
    assert 'id="review-form"' in page
    r = c.post(f"/applications/{app.pk}/review/", {"decision": "approve", "opinion": "", "seen_status": "community_review"},
               follow=True)
    assert "请填写意见" in r.content.decode()
    assert Application.objects.get(pk=app.pk).status == S.COMMUNITY_REVIEW
    r = c.post(f"/applications/{app.pk}/review/", {"decision": "approve", "opinion": "受理", "seen_status": "community_review"})
    assert r.status_code == 302 and Application.objects.get(pk=app.pk).status == S.STREET_REVIEW


def test_a_second_reviewer_on_a_stale_page_is_told(w, client_for):
    u, p = w
    app = submitted(u, p)
    do_review_application(app, actor=p["cora"], decision="approve", opinion="受理")
    r = client_for(p["cora"]).post(f"/applications/{app.pk}/review/",
                                   {"decision": "approve", "opinion": "受理", "seen_status": "community_review"},
                                   follow=True)
    assert "申请已被他人处理，当前状态为“街道初审”" in r.content.decode()


def test_send_back_through_the_page(w, client_for):
    u, p = w
    app = submitted(u, p)
    for name in ("cora", "sam"):
        app = do_review_application(app, actor=p[name], decision="approve", opinion="同意")
    c = client_for(p["hugo"])
    page = c.get(f"/applications/{app.pk}/").content.decode()
    assert 'value="send_back:community_review"' in page and 'value="send_back:street_review"' in page
    c.post(f"/applications/{app.pk}/review/", {"decision": "send_back:street_review", "opinion": "请补充",
                                               "seen_status": "health_review"})
    assert Application.objects.get(pk=app.pk).status == S.STREET_REVIEW


def test_the_page_shows_the_frozen_evaluation_beside_todays(w, client_for):
    u, p = w
    app = submitted(u, p)
    # After submission the building's mask inspection fails: today's column says so, the frozen one not.
    assert Inspection.objects.filter(unit=u["B1"], item="masks", inspected_on=NOW.date()).update(passed=False) == 1
    html = client_for(p["cora"]).get(f"/applications/{app.pk}/").content.decode()
    row = html.split('data-criterion="mask_compliance"')[1].split("</tr>")[0]
    assert 'data-frozen="true"' in row and 'data-live="false"' in row
    assert "提交时（2022-11-28）" in html


def test_the_street_opinion_is_signed_with_name_and_date(w, client_for):
    u, p = w
    app = submitted(u, p)
    app = do_review_application(app, actor=p["cora"], decision="approve", opinion="受理")
    do_review_application(app, actor=p["sam"], decision="approve", opinion="经初审，符合条件")
    html = client_for(p["hank"]).get(f"/applications/{app.pk}/").content.decode()
    assert "经初审，符合条件" in html and "初审签注：sam · 2022-11-28 10:00" in html


def test_the_applicant_opens_from_the_page_and_a_second_open_is_refused(w, client_for):
    u, p = w
    c = client_for(p["hank"])
    assert u["B1"].name in c.get("/applications/").content.decode()
    r = c.post("/applications/open/", {"unit": u["B1"].code})
    app = Application.objects.get(unit=u["B1"])
    assert r.status_code == 302 and r["Location"] == f"/applications/{app.pk}/"
    r = c.post("/applications/open/", {"unit": u["B1"].code}, follow=True)
    assert "同一称号只能有一份" in r.content.decode()
    assert c.post("/applications/open/", {"unit": u["T2B"].code}).status_code == 404


def test_submit_through_the_page_lists_what_fails(w, client_for):
    u, p = w
    app = do_open_application(actor=p["hank"], unit=u["B1"])
    r = client_for(p["hank"]).post(f"/applications/{app.pk}/submit/", follow=True)
    assert "自评未全部达标" in r.content.decode() and "2 户未签名" in r.content.decode()
    assert Application.objects.get(pk=app.pk).status == S.DRAFT


def test_the_village_page_shows_its_signature_and_every_unit_below(w, client_for):
    u, p = w
    app = do_open_application(actor=p["vera"], unit=u["T1V"])
    group = do_open_application(actor=p["gina"], unit=u["G1"])
    sign_all(group)
    c = client_for(p["vera"])
    html = c.get(f"/applications/{app.pk}/").content.decode()
    assert "尚未登记本单位签字" in html
    assert f'data-unit="{u["G1"].code}" data-signed="true"' in html
    c.post(f"/applications/{app.pk}/unit-signature/", {"signed_on": "2022-11-28"})
    assert Application.objects.get(pk=app.pk).unit_signed_on == NOW.date()
    assert "已于 2022-11-28 签字申请" in c.get(f"/applications/{app.pk}/").content.decode()
    r = c.post(f"/applications/{app.pk}/unit-signature/", {"signed_on": "2022-12-01"}, follow=True)
    assert "签字日期不能晚于今天" in r.content.decode()


def test_a_named_application_links_its_certificate(w, client_for):
    u, p = w
    app = name_through_chain(submitted(u, p), p)
    html = client_for(p["hank"]).get(f"/applications/{app.pk}/").content.decode()
    assert 'id="certificate-link"' in html and "WYQ-2022-" in html


def test_a_returned_application_shows_its_reason_at_the_top(w, client_for):
    """退回: the applicant sees why at the head of the page (who returned it, when), above the facts."""
    u, p = w
    app = submitted(u, p)
    app = do_review_application(app, actor=p["cora"], decision="approve", opinion="受理")
    do_review_application(app, actor=p["sam"], decision="return", opinion="请补充出入口值守照片")
    html = client_for(p["hank"]).get(f"/applications/{app.pk}/").content.decode()
    notice = html.split('id="returned-notice"')[1].split("</section>")[0]
    assert "申请已被退回（街道初审），请按意见修改后重新提交" in notice
    assert "请补充出入口值守照片" in notice and "sam · 2022-11-28 10:00" in notice
    assert html.index('id="returned-notice"') < html.index('id="status"') < html.index("办理记录")
    # Submitted again, the notice is gone (the reason stays in the record below).
    do_submit_application(actor=p["hank"], application=Application.objects.get(pk=app.pk))
    html = client_for(p["hank"]).get(f"/applications/{app.pk}/").content.decode()
    assert 'id="returned-notice"' not in html and "请补充出入口值守照片" in html
