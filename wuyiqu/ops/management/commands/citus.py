"""`wuyiqu citus distribute` (after `wuyiqu migrate`, on a Citus coordinator): distribute the
district-keyed tables by district and make the shared ones reference tables (wuyiqu/ops/citus.py);
`wuyiqu citus status` lists what Citus holds."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Citus 部署：distribute 在迁移之后把按区县分布的表按 district_code 分布（同位），"
            "把单位树、用户、政策配置设为参照表；status 列出各表在 Citus 中的类型。")

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["distribute", "status"])

    def handle(self, *args, action: str, **options):
        from wuyiqu.ops.citus import CitusError, citus_version, distribute, tables

        if action == "distribute":
            try:
                result = distribute(log=lambda line: self.stdout.write(line))
            except CitusError as exc:
                raise CommandError(str(exc), returncode=1) from None
        else:
            if not citus_version():
                raise CommandError("此数据库没有 citus 扩展。", returncode=1)
            result = tables()
        for table, kind in sorted(result.items()):
            self.stdout.write(f"{kind}\t{table}")
