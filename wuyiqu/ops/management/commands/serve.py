"""`wuyiqu serve`: the app under gunicorn (several worker processes), static files from WhiteNoise,
after Django's deployment checks and the start checks of wuyiqu.ops.startup (docs/deploy.md)."""

from __future__ import annotations

import os

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from gunicorn.app.base import BaseApplication


def default_workers() -> int:
    """gunicorn's advice, 2 × CPUs + 1, at most 12 (each worker holds a Django process in memory)."""
    return min(2 * (os.cpu_count() or 1) + 1, 12)


def gunicorn_options(*, bind: str, workers: int, threads: int, timeout: int) -> dict:
    return {
        "bind": bind,
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": timeout,
        "graceful_timeout": 30,
        # Recycle a worker now and then, so that memory a long day piles up is given back.
        "max_requests": 2000,
        "max_requests_jitter": 200,
        "accesslog": "-",
        "errorlog": "-",
        # Only nginx on this machine may say which scheme the client used (X-Forwarded-Proto).
        "forwarded_allow_ips": "127.0.0.1,::1",
        "proc_name": "wuyiqu",
    }


class Command(BaseCommand):
    help = "生产环境服务：在 gunicorn 下运行（多个工作进程），启动前执行部署检查（check --deploy）"
    requires_system_checks = []  # our own, with deploy=True, below

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1:8000",
                            help="监听地址（默认 127.0.0.1:8000；nginx 在前面）")
        parser.add_argument("--workers", type=int, default=None,
                            help=f"工作进程数（默认 2×CPU+1，最多 12；本机 {default_workers()}）")
        parser.add_argument("--threads", type=int, default=1, help="每个工作进程的线程数（默认 1）")
        parser.add_argument("--timeout", type=int, default=120, help="单个请求的最长秒数（默认 120）")
        parser.add_argument("--allow-warnings", action="store_true",
                            help="部署检查有警告时仍然启动（不建议；错误仍会阻止启动）")
        parser.add_argument("--check-only", action="store_true", help="只做启动检查，不启动服务")

    def handle(self, *args, bind: str, workers: int | None, threads: int, timeout: int, allow_warnings: bool,
               check_only: bool, **options):
        workers = default_workers() if workers is None else workers
        if workers < 1 or threads < 1 or timeout < 1:
            raise CommandError("--workers、--threads、--timeout 必须是正整数")
        # Django's checks with the deployment ones (HTTPS, HSTS, cookies, DEBUG, SECRET_KEY...): a
        # warning stops the start too, unless explicitly allowed.
        call_command("check", deploy=True, fail_level="ERROR" if allow_warnings else "WARNING")
        from wuyiqu.ops.startup import problems

        found = problems()
        connections.close_all()  # never hand an open connection to the forked workers
        if found:
            raise CommandError("无法启动：\n  " + "\n  ".join(found))
        if check_only:
            self.stdout.write("启动检查通过")
            return
        self.stdout.write(f"wuyiqu serve: {bind}，{workers} 个工作进程 × {threads} 线程")
        Gunicorn(gunicorn_options(bind=bind, workers=workers, threads=threads, timeout=timeout)).run()


class Gunicorn(BaseApplication):
    """gunicorn's master in this process: its workers fork from here with Django already set up."""

    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from django.core.wsgi import get_wsgi_application

        return get_wsgi_application()
