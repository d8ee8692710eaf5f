"""scripts/dev.py: the apt step waits for another apt run's lock instead of failing with exit 100."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

DEV = Path(__file__).resolve().parent.parent / "scripts" / "dev.py"


@pytest.fixture
def dev(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("wuyiqu_dev_script", DEV)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lock = tmp_path / "lock-frontend"
    lock.touch()
    monkeypatch.setattr(module, "APT_LOCKS", [lock, tmp_path / "absent-lock"])
    real_sleep = time.sleep
    monkeypatch.setattr(module.time, "sleep", lambda seconds: real_sleep(min(seconds, 0.2)))
    module.lock = lock
    return module


def _hold(lock: Path, seconds: float) -> subprocess.Popen:
    """Another process (as apt would be) holds the lock for a while."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time\n"
        f"h = open({str(lock)!r}, 'w'); fcntl.lockf(h, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        f"time.sleep({seconds})\n")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_free_lock_is_free_and_a_held_one_is_named(dev):
    assert dev.apt_lock_holder() is None
    holder = _hold(dev.lock, 2)
    try:
        assert dev.apt_lock_holder() == dev.lock
    finally:
        holder.kill()
        holder.wait()
    assert dev.apt_lock_holder() is None


def test_apt_waits_for_a_held_lock_then_runs(dev, monkeypatch):
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append((time.monotonic(), dev.apt_lock_holder(), cmd))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(dev.subprocess, "run", fake_run)
    holder = _hold(dev.lock, 1.5)
    started = time.monotonic()
    dev.apt_get("install", "-y", "chromium")
    holder.wait()
    assert len(calls) == 1
    ran_at, held_when_run, cmd = calls[0]
    assert ran_at - started >= 1.0  # it waited for the holder
    assert held_when_run is None
    assert cmd[:3] == ["apt-get", "-o", f"DPkg::Lock::Timeout={dev.APT_LOCK_WAIT}"]
    assert cmd[3:] == ["install", "-y", "chromium"]


def test_exit_100_while_locked_is_retried_and_other_failures_are_not(dev, monkeypatch):
    codes = iter([100, 0])
    holder = None

    def fake_run(cmd, **kwargs):
        nonlocal holder
        code = next(codes)
        if code == 100:  # apt lost the race: somebody took the lock just now
            holder = _hold(dev.lock, 1.0)
        return subprocess.CompletedProcess(cmd, code)

    monkeypatch.setattr(dev.subprocess, "run", fake_run)
    dev.apt_get("update")
    holder.wait()
    assert next(codes, "used up") == "used up"  # ran twice: refused, then after the wait

    monkeypatch.setattr(dev.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 100))
    with pytest.raises(SystemExit) as failed:  # 100 with no lock held is a real failure: no retry
        dev.apt_get("update")
    assert failed.value.code == 100


def test_a_lock_held_past_the_limit_fails_with_a_message(dev, monkeypatch, capsys):
    monkeypatch.setattr(dev, "APT_LOCK_WAIT", 0.5)
    monkeypatch.setattr(dev.subprocess, "run", lambda cmd, **kw: pytest.fail("apt-get ran while locked"))
    holder = _hold(dev.lock, 3)
    try:
        with pytest.raises(SystemExit) as failed:
            dev.apt_get("update")
    finally:
        holder.kill()
    assert failed.value.code == 100
    assert "still locked" in capsys.readouterr().err


def _runs(dev, monkeypatch, argv):
    """The databases `dev.py test ARGV` would run pytest on, and with which arguments."""
    runs = []
    monkeypatch.setattr(dev, "ensure_venv", lambda: None)
    monkeypatch.setattr(dev, "ensure_system_tools", lambda browser: None)
    monkeypatch.setattr(dev, "pytest_once", lambda label, url, args: runs.append((label, url, args)) or (True, label))
    monkeypatch.setattr(dev.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return dev.cmd_test(argv), runs


def test_postgres_only_runs_the_postgres_pass_alone(dev, monkeypatch):
    url = "postgres://postgres@127.0.0.1:5432/x"
    code, runs = _runs(dev, monkeypatch, ["--no-browser", "--postgres", url, "--postgres-only", "-m", "clock"])
    assert code == 0
    assert runs == [("postgres", url, ["-m", "not browser", "-m", "clock"])]
    code, runs = _runs(dev, monkeypatch, ["--postgres", url])
    assert [label for label, _, _ in runs] == ["sqlite", "postgres"]


def test_postgres_only_without_a_database_is_refused(dev, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        _runs(dev, monkeypatch, ["--postgres-only"])
    assert "--postgres-only needs --postgres URL" in capsys.readouterr().err
