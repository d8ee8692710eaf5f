"""Import kinds of this app (SPEC §7): inspections, incidents, surveys."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext as _

from wuyiqu.imports import fields
from wuyiqu.imports.registry import Column, ImportKind, RowError, WriteCounts, register_kind
from wuyiqu.lib.dates import today
from wuyiqu.units.models import district_of

from .models import Incident, IncidentType, Inspection, InspectionItem, Survey

ITEM_ALIASES = {i.value: i.value for i in InspectionItem} | {str(i.label): i.value for i in InspectionItem} | {
    "口罩": InspectionItem.MASKS, "出入口": InspectionItem.ENTRANCE, "车辆": InspectionItem.VEHICLES,
    "外来人员": InspectionItem.VISITORS, "清洁消毒": InspectionItem.DISINFECTION, "垃圾分类": InspectionItem.GARBAGE,
}
INCIDENT_ALIASES = {t.value: t.value for t in IncidentType} | {str(t.label): t.value for t in IncidentType} | {
    "舆情": IncidentType.NEGATIVE_OPINION, "自杀": IncidentType.SELF_HARM,
}
PASSED_TRUE = frozenset({"yes", "y", "1", "true", "合格", "是", "通过", "pass", "passed", "√"})
PASSED_FALSE = frozenset({"no", "n", "0", "false", "不合格", "否", "未通过", "fail", "failed", "×"})
INSPECTED_KINDS = ("building", "compound", "group", "village", "community", "street")
SURVEYED_KINDS = ("village", "community", "street")


def _unit_problems(batch, ctx, kinds, what: str):
    units = ctx.units_by_code({p.unit_code for _line, p in batch})
    problems = {}
    for line, p in batch:
        ref = units.get(p.unit_code)
        if ref is None:
            problems[line] = RowError("unit_code", _("单位编码“%(c)s”不存在") % {"c": p.unit_code})
        elif not ctx.in_scope(ref.path):
            problems[line] = ctx.scope_error("unit_code", _("单位“%(c)s”") % {"c": p.unit_code})
        elif ref.kind not in kinds:
            problems[line] = RowError("unit_code", _("单位“%(c)s”不能记录%(what)s") % {"c": p.unit_code, "what": what})
    return problems


def passed_value(raw) -> bool:
    text = raw.get("passed", "").strip().lower()
    if text in PASSED_TRUE:
        return True
    if text in PASSED_FALSE:
        return False
    if not text:
        raise RowError("passed", _("是否合格不能为空"))
    raise RowError("passed", _("是否合格“%(v)s”无法识别，应为 合格/不合格（yes/no）") % {"v": raw.get("passed")})


@dataclass(slots=True, frozen=True)
class InspectionRow:
    unit_code: str
    inspected_on: object
    item: str
    passed: bool
    inspector: str


@register_kind
class InspectionKind(ImportKind):
    name = "inspections"
    label = "检查记录"
    description = "每行一个单位一天一个检查项的结果；同一单位、检查项、日期再次导入时更新结果。"
    columns = (
        Column("unit_code", "单位编码", aliases=("单位代码",), help="楼栋/小区/社/村/社区的编码"),
        Column("inspected_on", "检查日期", aliases=("date",), help="YYYY-MM-DD，不能晚于今天"),
        Column("item", "检查项", help="出入口值守/车辆出入管理/外来人员管理/口罩佩戴/楼道电梯栏杆清洁消毒/垃圾分类处置/环境卫生/每周清洁消毒"),
        Column("passed", "是否合格", aliases=("结果", "检查结果"), help="合格 / 不合格（yes / no）"),
        Column("inspector", "检查人", required=False, help="姓名"),
    )

    def parse_row(self, raw, ctx):
        return InspectionRow(
            fields.required_text(raw, "unit_code", _("单位编码"), max_length=40),
            fields.date_value(raw, "inspected_on", not_after=today()),
            fields.choice_value(raw, "item", _("检查项"), ITEM_ALIASES),
            passed_value(raw),
            fields.optional_text(raw, "inspector", _("检查人"), max_length=50),
        )

    def row_key(self, parsed):
        return (parsed.unit_code, parsed.item, parsed.inspected_on)

    def check(self, batch, ctx):
        return _unit_problems(batch, ctx, INSPECTED_KINDS, _("检查"))

    def write(self, batch, ctx):
        units = ctx.units_by_code({p.unit_code for p in batch})
        wanted = {(units[p.unit_code].id, p.item, p.inspected_on): p for p in batch}
        existing = {
            (i.unit_id, i.item, i.inspected_on): i
            for i in Inspection.objects.filter(unit_id__in={k[0] for k in wanted},
                                               inspected_on__in={k[2] for k in wanted})
        }
        new, changed, same = [], [], 0
        for key, p in wanted.items():
            old = existing.get(key)
            if old is None:
                new.append(Inspection(unit_id=key[0], district_code=district_of(units[p.unit_code].path), item=p.item,
                                      inspected_on=p.inspected_on, passed=p.passed, inspector=p.inspector))
            elif (old.passed, old.inspector) != (p.passed, p.inspector):
                old.passed, old.inspector = p.passed, p.inspector
                changed.append(old)
            else:
                same += 1
        Inspection.objects.bulk_create(new)
        Inspection.objects.bulk_update(changed, ["passed", "inspector"])
        return WriteCounts(created=len(new), updated=len(changed), unchanged=same)


@dataclass(slots=True, frozen=True)
class IncidentRow:
    unit_code: str
    occurred_on: object
    incident_type: str
    description: str
    handled_on: object = None  # a negative opinion handled (处置完毕): the day, with a note
    handled_note: str = ""


@register_kind
class IncidentKind(ImportKind):
    name = "incidents"
    label = "次生事件与负面舆情"
    description = ("每行一起因疫情防控引发的斗殴、自寻短见、纵火、报复社会事件或一条负面舆情；负面舆情可同时登记处置完毕"
                   "（日期与处置情况，待街道认可）。")
    columns = (
        Column("unit_code", "单位编码", aliases=("单位代码",), help="发生地所在单位的编码"),
        Column("occurred_on", "发生日期", aliases=("date",), help="YYYY-MM-DD，不能晚于今天"),
        Column("type", "类型", aliases=("incident_type", "事件类型"), help="斗殴/自寻短见/纵火/报复社会/负面舆情"),
        Column("description", "描述", aliases=("说明", "情况"), required=False, help="简要经过"),
        Column("handled_on", "处置完毕日期", aliases=("处置日期",), required=False,
               help="仅负面舆情：处置完毕的日期 YYYY-MM-DD，不早于发生日期、不晚于今天；须同时填写处置情况"),
        Column("handled_note", "处置情况", aliases=("handling_note", "处置说明"), required=False,
               help="仅负面舆情：处置了什么（填写处置完毕日期时必填）"),
    )

    def parse_row(self, raw, ctx):
        occurred_on = fields.date_value(raw, "occurred_on", not_after=today())
        incident_type = fields.choice_value(raw, "type", _("类型"), INCIDENT_ALIASES)
        handled_on = fields.date_value(raw, "handled_on", required=False, not_after=today())
        note = fields.optional_text(raw, "handled_note", _("处置情况"), max_length=2000).strip()
        if handled_on is not None or note:
            if incident_type != IncidentType.NEGATIVE_OPINION:
                raise RowError("handled_on", _("只有负面舆情需要处置和认可"))
            if handled_on is None:
                raise RowError("handled_on", _("填写了处置情况，须同时填写处置完毕日期"))
            if not note:
                raise RowError("handled_note", _("处置情况说明不能为空"))
            if handled_on < occurred_on:
                raise RowError("handled_on", _("处置完毕日期%(date)s早于舆情发生日期%(occurred)s") % {
                    "date": handled_on.isoformat(), "occurred": occurred_on.isoformat()})
        return IncidentRow(
            fields.required_text(raw, "unit_code", _("单位编码"), max_length=40),
            occurred_on, incident_type,
            fields.optional_text(raw, "description", _("描述"), max_length=2000),
            handled_on, note,
        )

    def row_key(self, parsed):
        return (parsed.unit_code, parsed.occurred_on, parsed.incident_type, parsed.description)

    def _stored(self, batch, ctx) -> dict[tuple, Incident]:
        """The stored incidents of the batch's rows, by (unit id, date, type, description)."""
        units = ctx.units_by_code({p.unit_code for p in batch})
        keys = {(units[p.unit_code].id, p.occurred_on) for p in batch if p.unit_code in units}
        if not keys:
            return {}
        districts = {district_of(units[p.unit_code].path) for p in batch if p.unit_code in units}
        return {(i.unit_id, i.occurred_on, i.incident_type, i.description): i for i in Incident.objects.filter(
            district_code__in=districts, unit_id__in={k[0] for k in keys}, occurred_on__in={k[1] for k in keys})}

    def check(self, batch, ctx):
        problems = _unit_problems(batch, ctx, INSPECTED_KINDS + ("entrance",), _("事件"))
        handled = [(line, p) for line, p in batch if p.handled_on is not None and line not in problems]
        if handled:
            # A handling the street has accepted is not changed by a file (as on the page).
            units = ctx.units_by_code({p.unit_code for _line, p in handled})
            stored = self._stored([p for _line, p in handled], ctx)
            for line, p in handled:
                old = stored.get((units[p.unit_code].id, p.occurred_on, p.incident_type, p.description))
                if old is not None and old.accepted_on is not None and (old.handled_on, old.handled_note) != (
                        p.handled_on, p.handled_note):
                    problems[line] = RowError("handled_on", _("街道已于%(date)s认可处置结果，不能再修改") % {
                        "date": old.accepted_on.isoformat()})
        return problems

    def write(self, batch, ctx):
        units = ctx.units_by_code({p.unit_code for p in batch})
        wanted = {(units[p.unit_code].id, p.occurred_on, p.incident_type, p.description): p for p in batch}
        existing = self._stored(batch, ctx)
        by = ctx.actor if getattr(ctx.actor, "pk", None) else None
        new, changed, same = [], [], 0
        for key, p in wanted.items():
            old = existing.get(key)
            if old is None:
                new.append(Incident(unit_id=key[0], district_code=district_of(units[p.unit_code].path),
                                    occurred_on=p.occurred_on, incident_type=p.incident_type,
                                    description=p.description, handled_on=p.handled_on, handled_note=p.handled_note,
                                    handled_by=by if p.handled_on else None))
            elif p.handled_on is not None and old.accepted_on is None and (old.handled_on, old.handled_note) != (
                    p.handled_on, p.handled_note):
                old.handled_on, old.handled_note, old.handled_by = p.handled_on, p.handled_note, by
                changed.append(old)
            else:  # the same, or a row without handling (a file does not undo a handling)
                same += 1
        Incident.objects.bulk_create(new)
        Incident.objects.bulk_update(changed, ["handled_on", "handled_note", "handled_by"])
        return WriteCounts(created=len(new), updated=len(changed), unchanged=same)


@dataclass(slots=True, frozen=True)
class SurveyRow:
    unit_code: str
    surveyed_on: object
    awareness: Decimal
    approval: Decimal
    participation: Decimal


def _rate(raw, key, label) -> Decimal:
    return Decimal(str(round(fields.rate_value(raw, key, label), 3)))


@register_kind
class SurveyKind(ImportKind):
    name = "surveys"
    label = "知晓度调查"
    description = "每行一个村（社区）一次调查的知晓度、认可度、参与度（0–1 或百分数）；同日再次导入时更新。"
    columns = (
        Column("unit_code", "单位编码", aliases=("单位代码",), help="村/社区的编码"),
        Column("surveyed_on", "调查日期", aliases=("date",), help="YYYY-MM-DD，不能晚于今天"),
        Column("awareness", "知晓度", help="0–1，如 0.95 或 95%"),
        Column("approval", "认可度", help="0–1"),
        Column("participation", "参与度", help="0–1"),
    )

    def parse_row(self, raw, ctx):
        return SurveyRow(
            fields.required_text(raw, "unit_code", _("单位编码"), max_length=40),
            fields.date_value(raw, "surveyed_on", not_after=today()),
            _rate(raw, "awareness", _("知晓度")), _rate(raw, "approval", _("认可度")),
            _rate(raw, "participation", _("参与度")),
        )

    def row_key(self, parsed):
        return (parsed.unit_code, parsed.surveyed_on)

    def check(self, batch, ctx):
        return _unit_problems(batch, ctx, SURVEYED_KINDS, _("知晓度调查（只记录在村、社区、街道）"))

    def write(self, batch, ctx):
        units = ctx.units_by_code({p.unit_code for p in batch})
        wanted = {(units[p.unit_code].id, p.surveyed_on): p for p in batch}
        existing = {(s.unit_id, s.surveyed_on): s for s in Survey.objects.filter(
            unit_id__in={k[0] for k in wanted}, surveyed_on__in={k[1] for k in wanted})}
        new, changed, same = [], [], 0
        for key, p in wanted.items():
            old = existing.get(key)
            rates = (p.awareness, p.approval, p.participation)
            if old is None:
                new.append(Survey(unit_id=key[0], district_code=district_of(units[p.unit_code].path),
                                  surveyed_on=p.surveyed_on, awareness=p.awareness, approval=p.approval,
                                  participation=p.participation))
            elif (Decimal(old.awareness), Decimal(old.approval), Decimal(old.participation)) != rates:
                old.awareness, old.approval, old.participation = rates
                changed.append(old)
            else:
                same += 1
        Survey.objects.bulk_create(new)
        Survey.objects.bulk_update(changed, ["awareness", "approval", "participation"])
        return WriteCounts(created=len(new), updated=len(changed), unchanged=same)
