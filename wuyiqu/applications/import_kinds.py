"""The `signatures` import (SPEC §7): paper co-signature sheets recorded on the unit's open application,
and — a row of a village, community or street with an empty household — the unit's own signature on
its application (经村（社区）签字申请). An application already under review takes neither: the row
is refused naming the unit and its status, and nothing of the file is imported."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from wuyiqu.imports import fields
from wuyiqu.imports.registry import Column, FileError, ImportKind, RowError, WriteCounts, register_kind
from wuyiqu.lib.dates import today
from wuyiqu.units.models import TITLE_BY_KIND, district_of

from .actions import (
    CO_SIGNED_KINDS,
    SELF_SIGNED_KINDS,
    PaperSignature,
    SignatureRefused,
    UnitSignature,
    applications_under_review,
    write_paper_signatures,
    write_unit_signatures,
)


@dataclass(slots=True, frozen=True)
class SignatureRow:
    unit_code: str
    household_code: str
    signed_on: object


@register_kind
class SignatureKind(ImportKind):
    name = "signatures"
    label = "联名签名（纸质）"
    description = ("每行一户在纸质联名表上的签名：申请单位（楼栋/社/小区）、户编码（须在该单位下）、签名日期；"
                   "或村/社区/街道本单位的签字申请：申请单位编码 + 签字日期，户编码留空。"
                   "记在该单位进行中的申请上；没有时自动发起一份征集联名中的申请；已提交审核的申请不再接受。"
                   "重复导入不会重复记录。")
    columns = (
        Column("unit_code", "申请单位编码", aliases=("单位编码", "单位代码"), help="楼栋/社/小区，或村/社区/街道的编码"),
        Column("household_code", "户编码", aliases=("户号",), required=False,
               help="该单位下的户编码；村/社区/街道本单位签字时留空"),
        Column("signed_on", "签名日期", aliases=("date",), help="YYYY-MM-DD，不能晚于今天"),
    )

    def parse_row(self, raw, ctx):
        return SignatureRow(
            fields.required_text(raw, "unit_code", _("申请单位编码"), max_length=40),
            fields.optional_text(raw, "household_code", _("户编码"), max_length=60),
            fields.date_value(raw, "signed_on", not_after=today()),
        )

    def row_key(self, parsed):
        return (parsed.unit_code, parsed.household_code)

    def check(self, batch, ctx):
        units = ctx.units_by_code({p.unit_code for _line, p in batch})
        households = ctx.households_by_code({p.household_code for _line, p in batch if p.household_code})
        under_review = applications_under_review({u.id: u.kind for u in units.values() if u.kind in TITLE_BY_KIND})
        problems = {}
        for line, p in batch:
            unit, hh = units.get(p.unit_code), households.get(p.household_code)
            if unit is None:
                problems[line] = RowError("unit_code", _("单位编码“%(c)s”不存在") % {"c": p.unit_code})
            elif not ctx.in_scope(unit.path):
                problems[line] = ctx.scope_error("unit_code", _("单位“%(c)s”") % {"c": p.unit_code})
            elif unit.id in under_review:
                problems[line] = RowError("unit_code", _("单位“%(c)s”的申请已在审核中（%(status)s），不能再登记联名或签字") % {
                    "c": p.unit_code, "status": under_review[unit.id]})
            elif not p.household_code:
                if unit.kind not in SELF_SIGNED_KINDS:
                    problems[line] = RowError("household_code", _("单位“%(c)s”由住户联名，请填写户编码（只有村、社区、街道由本单位签字，户编码留空）") % {
                        "c": p.unit_code})
            elif unit.kind not in CO_SIGNED_KINDS:
                problems[line] = RowError("household_code", _("单位“%(c)s”不收集住户联名（村、社区、街道由本单位签字申请，户编码留空）") % {
                    "c": p.unit_code})
            elif hh is None:
                problems[line] = RowError("household_code", _("户编码“%(c)s”不存在") % {"c": p.household_code})
            elif not hh.unit_path.startswith(unit.path):
                problems[line] = RowError("household_code", _("户“%(h)s”不在单位“%(c)s”下") % {
                    "h": p.household_code, "c": p.unit_code})
        return problems

    def write(self, batch, ctx):
        units = ctx.units_by_code({p.unit_code for p in batch})
        households = ctx.households_by_code({p.household_code for p in batch if p.household_code})
        try:
            written = write_paper_signatures([
                PaperSignature(units[p.unit_code].id, units[p.unit_code].kind, households[p.household_code].id,
                               p.signed_on, district_of(units[p.unit_code].path))
                for p in batch if p.household_code])
            signed = write_unit_signatures([UnitSignature(units[p.unit_code].id, units[p.unit_code].kind, p.signed_on,
                                                          district_of(units[p.unit_code].path))
                                            for p in batch if not p.household_code])
        except SignatureRefused as exc:  # an application submitted since the check: nothing is imported
            raise FileError(str(exc)) from None
        return WriteCounts(created=written.created + signed.created, unchanged=written.existing + signed.existing)
