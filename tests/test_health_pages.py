"""Health pages: measures and testing lists with Excel export, the person's timeline, early end and
extension by form; scope (a sibling unit's staff and building heads get 404) and audit rows."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from conftest import TIANQIAO_COMMUNITY, WENLONG_COMMUNITY
from django.test import Client
from django.urls import reverse
from openpyxl import load_workbook

from wuyiqu.audit.models import AuditEvent
from wuyiqu.health import actions
from wuyiqu.health.models import MeasureChange, MeasureKind
from wuyiqu.lib import dates
from wuyiqu.units.models import Resident

DAY = dt.timedelta(days=1)


@pytest.fixture
def today():
    return dates.today()


@pytest.fixture
def person(world):
    return Resident.objects.filter(household__unit__path__contains=f"/{WENLONG_COMMUNITY}/").order_by("id").first()


@pytest.fixture
def measure(person, today):
    return actions.do_record_measure(actor=None, kind=MeasureKind.CLOSE_CONTACT, id_number=person.reveal_id_number(),
                                     start_on=today - 2 * DAY, end_on=today + 5 * DAY)


def pages(person, measure):
    return [
        reverse("health:measures", args=[WENLONG_COMMUNITY]),
        reverse("health:measures_xlsx", args=[WENLONG_COMMUNITY]),
        reverse("health:testing", args=[WENLONG_COMMUNITY]) + "?days=7",
        reverse("health:testing_xlsx", args=[WENLONG_COMMUNITY]),
        reverse("health:timeline", args=[person.pk]),
    ]


def test_it_lists_who_is_under_measure_with_masked_ids_and_audits_the_look(alice, client_for, person, measure, today):
    response = client_for(alice).get(reverse("health:measures", args=[WENLONG_COMMUNITY]))
    assert response.status_code == 200
    body = response.content.decode()
    assert person.name in body and person.id_masked in body
    assert person.reveal_id_number() not in body
    assert (today + 5 * DAY).isoformat() in body and "导出 Excel" in body
    event = AuditEvent.objects.get(action="health.view_measures")
    assert event.actor == alice and event.unit.code == WENLONG_COMMUNITY and event.detail["rows"] == 1
    # Filters: another kind, and a day after the end.
    assert person.name not in client_for(alice).get(
        reverse("health:measures", args=[WENLONG_COMMUNITY]), {"kind": "returnee"}).content.decode()
    assert person.name not in client_for(alice).get(
        reverse("health:measures", args=[WENLONG_COMMUNITY]), {"on": (today + 6 * DAY).isoformat()}).content.decode()


def test_the_street_above_sees_the_lists_too(carol, client_for, person, measure):
    assert client_for(carol).get(reverse("health:measures", args=[WENLONG_COMMUNITY])).status_code == 200
    assert client_for(carol).get(reverse("health:timeline", args=[person.pk])).status_code == 200


def test_a_sibling_units_staff_and_a_building_head_get_404_everywhere(bob, dave, client_for, person, measure, today):
    for user in (bob, dave):
        c = client_for(user)
        for url in pages(person, measure):
            assert c.get(url).status_code == 404, (user, url)
        for name in ("health:end_measure_early", "health:extend_measure"):
            response = c.post(reverse(name, args=[measure.pk]), {"on": today.isoformat(), "reason": "x"})
            assert response.status_code == 404, (user, name)
    assert not MeasureChange.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="health.view").exists()
    # A unit that does not exist looks the same as a forbidden one.
    assert client_for(bob).get(reverse("health:measures", args=["nosuchcode"])).status_code == 404
    # bob sees his own community's list.
    assert client_for(bob).get(reverse("health:measures", args=[TIANQIAO_COMMUNITY])).status_code == 200


def test_anonymous_is_sent_to_login(client, person, measure):
    response = client.get(reverse("health:measures", args=[WENLONG_COMMUNITY]))
    assert response.status_code == 302 and "login" in response["Location"]


def test_excel_export_neutralises_formula_like_names(alice, client_for, person, measure):
    Resident.objects.filter(pk=person.pk).update(name='=HYPERLINK("http://evil.example","点我")')
    response = client_for(alice).get(reverse("health:measures_xlsx", args=[WENLONG_COMMUNITY]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(response.content)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:2] == ("姓名", "身份证号")
    assert rows[1][0] == '\'=HYPERLINK("http://evil.example","点我")'
    assert rows[1][1] == person.id_masked
    assert ws.cell(row=2, column=1).data_type == "s"  # text, not a formula
    assert AuditEvent.objects.filter(action="health.export_measures", actor=alice).count() == 1
    testing = client_for(alice).get(reverse("health:testing_xlsx", args=[WENLONG_COMMUNITY]))
    names = [r[0] for r in load_workbook(io.BytesIO(testing.content)).active.iter_rows(min_row=2, values_only=True)]
    assert '\'=HYPERLINK("http://evil.example","点我")' in names
    assert not any(str(n).startswith(("=", "+", "-", "@")) for n in names)


def test_testing_page_filters_not_tested_within_n_days(alice, client_for, person):
    response = client_for(alice).get(reverse("health:testing", args=[WENLONG_COMMUNITY]), {"days": "7"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "未在 7 天内检测" in body and "免检人员" in body
    assert AuditEvent.objects.get(action="health.view_testing").detail["days"] == 7
    # More than one page: the pager keeps the filter.
    assert 'href="?days=7&amp;page=2"' in body
    second = client_for(alice).get(reverse("health:testing", args=[WENLONG_COMMUNITY]), {"days": "7", "page": "2"})
    assert "第 2 /" in second.content.decode()
    bad = client_for(alice).get(reverse("health:testing", args=[WENLONG_COMMUNITY]), {"days": "abc"})
    assert "天数应为" in bad.content.decode()


def test_timeline_shows_measures_with_their_changes(alice, client_for, person, measure, today):
    actions.do_extend_measure(measure, actor=alice, until=today + 9 * DAY, reason="同住人员转阳")
    response = client_for(alice).get(reverse("health:timeline", args=[person.pk]))
    body = response.content.decode()
    assert "密接" in body and "延期" in body and "同住人员转阳" in body
    assert reverse("health:end_measure_early", args=[measure.pk]) in body
    assert AuditEvent.objects.filter(action="health.view_timeline", target_id=str(person.pk)).count() == 1


def test_ending_a_measure_early_by_form_needs_csrf_and_a_reason(alice, person, measure, today):
    c = Client(enforce_csrf_checks=True)
    c.force_login(alice)
    url = reverse("health:end_measure_early", args=[measure.pk])
    assert c.post(url, {"on": today.isoformat(), "reason": "解除"}).status_code == 403  # no CSRF token
    page = c.get(reverse("health:timeline", args=[person.pk]))
    token = page.cookies["csrftoken"].value
    response = c.post(url, {"on": today.isoformat(), "reason": "", "csrfmiddlewaretoken": token}, follow=True)
    assert "请填写原因" in response.content.decode()
    measure.refresh_from_db()
    assert measure.end_on == today + 5 * DAY
    response = c.post(url, {"on": today.isoformat(), "reason": "评估后解除", "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == reverse("health:timeline", args=[person.pk])
    measure.refresh_from_db()
    assert measure.end_on == today
    assert MeasureChange.objects.get(measure=measure).reason == "评估后解除"
    extend = c.post(reverse("health:extend_measure", args=[measure.pk]),
                    {"on": (today - DAY).isoformat(), "reason": "x", "csrfmiddlewaretoken": token}, follow=True)
    assert "应晚于原结束日期" in extend.content.decode()
