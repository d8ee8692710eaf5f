"""Import kinds of this app (SPEC §7): inspections, incidents, surveys."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext as _

from wuyiqu.imports import fields
from wuyiqu.imports.registry import Column, ImportKind, RowError, WriteCounts, register_kind
from wuyiqu.lib.dates import today

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
                new.append(Inspection(unit_id=key[0], item=p.item, inspected_on=p.inspected_on, passed=p.passed,
                                      inspector=p.inspector))
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


@register_kind
class IncidentKind(ImportKind):
    name = "incidents"
    label = "次生事件与负面舆情"
    description = "每行一起因疫情防控引发的斗殴、自寻短见、纵火、报复社会事件或一条负面舆情。"
    columns = (
        Column("unit_code", "单位编码", aliases=("单位代码",), help="发生地所在单位的编码"),
        Column("occurred_on", "发生日期", aliases=("date",), help="YYYY-MM-DD，不能晚于今天"),
        Column("type", "类型", aliases=("incident_type", "事件类型"), help="斗殴/自寻短见/纵火/报复社会/负面舆情"),
        Column("description", "描述", aliases=("说明", "情况"), required=False, help="简要经过"),
    )

    def parse_row(self, raw, ctx):
        return IncidentRow(
            fields.required_text(raw, "unit_code", _("单位编码"), max_length=40),
            fields.date_value(raw, "occurred_on", not_after=today()),
            fields.choice_value(raw, "type", _("类型"), INCIDENT_ALIASES),
            fields.optional_text(raw, "description", _("描述"), max_length=2000),
        )

    def row_key(self, parsed):
        return (parsed.unit_code, parsed.occurred_on, parsed.incident_type, parsed.description)

    def check(self, batch, ctx):
        return _unit_problems(batch, ctx, INSPECTED_KINDS + ("entrance",), _("事件"))

    def write(self, batch, ctx):
        units = ctx.units_by_code({p.unit_code for p in batch})
        wanted = {(units[p.unit_code].id, p.occurred_on, p.incident_type, p.description) for p in batch}
        existing = set(Incident.objects.filter(
            unit_id__in={k[0] for k in wanted}, occurred_on__in={k[1] for k in wanted},
        ).values_list("unit_id", "occurred_on", "incident_type", "description"))
        new = [Incident(unit_id=u, occurred_on=d, incident_type=t, description=desc)
               for (u, d, t, desc) in wanted - existing]
        Incident.objects.bulk_create(new)
        return WriteCounts(created=len(new), unchanged=len(wanted) - len(new))


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
                new.append(Survey(unit_id=key[0], surveyed_on=p.surveyed_on, awareness=p.awareness,
                                  approval=p.approval, participation=p.participation))
            elif (Decimal(old.awareness), Decimal(old.approval), Decimal(old.participation)) != rates:
                old.awareness, old.approval, old.participation = rates
                changed.append(old)
            else:
                same += 1
        Survey.objects.bulk_create(new)
        Survey.objects.bulk_update(changed, ["awareness", "approval", "participation"])
        return WriteCounts(created=len(new), updated=len(changed), unchanged=same)
