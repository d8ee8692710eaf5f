"""Faults (issue 9, docs/reliability.md "Faults"): processes killed with SIGKILL at seeded random
moments, on a database on disk (the session's kind: a SQLite file, or a PostgreSQL database).

- `wuyiqu import KIND FILE` killed anywhere leaves the database exactly as before the import or
  exactly as after a complete one (a fingerprint of every table: row count and checksum of the
  rows; the clock columns left out, encrypted values compared by plaintext) — never in between.
  The import's own job row (`imports_importjob`, the progress a page polls) is written outside the
  import's transaction by design and is compared apart: a killed import leaves it `running`, until
  the job page or the worker sees its process gone (tests/test_import_interrupted.py).
- `wuyiqu supervise` killed half-way and run again stores the same warnings, title events, titles
  and evaluations as one uninterrupted run on a copy of the same data.

WUYIQU_KILL_POINTS (default 2) sets the kill points per case; docs/reliability.md records a run
with more.
"""

from __future__ import annotations

import os
import random
import time

import pytest
from fault_tools import (
    TEST_DATA_KEY,
    changed_tables,
    fingerprint,
    kill_after,
)

from wuyiqu.lib.crypto import FieldCipher
from wuyiqu.lib.idcard import check_digit

KILL_POINTS = int(os.environ.get("WUYIQU_KILL_POINTS", "2"))
JOBS = "imports_importjob"


@pytest.fixture
def seed(seeded_file_db):
    return seeded_file_db


def _numbers(db) -> list[str]:
    cipher = FieldCipher(TEST_DATA_KEY)
    conn = db.connect()
    try:
        return [cipher.decrypt(b) for (b,) in conn.execute("SELECT id_enc FROM units_resident ORDER BY id")]
    finally:
        conn.close()


def _new_number(rnd: random.Random, taken: set[str]) -> str:
    while True:
        first17 = f"500222{rnd.randint(1930, 2010)}{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}{rnd.randint(0, 999):03d}"
        number = first17 + check_digit(first17)
        if number not in taken:
            taken.add(number)
            return number


def import_file(kind: str, db, tmp_path):
    """A file of ``kind`` big enough for its write pass to last a while: 20,000 new residents on the world's
    households, or 15,000 nucleic-acid results (the world's residents, 2 % unregistered, 3 positives)."""
    rnd = random.Random(f"file-{kind}")
    numbers = _numbers(db)
    taken = set(numbers)
    path = tmp_path / f"{kind}.csv"
    if kind == "residents":
        conn = db.connect()
        households = [c for (c,) in conn.execute("SELECT code FROM units_household ORDER BY code")]
        conn.close()
        lines = ["id_number,name,household_code,phone"]
        for i in range(20000):
            lines.append(f"{_new_number(rnd, taken)},新居民{i},{rnd.choice(households)},139{rnd.randint(0, 10**8 - 1):08d}")
    else:
        from wuyiqu.lib import dates

        day = dates.today() - __import__("datetime").timedelta(days=1)
        strangers = [_new_number(rnd, taken) for _ in range(500)]
        lines = ["id_number,sampled_at,result"]
        for minute in range(25):
            for n in numbers:
                lines.append(f"{n},{day} {8 + minute // 60:02d}:{minute % 60:02d},阴性")
        lines += [f"{n},{day} 10:00,阴性" for n in strangers]
        lines += [f"{n},{day} 11:00,阳性" for n in numbers[100:103]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _job(db) -> tuple | None:
    conn = db.connect()
    try:
        return conn.execute(f"SELECT status, rows_done, rows_total FROM {JOBS}").fetchone()
    finally:
        conn.close()


def _job_started(db, proc, timeout: float = 120.0) -> float:
    """Wait until the import has made its job row (Django is up, pass 1 begins); the monotonic time."""
    return _wait_for_job(db, proc, lambda job: job is not None, timeout)


def _pass_1_done(db, proc, timeout: float = 120.0) -> float:
    """Wait until pass 1 has counted every row (written outside the transaction, so visible): pass 2,
    the write transaction, starts now. The monotonic time, or now if the process already ended."""
    return _wait_for_job(db, proc, lambda job: job is not None and job[2] and job[1] == job[2], timeout)


def _wait_for_job(db, proc, ready, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready(_job(db)) or proc.poll() is not None:
            return time.monotonic()
        time.sleep(0.005)
    raise AssertionError("the import did not get there in time")


def _timeline(db, args) -> dict[str, float]:
    """An uninterrupted import, watched through its job row: seconds from the row's creation to the
    end of pass 1 (``checked``: all rows counted), to the commit (``committed``) and to the exit."""
    proc = db.start(*args)
    t0 = _job_started(db, proc)
    marks = {}
    while proc.poll() is None:
        status, done, total = _job(db)
        if "checked" not in marks and total and done == total:
            marks["checked"] = time.monotonic() - t0
        if status == "succeeded" and "committed" not in marks:
            marks["committed"] = time.monotonic() - t0
        time.sleep(0.005)
    assert proc.returncode == 0, proc.stderr.read()
    marks["exit"] = time.monotonic() - t0
    marks.setdefault("committed", marks["exit"])
    marks.setdefault("checked", 0.0)
    return marks


@pytest.mark.parametrize("kind, written", [("residents", "units_resident"), ("nat-results", "health_natresult")])
def test_kill_9_during_an_import_leaves_the_database_as_before_or_as_after(seed, tmp_path, kind, written):
    path = import_file(kind, seed, tmp_path)
    before = fingerprint(seed, exclude={JOBS})
    args = ("import", kind, str(path), "--no-progress")

    reference = seed.copy(tmp_path)
    marks = _timeline(reference, args)
    after = fingerprint(reference, exclude={JOBS})
    reference.drop()
    assert written in changed_tables(before, after) and "audit_auditevent" in changed_tables(before, after)

    # Every other kill point lies in pass 2, the write transaction: measured from the moment this
    # run's pass 1 is seen done, within the length pass 2 took on the uninterrupted run. The others
    # lie anywhere from the job row's creation to a little after the commit. The machine is shared
    # and noisy, so a point's phase is approximate; the outcome is what is asserted.
    rnd = random.Random(f"kill-{kind}")
    write_pass = marks["committed"] - marks["checked"]
    seen = []
    for i in range(KILL_POINTS):
        db = seed.copy(tmp_path)
        proc = db.start(*args)
        last_chance = i == KILL_POINTS - 1 and not any(k for _w, _d, k, _o in seen)
        if i % 2 == 0 or last_chance:
            # (The last point, if no earlier one found the process running, at the start of pass 2.)
            delay = 0.0 if last_chance else rnd.uniform(0, write_pass)
            anchor = _pass_1_done(db, proc)
        else:
            delay = rnd.uniform(0, marks["committed"] + 0.25 * (marks["exit"] - marks["committed"]))
            anchor = _job_started(db, proc)
        killed = kill_after(proc, max(0.0, anchor + delay - time.monotonic()))
        state = fingerprint(db, exclude={JOBS})
        outcome = "before" if state == before else "after" if state == after else "IN BETWEEN"
        assert outcome != "IN BETWEEN", (
            f"{kind} killed {delay:.2f}s in ({marks}): tables differing from before "
            f"{changed_tables(before, state)}, from after {changed_tables(after, state)}")
        job = _job(db)
        # The job row: left running by the killed process, or succeeded with the data.
        assert job[0] == ("running" if outcome == "before" else "succeeded"), (outcome, job)
        seen.append(("pass 2" if i % 2 == 0 or last_chance else "any", round(delay, 2), killed, outcome))
        db.drop()
    print(f"\n{kind} {db.vendor} timeline {', '.join(f'{k} {v:.2f}s' for k, v in marks.items())}; "
          f"kills (where, delay, while running, outcome): {seen}")
    assert any(killed for _w, _at, killed, _o in seen), "no kill landed while the import was running"


def _supervision_state(db) -> dict[str, list]:
    """What the daily run decides, as comparable rows (ids and clock times left out)."""
    conn = db.connect()
    queries = {
        "titles": "SELECT u.code, t.title, t.named_on, t.withdrawn_on, t.withdrawn_reason FROM certification_title t "
                  "JOIN units_unit u ON u.id = t.unit_id",
        "warnings": "SELECT u.code, w.criterion, w.detail, w.opened_on, w.deadline, w.status, w.closed_on, "
                    "w.closed_note FROM supervision_warning w JOIN units_unit u ON u.id = w.unit_id",
        "title_events": 'SELECT u.code, e.kind, e."on", e.reason, e.criteria, e.source FROM supervision_titleevent e '
                        "JOIN units_unit u ON u.id = e.unit_id",
        "evaluations": 'SELECT u.code, e."on", e.eligible, e.named, e.failed, e.profile_version '
                       "FROM standards_evaluation e JOIN units_unit u ON u.id = e.unit_id",
        "notifications": "SELECT n.user_id, n.text FROM notifications_notification n",
        "audit": "SELECT action, target_type, target_id FROM audit_auditevent",
    }
    try:
        return {name: sorted(map(repr, conn.execute(sql).fetchall())) for name, sql in queries.items()}
    finally:
        conn.close()


def test_supervision_killed_half_way_and_run_again_decides_as_one_uninterrupted_run(seed, tmp_path):
    from wuyiqu.lib import dates

    day = dates.today().isoformat()
    reference = seed.copy(tmp_path)
    started = time.monotonic()
    reference.run("supervise", "--date", day)
    seconds = time.monotonic() - started
    expected = _supervision_state(reference)
    reference.drop()
    # The seeded world gives the run work to do: a case withdraws titles, failures open warnings.
    assert expected["title_events"] and expected["warnings"] and expected["evaluations"]
    assert expected != _supervision_state(seed)

    rnd = random.Random("kill-supervise")
    seen = []
    for i in range(KILL_POINTS):
        db = seed.copy(tmp_path)
        at = rnd.uniform(0.3 * seconds, 0.95 * seconds)
        if i == KILL_POINTS - 1 and not any(k for _a, k, _o in seen):
            at = 0.3 * seconds  # no earlier point found it running: early, while it surely runs
        killed = kill_after(db.start("supervise", "--date", day), at)
        halfway = _supervision_state(db)
        assert halfway in (_supervision_state(seed), expected)  # one transaction: nothing or all
        db.run("supervise", "--date", day)
        assert _supervision_state(db) == expected
        seen.append((round(at, 2), killed, "nothing" if halfway != expected else "all"))
        db.drop()
    print(f"\nsupervise ({seconds:.2f} s uninterrupted): {seen}")
    assert any(killed for _at, killed, _o in seen)
