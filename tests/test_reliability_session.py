"""Sessions end: 30 minutes without a request, or 8 hours after the sign-in however active the person
is (WUYIQU_SESSION_IDLE_SECONDS, WUYIQU_SESSION_SECONDS). An ended session is flushed and its next
page sends the person to the login, saying why. Pages that poll (htmx ``every Ns``) keep nothing alive."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.models import Session
from test_settings import production, start

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.middleware import POLL_HEADER
from wuyiqu.accounts.models import Role

T0 = dt.datetime(2022, 11, 28, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PAGE = "/notifications/"  # any page that needs a sign-in


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def signed_in(db, client, clock):
    user = do_create_user(actor=None, username="ann", password="correct-horse-battery", role=Role.ADMIN, unit=None)
    client.force_login(user)
    assert client.get(PAGE).status_code == 200
    return client


def sent_to_login(response) -> bool:
    return response.status_code == 302 and response["Location"] == f"/login/?next={PAGE}"


def test_the_defaults_are_30_minutes_idle_and_8_hours_in_all(settings):
    assert (settings.SESSION_IDLE_SECONDS, settings.SESSION_COOKIE_AGE) == (30 * 60, 8 * 3600)


def test_a_session_left_idle_for_30_minutes_ends(signed_in, clock):
    key = signed_in.session.session_key
    clock.shift(dt.timedelta(minutes=29))
    assert signed_in.get(PAGE).status_code == 200  # a request: the idle clock starts again
    clock.shift(dt.timedelta(minutes=29))
    assert signed_in.get(PAGE).status_code == 200
    clock.shift(dt.timedelta(minutes=30, seconds=1))
    response = signed_in.get(PAGE)
    assert sent_to_login(response)
    assert not Session.objects.filter(session_key=key).exists()  # flushed, not just forgotten by the cookie
    login_page = signed_in.get(response["Location"])
    assert "长时间未操作，已自动退出，请重新登录。" in login_page.content.decode()
    assert signed_in.get(PAGE).status_code == 302


def test_a_session_ends_8_hours_after_the_sign_in_however_active(signed_in, clock):
    for _ in range(8 * 3):  # a request every 20 minutes for 8 hours
        clock.shift(dt.timedelta(minutes=20))
        assert signed_in.get(PAGE).status_code == 200
    clock.shift(dt.timedelta(minutes=1))
    response = signed_in.get(PAGE)
    assert sent_to_login(response)
    assert "登录已超过有效时间，请重新登录。" in signed_in.get(response["Location"]).content.decode()


def test_polling_does_not_keep_an_idle_session_alive(signed_in, clock):
    for _ in range(6):  # a page left open, refreshing itself every 5 minutes
        clock.shift(dt.timedelta(minutes=5))
        assert signed_in.get(PAGE, headers={POLL_HEADER: "1"}).status_code == 200
    clock.shift(dt.timedelta(minutes=1))
    assert sent_to_login(signed_in.get(PAGE, headers={POLL_HEADER: "1"}))


def test_the_polling_fragments_mark_their_requests():
    from pathlib import Path

    root = Path(settings.BASE_DIR)
    for template in ("templates/web/_import_job_status.html", "applications/templates/applications/_progress.html"):
        text = (root / template).read_text(encoding="utf-8")
        assert 'hx-trigger="every' in text and f'hx-headers=\'{{"{POLL_HEADER}": "1"}}\'' in text, template


@pytest.mark.parametrize("name", ["WUYIQU_SESSION_IDLE_SECONDS", "WUYIQU_SESSION_SECONDS"])
def test_a_session_limit_under_a_minute_stops_the_process_at_start(tmp_path, name):
    result = start(tmp_path, **production(**{name: "30"}))
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name}=30: expected at least 60 seconds" in result.stderr
