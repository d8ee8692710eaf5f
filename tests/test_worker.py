"""Background work: the tasks, the worker's daily schedule, and a real `wuyiqu worker` process that
runs a web import, a notification e-mail and the day's supervision from the database queue.

The tests' settings run tasks at once (the immediate backend); here the database queue
(django_tasks_db) is switched on with ``database_queue`` so that enqueuing only writes a row."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import WENLONG_COMMUNITY
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django_tasks_db.models import DBTaskResult

from wuyiqu.imports.actions import do_confirm_import
from wuyiqu.imports.models import ImportJob, ImportStatus
from wuyiqu.imports.tasks import run_import_job
from wuyiqu.lib import dates
from wuyiqu.lib.tasks import TaskResultStatus
from wuyiqu.notifications.actions import notify
from wuyiqu.ops import schedule
from wuyiqu.ops.models import ScheduledRun
from wuyiqu.units.models import Household, Unit, UnitKind
from wuyiqu.web import jobs

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@pytest.fixture
def database_queue(settings, tmp_path):
    settings.TASKS = DATABASE_QUEUE
    settings.MEDIA_ROOT = tmp_path / "media"


def a_building() -> Unit:
    return Unit.objects.filter(path__contains=f"/{WENLONG_COMMUNITY}/", kind=UnitKind.BUILDING,
                               children__isnull=True).order_by("code").first()


def households_upload(building: Unit, n: int) -> SimpleUploadedFile:
    rows = [f"{building.code}-W{i:02d},{building.code},新楼W{i:02d}室,2022-11-20" for i in range(1, n + 1)]
    text = "户编码,所属单位编码,地址,核实日期\n" + "\n".join(rows) + "\n"
    return SimpleUploadedFile("住户.csv", text.encode("utf-8"), content_type="text/csv")


# --- enqueuing ------------------------------------------------------------------------------------------

def test_a_web_import_is_enqueued_with_its_job_and_runs_only_in_the_worker(world, alice, database_queue):
    job = jobs.start_import(kind="households", upload=households_upload(a_building(), 3), actor=alice,
                            scope=alice.unit, skip_invalid=False)
    assert job.status == ImportStatus.PENDING  # nothing ran in the request
    task = DBTaskResult.objects.get()
    assert task.task_path == "wuyiqu.imports.tasks.run_import_job"
    assert task.args_kwargs["args"] == [job.pk] and task.status == TaskResultStatus.READY
    # What the worker does with that row: the preview (counted, nothing written) ...
    assert run_import_job.call(job.pk) == ImportStatus.PREVIEWED
    assert not Household.objects.filter(code__contains="-W0").exists()
    # ... then, confirmed on the page, the same job queued again and run for real.
    do_confirm_import(job=job, actor=alice, skip_invalid=False)
    assert DBTaskResult.objects.count() == 2
    assert run_import_job.call(job.pk) == ImportStatus.SUCCEEDED
    job.refresh_from_db()
    assert (job.status, job.created) == (ImportStatus.SUCCEEDED, 3)
    # A second run of the same task (retried by hand) finds the job done and does nothing.
    assert run_import_job.call(job.pk) == ImportStatus.SUCCEEDED
    assert Household.objects.filter(code__contains="-W0").count() == 3


def test_a_web_job_whose_unit_is_gone_is_failed_not_run_unscoped(world, alice, database_queue):
    job = jobs.start_import(kind="households", upload=households_upload(a_building(), 2), actor=alice,
                            scope=alice.unit, skip_invalid=False)
    ImportJob.objects.filter(pk=job.pk).update(scope=None)
    assert run_import_job.call(job.pk) == ImportStatus.FAILED
    job.refresh_from_db()
    assert "不存在" in job.message and not Household.objects.filter(code__contains="-W0").exists()


def test_notification_mail_is_enqueued_after_commit_and_sent_by_the_task(world, alice, database_queue,
                                                                         mailoutbox,
                                                                         django_capture_on_commit_callbacks):
    alice.email = "alice@example.test"
    alice.save(update_fields=["email"])
    with django_capture_on_commit_callbacks(execute=True):
        notify([alice], text="测试通知", link="/x/")
    assert mailoutbox == []  # not sent by the request
    task = DBTaskResult.objects.get()
    assert task.task_path == "wuyiqu.notifications.tasks.send_notification_email"
    task.task.call(*task.args_kwargs["args"], **task.args_kwargs["kwargs"])
    assert [(m.to, m.subject) for m in mailoutbox] == [(["alice@example.test"], "[无疫区] 测试通知")]


# --- the daily schedule ---------------------------------------------------------------------------------

def test_the_daily_run_is_due_from_the_configured_local_time(settings):
    settings.SUPERVISE_AT = "01:30"
    assert schedule.due_day(dt.datetime(2022, 11, 20, 1, 29, tzinfo=SHANGHAI)) is None
    assert schedule.due_day(dt.datetime(2022, 11, 20, 1, 30, tzinfo=SHANGHAI)) == dt.date(2022, 11, 20)
    # 18:00 UTC is 02:00 the next day in Shanghai.
    assert schedule.due_day(dt.datetime(2022, 11, 20, 18, 0, tzinfo=dt.UTC)) == dt.date(2022, 11, 21)


def test_the_daily_run_is_enqueued_once_a_day_however_often_the_schedule_looks(db, settings, database_queue):
    settings.SUPERVISE_AT = "01:30"
    assert schedule.enqueue_due(dt.datetime(2022, 11, 20, 1, 0, tzinfo=SHANGHAI)) == []
    first = schedule.enqueue_due(dt.datetime(2022, 11, 20, 1, 31, tzinfo=SHANGHAI))
    assert [r.on for r in first] == [dt.date(2022, 11, 20)]
    for minute in (32, 40, 59):  # the worker looks every minute; a restarted worker looks at once
        assert schedule.enqueue_due(dt.datetime(2022, 11, 20, 1, minute, tzinfo=SHANGHAI)) == []
    next_day = schedule.enqueue_due(dt.datetime(2022, 11, 21, 23, 0, tzinfo=SHANGHAI))
    assert [r.on for r in next_day] == [dt.date(2022, 11, 21)]
    tasks = DBTaskResult.objects.order_by("enqueued_at")
    assert [t.args_kwargs["args"] for t in tasks] == [["2022-11-20"], ["2022-11-21"]]
    assert {t.task_path for t in tasks} == {"wuyiqu.supervision.tasks.run_daily_supervision"}
    assert list(ScheduledRun.objects.order_by("on").values_list("task_id", flat=True)) == [str(t.id) for t in tasks]


def test_the_supervision_task_runs_the_day_and_reports_it(world):
    from wuyiqu.standards.models import Evaluation
    from wuyiqu.supervision.tasks import run_daily_supervision

    result = run_daily_supervision.call("2022-11-20")
    assert result["on"] == "2022-11-20"
    assert result["stored"] > 0 and Evaluation.objects.filter(on=dt.date(2022, 11, 20)).count() == result["stored"]
    again = run_daily_supervision.call("2022-11-20")  # a re-enqueued run of the day changes nothing
    assert (again["withdrawn"], again["warnings_opened"], again["stored"]) == ([], 0, 0)


def test_the_worker_refuses_to_start_without_the_database_queue(db):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="WUYIQU_TASKS=database"):
        call_command("worker", "--batch")


# --- a real worker process ------------------------------------------------------------------------------

class SharedDatabase:
    """The test's database as a second process can open it: PostgreSQL's test database itself; for
    SQLite (in memory, invisible to other processes) a copy in a file, copied back afterwards."""

    def __init__(self, folder: Path):
        self.sqlite_file = folder / "shared.sqlite3" if connection.vendor == "sqlite" else None

    def url(self) -> str:
        if self.sqlite_file:
            return f"sqlite:///{self.sqlite_file}"
        s = connection.settings_dict
        password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
        return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"

    def hand_over(self) -> None:
        if self.sqlite_file:
            connection.ensure_connection()
            with sqlite3.connect(self.sqlite_file) as target:
                connection.connection.backup(target)

    def take_back(self) -> None:
        if self.sqlite_file:
            with sqlite3.connect(self.sqlite_file) as source:
                source.backup(connection.connection)

    def unfinished_tasks(self) -> int:
        return self.count(f"SELECT count(*) FROM {DBTaskResult._meta.db_table} WHERE status IN ('READY', 'RUNNING')")

    def scheduled_runs(self) -> int:
        return self.count(f"SELECT count(*) FROM {ScheduledRun._meta.db_table}")

    def count(self, sql: str) -> int:
        if self.sqlite_file:
            with sqlite3.connect(self.sqlite_file, timeout=30) as db:
                return db.execute(sql).fetchone()[0]
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_worker_process_runs_the_import_the_mail_and_the_days_supervision(world, alice, database_queue,
                                                                            tmp_path, today):
    # The policy profile the migrations seed, which an earlier transactional test may have flushed:
    # the supervision needs it.
    importlib.import_module("wuyiqu.standards.migrations.0002_seed_wenlong_2022").seed(apps, None)
    alice.email = "alice@example.test"
    alice.save(update_fields=["email"])
    job = jobs.start_import(kind="households", upload=households_upload(a_building(), 4), actor=alice,
                            scope=alice.unit, skip_invalid=False)
    notify([alice], text="审核提醒", link="/applications/1/")  # autocommit: enqueued at once
    assert DBTaskResult.objects.count() == 2 and job.status == ImportStatus.PENDING

    shared = SharedDatabase(tmp_path)
    shared.hand_over()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WUYIQU_") and k != "DJANGO_SETTINGS_MODULE"}
    env |= {"WUYIQU_ENV": "test", "WUYIQU_TASKS": "database", "DATABASE_URL": shared.url(),
            "WUYIQU_SUPERVISE_AT": "00:00", "WUYIQU_DATA_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"}
    worker = subprocess.Popen([str(Path(sys.executable).parent / "wuyiqu"), "worker", "--interval", "0.2"],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90

        def busy() -> bool:
            # The schedule enqueues today's supervision as the worker starts (00:00 has passed).
            return shared.unfinished_tasks() > 0 or shared.scheduled_runs() == 0

        while busy() and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.3)
        assert worker.poll() is None, f"the worker stopped: {worker.communicate()[0]}"
        assert not busy(), "the worker did not finish the queue in 90 s"
    finally:
        worker.send_signal(signal.SIGTERM)  # what systemd sends: finish the task at hand, then stop
        output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, output
    shared.take_back()

    job.refresh_from_db()
    # A web upload's first run is its preview: every row checked and counted, nothing kept.
    assert (job.status, job.created, job.rows_done) == (ImportStatus.PREVIEWED, 4, 4), job.message
    assert not Household.objects.filter(code__contains="-W0").exists()
    assert "审核提醒" in output and "alice@example.test" in output  # the console mail backend of the tests
    run = ScheduledRun.objects.get(name=schedule.DAILY_SUPERVISION)
    assert today <= run.on <= dates.today()  # the day the worker started (a run may straddle midnight)
    tasks = {t.task_path.rsplit(".", 1)[1]: t for t in DBTaskResult.objects.all()}
    assert set(tasks) == {"run_import_job", "send_notification_email", "run_daily_supervision"}
    assert {t.status for t in tasks.values()} == {TaskResultStatus.SUCCESSFUL}, output
    assert str(tasks["run_daily_supervision"].id) == run.task_id
    assert tasks["run_daily_supervision"].return_value["on"] == run.on.isoformat()
