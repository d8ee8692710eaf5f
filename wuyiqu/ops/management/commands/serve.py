"""`wuyiqu serve`: the app under gunicorn (several worker processes), static files from WhiteNoise,
after Django's deployment checks and the start checks of wuyiqu.ops.startup (docs/deploy.md).

Once the checks pass, this process becomes gunicorn's master (exec, same pid for systemd). The master
never imports the app: each worker does when it boots, so `systemctl reload` (HUP) starts workers
running the code installed now, not the code this process loaded for its checks."""

from __future__ import annotations

import os
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections


def default_workers() -> int:
    """gunicorn's advice, 2 × CPUs + 1, at most 12 (each worker holds a Django process in memory)."""
    return min(2 * (os.cpu_count() or 1) + 1, 12)


def gunicorn_argv(*, bind: str, workers: int, threads: int, timeout: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "wuyiqu.wsgi:application",
        "--bind", bind,
        "--workers", str(workers),
        "--threads", str(threads),
        "--worker-class", "gthread" if threads > 1 else "sync",
        "--timeout", str(timeout),
        "--graceful-timeout", "30",
        # Recycle a worker now and then, so that memory a long day piles up is given back.
        "--max-requests", "2000", "--max-requests-jitter", "200",
        "--access-logfile", "-", "--error-logfile", "-",
        # Only nginx on this machine may say which scheme the client used (X-Forwarded-Proto).
        "--forwarded-allow-ips", "127.0.0.1,::1",
        "--name", "wuyiqu",
    ]


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
        connections.close_all()  # before gunicorn takes over this process
        if found:
            raise CommandError("无法启动：\n  " + "\n  ".join(found))
        if check_only:
            self.stdout.write("启动检查通过")
            return
        self.stdout.write(f"wuyiqu serve: {bind}，{workers} 个工作进程 × {threads} 线程")
        self.stdout.flush()
        argv = gunicorn_argv(bind=bind, workers=workers, threads=threads, timeout=timeout)
        os.execv(argv[0], argv)  # the environment (DJANGO_SETTINGS_MODULE, secrets) goes along
