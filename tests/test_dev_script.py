"""scripts/dev.py: the apt step waits for another apt run's lock instead of failing with exit 100."""

from __future__ import annotations

import importlib.util
import shutil
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
    """The databases `dev.py test ARGV` would run pytest on, with which arguments, and whether side by side."""
    runs = []

    def fake_run_passes(passes, side_by_side):
        for p in passes:
            runs.append((p.label, p.database_url, p.args, side_by_side))
            shutil.rmtree(p.tmp)
        return [(True, p.label) for p in passes]

    monkeypatch.setattr(dev, "ensure_venv", lambda: None)
    monkeypatch.setattr(dev, "ensure_system_tools", lambda browser: None)
    monkeypatch.setattr(dev, "run_passes", fake_run_passes)
    monkeypatch.setattr(dev.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return dev.cmd_test(argv), runs


def test_postgres_only_runs_the_postgres_pass_alone(dev, monkeypatch):
    url = "postgres://postgres@127.0.0.1:5432/x"
    code, runs = _runs(dev, monkeypatch, ["--no-browser", "--postgres", url, "--postgres-only", "-m", "clock"])
    assert code == 0
    assert runs == [("postgres", url, ["--durations=15", "-m", "(clock) and not browser"], False)]
    code, runs = _runs(dev, monkeypatch, ["--postgres", url])
    assert [(label, side) for label, _, _, side in runs] == [("sqlite", True), ("postgres", True)]
    code, runs = _runs(dev, monkeypatch, ["--postgres", url, "--one-at-a-time", "--durations=3", "-k", "x"])
    assert runs == [("sqlite", None, ["--durations=3", "-k", "x"], False), ("postgres", url, ["--durations=3", "-k", "x"], False)]


def test_sqlite_now_freezes_the_sqlite_pass_alone(dev, monkeypatch):
    url = "postgres://postgres@127.0.0.1:5432/x"
    moment = "2028-02-29T00:00:30+08:00"
    passes = []
    monkeypatch.setattr(dev, "run_passes", lambda ps, side_by_side: passes.extend(ps) or [(True, p.label) for p in ps])
    monkeypatch.setattr(dev, "ensure_venv", lambda: None)
    monkeypatch.setattr(dev, "ensure_system_tools", lambda browser: None)
    monkeypatch.setattr(dev.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0))
    monkeypatch.delenv("TEST_NOW", raising=False)
    assert dev.cmd_test(["--postgres", url, "--sqlite-now", moment, "-q"]) == 0
    sqlite, postgres = passes
    assert (sqlite.label, sqlite.env["TEST_NOW"], "DATABASE_URL" in sqlite.env) == (f"sqlite at {moment}", moment, False)
    assert (postgres.label, "TEST_NOW" in postgres.env, postgres.env["DATABASE_URL"]) == ("postgres", False, url)
    assert sqlite.args == postgres.args == ["--durations=15", "-q"]
    for p in passes:
        shutil.rmtree(p.tmp)


def test_no_browser_is_joined_to_a_marker_expression(dev):
    # pytest keeps only the last -m: "-m 'not browser' -m clock" would run the browser tests.
    assert dev.with_no_browser(["-q"]) == ["-m", "not browser", "-q"]
    assert dev.with_no_browser(["-m", "clock", "-q"]) == ["-m", "(clock) and not browser", "-q"]
    assert dev.with_no_browser(["-mclock or screens"]) == ["-m", "(clock or screens) and not browser"]


def test_postgres_only_without_a_database_is_refused(dev, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        _runs(dev, monkeypatch, ["--postgres-only"])
    assert "--postgres-only needs --postgres URL" in capsys.readouterr().err


def _script_pass(dev, label, code):
    """A Pass whose "pytest" is a small script: it prints where its files go, then CODE."""
    p = dev.Pass(label, None, [])
    p.cmd = [sys.executable, "-c", (
        "import os, sys, time\n"
        f"print('{label} starts', flush=True)\n"
        f"{code}\n"
        f"print('{label} data', os.environ['WUYIQU_DATA_DIR'], [a for a in sys.argv if a.startswith('--basetemp')])\n"
        f"print('===== 3 passed in 1.00s =====')\n"), f"--basetemp={p.tmp / 'pytest'}"]
    return p


def test_passes_run_side_by_side_and_are_echoed_whole_in_order(dev, capsys):
    first = _script_pass(dev, "sqlite", "time.sleep(2.0)")
    second = _script_pass(dev, "postgres", "time.sleep(1.5)")
    dirs = [first.tmp, second.tmp]
    t0 = time.monotonic()
    results = dev.run_passes([first, second], side_by_side=True)
    took = time.monotonic() - t0
    assert took < 3.3, took  # 2.0 s and 1.5 s one after the other would be 3.5 s and more
    assert [ok for ok, _ in results] == [True, True]
    assert results[0][1].startswith("sqlite: 3 passed, 0 failed")
    assert results[1][1].startswith("postgres: 3 passed, 0 failed")
    out = capsys.readouterr().out
    # The second pass's output comes whole, after the first's, and each pass had its own directories.
    assert out.index("sqlite starts") < out.index("sqlite data") < out.index("postgres starts") < out.index("postgres data")
    data = [line.split()[2] for line in out.splitlines() if " data " in line]
    assert data == [str(dirs[0] / "var"), str(dirs[1] / "var")]
    assert not any(d.exists() for d in dirs)  # the temporary directories are removed afterwards


def test_a_failing_pass_beside_another_is_reported(dev, capsys):
    first = _script_pass(dev, "sqlite", "pass")
    second = _script_pass(dev, "postgres", "sys.exit(1)")
    results = dev.run_passes([first, second], side_by_side=True)
    assert results[0][0] is True
    assert results[1][0] is False and "FAILED (pytest exit 1)" in results[1][1]
