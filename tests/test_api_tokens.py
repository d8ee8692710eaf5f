"""`wuyiqu api-token create|revoke|list`: secrets shown once and stored hashed, audited."""

from __future__ import annotations

import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from wuyiqu.api.actions import authenticate
from wuyiqu.api.models import ApiToken
from wuyiqu.audit.models import AuditEvent


def _run(*args) -> str:
    out = StringIO()
    call_command("api-token", *args, stdout=out)
    return out.getvalue()


def test_create_prints_the_secret_once_and_stores_only_its_hash(world):
    out = _run("create", "--name", "lab", "--unit", "500110002", "--kinds", "nat-results,cases", "--days", "90")
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("wyq_") and len(secret) > 40
    token = ApiToken.objects.get(name="lab")
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(list(ApiToken.objects.values_list()))
    assert token.unit.code == "500110002" and token.kinds == ["nat-results", "cases"]
    assert authenticate(f"Bearer {secret}") == token
    assert AuditEvent.objects.filter(action="api.token_create", target_id=str(token.pk)).count() == 1
    assert secret not in _run("list") and "lab" in _run("list")


def test_revoke_makes_the_token_fail_at_once(world):
    secret = _run("create", "--name", "lab", "--unit", "500110002", "--kinds", "nat-results").strip().splitlines()[-1]
    _run("revoke", "--name", "lab")
    _run("revoke", "--name", "lab")  # harmless twice
    assert ApiToken.objects.get(name="lab").revoked_at is not None
    assert AuditEvent.objects.filter(action="api.token_revoke").count() == 1
    from wuyiqu.api.actions import ApiError

    with pytest.raises(ApiError) as exc:
        authenticate(f"Bearer {secret}")
    assert (exc.value.status, exc.value.code) == (401, "token_revoked")


@pytest.mark.parametrize(("args", "reason"), [
    (["--unit", "999", "--kinds", "nat-results"], "不存在"),
    (["--unit", "500110002", "--kinds", "bogus"], "数据类型无效"),
    (["--unit", "500110002", "--kinds", "nat-results", "--days", "0"], "有效天数"),
])
def test_create_refuses_bad_input_and_creates_nothing(world, args, reason):
    with pytest.raises(CommandError, match=reason):
        _run("create", "--name", "lab", *args)
    assert not ApiToken.objects.exists()


def test_create_with_read_scopes_and_a_reviewer_to_act_as(world, carol):
    out = _run("create", "--name", "oa", "--unit", "500110002015", "--scopes", "applications:read,applications:act",
               "--acts-as", "carol")
    secret = out.strip().splitlines()[-1]
    token = authenticate(f"Bearer {secret}")
    assert (token.scopes, token.kinds, token.role, token.acts_as) == (
        ["applications:read", "applications:act"], [], "street_staff", carol)
    assert "applications:act" in _run("list")
    event = AuditEvent.objects.get(action="api.token_create", target_id=str(token.pk))
    assert (event.detail["acts_as"], event.detail["role"]) == ("carol", "street_staff")


@pytest.mark.parametrize(("args", "reason"), [
    (["--scopes", "applications:act"], "须指定经办人"),
    (["--scopes", "applications:act", "--acts-as", "nobody"], "不存在"),
    (["--scopes", "units:write"], "权限无效"),
    (["--scopes", "units:read", "--acts-as", "carol"], "只有审核权限"),
    ([], "至少需要"),
])
def test_create_refuses_bad_scopes_and_creates_nothing(world, carol, args, reason):
    with pytest.raises(CommandError, match=reason):
        _run("create", "--name", "oa", "--unit", "500110002015", *args)
    assert not ApiToken.objects.exists()
