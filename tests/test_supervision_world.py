"""The hand-built street of the standards tests with EVERY unit named, and a frozen clock on D
(no tests here; the other test_supervision_* files import it).

    T1 街道 ├ T1C 社区 ─┬ T1C-C1 小区 ─┬ T1C-C1-B1 楼栋
            │          │              └ T1C-C1-B2 楼栋 (entrance U1)
            │          └ T1C-B9 楼栋 (directly under the community)
            └ T1V 村 ── T1V-G1 社
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import time_machine
from test_standards_world import D, build_street, days

from wuyiqu.certification.models import Title
from wuyiqu.units.models import TITLE_BY_KIND

SHANGHAI = ZoneInfo("Asia/Shanghai")
NAMED = ("B1", "B2", "B9", "C1", "G1", "T1C", "T1V", "T1")


def at(day: dt.date, hour: int = 10):
    """A frozen clock on ``day`` (Asia/Shanghai)."""
    return time_machine.travel(dt.datetime(day.year, day.month, day.day, hour, 0, tzinfo=SHANGHAI), tick=False)


def named_street(on: dt.date = D) -> dict:
    """build_street with every titled unit named 30 days before ``on``."""
    u = build_street(on)
    for key in NAMED:
        if not Title.objects.filter(unit=u[key], withdrawn_on__isnull=True).exists():
            Title.objects.create(unit=u[key], title=TITLE_BY_KIND[u[key].kind], named_on=on - days(30))
    return u


def current_codes() -> set[str]:
    """Codes of the units holding a title that is current today (no withdrawal recorded)."""
    return set(Title.objects.filter(withdrawn_on__isnull=True).values_list("unit__code", flat=True))


ALL = {"T1C-C1-B1", "T1C-C1-B2", "T1C-B9", "T1C-C1", "T1V-G1", "T1C", "T1V", "T1"}
