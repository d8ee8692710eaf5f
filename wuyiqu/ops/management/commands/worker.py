"""`wuyiqu worker`: run the background tasks from the database queue (django-tasks-db's worker) and
enqueue the daily supervision run at WUYIQU_SUPERVISE_AT (see wuyiqu.ops.schedule, docs/deploy.md)."""

from __future__ import annotations

import logging
import threading

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from wuyiqu.lib.tasks import task_backends

log = logging.getLogger("wuyiqu.ops.worker")

SCHEDULE_EVERY_SECONDS = 60.0


def _schedule_loop(stop: threading.Event, every: float) -> None:
    """Thread body: enqueue what is due now and then every ``every`` seconds, until ``stop``; and end
    the import previews nobody confirmed in time (their uploads deleted)."""
    from wuyiqu.imports.services import expire_previews
    from wuyiqu.ops.schedule import enqueue_due

    while True:
        try:
            enqueue_due()
            expired = expire_previews()
            if expired:
                log.info("%d import previews expired unconfirmed (their uploads deleted)", expired)
        except Exception:  # the database may be restarting: try again next time
            log.exception("the worker's schedule could not enqueue the due runs")
        finally:
            connections.close_all()  # this thread's own connections
        if stop.wait(every):
            return


class Command(BaseCommand):
    help = "后台任务：运行网页发起的导入、通知邮件和每日监督（数据库任务队列），并按时安排每日监督"

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0,
                            help="队列为空时每隔几秒查看一次（默认 1）")
        parser.add_argument("--batch", action="store_true", help="运行完队列中的任务后退出（不安排每日监督）")
        parser.add_argument("--max-tasks", type=int, default=None, help="运行这么多个任务后退出")
        parser.add_argument("--no-schedule", action="store_true",
                            help="不安排每日监督（多个 worker 时可只让一个安排；重复安排也只会入队一次）")
        parser.add_argument("--worker-id", default=None, help="worker 标识（多个 worker 时须各不相同）")

    def handle(self, *args, interval: float, batch: bool, max_tasks: int | None, no_schedule: bool,
               worker_id: str | None, verbosity: int, **options):
        from django_tasks_db.backend import DatabaseBackend

        backend = task_backends["default"]
        if not isinstance(backend, DatabaseBackend):
            raise CommandError(
                f"任务后端是 {type(backend).__name__}，不是数据库队列：任务在入队的进程里立即运行，"
                "worker 无事可做（生产环境请设置 WUYIQU_TASKS=database）")
        from wuyiqu.imports.services import expire_previews, fail_interrupted_jobs

        interrupted = fail_interrupted_jobs()  # imports left running by a worker of this host that was killed
        if interrupted:
            self.stderr.write(f"{interrupted} 个导入任务的进程已中断，已标记为失败（未导入任何数据）")
        expired = expire_previews()  # previews nobody confirmed: their uploads are not kept for ever
        if expired:
            self.stderr.write(f"{expired} 个导入预览超过24小时未确认，已过期（上传的文件已删除）")
        from wuyiqu.imports.storage import purge

        purged = purge()  # uploads of ended jobs an earlier version or a failed removal left behind
        if purged.removed or purged.sealed:
            self.stderr.write(f"导入文件：删除 {purged.removed} 个，加密 {purged.sealed} 个")
        stop = threading.Event()
        scheduler = None
        if not (batch or no_schedule):
            scheduler = threading.Thread(target=_schedule_loop, args=(stop, SCHEDULE_EVERY_SECONDS),
                                         name="wuyiqu-schedule", daemon=True)
            scheduler.start()
        worker_options = {"interval": interval, "batch": batch, "reload": False, "startup_delay": False,
                          "verbosity": verbosity}
        if max_tasks is not None:
            worker_options["max_tasks"] = max_tasks
        if worker_id:
            worker_options["worker_id"] = worker_id
        try:
            call_command("db_worker", **worker_options)
        finally:
            stop.set()
            if scheduler is not None:
                scheduler.join(timeout=10)
