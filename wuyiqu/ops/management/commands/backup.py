"""`wuyiqu backup DIR`: a consistent backup of the whole database with a manifest (wuyiqu/ops/backup.py)."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("备份整个数据库到一个新目录：PostgreSQL 用 pg_dump（自定义格式），SQLite 用在线备份；"
            "附清单 manifest.json（版本、迁移、各表行数与校验和、密钥指纹）。恢复时需要同样的密钥"
            "（WUYIQU_DATA_KEY/WUYIQU_OLD_DATA_KEYS 与 WUYIQU_LOOKUP_KEY），清单中只有密钥的指纹。")

    def add_arguments(self, parser):
        parser.add_argument("directory", help="备份写入的目录（不存在或为空）")

    def handle(self, *args, directory: str, **options):
        from wuyiqu.ops.backup import BackupError, backup

        started = time.monotonic()
        try:
            out = backup(Path(directory))
        except BackupError as exc:
            raise CommandError(str(exc), returncode=1) from None
        self.stdout.write(f"备份完成：{out.directory}，{out.tables} 张表，{out.rows} 行，"
                          f"数据文件 {out.bytes / 1e6:.1f} MB（用时 {time.monotonic() - started:.1f} 秒）")
