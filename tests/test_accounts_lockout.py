"""Sign-ins are limited: five wrong passwords for one name within 15 minutes lock the name, twenty
failures from one address throttle the address; the page says in Chinese until when (429 with
Retry-After), every failure and sign-in is audited, and an administrator can unlock at once."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import Client

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import LoginFailure, Role
from wuyiqu.accounts.selectors import FAILURE_WINDOW, FAILURES_PER_IP, FAILURES_PER_USERNAME
from wuyiqu.audit.models import AuditEvent

PASSWORD = "correct-horse-battery"
T0 = dt.datetime(2022, 11, 28, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def ann(db):
    return do_create_user(actor=None, username="ann", password=PASSWORD, role=Role.ADMIN, unit=None)


@pytest.fixture
def ben(db):
    return do_create_user(actor=None, username="ben", password=PASSWORD, role=Role.ADMIN, unit=None)


def attempt(username: str, password: str, ip: str = "10.0.0.1") -> tuple[Client, object]:
    client = Client()
    response = client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)
    return client, response


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def fail(username: str, times: int, ip: str = "10.0.0.1") -> None:
    for _ in range(times):
        _c, response = attempt(username, "wrong-password", ip)
        assert response.status_code in (200, 429)


def test_five_wrong_passwords_lock_the_name_even_against_the_right_one(ann, clock):
    fail("ann", FAILURES_PER_USERNAME - 1)
    client, response = attempt("ann", PASSWORD)
    assert response.status_code == 302 and signed_in(client)  # four failures: still allowed

    fail("ann", FAILURES_PER_USERNAME)  # the successful sign-in forgot the first four
    client, response = attempt("ann", PASSWORD)
    assert response.status_code == 429 and not signed_in(client)
    assert response["Retry-After"] == str(int(FAILURE_WINDOW.total_seconds()))
    html = response.content.decode()
    assert "该账号登录失败次数过多，已暂时锁定。请于 09:15 后再试" in html
    failures = AuditEvent.objects.filter(action="accounts.login_failed", target_id=str(ann.pk)).order_by("id")
    assert failures.count() == 2 * FAILURES_PER_USERNAME - 1
    assert failures.last().detail == {"username": "ann", "locked": "username", "until": "2022-11-28T01:15:00+00:00"}
    assert failures.last().ip == "10.0.0.1"
    assert AuditEvent.objects.filter(action="accounts.login", actor=ann).count() == 1


def test_the_lock_runs_out_after_the_window_and_refused_attempts_do_not_extend_it(ann, clock):
    fail("ann", FAILURES_PER_USERNAME)
    clock.shift(dt.timedelta(minutes=10))
    for _ in range(10):  # refused while locked: not counted, the lock still ends at 09:15
        _c, response = attempt("ann", "wrong-password")
        assert response.status_code == 429
    assert LoginFailure.objects.count() == FAILURES_PER_USERNAME
    clock.shift(dt.timedelta(minutes=5) - dt.timedelta(seconds=1))
    assert attempt("ann", PASSWORD)[1].status_code == 429
    clock.shift(dt.timedelta(seconds=1))
    client, response = attempt("ann", PASSWORD)
    assert response.status_code == 302 and signed_in(client)
    assert not LoginFailure.objects.filter(username="ann").exists()


def test_a_name_without_an_account_is_counted_and_answered_the_same_way(ann, clock):
    fail("nobody", FAILURES_PER_USERNAME)
    fail("ann", FAILURES_PER_USERNAME)
    nobody = attempt("nobody", "x")[1]
    someone = attempt("ann", "x")[1]
    assert nobody.status_code == someone.status_code == 429
    assert "该账号登录失败次数过多" in nobody.content.decode()
    assert AuditEvent.objects.filter(action="accounts.login_failed", detail__username="nobody").count() == 5


def test_the_lock_ignores_case_and_spaces_in_the_name(ann, clock):
    for name in ("ANN", "Ann", " ann", "aNn", "ann "):
        attempt(name, "wrong-password")
    assert attempt("ann", PASSWORD)[1].status_code == 429


def test_twenty_failures_from_one_address_throttle_it_for_every_name(ann, ben, clock):
    for i in range(FAILURES_PER_IP):
        attempt(f"guess{i}", "wrong-password", ip="10.9.9.9")
    client, response = attempt("ben", PASSWORD, ip="10.9.9.9")
    assert response.status_code == 429 and not signed_in(client)
    assert "此网络地址登录失败次数过多，请于 09:15 后再试" in response.content.decode()
    client, response = attempt("ben", PASSWORD, ip="10.0.0.2")  # another address is not affected
    assert response.status_code == 302 and signed_in(client)


def test_an_administrator_unlocks_a_name_at_once_with_the_command(ann, clock):
    fail("ann", FAILURES_PER_USERNAME)
    out = StringIO()
    call_command("unlock-login", "--list", stdout=out)
    assert "ann\t锁定至 2022-11-28 09:15" in out.getvalue()
    out = StringIO()
    call_command("unlock-login", "--username", "ann", stdout=out)
    assert "已解锁账号“ann”（清除 5 次失败记录）" in out.getvalue()
    event = AuditEvent.objects.get(action="accounts.unlock_login")
    assert (event.target_id, event.detail) == (str(ann.pk), {"username": "ann", "ip": "", "cleared": 5})
    client, response = attempt("ann", PASSWORD)
    assert response.status_code == 302 and signed_in(client)
    out = StringIO()
    call_command("unlock-login", "--list", stdout=out)
    assert "当前没有被锁定的账号" in out.getvalue()


def test_an_administrator_unlocks_an_address(ben, clock):
    for i in range(FAILURES_PER_IP):
        attempt(f"guess{i}", "wrong-password", ip="10.9.9.9")
    call_command("unlock-login", "--ip", "10.9.9.9", stdout=StringIO())
    assert attempt("ben", PASSWORD, ip="10.9.9.9")[1].status_code == 302


@pytest.mark.parametrize(("args", "message"), [
    ([], "请指定要解锁的用户名或网络地址"),
    (["--ip", "not-an-address"], "不是有效的网络地址"),
])
def test_the_unlock_command_refuses_bad_input_and_changes_nothing(ann, clock, args, message):
    fail("ann", FAILURES_PER_USERNAME)
    with pytest.raises(CommandError, match=message):
        call_command("unlock-login", *args, stdout=StringIO())
    assert LoginFailure.objects.count() == FAILURES_PER_USERNAME
    assert not AuditEvent.objects.filter(action="accounts.unlock_login").exists()


def test_an_empty_password_is_not_an_attempt(ann, clock):
    for _ in range(FAILURES_PER_USERNAME + 1):
        assert attempt("ann", "")[1].status_code == 200
    assert not LoginFailure.objects.exists()
    assert attempt("ann", PASSWORD)[1].status_code == 302
