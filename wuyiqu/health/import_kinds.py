"""Import kinds of epidemic facts (SPEC §7): cases, close-contacts, home-quarantines, returnees, risk-zones.

The engine (``wuyiqu.imports.services.run_import``) gives every kind the same behaviour: all or
nothing, each bad row reported with its line and field, duplicates inside one file reported, one
transaction and one audit row per import. Here each kind parses a row (no database), checks a batch
against the registry (scope, units, conflicting stored facts) and writes a batch set-based through
``health.actions.write_*``, which adds nothing that is stored already.

An ID number that matches no resident is not an error: the fact is kept with resident and unit
empty and counted as ``unmatched`` (every such row of the file, new or stored by an earlier import).
A scoped import (a community's staff, an API token) gets the same answer for a person registered
outside its scope — it must not learn whether a number is registered elsewhere — and the fact is
held for a street or health-commission user who covers both (``health.linking``, docs/facts.md).
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from wuyiqu.imports import fields
from wuyiqu.imports.registry import (
    Column,
    ImportKind,
    Problems,
    RowError,
    WriteCounts,
    register_kind,
)

from . import actions
from .models import CaseType, MeasureKind, ZoneType

CASE_TYPE_ALIASES = {t.value: t.value for t in CaseType} | {str(t.label): t.value for t in CaseType}
ZONE_TYPE_ALIASES = {t.value: t.value for t in ZoneType} | {str(t.label): t.value for t in ZoneType} | {
    "高风险": ZoneType.HIGH, "临时管控": ZoneType.TEMPORARY, "temporary_control": ZoneType.TEMPORARY,
}

ID_COLUMN = Column("id_number", "身份证号", aliases=("身份证", "身份证号码", "公民身份号码", "id"),
                   help="18位身份证号（校验位正确）")


def _refused(exc: actions.FactRefused, default_field: str) -> RowError:
    return RowError(exc.field or default_field, exc.message)


def _counts(written: actions.Written) -> WriteCounts:
    return WriteCounts(created=written.created, updated=written.updated, unchanged=written.existing,
                       unmatched=written.unmatched)


@register_kind
class CaseKind(ImportKind):
    name = "cases"
    label = "阳性感染者"
    description = "每行一名阳性感染者：填身份证号（人员）或单位编码（记在单位上的病例），二选一。"
    columns = (
        Column("id_number", "身份证号", aliases=ID_COLUMN.aliases, required=False, help="与单位编码二选一"),
        Column("unit_code", "单位编码", aliases=("单位代码",), required=False, help="与身份证号二选一"),
        Column("reported_on", "报告日期", aliases=("report_date",), help="YYYY-MM-DD，不能晚于今天"),
        Column("type", "类型", aliases=("case_type", "感染类型"), help="确诊 / 无症状（confirmed / asymptomatic）"),
    )

    def parse_row(self, raw, ctx):
        has_id, has_unit = bool(raw.get("id_number")), bool(raw.get("unit_code"))
        if has_id == has_unit:
            raise RowError("id_number", _("身份证号和单位编码须填且只填一项"))
        number = fields.id_number_value(raw).number if has_id else ""
        reported_on = fields.date_value(raw, "reported_on")
        case_type = fields.choice_value(raw, "type", _("类型"), CASE_TYPE_ALIASES)
        try:
            actions.refuse_future(reported_on, _("报告日期"), "reported_on")
        except actions.FactRefused as exc:
            raise _refused(exc, "reported_on") from None
        # unit_code rides in unit_id's place until check/write resolve it.
        return (number, raw.get("unit_code", "") if has_unit else "", reported_on, case_type)

    def row_key(self, parsed):
        return parsed

    def check(self, batch, ctx):
        problems: Problems = {}
        units = ctx.units_by_code({p[1] for _line, p in batch})
        for line, p in batch:
            if p[1]:
                ref = units.get(p[1])
                if ref is None:
                    problems[line] = RowError("unit_code", _("单位编码“%(c)s”不存在") % {"c": p[1]})
                elif not ctx.in_scope(ref.path):
                    problems[line] = ctx.scope_error("unit_code", _("单位“%(c)s”") % {"c": p[1]})
        return problems

    def write(self, batch, ctx):
        units = ctx.units_by_code({p[1] for p in batch})
        rows = [actions.CaseRow(reported_on=d, case_type=t, id_number=n, unit_id=units[u].id if u else None)
                for n, u, d, t in batch]
        return _counts(actions.write_cases(rows, scope=ctx.scope))


class _MeasureKindBase(ImportKind):
    measure_kind: str

    def _row(self, raw) -> actions.MeasureRow:
        raise NotImplementedError

    def parse_row(self, raw, ctx):
        row = self._row(raw)
        try:
            actions.check_measure_dates(row.kind, row.start_on, row.end_on)
        except actions.FactRefused as exc:
            raise _refused(exc, "start_on") from None
        return row

    def row_key(self, parsed):
        return (parsed.id_number, parsed.start_on)

    def check(self, batch, ctx):
        problems: Problems = {}
        from wuyiqu.lib import crypto

        c = crypto.cipher()
        stored = actions.existing_measure_ends([p for _line, p in batch])
        for line, p in batch:
            reason = actions.measure_conflict(p, stored.get((p.kind, c.lookup_hash(p.id_number), p.start_on)))
            if reason and line not in problems:
                problems[line] = RowError("end_on" if p.kind != MeasureKind.RETURNEE else "control_until", reason)
        return problems

    def write(self, batch, ctx):
        return _counts(actions.write_measures(batch, scope=ctx.scope))


@register_kind
class CloseContactKind(_MeasureKindBase):
    name = "close-contacts"
    label = "密接人员"
    measure_kind = MeasureKind.CLOSE_CONTACT
    description = "每行一名密切接触者及其管控起止日期（含首尾两天）。"
    columns = (
        ID_COLUMN,
        Column("start_on", "开始日期", aliases=("管控开始日期", "start"), help="YYYY-MM-DD，不能晚于今天"),
        Column("end_on", "结束日期", aliases=("管控结束日期", "end"), help="YYYY-MM-DD，可晚于今天"),
    )

    def _row(self, raw):
        return actions.MeasureRow(kind=self.measure_kind, id_number=fields.id_number_value(raw).number,
                                  start_on=fields.date_value(raw, "start_on"), end_on=fields.date_value(raw, "end_on"))


@register_kind
class HomeQuarantineKind(CloseContactKind):
    name = "home-quarantines"
    label = "居家隔离人员"
    measure_kind = MeasureKind.HOME_QUARANTINE
    description = "每行一名居家隔离人员及其隔离起止日期（含首尾两天）。"


@register_kind
class ReturneeKind(_MeasureKindBase):
    name = "returnees"
    label = "来綦返綦人员"
    measure_kind = MeasureKind.RETURNEE
    description = "每行一名市外重点疫区来綦返綦人员：来源地、到达日期、管控截止日期（含当天）。"
    columns = (
        ID_COLUMN,
        Column("origin", "来源地", aliases=("来源地区", "from"), help="如：某省某市某区"),
        Column("arrived_on", "到达日期", aliases=("抵綦日期", "arrival"), help="YYYY-MM-DD，不能晚于今天"),
        Column("control_until", "管控截止日期", aliases=("管控结束日期", "until"), help="YYYY-MM-DD，可晚于今天"),
    )

    def _row(self, raw):
        return actions.MeasureRow(kind=self.measure_kind, id_number=fields.id_number_value(raw).number,
                                  start_on=fields.date_value(raw, "arrived_on"),
                                  end_on=fields.date_value(raw, "control_until"),
                                  origin=fields.required_text(raw, "origin", _("来源地"), max_length=100))


@register_kind
class RiskZoneKind(ImportKind):
    name = "risk-zones"
    label = "风险区"
    description = "每行一个划定在单位上的高风险区或临时管控区；结束日期为空表示仍在管控，之后补填结束日期即解除。"
    columns = (
        Column("unit_code", "单位编码", aliases=("单位代码",), help="楼栋/小区/社/村/社区的编码"),
        Column("type", "类型", aliases=("zone_type", "风险区类型"), help="高风险区 / 临时管控区（high / temporary）"),
        Column("start_on", "开始日期", aliases=("start",), help="YYYY-MM-DD，不能晚于今天"),
        Column("end_on", "结束日期", aliases=("end",), required=False, help="YYYY-MM-DD，空表示仍在管控"),
    )

    def parse_row(self, raw, ctx):
        code = fields.required_text(raw, "unit_code", _("单位编码"), max_length=40)
        zone_type = fields.choice_value(raw, "type", _("类型"), ZONE_TYPE_ALIASES)
        start_on = fields.date_value(raw, "start_on")
        end_on = fields.date_value(raw, "end_on", required=False)
        try:
            actions.check_zone_dates(start_on, end_on)
        except actions.FactRefused as exc:
            raise _refused(exc, "start_on") from None
        return (code, zone_type, start_on, end_on)

    def row_key(self, parsed):
        return parsed[:3]

    def check(self, batch, ctx):
        units = ctx.units_by_code({p[0] for _line, p in batch})
        problems: Problems = {}
        good = []
        for line, (code, zone_type, start_on, end_on) in batch:
            ref = units.get(code)
            if ref is None:
                problems[line] = RowError("unit_code", _("单位编码“%(c)s”不存在") % {"c": code})
            elif not ctx.in_scope(ref.path):
                problems[line] = ctx.scope_error("unit_code", _("单位“%(c)s”") % {"c": code})
            else:
                good.append((line, actions.ZoneRow(ref.id, zone_type, start_on, end_on)))
        stored = actions.existing_zones([z for _line, z in good])
        for line, z in good:
            key = (z.unit_id, z.zone_type, z.start_on)
            reason = actions.zone_conflict(z, stored.get(key, (None, None))[1], key in stored)
            if reason:
                problems[line] = RowError("end_on", reason)
        return problems

    def write(self, batch, ctx):
        units = ctx.units_by_code({p[0] for p in batch})
        rows = [actions.ZoneRow(units[code].id, t, s, e) for code, t, s, e in batch]
        return _counts(actions.write_risk_zones(rows))
