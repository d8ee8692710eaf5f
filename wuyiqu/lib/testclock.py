"""A frozen, ticking clock for the test suite (tests/conftest.py: ``--now`` / ``TEST_NOW``).

The suite must pass at any moment: just after midnight in Shanghai (a different UTC date), at 08:29,
on the last day of a month, on 29 February, on 1 January. ``start_clock`` moves the process's clock to
such a moment with time-machine (a test dependency), ticking from there. ``wuyiqu.settings`` calls it
in every process that runs with ``WUYIQU_ENV=test`` and ``TEST_NOW`` set, so the `wuyiqu` commands a
test starts live at the same moment as the test. Nothing in production imports this module.
"""

from __future__ import annotations

import datetime as dt


def parse_moment(raw: str) -> dt.datetime:
    """An aware datetime from ISO 8601 with an offset (``2028-02-29T00:00:30+08:00``)."""
    try:
        moment = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(f"TEST_NOW={raw!r}: expected an ISO 8601 moment such as 2028-02-29T00:00:30+08:00") from None
    if moment.tzinfo is None:
        raise ValueError(f"TEST_NOW={raw!r}: give the offset too (+08:00 for Shanghai, Z for UTC)")
    return moment


_running = None

# The real epoch second at which the suite's clock stood at TEST_NOW. The first process to start the
# clock (pytest) sets it; the processes it starts inherit it and begin where the suite's clock is now,
# not back at TEST_NOW (a `wuyiqu worker` started six minutes into a run at 23:59:30 lives after midnight).
ANCHOR = "TEST_NOW_ANCHOR"


def start_clock(raw: str):
    """Start the ticking clock at ``raw`` (once per process); returns the traveller (``.stop()``)."""
    global _running
    if _running is None:
        import os
        import time

        import time_machine

        moment = parse_moment(raw)
        real = time.time()  # the real clock: no traveller runs yet in this process
        anchor = os.environ.get(ANCHOR)
        if anchor:
            moment += dt.timedelta(seconds=max(0.0, real - float(anchor)))
        else:
            os.environ[ANCHOR] = repr(real)
        _running = time_machine.travel(moment, tick=True)
        _running.start()
    return _running
