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
