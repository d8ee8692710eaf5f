"""The worker's daily schedule. django-tasks-db has no cron: `wuyiqu worker` calls ``enqueue_due``
every minute, and it enqueues the day's supervision run once the local time (Asia/Shanghai) has
passed ``settings.SUPERVISE_AT``. A ``ScheduledRun`` row, unique per task and day and written in the
transaction that enqueues the task, makes that happen once a day however many workers there are and
however often they restart; a worker started after the hour enqueues the day's run at once (catch-up
of today only: a day the worker was down all day is not run again — `wuyiqu supervise --date D`)."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import ScheduledRun

log = logging.getLogger(__name__)

DAILY_SUPERVISION = "supervision.daily"


def supervise_at() -> dt.time:
    hour, minute = (int(part) for part in settings.SUPERVISE_AT.split(":"))
    return dt.time(hour, minute)


def due_day(now: dt.datetime | None = None) -> dt.date | None:
    """The local day whose supervision run is due at ``now`` (None before the hour)."""
    local = timezone.localtime(now or timezone.now())
    return local.date() if local.time() >= supervise_at() else None


def enqueue_due(now: dt.datetime | None = None) -> list[ScheduledRun]:
    """Enqueue what is due and not yet enqueued; returns the runs enqueued by this call."""
    from wuyiqu.supervision.tasks import run_daily_supervision

    on = due_day(now)
    if on is None:
        return []
    if ScheduledRun.objects.filter(name=DAILY_SUPERVISION, on=on).exists():
        return []  # the common case, without opening a transaction
    with transaction.atomic():
        run, created = ScheduledRun.objects.get_or_create(name=DAILY_SUPERVISION, on=on)
        if not created:
            return []
        result = run_daily_supervision.enqueue(on.isoformat())
        run.task_id = str(result.id)
        run.save(update_fields=["task_id"])
    log.info("enqueued the daily supervision of %s (task %s)", on, run.task_id)
    return [run]
