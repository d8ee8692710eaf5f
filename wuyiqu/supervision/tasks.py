"""The daily supervision run as a background task: `wuyiqu worker` enqueues it once a day
(wuyiqu.ops.schedule) and runs it; `wuyiqu supervise` stays the way to run it by hand."""

from __future__ import annotations

import datetime as dt

from wuyiqu.lib.tasks import task


@task(priority=0)
def run_daily_supervision(on: str) -> dict:
    """``run_daily`` for the day ``on`` (YYYY-MM-DD); returns what it changed. Running it twice for a
    day changes nothing the second time, so a re-enqueued run is harmless."""
    from wuyiqu.units.actions import do_forget_past_third_birthdays

    from .services import run_daily

    day = dt.date.fromisoformat(on)
    out = run_daily(on=day)
    # The register keeps a child's third birthday only for a year after it (idcard.kept_third_birthday).
    return {**out.as_dict(), "third_birthdays_forgotten": do_forget_past_third_birthdays(today=day)}
