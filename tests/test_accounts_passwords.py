"""Passwords are hashed with Argon2 in production (the suite uses a fast hasher for speed), an older
PBKDF2 hash is rehashed with Argon2 at the next sign-in, and weak passwords are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.contrib.auth.hashers import make_password
from django.test import Client
from test_settings import production

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role, User

PRODUCTION_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]


def production_settings(tmp_path, expression: str):
    """``expression`` evaluated on the production settings, in a fresh process (JSON back)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WUYIQU_") and k != "DATABASE_URL"}
    env |= production() | {"DJANGO_SETTINGS_MODULE": "wuyiqu.settings", "WUYIQU_DATA_DIR": str(tmp_path / "var")}
    code = f"import django, json; django.setup(); from django.conf import settings; print(json.dumps({expression}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_hashes_with_argon2_first_and_has_the_validators_on(tmp_path):
    hashers, validators = production_settings(
        tmp_path, "[settings.PASSWORD_HASHERS, [v['NAME'].rsplit('.', 1)[-1] for v in settings.AUTH_PASSWORD_VALIDATORS]]")
    assert hashers == PRODUCTION_HASHERS
    assert validators == ["UserAttributeSimilarityValidator", "MinimumLengthValidator", "CommonPasswordValidator",
                          "NumericPasswordValidator"]


def test_a_pbkdf2_hash_is_upgraded_to_argon2_at_sign_in(db, settings):
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS
    user = do_create_user(actor=None, username="ann", password="correct-horse-battery", role=Role.ADMIN, unit=None)
    assert user.password.startswith("argon2$")
    User.objects.filter(pk=user.pk).update(password=make_password("correct-horse-battery", hasher="pbkdf2_sha256"))
    response = Client().post("/login/", {"username": "ann", "password": "correct-horse-battery"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")
    assert user.check_password("correct-horse-battery")


@pytest.mark.parametrize(("password", "reason"), [
    ("x7#k2", "此密码太短，至少要包含 8 个字符"),
    ("password123", "这个密码太常见了"),
    ("4711081512", "密码只包含数字"),
    ("annabelle-x", "密码跟 用户名 太相似了"),
])
def test_a_weak_password_is_refused_and_no_account_is_made(db, password, reason):
    with pytest.raises(ValueError, match="密码不符合要求") as exc:
        do_create_user(actor=None, username="annabelle", password=password, role=Role.ADMIN, unit=None)
    assert reason in str(exc.value)
    assert not User.objects.exists()
