"""账号管理 on the web and `wuyiqu user`: who may create and look after whose account, one-time
passwords that must be changed, deactivation that keeps the account, the lock lifted, all audited."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from conftest import PASSWORD, TIANQIAO_COMMUNITY, WENLONG_COMMUNITY, WENLONG_STREET
from django.core.management import CommandError, call_command
from django.test import Client

from wuyiqu.accounts.actions import do_create_account, do_record_login_failure
from wuyiqu.accounts.models import Role, User
from wuyiqu.accounts.permissions import AccountRefused
from wuyiqu.audit.models import AuditEvent
from wuyiqu.lib import crypto
from wuyiqu.lib.idcard import mask_phone
from wuyiqu.units.models import Unit, UnitKind

NEW_PASSWORD = "lantern-orchard-42"


def building_of(community_code: str) -> Unit:
    return Unit.objects.filter(path__contains=f"/{community_code}/", kind=UnitKind.BUILDING).order_by("code").first()


def one_time_password(response) -> str:
    return re.search(r'id="one-time-password">([^<]+)<', response.content.decode())[1]


def create(client, **fields):
    data = {"username": "wang", "display_name": "王楼长", "phone": "13812345678", "role": "building_head", **fields}
    return client.post("/accounts/new/", data)


def test_community_staff_create_a_building_head_with_a_one_time_password(alice, client_for):
    building = building_of(WENLONG_COMMUNITY)
    response = create(client_for(alice), unit=building.code)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    password = one_time_password(response)
    account = User.objects.get(username="wang")
    assert (account.role, account.unit, account.display_name) == (Role.BUILDING_HEAD, building, "王楼长")
    assert account.must_change_password and account.check_password(password)
    # The phone is stored encrypted; only its masked form is readable.
    assert account.phone_masked == mask_phone("13812345678") != "13812345678"
    assert crypto.cipher().decrypt(account.phone_enc) == "13812345678"
    assert b"13812345678" not in bytes(account.phone_enc)
    event = AuditEvent.objects.get(action="accounts.create_user", target_id=str(account.pk))
    assert event.actor == alice and password not in str(event.detail)
    # Shown once: the account's page does not show it again.
    assert password not in client_for(alice).get(f"/accounts/{account.pk}/").content.decode()


@pytest.mark.parametrize("fields, field, message", [
    ({"role": "community_staff", "unit": WENLONG_COMMUNITY}, "role", "选择一个有效的选项"),  # not offered to her
    ({"unit": "TIANQIAO"}, "unit", "不在您的管辖范围内"),  # replaced by a building of bob's community below
    ({"role": "property_manager", "unit": "BUILDING"}, "unit", "应属于小区"),
    ({"unit": "NOPE-999"}, "unit", "没有编码为“NOPE-999”的单位"),
    ({"phone": "12345", "unit": "BUILDING"}, "phone", "格式不对"),
    ({"username": "ALICE", "unit": "BUILDING"}, "username", "已被使用"),
    ({"username": "wang li", "unit": "BUILDING"}, "username", "只能包含"),
])
def test_what_a_manager_may_not_give_is_refused_by_field_and_nothing_is_created(alice, bob, client_for, fields,
                                                                               field, message):
    codes = {"TIANQIAO": building_of(TIANQIAO_COMMUNITY).code, "BUILDING": building_of(WENLONG_COMMUNITY).code}
    fields = {k: codes.get(v, v) for k, v in fields.items()}
    before = User.objects.count()
    response = create(client_for(alice), **fields)
    assert response.status_code == 400
    errors = re.findall(r'data-field="(\w+)">([^<]+)<', response.content.decode())
    assert any(f == field and message in text for f, text in errors), errors
    assert User.objects.count() == before


def test_each_manager_gives_the_roles_below_it_inside_its_scope(world, carol, erin, root):
    community = Unit.objects.get(code=WENLONG_COMMUNITY)
    street = Unit.objects.get(code=WENLONG_STREET)
    do_create_account(actor=carol, username="c2", display_name="网格员", role=Role.COMMUNITY_STAFF, unit=community)
    do_create_account(actor=erin, username="s2", display_name="街道", role=Role.STREET_STAFF, unit=street)
    do_create_account(actor=root, username="a2", display_name="管理员", role=Role.ADMIN, unit=None)
    with pytest.raises(AccountRefused, match="不能创建或管理"):
        do_create_account(actor=carol, username="s3", display_name="街道", role=Role.STREET_STAFF, unit=street)
    with pytest.raises(AccountRefused, match="不能创建或管理"):
        do_create_account(actor=erin, username="h2", display_name="卫健委", role=Role.HEALTH_COMMISSION,
                          unit=Unit.objects.get(code="500110"))
    # An administrator scoped to the district may give the administrator role there, but not unscoped.
    district_admin = do_create_account(actor=root, username="a3", display_name="区管理员", role=Role.ADMIN,
                                       unit=Unit.objects.get(code="500110"))[0]
    with pytest.raises(AccountRefused, match="不限单位"):
        do_create_account(actor=district_admin, username="x", display_name="x", role=Role.ADMIN, unit=None)


def test_the_new_account_must_choose_its_own_password_first(alice, client_for):
    password = one_time_password(create(client_for(alice), unit=building_of(WENLONG_COMMUNITY).code))
    client = Client()
    assert client.post("/login/", {"username": "wang", "password": password}).status_code == 302
    response = client.get("/applications/")
    assert response.status_code == 302 and response["Location"] == "/account/password/?next=%2Fapplications%2F"
    page = client.get("/account/password/").content.decode()
    assert "一次性密码" in page
    # Django's validators apply.
    refused = client.post("/account/password/", {"old_password": password, "new_password1": "12345678",
                                                 "new_password2": "12345678"})
    assert refused.status_code == 400
    assert "密码只包含数字。" in re.findall(r'<p class="error">([^<]+)<', refused.content.decode())
    assert User.objects.get(username="wang").must_change_password
    done = client.post("/account/password/?next=/applications/",
                       {"old_password": password, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/applications/"
    assert client.get("/applications/").status_code == 200  # still signed in, and free to go
    account = User.objects.get(username="wang")
    assert not account.must_change_password and account.check_password(NEW_PASSWORD)
    assert AuditEvent.objects.filter(action="accounts.change_password", actor=account).count() == 1


def test_everyone_changes_their_own_password_with_the_old_one(dave, client_for):
    client = client_for(dave)
    wrong = client.post("/account/password/", {"old_password": "not-it", "new_password1": NEW_PASSWORD,
                                               "new_password2": NEW_PASSWORD})
    assert wrong.status_code == 400
    dave.refresh_from_db()
    assert dave.check_password(PASSWORD)
    assert client.post("/account/password/", {"old_password": PASSWORD, "new_password1": NEW_PASSWORD,
                                              "new_password2": NEW_PASSWORD}).status_code == 302
    dave.refresh_from_db()
    assert dave.check_password(NEW_PASSWORD)


def test_a_deactivated_account_cannot_sign_in_and_is_kept(alice, dave, client_for):
    signed_in = Client()
    signed_in.force_login(dave)
    manager = client_for(alice)
    assert manager.post(f"/accounts/{dave.pk}/deactivate/", {"reason": "调离"}).status_code == 302
    dave.refresh_from_db()
    assert not dave.is_active
    assert signed_in.get("/").status_code == 302  # the open session ends with it
    assert signed_in.get("/")["Location"].startswith("/login/")
    assert Client().post("/login/", {"username": "dave", "password": PASSWORD}).status_code == 200  # refused
    listed = manager.get("/accounts/", {"active": "no"}).content.decode()
    assert f"/accounts/{dave.pk}/" in listed and "已停用" in listed
    event = AuditEvent.objects.get(action="accounts.deactivate_user", target_id=str(dave.pk))
    assert event.actor == alice and event.detail["reason"] == "调离"
    assert manager.post(f"/accounts/{dave.pk}/reactivate/").status_code == 302
    assert Client().post("/login/", {"username": "dave", "password": PASSWORD}).status_code == 302


def test_a_reset_gives_a_new_one_time_password_and_ends_the_old_one(alice, dave, client_for):
    old_session = Client()
    old_session.force_login(dave)
    response = client_for(alice).post(f"/accounts/{dave.pk}/reset-password/")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    password = one_time_password(response)
    dave.refresh_from_db()
    assert dave.must_change_password and dave.check_password(password) and not dave.check_password(PASSWORD)
    assert old_session.get("/")["Location"].startswith("/login/")
    assert AuditEvent.objects.filter(action="accounts.reset_password", actor=alice, target_id=str(dave.pk)).exists()


def test_a_manager_lifts_a_sign_in_lock(alice, dave, client_for):
    for _ in range(5):
        do_record_login_failure(username="dave", ip="10.0.0.9")
    manager = client_for(alice)
    page = manager.get(f"/accounts/{dave.pk}/").content.decode()
    assert 'id="account-lock"' in page
    assert Client().post("/login/", {"username": "dave", "password": PASSWORD}).status_code == 429
    assert manager.post(f"/accounts/{dave.pk}/unlock/").status_code == 302
    assert 'id="account-lock"' not in manager.get(f"/accounts/{dave.pk}/").content.decode()
    assert Client().post("/login/", {"username": "dave", "password": PASSWORD}).status_code == 302
    assert AuditEvent.objects.filter(action="accounts.unlock_login", actor=alice, target_id=str(dave.pk)).exists()


def test_managers_see_only_the_accounts_below_them(alice, bob, carol, dave, client_for):
    bobs = do_create_account(actor=bob, username="tq", display_name="天桥楼长", role=Role.BUILDING_HEAD,
                             unit=building_of(TIANQIAO_COMMUNITY))[0]
    client = client_for(alice)
    listed = client.get("/accounts/").content.decode()
    assert f"/accounts/{dave.pk}/" in listed
    for other in (bobs, carol, alice):  # a sibling's, a superior's, her own
        assert f"/accounts/{other.pk}/" not in listed
        assert client.get(f"/accounts/{other.pk}/").status_code == 404
        assert client.post(f"/accounts/{other.pk}/reset-password/").status_code == 404
    assert not AuditEvent.objects.filter(action="accounts.reset_password").exists()
    # carol, above both communities, sees both building heads.
    street = client_for(carol).get("/accounts/").content.decode()
    assert f"/accounts/{dave.pk}/" in street and f"/accounts/{bobs.pk}/" in street


def test_roles_without_accounts_to_manage_have_no_page_and_no_link(dave, client_for):
    client = client_for(dave)
    assert client.get("/accounts/").status_code == 404
    assert client.get("/accounts/new/").status_code == 404
    assert 'data-nav="accounts"' not in client.get(f"/units/{dave.unit.code}/").content.decode()
    assert 'data-nav="password"' in client.get(f"/units/{dave.unit.code}/").content.decode()


def test_an_edit_changes_name_phone_role_and_unit_within_the_managers_gift(alice, dave, client_for):
    compound = dave.unit.parent
    client = client_for(alice)
    response = client.post(f"/accounts/{dave.pk}/", {"display_name": "戴物业", "phone": "02312345678",
                                                     "role": "property_manager", "unit": compound.code})
    assert response.status_code == 302
    dave.refresh_from_db()
    assert (dave.display_name, dave.role, dave.unit, dave.phone_masked) == (
        "戴物业", Role.PROPERTY_MANAGER, compound, mask_phone("02312345678"))
    event = AuditEvent.objects.get(action="accounts.update_user", target_id=str(dave.pk))
    assert event.detail["fields"] == ["display_name", "phone", "role", "unit"]
    assert "02312345678" not in str(event.detail)
    refused = client.post(f"/accounts/{dave.pk}/", {"display_name": "戴", "role": "community_staff",
                                                    "unit": WENLONG_COMMUNITY})
    assert refused.status_code == 400
    dave.refresh_from_db()
    assert dave.role == Role.PROPERTY_MANAGER


def test_the_shell_creates_the_first_administrator_and_looks_after_accounts(world):
    out = StringIO()
    call_command("user", "create", "--username", "boss", "--name", "系统管理员", "--role", "admin", stdout=out)
    password = out.getvalue().strip().splitlines()[-1]
    boss = User.objects.get(username="boss")
    assert boss.unit is None and boss.is_staff and boss.must_change_password and boss.check_password(password)
    call_command("user", "create", "--username", "wl", "--name", "网格员", "--role", "community_staff",
                 "--unit", WENLONG_COMMUNITY, stdout=StringIO())
    with pytest.raises(CommandError, match="应属于"):
        call_command("user", "create", "--username", "x", "--name", "x", "--role", "building_head",
                     "--unit", WENLONG_COMMUNITY, stdout=StringIO())
    with pytest.raises(CommandError, match="必须属于一个单位"):
        call_command("user", "create", "--username", "y", "--name", "y", "--role", "street_staff", stdout=StringIO())
    listed = StringIO()
    call_command("user", "list", "--unit", WENLONG_STREET, stdout=listed)
    assert "wl\t网格员\tcommunity_staff" in listed.getvalue() and "boss" not in listed.getvalue()
    call_command("user", "deactivate", "wl", "--reason", "离职", stdout=StringIO())
    assert not User.objects.get(username="wl").is_active
    inactive = StringIO()
    call_command("user", "list", "--inactive", stdout=inactive)
    assert inactive.getvalue().startswith("wl\t")
    reset = StringIO()
    call_command("user", "reset-password", "wl", stdout=reset)
    assert User.objects.get(username="wl").check_password(reset.getvalue().strip().splitlines()[-1])
    with pytest.raises(CommandError, match="不存在"):
        call_command("user", "reset-password", "nobody", stdout=StringIO())
    assert set(AuditEvent.objects.filter(actor=None, action__startswith="accounts.").values_list("action", flat=True)) >= {
        "accounts.create_user", "accounts.deactivate_user", "accounts.reset_password"}
