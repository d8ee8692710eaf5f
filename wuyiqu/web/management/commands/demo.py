"""`wuyiqu demo`: migrate, fill the embedded database with 文龙街道 and a generated world, serve."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from wuyiqu.accounts.models import User
from wuyiqu.lib.dates import today
from wuyiqu.units.actions import do_load_divisions, do_load_generated_world
from wuyiqu.units.generator import generate_world
from wuyiqu.units.models import Unit, UnitKind
from wuyiqu.web.demo_history import DAYS, DEMO_PASSWORD, first_day, live_month

WENLONG = "500110002"
# The guided tour printed after the start: which account shows what of the month behind the demo.
TOUR = (
    ("command", "看板：30 天趋势、各级命名覆盖；待命名的申请；摘牌与警示记录"),
    ("health", "待复核的申请；阳性感染者、密接与双龙社区的临时管控区（已解除）"),
    ("street", "文龙街道全部村/社区：待初审的申请、差一两项的单位"),
    ("community", "文龙社区（已命名无疫社区）：楼栋与小区的称号、核酸参与率、检查记录"),
    ("property", "无疫小区的申请与证书"),
    ("building", "无疫楼栋：住户名单、联名、证书与公开查验页"),
    ("community2", "天桥社区：各审核环节上的楼栋申请、一份已退回的申请"),
    ("building2", "天桥社区楼栋长：申请在村/社区受理环节"),
    ("village", "红旗村：一个社被摘牌、一个社警示整改中、一个社摘牌后重新申请"),
    ("group", "红旗村一社社长：警示逾期未整改被摘牌"),
    ("group2", "红旗村二社社长：口罩佩戴检查不合格，警示整改中"),
    ("admin", "账号管理、政策配置、审计日志"),
)


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
            last = today()
            world = generate_world(committees, residents=residents, seed=seed, today=first_day(last))
            counts = do_load_generated_world(world=world)
            self.stdout.write(
                f"已生成：{counts['units']} 个单位，{counts['households']} 户，{counts['residents']} 名居民"
                f"（{time.monotonic() - t0:.1f} 秒）"
            )
            t1 = time.monotonic()
            month = live_month(world=world, last=last, seed=seed)
            self.stdout.write(f"已模拟最近 {DAYS} 天（{first_day(last)} 至 {last}）的核酸、检查、申请、命名与监督"
                              f"（{time.monotonic() - t1:.1f} 秒）")
            for line in month.state.get("refused", []):
                self.stdout.write(f"  未能推进：{line}")
        else:
            self.stdout.write("数据库已有数据，直接启动（删除 var/ 目录可重新生成）")
        self._print_tour()
        if not no_serve:
            host, _, port = addr.rpartition(":")
            if host in ("", "0.0.0.0", "::", "[::]"):
                host = "127.0.0.1"
            if settings.STATIC_ROOT:  # WhiteNoise serves from the finders; an absent root only warns
                Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
            self.stdout.write(f"请在浏览器中打开 http://{host}:{port}/ （按 Ctrl+C 停止）\n")
            call_command("runserver", addr, use_reloader=False)

    def _print_tour(self):
        self.stdout.write(f"\n演示导览（账号密码均为 {DEMO_PASSWORD}）：")
        for username, text in TOUR:
            user = User.objects.filter(username=username).select_related("unit").first()
            if user is not None:
                where = user.unit.name if user.unit else "全部"
                self.stdout.write(f"  {username:<11} {user.get_role_display()}（{where}）：{text}")
        others = User.objects.filter(username__regex=r"^(lz|wy|sq)-").count()
        if others:
            self.stdout.write(f"  另有 {others} 个楼栋长、物业等账号（lz-…、wy-…），在 admin 的账号管理中可见")
        self.stdout.write("")
