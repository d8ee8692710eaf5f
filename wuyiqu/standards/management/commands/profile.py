"""`wuyiqu profile validate FILE | add FILE | activate NAME --from DATE | list`."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from wuyiqu.lib.dates import parse_date
from wuyiqu.standards.profiles import ProfileError, load_profile_text


class Command(BaseCommand):
    help = "政策配置：校验、添加、启用、列出"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        v = sub.add_parser("validate", help="校验配置文件")
        v.add_argument("file")
        a = sub.add_parser("add", help="校验并添加配置文件（新版本）")
        a.add_argument("file")
        act = sub.add_parser("activate", help="自某日起启用某配置的最新版本")
        act.add_argument("name")
        act.add_argument("--from", dest="active_from", required=True, help="生效日期 YYYY-MM-DD")
        act.add_argument("--version", help="指定版本（默认最新添加的版本）")
        sub.add_parser("list", help="列出配置及生效记录")

    def _read(self, file: str):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"文件不存在：{file}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise CommandError("配置文件须为 UTF-8 编码的 JSON") from None
        try:
            return load_profile_text(text)
        except ProfileError as e:
            for msg in e.errors:
                self.stderr.write(msg)
            raise CommandError(f"配置文件无效（{len(e.errors)} 处错误）") from None

    def handle(self, *args, **opts):
        from wuyiqu.standards import actions
        from wuyiqu.standards.models import PolicyActivation, PolicyProfile

        action = opts["action"]
        if action == "validate":
            p = self._read(opts["file"])
            self.stdout.write(f"配置有效：{p.name} {p.version}，{len(p.criteria)} 条标准，sha256 {p.sha256}")
        elif action == "add":
            p = self._read(opts["file"])
            try:
                row = actions.do_add_profile(actor=None, content=p.content)
            except ProfileError as e:
                raise CommandError(str(e)) from None
            self.stdout.write(f"已添加配置 {row.name} {row.version}（尚未启用，用 activate 启用）")
        elif action == "activate":
            try:
                on = parse_date(opts["active_from"])
                act = actions.do_activate_profile(actor=None, name=opts["name"], active_from=on,
                                                  version=opts.get("version"))
            except (ProfileError, ValueError) as e:
                raise CommandError(str(e)) from None
            self.stdout.write(f"配置 {act.profile.name} {act.profile.version} 自 {on.isoformat()} 起生效")
        else:
            for row in PolicyProfile.objects.order_by("name", "created_at"):
                self.stdout.write(f"{row.name}\t{row.version}\t{row.sha256[:12]}")
            for act in PolicyActivation.objects.select_related("profile").order_by("active_from", "created_at"):
                self.stdout.write(f"  {act.active_from.isoformat()} 起：{act.profile.name} {act.profile.version}")
