"""`wuyiqu serve`: the deployment checks it runs at start, what it refuses, and a real gunicorn with
several workers serving pages over (forwarded) HTTPS and static files from WhiteNoise's manifest.

Each test starts `wuyiqu` in a new process with production settings and its own SQLite file: the
checks are about settings and files, not about the test database."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from wuyiqu.ops.management.commands.serve import default_workers, gunicorn_argv

WUYIQU = str(Path(sys.executable).parent / "wuyiqu")


def production_env(tmp_path: Path, **extra: str) -> dict:
    # Nothing of the test process's own settings: no WUYIQU_*, no DJANGO_* (Playwright's tests set
    # DJANGO_ALLOW_ASYNC_UNSAFE in this process, which the deployment checks rightly refuse).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WUYIQU_", "DJANGO_")) and k != "DATABASE_URL"}
    return env | {
        "WUYIQU_SECRET_KEY": "serve-test-" + "k7Qx9" * 12,
        "WUYIQU_DATA_KEY": "q1Vt0m3YkGz8cJ+2bX4rN7sWfE9hL5uA6dP0iR3oTyU=",  # random bytes, fixed for the tests
        "WUYIQU_ALLOWED_HOSTS": "wuyiqu.example.gov.cn,127.0.0.1",
        "WUYIQU_DATA_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'wuyiqu.sqlite3'}",
    } | extra


def wuyiqu(env: dict, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([WUYIQU, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=env["WUYIQU_DATA_DIR"].rsplit("/", 1)[0])


def test_the_deployment_checks_are_clean_with_production_settings(tmp_path):
    result = wuyiqu(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)" in result.stdout


def test_serve_refuses_to_start_on_a_deployment_warning_unless_allowed(tmp_path):
    env = production_env(tmp_path, WUYIQU_HSTS_SECONDS="0", WUYIQU_SECURE_COOKIES="0")
    refused = wuyiqu(env, "serve", "--check-only")
    assert refused.returncode != 0
    for check in ("security.W004", "security.W012", "security.W016"):
        assert check in refused.stderr
    # Explicitly allowed, the warnings pass; the next check finds the database not migrated.
    allowed = wuyiqu(env, "serve", "--check-only", "--allow-warnings")
    assert allowed.returncode != 0 and "security.W004" in allowed.stderr
    assert "wuyiqu migrate" in allowed.stderr


def test_serve_wants_migrations_static_files_and_the_cache_table_then_serves(tmp_path):
    env = production_env(tmp_path)
    assert wuyiqu(env, "migrate", "--noinput").returncode == 0
    refused = wuyiqu(env, "serve", "--check-only")
    assert refused.returncode != 0
    assert "wuyiqu collectstatic" in refused.stderr and "wuyiqu createcachetable" in refused.stderr
    assert "wuyiqu migrate" not in refused.stderr
    assert wuyiqu(env, "collectstatic", "--noinput").returncode == 0
    assert wuyiqu(env, "createcachetable").returncode == 0
    ready = wuyiqu(env, "serve", "--check-only")
    assert ready.returncode == 0, ready.stderr
    manifest = json.loads((tmp_path / "var" / "static" / "staticfiles.json").read_text())["paths"]
    hashed_css = next(v for k, v in manifest.items() if k.endswith(".css"))
    assert (tmp_path / "var" / "static" / f"{hashed_css}.gz").exists()  # compressed at collectstatic

    port = free_port()
    server = subprocess.Popen([WUYIQU, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              stdin=subprocess.DEVNULL, cwd=tmp_path)
    try:
        wait_for_port(port, server)
        base = f"http://127.0.0.1:{port}"
        # nginx says the client used HTTPS: the login page, with HSTS and secure cookies.
        page = get(f"{base}/login/", {"X-Forwarded-Proto": "https", "Host": "wuyiqu.example.gov.cn"})
        assert page.status == 200
        assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
        cookies = page.headers.get_all("Set-Cookie")
        assert any(c.startswith("csrftoken=") and "Secure" in c for c in cookies)
        # The hashed static file, compressed and cached for ever.
        static = get(f"{base}/static/{hashed_css}", {"X-Forwarded-Proto": "https", "Accept-Encoding": "gzip"})
        assert static.status == 200 and static.headers["Content-Encoding"] == "gzip"
        assert "immutable" in static.headers["Cache-Control"]
        # Plain HTTP that reached the app anyway is sent to HTTPS.
        plain = get(f"{base}/login/", {"Host": "wuyiqu.example.gov.cn"})
        assert plain.status == 301 and plain.headers["Location"] == "https://wuyiqu.example.gov.cn/login/"
        # `systemctl reload`: HUP to the same pid makes new workers, which load the code afresh.
        server.send_signal(signal.SIGHUP)
        time.sleep(3)
        assert get(f"{base}/login/", {"X-Forwarded-Proto": "https"}).status == 200
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, output
    assert "Handling signal: hup" in output
    assert output.count("Booting worker with pid") >= 4  # two workers, then two new ones after HUP


@pytest.mark.parametrize(("key", "why"), [
    (bytes(32), "只有 1 种不同的字节"),
    (bytes([7, 9] * 16), "只有 2 种不同的字节"),
    (bytes(range(32)), "等差的字节序列"),
    (b"test-only-data-key-32-bytes-long", "只有 15 种不同的字节"),
    (b"WuyiquDataKey#2022-Qijiang!Secre", "全是可打印字符"),  # a pass phrase, not random bytes
])
def test_serve_refuses_a_data_key_that_is_not_random(tmp_path, key, why):
    result = wuyiqu(production_env(tmp_path, WUYIQU_DATA_KEY=base64.b64encode(key).decode()), "serve", "--check-only")
    assert result.returncode != 0 and "WUYIQU_DATA_KEY 不是随机密钥" in result.stderr and why in result.stderr


def test_serve_refuses_any_host_name(tmp_path):
    result = wuyiqu(production_env(tmp_path, WUYIQU_ALLOWED_HOSTS="*"), "serve", "--check-only")
    assert result.returncode != 0 and "WUYIQU_ALLOWED_HOSTS 含有“*”" in result.stderr


def test_random_keys_pass_the_key_check():
    from wuyiqu.ops.startup import key_weakness

    assert [key_weakness(os.urandom(32)) for _ in range(2000)] == [None] * 2000
    assert key_weakness(base64.b64decode(production_env(Path("/x"))["WUYIQU_DATA_KEY"])) is None


def test_the_number_of_workers_follows_the_cpus_and_threads_choose_the_worker_class(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert default_workers() == 5
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert default_workers() == 12
    def worker_class(threads: int) -> str:
        argv = gunicorn_argv(bind="127.0.0.1:1", workers=3, threads=threads, timeout=60)
        return argv[argv.index("--worker-class") + 1]

    assert (worker_class(1), worker_class(4)) == ("sync", "gthread")


@pytest.mark.parametrize("args", [["--workers", "0"], ["--threads", "0"]])
def test_serve_refuses_nonsense_numbers(tmp_path, args):
    result = wuyiqu(production_env(tmp_path), "serve", "--check-only", *args)
    assert result.returncode != 0 and "正整数" in result.stderr


# --- helpers ----------------------------------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get(url: str, headers: dict):
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        return opener.open(urllib.request.Request(url, headers=headers), timeout=30)
    except urllib.error.HTTPError as error:  # 3xx/4xx/5xx: the response itself
        return error


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"wuyiqu serve exited: {process.communicate()[0]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("wuyiqu serve did not listen in time")


# --- the client's address behind nginx ----------------------------------------------------------------

@pytest.mark.parametrize(("proxy", "remote", "real_ip", "seen"), [
    (True, "127.0.0.1", "203.0.113.7", "203.0.113.7"),  # nginx forwarded a client
    (True, "127.0.0.1", "", "127.0.0.1"),  # a local health check, no proxy in between
    (True, "127.0.0.1", "not-an-address", "127.0.0.1"),
    (True, "198.51.100.2", "203.0.113.7", "198.51.100.2"),  # not from nginx: the header is not believed
    (False, "127.0.0.1", "203.0.113.7", "127.0.0.1"),  # not behind a proxy (demo)
])
def test_the_client_address_comes_from_nginx_only(settings, rf, proxy, remote, real_ip, seen):
    from wuyiqu.ops.middleware import ForwardedClientMiddleware

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if proxy else None
    request = rf.get("/", REMOTE_ADDR=remote, HTTP_X_REAL_IP=real_ip)
    middleware = ForwardedClientMiddleware(lambda r: r.META["REMOTE_ADDR"])
    assert middleware(request) == seen
