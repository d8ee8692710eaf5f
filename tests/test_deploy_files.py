"""The committed deployment files (deploy/) agree with each other and with the code: the units run
`wuyiqu serve` and `wuyiqu worker` as docs/deploy.md says, nginx proxies to where `serve` listens and
lets the largest import through, and the environment file's example makes valid production settings.
scripts/deploy-debian.sh runs these very files on a Debian machine (docs/deploy.md); this test
keeps them consistent between runs of it."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def load_units_script():
    spec = importlib.util.spec_from_file_location("deploy_units", ROOT / "scripts" / "deploy_units.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def env_file(tmp_path):
    """The example environment file with its placeholders filled, where the units expect it."""
    text = (DEPLOY / "wuyiqu.env.example").read_text(encoding="utf-8")
    text = text.replace("WUYIQU_SECRET_KEY=CHANGE-ME", "WUYIQU_SECRET_KEY=" + "s3cr3t-" * 8)
    text = text.replace("WUYIQU_DATA_KEY=CHANGE-ME", "WUYIQU_DATA_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
    path = tmp_path / "wuyiqu.env"
    path.write_text(text, encoding="utf-8")
    return path


def service(name: str, env_file: Path, tmp_path: Path, monkeypatch):
    import pwd
    import types

    units = load_units_script()
    # The wuyiqu user exists only on a server: root's account stands in for it.
    monkeypatch.setattr(units, "pwd", types.SimpleNamespace(getpwnam=lambda user: pwd.getpwnam("root")))
    unit = (DEPLOY / f"{name}.service").read_text(encoding="utf-8").replace("/etc/wuyiqu/wuyiqu.env", str(env_file))
    copy = tmp_path / f"{name}.service"
    copy.write_text(unit, encoding="utf-8")
    return units.parse_service(copy)


def test_the_units_run_serve_and_worker_as_the_wuyiqu_user_with_the_environment_file(env_file, tmp_path,
                                                                                   monkeypatch):
    web = service("wuyiqu-web", env_file, tmp_path, monkeypatch)
    worker = service("wuyiqu-worker", env_file, tmp_path, monkeypatch)
    assert web.argv == ["/opt/wuyiqu/venv/bin/wuyiqu", "serve", "--bind", "127.0.0.1:8000"]
    assert worker.argv == ["/opt/wuyiqu/venv/bin/wuyiqu", "worker"]
    for unit in (web, worker):
        assert (unit.user, unit.group, unit.working_directory, unit.umask) == ("wuyiqu", "wuyiqu", "/var/lib/wuyiqu",
                                                                                "0027")
        assert unit.environment["WUYIQU_ENV"] == "production"
        assert unit.environment["WUYIQU_DATA_DIR"] == "/var/lib/wuyiqu"
        assert unit.environment["PYTHONUNBUFFERED"] == "1"
        assert "ProtectSystem=strict" in unit.not_applied and "ReadWritePaths=/var/lib/wuyiqu" in unit.not_applied
    assert worker.stop_timeout >= 600  # TERM lets an import finish


def test_nginx_proxies_to_serve_and_lets_the_largest_import_through():
    from django.conf import settings

    from wuyiqu.ops.management.commands.serve import Command

    conf = (DEPLOY / "nginx-wuyiqu.conf").read_text(encoding="utf-8")
    assert re.search(r"upstream wuyiqu_web \{\s*server 127\.0\.0\.1:8000;", conf)
    body = re.search(r"client_max_body_size (\d+)m;", conf)
    assert int(body.group(1)) * 1024 * 1024 > settings.IMPORT_MAX_UPLOAD_BYTES
    parser = Command().create_parser("wuyiqu", "serve")
    serve_timeout = parser.parse_args([]).timeout
    assert int(re.search(r"proxy_read_timeout\s+(\d+)s;", conf).group(1)) > serve_timeout
    for header in ("Host $http_host", "X-Forwarded-Proto $scheme", "X-Real-IP $remote_addr"):
        assert f"proxy_set_header {header};" in conf
    assert "root /var/lib/wuyiqu;" in conf and "gzip_static on;" in conf


def test_the_example_environment_makes_clean_production_settings(env_file, tmp_path):
    values = load_units_script().read_environment_file(env_file)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WUYIQU_") and k not in ("DATABASE_URL",
                                                                                           "DJANGO_SETTINGS_MODULE")}
    env |= values | {"WUYIQU_DATA_DIR": str(tmp_path / "var"), "DJANGO_SETTINGS_MODULE": "wuyiqu.settings"}
    code = ("from django.conf import settings; "
            "print(settings.DATABASES['default']['HOST'], settings.DATABASES['default']['USER'], "
            "settings.TASKS['default']['BACKEND'], settings.SECURE_PROXY_SSL_HEADER[0], settings.SESSION_COOKIE_SECURE)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["/var/run/postgresql", "wuyiqu", "django_tasks_db.DatabaseBackend",
                                  "HTTP_X_FORWARDED_PROTO", "True"]


def _script_commands(pattern: str) -> list[list[str]]:
    """The `wuyiqu …` commands of scripts/deploy-debian.sh matching ``pattern``, split as the shell would."""
    import shlex

    text = (ROOT / "scripts" / "deploy-debian.sh").read_text(encoding="utf-8")
    return [shlex.split(m.group(1)) for m in re.finditer(r"\bwuyiqu (" + pattern + r"[^|)\n]*)", text)]


@pytest.mark.django_db
def test_the_deploy_script_makes_its_administrator_with_the_products_own_command():
    """Step 8 of the script: `wuyiqu user create --role admin` (not Django's createsuperuser, which
    bypasses the product's roles and audit); its last line is the one-time password the script keeps
    (`| tail -n 1`); at the end of a first run `wuyiqu user reset-password admin` gives the operator a new one."""
    import io

    from django.core.management import call_command

    from wuyiqu.accounts.models import Role, User
    from wuyiqu.audit.models import AuditEvent

    text = (ROOT / "scripts" / "deploy-debian.sh").read_text(encoding="utf-8")
    assert "createsuperuser" not in text
    (create,) = _script_commands(r"user create")
    assert re.search(r"wuyiqu user create [^\n]*\| tail -n 1 > \"\$ADMIN_PASSWORD_FILE\"", text)
    out = io.StringIO()
    call_command(*create, stdout=out)
    password = out.getvalue().splitlines()[-1]
    admin = User.objects.get(username="admin")
    assert (admin.role, admin.unit_id, admin.is_active, admin.must_change_password) == (Role.ADMIN, None, True, True)
    assert admin.check_password(password) and len(password) >= 12
    assert AuditEvent.objects.filter(action__startswith="accounts.", actor=None).exists()
    (reset,) = _script_commands(r"user reset-password")
    assert reset[-1] == "admin"
    out = io.StringIO()
    call_command(*reset, stdout=out)
    again = out.getvalue().splitlines()[-1]
    admin.refresh_from_db()
    assert again != password and admin.check_password(again) and admin.must_change_password


@pytest.mark.django_db(transaction=True)
def test_the_smoke_test_changes_a_new_administrators_one_time_password(live_server, tmp_path):
    """scripts/deploy_smoke.py signs in with the one-time password of `wuyiqu user create`, is sent to the
    own-password page, picks a new password and writes it back to the password file (0600); a second
    sign-in with it is not asked again."""
    import io
    import stat

    from django.core.management import call_command

    from wuyiqu.accounts.models import User

    spec = importlib.util.spec_from_file_location("deploy_smoke", ROOT / "scripts" / "deploy_smoke.py")
    smoke = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = smoke
    spec.loader.exec_module(smoke)
    out = io.StringIO()
    call_command("user", "create", "--username", "admin", "--name", "系统管理员", "--role", "admin", stdout=out)
    password_file = tmp_path / "deploy-admin-password"
    password_file.write_text(out.getvalue().splitlines()[-1] + "\n", encoding="utf-8")

    def signed_in(password: str):
        browser = smoke.Browser(live_server.url, None)
        _status, _h, body = browser.request("/login/")
        status, _h, _b = browser.post_form("/login/", {"csrfmiddlewaretoken": browser.csrf(body.decode()),
                                                       "username": "admin", "password": password})
        assert status == 302
        return browser

    old = password_file.read_text(encoding="utf-8").strip()
    new = smoke.change_one_time_password(signed_in(old), old=old, password_file=str(password_file))
    assert new and new != old and password_file.read_text(encoding="utf-8").strip() == new
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    admin = User.objects.get(username="admin")
    assert admin.check_password(new) and not admin.must_change_password
    assert smoke.change_one_time_password(signed_in(new), old=new, password_file=str(password_file)) is None
