"""`wuyiqu restore DIR [--force]`: restore a `wuyiqu backup` into an empty database, checked."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("把 wuyiqu backup 的备份恢复到当前配置的数据库（应为新建的空库）。先核对：数据文件与清单一致、"
            "数据库类型相同、迁移为本程序所知、本进程有备份时的密钥（否则个人信息无法解密）；"
            "恢复后逐表核对行数与校验和。目标库非空时拒绝，除非加 --force（先清空目标库）。")

    def add_arguments(self, parser):
        parser.add_argument("directory", help="wuyiqu backup 生成的目录")
        parser.add_argument("--force", action="store_true", help="目标数据库非空时先清空它（其中数据全部丢失）")

    def handle(self, *args, directory: str, force: bool, **options):
        from wuyiqu.ops.backup import BackupError, restore

        started = time.monotonic()
        try:
            out = restore(Path(directory), force=force)
        except BackupError as exc:
            raise CommandError(str(exc), returncode=1) from None
        self.stdout.write(f"恢复完成：{out.tables} 张表，{out.rows} 行，与清单一致（备份版本 {out.app_version}，"
                          f"用时 {time.monotonic() - started:.1f} 秒）")
