"""`wuyiqu supervise [--date D]`: the daily run of supervision (see docs/supervision.md)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from wuyiqu.lib.dates import parse_date, today
from wuyiqu.standards.profiles import ProfileError


class Command(BaseCommand):
    help = "每日监督：重新评估所有已命名单位，开出/关闭警示，摘牌，保存当日评估（同一天重复运行不会重复变更）"

    def add_arguments(self, parser):
        parser.add_argument("--date", help="评估日期 YYYY-MM-DD（默认今天）")

    def handle(self, *args, **options):
        from wuyiqu.supervision.services import run_daily

        try:
            on = parse_date(options["date"]) if options.get("date") else today()
        except ValueError as exc:
            raise CommandError(f"--date：{exc}") from None
        t = time.perf_counter()
        try:
            out = run_daily(on=on)
        except ProfileError as exc:
            raise CommandError(str(exc)) from None
        total = time.perf_counter() - t
        self.stdout.write(
            f"{on:%Y-%m-%d}：评估 {out.evaluated} 个单位，摘牌 {len(out.withdrawn)}，新开警示 {out.opened}，"
            f"已整改 {out.rectified}，逾期 {out.expired}，关闭 {out.closed}，保存评估 {out.stored} 条"
            f"（用时 {total:.2f} 秒，其中评估 {out.evaluate_seconds:.2f} 秒）")
        for code in out.withdrawn[:50]:
            self.stdout.write(f"  摘牌 {code}")
