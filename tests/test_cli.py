"""The `wuyiqu` console command: Django's management commands under it, secrets for the embedded database."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wuyiqu import cli


def clean_env(tmp_path, **env):
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("WUYIQU_") and k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    return base | {"WUYIQU_DATA_DIR": str(tmp_path / "var")} | env


def console_script() -> str:
    """The installed entry point (pip's `wuyiqu` script beside this interpreter)."""
    script = Path(sys.executable).parent / "wuyiqu"
    assert script.exists(), f"{script} is missing: pip install -e . makes it"
    return str(script)


def test_the_console_command_runs_check_on_the_embedded_database(tmp_path):
    # `demo` makes the embedded database's secrets; other commands reuse them.
    env = clean_env(tmp_path)
    subprocess.run([sys.executable, "-c", "from wuyiqu.cli import _load_or_create_embedded_secrets as f; "
                    "f(create=True)"], env=env, cwd=tmp_path, check=True)
    result = subprocess.run([console_script(), "check"], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_python_dash_m_wuyiqu_runs_too(tmp_path):
    env = clean_env(tmp_path, WUYIQU_SECRET_KEY="k" * 50,
                    WUYIQU_DATA_KEY="AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                    DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")
    result = subprocess.run([sys.executable, "-m", "wuyiqu", "check"], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_without_secrets_a_command_other_than_demo_fails_naming_the_variable(tmp_path):
    result = subprocess.run([console_script(), "check"], env=clean_env(tmp_path), cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert "WUYIQU_SECRET_KEY is not set" in result.stderr
    assert not (tmp_path / "var" / "secrets.env").exists()  # only `demo` creates them


def test_embedded_secrets_are_made_once_and_then_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("WUYIQU_DATA_DIR", str(tmp_path / "var"))
    for name in ("WUYIQU_SECRET_KEY", "WUYIQU_DATA_KEY"):
        monkeypatch.delenv(name, raising=False)
    cli._load_or_create_embedded_secrets(create=True)
    first = (tmp_path / "var" / "secrets.env").read_text()
    key = os.environ["WUYIQU_DATA_KEY"]
    monkeypatch.delenv("WUYIQU_DATA_KEY")
    cli._load_or_create_embedded_secrets(create=True)
    assert (tmp_path / "var" / "secrets.env").read_text() == first
    assert os.environ["WUYIQU_DATA_KEY"] == key


@pytest.mark.parametrize("argv", [["help"], []])
def test_help_lists_the_demo_command(tmp_path, argv):
    env = clean_env(tmp_path, WUYIQU_ENV="test")
    result = subprocess.run([console_script(), *argv], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert "demo" in result.stdout


# --- scripts/dev.py, README's entry point (standard library only) ------------------------------

def load_dev_script():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "dev.py"
    spec = importlib.util.spec_from_file_location("dev_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dev_script_probes_interpreters_and_skips_ones_that_do_not_run(tmp_path):
    dev = load_dev_script()
    assert dev.probe(sys.executable) == tuple(sys.version_info[:3])
    assert sys.executable in dev.candidates()
    broken = tmp_path / "python3.12"
    broken.write_text("#!/bin/sh\necho 'pyenv: python3.12: command not found' >&2\nexit 127\n")
    broken.chmod(0o755)
    assert dev.probe(str(broken)) is None  # like a pyenv shim of a version that is not activated
    assert dev.probe(str(tmp_path / "missing")) is None


def test_dev_script_prefers_a_python_the_newest_django_supports(monkeypatch):
    dev = load_dev_script()
    monkeypatch.delenv("WUYIQU_DEV_PYTHON", raising=False)
    versions = {"/a/python3.11": (3, 11, 9), "/b/python3.12": (3, 12, 1), "/c/python3.13": (3, 13, 0),
                "/d/python3.19": (3, 19, 0), "/e/broken": None}
    monkeypatch.setattr(dev, "candidates", lambda: list(versions))
    monkeypatch.setattr(dev, "probe", versions.get)
    assert dev.choose_python() == ("/c/python3.13", (3, 13, 0))
    monkeypatch.setenv("WUYIQU_DEV_PYTHON", "/b/python3.12")
    assert dev.choose_python() == ("/b/python3.12", (3, 12, 1))
    monkeypatch.setenv("WUYIQU_DEV_PYTHON", "/e/broken")
    with pytest.raises(SystemExit):
        dev.choose_python()


@pytest.mark.parametrize("code, closing, ok, summary", [
    (0, "===== 120 passed, 2 warnings in 31.20s =====", True, "sqlite: 120 passed, 0 failed"),
    (1, "= 2 failed, 117 passed, 1 error in 40.01s =", False, "sqlite: 117 passed, 3 failed"),
    (0, "118 passed, 2 skipped in 3.00s", True, "sqlite: 118 passed, 0 failed, 2 skipped"),
    (5, "===== 130 deselected in 1.10s =====", True, "sqlite: 0 passed, 0 failed"),  # exit 5: no test ran
    (2, "", False, "sqlite: 0 passed, 0 failed"),  # interrupted before pytest's closing line
])
def test_dev_script_summarises_each_database_in_one_line(code, closing, ok, summary):
    dev = load_dev_script()
    assert dev.CLOSING.search(closing) or not closing
    got_ok, text = dev.summarise("sqlite", code, closing, 12.0)
    assert (got_ok, text.splitlines()[0]) == (ok, summary)
    assert ("no tests ran" in text) == (code == 5)


def test_dev_script_hides_database_passwords():
    dev = load_dev_script()
    assert dev.redact("postgres://postgres:s3cret@127.0.0.1:5432/wuyiqu") == "postgres://postgres:***@127.0.0.1:5432/wuyiqu"
    assert dev.redact("postgres://postgres@127.0.0.1:5432/wuyiqu") == "postgres://postgres@127.0.0.1:5432/wuyiqu"


def test_dev_script_without_a_command_prints_usage_and_fails():
    script = Path(__file__).resolve().parent.parent / "scripts" / "dev.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert "python3 scripts/dev.py demo" in result.stdout
