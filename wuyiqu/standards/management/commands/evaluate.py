"""`wuyiqu evaluate [--date D] [--unit CODE] [--json] [--profile NAME] [--store]`."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from wuyiqu.lib.dates import parse_date, today
from wuyiqu.standards.evaluator import evaluate, parsed_profile, profile_row_in_force
from wuyiqu.standards.profiles import ProfileError


class Command(BaseCommand):
    help = "按创建标准评估各单位（只读；--store 保存当天结果）"

    def add_arguments(self, parser):
        parser.add_argument("--date", help="评估日期 YYYY-MM-DD（默认今天）")
        parser.add_argument("--unit", help="只评估该单位及其下级（单位编码）")
        parser.add_argument("--json", action="store_true", help="输出 JSON")
        parser.add_argument("--profile", help="使用指定名称的政策配置（默认：该日期生效的配置）")
        parser.add_argument("--store", action="store_true", help="保存当天的评估结果（每单位每天一行）")

    def handle(self, *args, **opts):
        # The output (SPEC §7: the --json contract) is Chinese whatever language the caller has
        # active; the environment (LANGUAGE, LANG) plays no part in Django's choice of language.
        with translation.override(settings.LANGUAGE_CODE):
            self._handle(**opts)

    def _handle(self, **opts):
        from wuyiqu.units.models import Unit

        try:
            on = parse_date(opts["date"]) if opts.get("date") else today()
        except ValueError as e:
            raise CommandError(str(e)) from None
        root = None
        if opts.get("unit"):
            root = Unit.objects.filter(code=opts["unit"]).first()
            if root is None:
                raise CommandError(f"单位编码“{opts['unit']}”不存在")
        try:
            row = profile_row_in_force(on, opts.get("profile"))
            if opts.get("store"):
                from wuyiqu.standards.actions import do_store_evaluations

                n = do_store_evaluations(on=on, profile_row=row, root=root)
                self.stdout.write(f"已保存 {on.isoformat()} 的 {n} 个单位评估结果（{row.name} {row.version}）")
                return
            profile = parsed_profile(row)
            results = evaluate(on, root=root, profile=profile)
        except ProfileError as e:
            raise CommandError(str(e)) from None
        if opts.get("json"):
            self.stdout.write(json.dumps([r.as_contract() for r in results], ensure_ascii=False, indent=1))
            return
        # Readable text: each unit's verdict, then every failing criterion by its name and its reason
        # (the id in brackets, for looking it up in the profile and the --json output).
        eligible = sum(1 for r in results if r.eligible)
        self.stdout.write(f"评估日期 {on.isoformat()}，政策配置 {row.name} {row.version}，共 {len(results)} 个单位，"
                          f"达标 {eligible} 个，未达标 {len(results) - eligible} 个")
        for r in results:
            state = "达标" if r.eligible else "未达标"
            named = f"持有{r.title}称号" if r.named else "未命名"
            extra = f"；如无新情况，最早 {r.earliest_pass_on.isoformat()} 满足时间条件" if r.earliest_pass_on else ""
            self.stdout.write(f"{r.unit.name}（{r.unit.code}）创建{r.title}：{state}，{named}{extra}")
            for c in r.criteria:
                if not c.passed:
                    spec = profile.get(c.id)
                    self.stdout.write(f"    ✗ {spec.name if spec else c.id}（{c.id}）：{c.detail}")
