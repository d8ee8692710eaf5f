"""Settings come from the environment and stop the process at start, naming the variable, on a bad value.

Each case starts a fresh Python (settings are read once per process) with a clean environment.
"""

import base64
import os
import subprocess
import sys

import django
import pytest

GOOD_SECRET = "a-production-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
GOOD_DATA_KEY = base64.b64encode(bytes(range(32))).decode()
SETUP = (
    "import warnings; warnings.simplefilter('error');"  # any deprecation warning fails too
    "import django; django.setup();"
    "from django.conf import settings; db = settings.DATABASES['default'];"
    "print(settings.WUYIQU_ENV, db['ENGINE'], db['NAME'], sep='|')"
)


def start(tmp_path, **env):
    """Load the production settings in a new process with only ``env`` set; returns the result."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WUYIQU_") and k != "DATABASE_URL"}
    clean |= {"DJANGO_SETTINGS_MODULE": "wuyiqu.settings", "WUYIQU_DATA_DIR": str(tmp_path / "var")}
    clean |= {k: v for k, v in env.items() if v is not None}
    return subprocess.run([sys.executable, "-c", SETUP], cwd=tmp_path, env=clean, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def production(**env):
    return {"WUYIQU_SECRET_KEY": GOOD_SECRET, "WUYIQU_DATA_KEY": GOOD_DATA_KEY} | env


def refused(result, *words):
    assert result.returncode != 0, result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured:"), result.stderr
    for word in words:
        assert word in last, last
    return last


def test_good_production_settings_start(tmp_path):
    result = start(tmp_path, **production())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"production|django.db.backends.sqlite3|{tmp_path / 'var' / 'wuyiqu.sqlite3'}"


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    refused(start(tmp_path, WUYIQU_DATA_KEY=GOOD_DATA_KEY), "WUYIQU_SECRET_KEY is not set")


def test_demo_has_no_built_in_secret_either(tmp_path):
    refused(start(tmp_path, WUYIQU_ENV="demo", WUYIQU_DATA_KEY=GOOD_DATA_KEY), "WUYIQU_SECRET_KEY")


def test_production_refuses_to_start_without_a_data_key(tmp_path):
    refused(start(tmp_path, WUYIQU_SECRET_KEY=GOOD_SECRET), "WUYIQU_DATA_KEY is not set")


@pytest.mark.parametrize("key, reason", [
    ("not base64 at all!", "WUYIQU_DATA_KEY is not valid base64"),
    (base64.b64encode(b"sixteen bytes!!!").decode(), "WUYIQU_DATA_KEY must decode to 32 bytes, not 16"),
    (base64.b64encode(bytes(33)).decode(), "WUYIQU_DATA_KEY must decode to 32 bytes, not 33"),
])
def test_a_bad_data_key_stops_the_start(tmp_path, key, reason):
    refused(start(tmp_path, **production(WUYIQU_DATA_KEY=key)), reason)


def test_a_bad_old_data_key_stops_the_start_naming_its_position(tmp_path):
    old = f"{base64.b64encode(bytes(32)).decode()},too-short"
    refused(start(tmp_path, **production(WUYIQU_OLD_DATA_KEYS=old)), "WUYIQU_OLD_DATA_KEYS[1]")


def test_even_the_test_environment_checks_a_given_data_key(tmp_path):
    refused(start(tmp_path, WUYIQU_ENV="test", WUYIQU_DATA_KEY="c2hvcnQ="), "WUYIQU_DATA_KEY must decode to 32 bytes")


@pytest.mark.parametrize("url, reason", [
    ("mysql://wuyiqu:hunter2-secret@db.example/wuyiqu", "only PostgreSQL (postgres://) and SQLite"),
    ("not-a-url", "is not a database URL"),
    ("postgres://wuyiqu:hunter2-secret@db.example:notaport/wuyiqu", "is not a database URL"),
    ("postgres://127.0.0.1:5432", "names no database"),
])
def test_a_bad_database_url_stops_the_start_without_showing_the_password(tmp_path, url, reason):
    message = refused(start(tmp_path, **production(DATABASE_URL=url)), "DATABASE_URL=", reason)
    assert "hunter2-secret" not in message


def test_a_sqlite_url_is_accepted(tmp_path):
    result = start(tmp_path, **production(DATABASE_URL=f"sqlite:///{tmp_path}/other.sqlite3"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"production|django.db.backends.sqlite3|{tmp_path}/other.sqlite3"


def test_a_postgres_url_is_accepted(tmp_path):
    result = start(tmp_path, **production(DATABASE_URL="postgres://postgres@127.0.0.1:5432/wuyiqu"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "production|wuyiqu.lib.pgbackend|wuyiqu"


@pytest.mark.parametrize("name, value, reason", [
    ("WUYIQU_ENV", "staging", "expected production, demo or test"),
    ("WUYIQU_DEBUG", "maybe", "expected 1/0"),
    ("WUYIQU_SESSION_SECONDS", "8h", "expected a whole number"),
    ("WUYIQU_DB_CONN_MAX_AGE", "forever", "expected a whole number"),
    ("WUYIQU_TASKS", "celery", "expected database or immediate"),
    ("WUYIQU_SUPERVISE_AT", "25:00", "expected HH:MM"),
    ("WUYIQU_SUPERVISE_AT", "1:30am", "expected HH:MM"),
    ("WUYIQU_HSTS_SECONDS", "a year", "expected a whole number"),
    ("WUYIQU_SECURE_COOKIES", "sometimes", "expected 1/0"),
])
def test_other_bad_values_name_their_variable(tmp_path, name, value, reason):
    refused(start(tmp_path, **production(**{name: value})), f"{name}=", reason)


def test_mail_uses_the_setting_of_the_running_django(settings):
    # Django 6.1 deprecates EMAIL_BACKEND for MAILERS (and refuses both at once); 5.2 knows only
    # EMAIL_BACKEND. The subprocess tests above also turn any deprecation warning into an error.
    if django.VERSION >= (6, 1):
        assert settings.is_overridden("MAILERS")
        assert not settings.is_overridden("EMAIL_BACKEND")
    else:
        assert settings.is_overridden("EMAIL_BACKEND")


def test_the_console_command_stops_on_a_bad_value_too(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WUYIQU_") and k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env |= production(DATABASE_URL="mysql://wuyiqu:hunter2-secret@db.example/wuyiqu",
                      WUYIQU_DATA_DIR=str(tmp_path / "var"))
    result = subprocess.run([sys.executable, "-m", "wuyiqu", "check"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert "ImproperlyConfigured: DATABASE_URL='mysql://wuyiqu:***@db.example/wuyiqu'" in result.stderr
    assert "hunter2-secret" not in result.stderr


def test_a_data_key_rotation_without_a_lookup_key_stops_the_start(tmp_path):
    # The lookup hashes would follow the new data key and stop matching every stored hash.
    old = base64.b64encode(bytes(range(1, 33))).decode()
    refused(start(tmp_path, **production(WUYIQU_OLD_DATA_KEYS=old)), "WUYIQU_LOOKUP_KEY is not")
    result = start(tmp_path, **production(WUYIQU_OLD_DATA_KEYS=old, WUYIQU_LOOKUP_KEY=old))
    assert result.returncode == 0, result.stderr


def test_a_bad_lookup_key_stops_the_start(tmp_path):
    refused(start(tmp_path, **production(WUYIQU_LOOKUP_KEY="c2hvcnQ=")), "WUYIQU_LOOKUP_KEY must decode to 32 bytes")
