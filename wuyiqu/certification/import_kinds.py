"""The `titles` import (SPEC §7): titles named before the system existed. The import engine re-checks
each imported unit at once, as for a new fact (``supervision.affected``): a unit failing a revoke
criterion on the import day loses its title again, with the reason."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from wuyiqu.imports import fields
from wuyiqu.imports.registry import Column, ImportKind, RowError, WriteCounts, register_kind
from wuyiqu.lib.dates import today
from wuyiqu.units.models import TITLE_BY_KIND, district_of

from .actions import write_existing_titles


@dataclass(slots=True, frozen=True)
class TitleRow:
    unit_code: str
    named_on: object


@register_kind
class TitleKind(ImportKind):
    name = "titles"
    label = "已命名称号"
    description = ("每行一个在本系统启用前已命名的单位及命名日期；称号由单位类型决定（楼栋→无疫楼栋 …）。"
                   "导入后立即按标准复核：当天未达摘牌标准的单位随即摘牌并注明原因。")
    columns = (
        Column("unit_code", "单位编码", aliases=("单位代码",), help="楼栋/小区/社/村/社区/街道的编码"),
        Column("named_on", "命名日期", aliases=("date",), help="YYYY-MM-DD，不能晚于今天"),
    )

    def parse_row(self, raw, ctx):
        return TitleRow(fields.required_text(raw, "unit_code", _("单位编码"), max_length=40),
                        fields.date_value(raw, "named_on", not_after=today()))

    def row_key(self, parsed):
        return parsed.unit_code

    def check(self, batch, ctx):
        units = ctx.units_by_code({p.unit_code for _line, p in batch})
        problems = {}
        for line, p in batch:
            unit = units.get(p.unit_code)
            if unit is None:
                problems[line] = RowError("unit_code", _("单位编码“%(c)s”不存在") % {"c": p.unit_code})
            elif not ctx.in_scope(unit.path):
                problems[line] = ctx.scope_error("unit_code", _("单位“%(c)s”") % {"c": p.unit_code})
            elif unit.kind not in TITLE_BY_KIND:
                problems[line] = RowError("unit_code", _("单位“%(c)s”这类单位没有称号") % {"c": p.unit_code})
        return problems

    def write(self, batch, ctx):
        units = ctx.units_by_code({p.unit_code for p in batch})
        written = write_existing_titles([(units[p.unit_code].id, units[p.unit_code].kind, p.named_on,
                                          district_of(units[p.unit_code].path)) for p in batch])
        return WriteCounts(created=written.created, unchanged=written.existing)
