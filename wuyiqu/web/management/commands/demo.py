"""`wuyiqu demo`: migrate, fill the embedded database with 文龙街道 and a generated world, serve."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role, User
from wuyiqu.units.actions import do_load_divisions, do_load_generated_world
from wuyiqu.units.generator import generate_world
from wuyiqu.units.models import Unit, UnitKind

WENLONG = "500110002"
DEMO_PASSWORD = "wuyiqu-demo-2022"


class Command(BaseCommand):
    help = "启动演示：建库、载入文龙街道真实村/社区与生成的小区、楼栋、住户和居民，然后在 127.0.0.1:8000 提供服务"

    def add_arguments(self, parser):
        parser.add_argument("--residents", type=int, default=20000, help="生成的居民人数（默认 20000）")
        parser.add_argument("--seed", type=int, default=2022, help="随机种子；相同种子生成相同世界")
        parser.add_argument("--addr", default="127.0.0.1:8000", help="监听地址")
        parser.add_argument("--no-serve", action="store_true", help="只准备数据，不启动服务")

    def handle(self, *args, residents: int, seed: int, addr: str, no_serve: bool, **opts):
        if residents < 0:
            self.stderr.write("--residents 不能为负数")
            raise SystemExit(2)
        call_command("migrate", verbosity=0, interactive=False)
        call_command("createcachetable", verbosity=0)  # the dashboard's cache (settings.CACHES)
        if not Unit.objects.filter(kind=UnitKind.BUILDING).exists():
            t0 = time.monotonic()
            do_load_divisions()
            committees = list(
                Unit.objects.filter(parent__code=WENLONG).order_by("code").values_list("code", "name", "kind")
            )
            world = generate_world(committees, residents=residents, seed=seed)
            counts = do_load_generated_world(world=world)
            self._create_demo_users()
            self.stdout.write(
                f"已生成：{counts['units']} 个单位，{counts['households']} 户，{counts['residents']} 名居民"
                f"（{time.monotonic() - t0:.1f} 秒）"
            )
        else:
            self.stdout.write("数据库已有数据，直接启动（删除 var/ 目录可重新生成）")
        self._print_accounts()
        if not no_serve:
            host, _, port = addr.rpartition(":")
            if host in ("", "0.0.0.0", "::", "[::]"):
                host = "127.0.0.1"
            if settings.STATIC_ROOT:  # WhiteNoise serves from the finders; an absent root only warns
                Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
            self.stdout.write(f"请在浏览器中打开 http://{host}:{port}/ （按 Ctrl+C 停止）\n")
            call_command("runserver", addr, use_reloader=False)

    def _create_demo_users(self):
        wenlong_community = Unit.objects.get(code="500110002015")
        compound = Unit.objects.filter(parent=wenlong_community, kind=UnitKind.COMPOUND).order_by("code").first()
        building = Unit.objects.filter(parent=compound, kind=UnitKind.BUILDING).order_by("code").first()
        group = Unit.objects.filter(parent__code="500110002208", kind=UnitKind.GROUP).order_by("code").first()
        district = Unit.objects.get(code="500110")
        accounts = [
            ("admin", Role.ADMIN, district, "系统管理员"),
            ("command", Role.COMMAND, district, "区指挥部 值班员"),
            ("health", Role.HEALTH_COMMISSION, district, "区卫健委 复核员"),
            ("street", Role.STREET_STAFF, Unit.objects.get(code=WENLONG), "文龙街道 宣传文化办"),
            ("community", Role.COMMUNITY_STAFF, wenlong_community, "文龙社区 网格员"),
            # 红旗村's own staff: a group leader's application for 无疫社 is received here (SPEC §5).
            ("village", Role.COMMUNITY_STAFF, Unit.objects.get(code="500110002208"), "红旗村 村委会 工作人员"),
            ("property", Role.PROPERTY_MANAGER, compound, f"{compound.name} 物业"),
            ("building", Role.BUILDING_HEAD, building, f"{building.name} 楼栋长"),
            ("group", Role.GROUP_LEADER, group, f"{group.name} 社长"),
        ]
        for username, role, unit, name in accounts:
            do_create_user(actor=None, username=username, password=DEMO_PASSWORD, role=role, unit=unit,
                           display_name=name)

    def _print_accounts(self):
        self.stdout.write(f"\n演示账号（密码均为 {DEMO_PASSWORD}）：")
        for user in User.objects.select_related("unit").order_by("id"):
            self.stdout.write(f"  {user.username:<10} {user.get_role_display():<12} {user.unit.name if user.unit else '全部'}")
        self.stdout.write("")
