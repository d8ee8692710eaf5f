"""`wuyiqu demo` on a bare machine: it makes its secrets, migrates the embedded SQLite database and
fills it with 文龙街道's real committees and a generated world that the seed decides.

The command runs in fresh processes through the console entry point (`wuyiqu.cli.main`), each with
its own WUYIQU_DATA_DIR, and the results are read straight from the SQLite files.
"""

import csv
import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import wuyiqu

WENLONG = "500110002"
DEMO_USERS = {"admin", "command", "health", "street", "community", "village", "property", "building", "group",
              "community2", "property2", "building2"}
DIVISIONS = Path(wuyiqu.__file__).parent / "data" / "qijiang-divisions-2023.csv"


def demo(data_dir: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WUYIQU_") and k != "DATABASE_URL"}
    env |= {"WUYIQU_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": ""}
    env.pop("DJANGO_SETTINGS_MODULE")  # the console command picks its own settings
    code = f"from wuyiqu.cli import main; main(['demo', '--no-serve', *{list(args)!r}])"
    return subprocess.Popen([sys.executable, "-c", code], cwd=data_dir.parent, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return out


def query(data_dir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(data_dir / "wuyiqu.sqlite3") as conn:
        return conn.execute(sql).fetchall()


def digest(data_dir: Path) -> str:
    """What the seed decides: every unit, household and resident (masked ID, name, third birthday), and the
    month lived on them."""
    h = hashlib.sha256()
    for sql in (
        "SELECT code, name, kind FROM units_unit ORDER BY code",
        "SELECT code, address FROM units_household ORDER BY code",
        "SELECT h.code, r.id_masked, r.name, r.turns_three_on, r.sex, r.phone_masked FROM units_resident r "
        "JOIN units_household h ON h.id = r.household_id ORDER BY h.code, r.id_masked, r.name",
        # the month behind the demo: who was tested when, the titles, the applications, the day's verdicts
        "SELECT sampled_on, count(*) FROM health_natresult GROUP BY sampled_on ORDER BY sampled_on",
        "SELECT u.code, t.named_on, t.withdrawn_on FROM certification_title t JOIN units_unit u ON u.id = t.unit_id "
        "ORDER BY u.code, t.named_on",
        "SELECT u.code, a.status FROM applications_application a JOIN units_unit u ON u.id = a.unit_id ORDER BY u.code, a.id",
        "SELECT u.code, e.\"on\", e.eligible, e.named, e.failed FROM standards_evaluation e "
        "JOIN units_unit u ON u.id = e.unit_id ORDER BY u.code, e.\"on\"",
    ):
        for row in query(data_dir, sql):
            h.update(repr(row).encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three demos side by side: seed 11 twice and seed 12 once, 2000 residents each."""
    base = tmp_path_factory.mktemp("demo")
    dirs = {name: base / name / "var" for name in ("a", "a_again", "b")}
    for d in dirs.values():
        d.parent.mkdir()
    seeds = {"a": "11", "a_again": "11", "b": "12"}
    procs = {name: demo(d, "--residents", "2000", "--seed", seeds[name]) for name, d in dirs.items()}
    outputs = {name: finish(p) for name, p in procs.items()}
    return dirs, outputs


def test_it_loads_the_20_real_committees_of_wenlong(runs):
    dirs, _ = runs
    with DIVISIONS.open(encoding="utf-8") as f:
        real = sorted((r["code"], r["name"], r["kind"]) for r in csv.DictReader(f) if r["parent_code"] == WENLONG)
    assert len(real) == 20
    loaded = query(dirs["a"], f"SELECT code, name, kind FROM units_unit WHERE parent_id = "
                              f"(SELECT id FROM units_unit WHERE code = '{WENLONG}') ORDER BY code")
    assert loaded == real
    assert ("500110002015", "文龙社区居民委员会", "community") in loaded
    assert ("500110002208", "红旗村村民委员会", "village") in loaded


def test_it_lives_a_month_and_stores_each_day(runs):
    dirs, outputs = runs
    days = query(dirs["a"], 'SELECT count(DISTINCT "on") FROM standards_evaluation')[0][0]
    assert days == 30
    assert "已模拟最近 30 天" in outputs["a"]
    assert query(dirs["a"], "SELECT count(*) FROM certification_title WHERE withdrawn_on IS NULL")[0][0] >= 3
    assert query(dirs["a"], "SELECT count(*) FROM certification_title WHERE withdrawn_on IS NOT NULL")[0][0] >= 1


def test_it_generates_units_households_and_residents_below_them(runs):
    dirs, outputs = runs
    kinds = dict(query(dirs["a"], f"SELECT kind, count(*) FROM units_unit WHERE path LIKE '%/{WENLONG}/%' "
                                  "GROUP BY kind"))
    assert kinds["community"] + kinds["village"] == 20
    for kind in ("compound", "building", "group"):
        assert kinds.get(kind, 0) > 0, kind
    households = query(dirs["a"], "SELECT count(*) FROM units_household")[0][0]
    residents = query(dirs["a"], "SELECT count(*) FROM units_resident")[0][0]
    assert households > 300
    # At least --residents; each of the 20 committees finishes the building it is filling, which at
    # this small size (100 people per committee) can nearly double the count.
    assert 2000 <= residents < 5000
    # no plain ID number is stored: only the cipher, the keyed hash and the mask
    assert query(dirs["a"], "SELECT count(*) FROM units_resident WHERE id_masked NOT LIKE '___**************_'") \
        == [(0,)]
    assert f"{residents} 名居民" in outputs["a"]


def test_it_creates_the_demo_accounts_and_prints_the_tour(runs):
    dirs, outputs = runs
    users = {u for (u,) in query(dirs["a"], "SELECT username FROM accounts_user")}
    assert DEMO_USERS <= users  # and the building heads the month's applications needed (lz-…)
    assert all(u in DEMO_USERS or u.startswith(("lz-", "wy-", "sq-", "group")) for u in users)
    # 红旗村 has its own staff, who receive its group leaders' applications (the "group" account's 社).
    assert query(dirs["a"], "SELECT a.role, u.code FROM accounts_user a JOIN units_unit u ON u.id = a.unit_id "
                            "WHERE a.username = 'village'") == [("community_staff", "500110002208")]
    assert query(dirs["a"], "SELECT p.code FROM accounts_user a JOIN units_unit u ON u.id = a.unit_id "
                            "JOIN units_unit p ON p.id = u.parent_id WHERE a.username = 'group'") == [("500110002208",)]
    assert "演示导览（账号密码均为 wuyiqu-demo-2022）" in outputs["a"]
    for username in DEMO_USERS - {"property2"}:
        assert f"  {username} " in outputs["a"]


def test_the_demo_accounts_log_in_with_the_printed_password_and_get_a_full_cost_hash(runs):
    dirs, _ = runs
    env = {k: v for k, v in os.environ.items() if not k.startswith("WUYIQU_") and k != "DATABASE_URL"}
    env |= {"WUYIQU_DATA_DIR": str(dirs["b"])}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    check = ("from django.contrib.auth import authenticate; from wuyiqu.accounts.models import User; "
             "assert User.objects.get(username='command').password.startswith('argon2$argon2id$v=19$m=1024,t=1'); "
             "assert authenticate(username='command', password='wuyiqu-demo-2022') is not None; "
             "print(User.objects.get(username='command').password.split('$')[3])")
    code = f"from wuyiqu.cli import main; main(['shell', '-c', {check!r}])"
    proc = subprocess.run([sys.executable, "-c", code], cwd=dirs["b"].parent, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() != "m=1024,t=1,p=1"  # rehashed at the full cost by the first login


def test_it_writes_its_secrets_once_readable_only_by_the_owner(runs):
    dirs, _ = runs
    secrets_env = dirs["a"] / "secrets.env"
    assert stat.S_IMODE(secrets_env.stat().st_mode) == 0o600
    text = secrets_env.read_text()
    assert "WUYIQU_SECRET_KEY=" in text and "WUYIQU_DATA_KEY=" in text
    assert text != (dirs["a_again"] / "secrets.env").read_text()  # every install gets its own keys


def test_the_same_seed_gives_the_same_world_and_another_seed_another(runs):
    dirs, _ = runs
    assert digest(dirs["a"]) == digest(dirs["a_again"])
    assert digest(dirs["a"]) != digest(dirs["b"])


def test_a_second_start_keeps_the_data(runs):
    dirs, _ = runs
    before = digest(dirs["a"])
    out = finish(demo(dirs["a"], "--residents", "100", "--seed", "99"))
    assert "数据库已有数据" in out
    assert digest(dirs["a"]) == before


def test_negative_residents_are_refused(tmp_path):
    proc = demo(tmp_path / "var", "--residents", "-1")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "--residents 不能为负数" in err
