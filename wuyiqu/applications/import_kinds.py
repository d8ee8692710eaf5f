"""The `signatures` import (SPEC §7): paper co-signature sheets recorded on the unit's open application."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from wuyiqu.imports import fields
from wuyiqu.imports.registry import Column, ImportKind, RowError, WriteCounts, register_kind
from wuyiqu.lib.dates import today

from .actions import CO_SIGNED_KINDS, PaperSignature, write_paper_signatures


@dataclass(slots=True, frozen=True)
class SignatureRow:
    unit_code: str
    household_code: str
    signed_on: object


@register_kind
class SignatureKind(ImportKind):
    name = "signatures"
    label = "联名签名（纸质）"
    description = ("每行一户在纸质联名表上的签名：申请单位（楼栋/社/小区）、户编码（须在该单位下）、签名日期。"
                   "记在该单位进行中的申请上；没有时自动发起一份征集联名中的申请。重复导入不会重复记录。")
    columns = (
        Column("unit_code", "申请单位编码", aliases=("单位编码", "单位代码"), help="楼栋/社/小区的编码"),
        Column("household_code", "户编码", aliases=("户号",), help="该单位下的户编码"),
        Column("signed_on", "签名日期", aliases=("date",), help="YYYY-MM-DD，不能晚于今天"),
    )

    def parse_row(self, raw, ctx):
        return SignatureRow(
            fields.required_text(raw, "unit_code", _("申请单位编码"), max_length=40),
            fields.required_text(raw, "household_code", _("户编码"), max_length=60),
            fields.date_value(raw, "signed_on", not_after=today()),
        )

    def row_key(self, parsed):
        return (parsed.unit_code, parsed.household_code)

    def check(self, batch, ctx):
        units = ctx.units_by_code({p.unit_code for _line, p in batch})
        households = ctx.households_by_code({p.household_code for _line, p in batch})
        problems = {}
        for line, p in batch:
            unit, hh = units.get(p.unit_code), households.get(p.household_code)
            if unit is None:
                problems[line] = RowError("unit_code", _("单位编码“%(c)s”不存在") % {"c": p.unit_code})
            elif not ctx.in_scope(unit.path):
                problems[line] = ctx.scope_error("unit_code", _("单位“%(c)s”") % {"c": p.unit_code})
            elif unit.kind not in CO_SIGNED_KINDS:
                problems[line] = RowError("unit_code", _("单位“%(c)s”不收集住户联名（只有楼栋、社、小区）") % {"c": p.unit_code})
            elif hh is None:
                problems[line] = RowError("household_code", _("户编码“%(c)s”不存在") % {"c": p.household_code})
            elif not hh.unit_path.startswith(unit.path):
                problems[line] = RowError("household_code", _("户“%(h)s”不在单位“%(c)s”下") % {
                    "h": p.household_code, "c": p.unit_code})
        return problems

    def write(self, batch, ctx):
        units = ctx.units_by_code({p.unit_code for p in batch})
        households = ctx.households_by_code({p.household_code for p in batch})
        written = write_paper_signatures([
            PaperSignature(units[p.unit_code].id, units[p.unit_code].kind, households[p.household_code].id, p.signed_on)
            for p in batch])
        return WriteCounts(created=written.created, unchanged=written.existing)
