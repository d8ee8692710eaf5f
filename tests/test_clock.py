"""The suite runs at any moment: the frozen clock (--now / TEST_NOW) and the rules that keep tests
independent of the time of day (docs: DEVELOPERS.md, "The clock")."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from wuyiqu.lib import dates
from wuyiqu.lib.testclock import ANCHOR, parse_moment

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def test_a_moment_needs_its_offset():
    assert parse_moment("2028-02-29T00:00:30+08:00") == dt.datetime(2028, 2, 28, 16, 0, 30, tzinfo=dt.UTC)
    for bad in ("2028-02-29T00:00:30", "tomorrow", "2027-02-29T00:00:00+08:00"):
        with pytest.raises(ValueError, match="TEST_NOW"):
            parse_moment(bad)


def test_now_and_today_are_shanghais_at_a_frozen_moment():
    # 00:00:30 in Shanghai on 29 February is still the 28th in UTC (and on the machine's clock).
    with time_machine.travel(parse_moment("2028-02-29T00:00:30+08:00"), tick=False):
        assert dt.datetime.now(dt.UTC).date() == dt.date(2028, 2, 28)
        assert dates.today() == timezone.localdate() == dt.date(2028, 2, 29)


def test_the_fixtures_give_the_same_moment(now, today):
    assert now.tzinfo is not None and now.utcoffset() == dt.timedelta(hours=8)
    assert today == now.date() == dates.today()


def test_a_wuyiqu_process_lives_at_the_moment_of_its_test(tmp_path):
    """A `wuyiqu` process a test starts with TEST_NOW (inherited from a frozen run) reads the same date."""
    out = _child_clock(tmp_path, "2027-01-01T00:00:30+08:00")
    assert out.split()[:2] == ["2027-01-01", "2026"]  # 1 January in Shanghai, still 2026 in UTC


def test_a_process_started_later_begins_where_the_suites_clock_is_now(tmp_path):
    """A worker started ten minutes into a run frozen at 23:59:30 lives after midnight, as the test
    that started it does (it began back at 23:59:30 once, and its 'today' was the day before)."""
    # the suite's clock stood at TEST_NOW ten minutes ago, by the real clock (this run may be frozen itself)
    hatch = time_machine.escape_hatch
    real_start = (hatch.time.time() if hatch.is_travelling() else time.time()) - 600
    out = _child_clock(tmp_path, "2026-12-31T23:59:30+08:00", anchor=real_start)
    day, _year, clock = out.split()
    assert day == "2027-01-01"
    assert "00:09:30" <= clock < "00:12:00"


def _child_clock(tmp_path, moment: str, anchor: float | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WUYIQU_", "DJANGO_", "TEST_NOW"))}
    env |= {"WUYIQU_ENV": "test", "DJANGO_SETTINGS_MODULE": "wuyiqu.settings",
            "WUYIQU_DATA_DIR": str(tmp_path), "TEST_NOW": moment,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if anchor is not None:
        env[ANCHOR] = repr(anchor)
    code = ("import django; django.setup(); from wuyiqu.lib.dates import today; "
            "from django.utils import timezone; "
            "print(today(), timezone.now().year, timezone.localtime().strftime('%H:%M:%S'))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return out.stdout


# The ways a test has read the wall clock wrongly: the machine's date (UTC here, not Shanghai's) and a
# fixed time of day "today" (08:30 today is in the future before 08:30). Tests take `now` / `today`.
WALL_CLOCK = [
    (re.compile(r"\b(?:dt\.|datetime\.)?date\.today\(\)"), "date.today() is the machine's date, not Shanghai's"),
    (re.compile(r"\bdatetime\.now\(\s*\)|\bdatetime\.utcnow\(\)|\btime\.localtime\(\)"),
     "the machine's local time, not Shanghai's"),
    (re.compile(r"\{\s*(?:[\w.]+\.)?(?:today\(\)|today|_day\(\))(?::[^{}]*)?\s*\}[ T]\d\d:\d\d"),
     "a fixed time of day today is in the future before it"),
]


def test_no_test_reads_the_wall_clock_wrongly():
    found = []
    for path in sorted(TESTS.glob("*.py")):
        if path.name == "test_clock.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for pattern, why in WALL_CLOCK:
                if pattern.search(line):
                    found.append(f"{path.name}:{number}: {why}: {line.strip()}")
    assert found == [], "take the `now` / `today` fixture (tests/conftest.py):\n" + "\n".join(found)


def test_the_lint_catches_what_it_is_for():
    lines = ['on = dt.date.today()', 'x = datetime.now()', 'sampled = f"{today()} 08:30"',
             'f"{_day()} 08:30"', 'f"{dates.today()} 07:00"', 'f"{today:%Y-%m-%d} 09:00"']
    assert all(any(p.search(line) for p, _ in WALL_CLOCK) for line in lines)
    for fine in ('on = today  # the fixture', 'f"{dates.today() - DAY} 09:00"  # yesterday'):
        assert not any(p.search(fine) for p, _ in WALL_CLOCK)
