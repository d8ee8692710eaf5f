"""The criteria: one registered function per criterion id, pure (no database).

A criterion function gets the rolled-up facts of one unit (``UnitFacts``, gathered for all units
at once by ``evaluator.py``), its ``CriterionSpec`` from the profile (parameters) and returns a
``CriterionResult``: passed or not, a Chinese reason that names what to fix, machine-readable
items for links, and — for the time-window criteria — the day it clears if nothing new happens.

Adding a criterion = a function here decorated with ``@criterion("id")`` + its entry in a profile.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple

from wuyiqu.lib.dates import window_start as _window_start

from .profiles import CriterionSpec

SAMPLES = 5  # how many offending items a reason names before "等 N 户"

INSPECTION_LABELS = {
    "entrance": "出入口值守", "vehicles": "车辆出入管理", "visitors": "外来人员管理", "masks": "口罩佩戴",
    "disinfection": "楼道电梯栏杆清洁消毒", "garbage": "垃圾分类处置", "environment": "环境卫生",
    "weekly_cleaning": "每周清洁消毒",
}
INCIDENT_LABELS = {
    "fight": "斗殴", "self_harm": "自寻短见", "arson": "纵火", "revenge": "报复社会", "negative_opinion": "负面舆情",
}
MEASURE_LABELS = {"close_contact": "密接", "home_quarantine": "居家隔离", "returnee": "管控期中的返綦人员"}
ZONE_LABELS = {"high": "高风险区", "temporary": "临时管控区"}
TITLE_KINDS = {"building": "无疫楼栋", "compound": "无疫小区", "group": "无疫社", "village": "无疫村",
               "community": "无疫社区", "street": "无疫街道"}


# --- facts -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnitRef:
    id: int
    code: str
    name: str
    kind: str
    path: str
    parent_id: int | None


@dataclass(frozen=True, slots=True)
class PersonRef:
    """A resident as a reason shows them: masked name and masked ID number."""

    resident_id: int | None
    name: str
    id_masked: str

    def label(self) -> str:
        if not self.name:
            return f"居民 ({self.id_masked})" if self.id_masked else "未登记人员"
        masked = self.name[0] + "*" * max(1, len(self.name) - 1)
        return f"居民 {masked} ({self.id_masked})"


@dataclass(frozen=True, slots=True)
class CaseFact:
    reported_on: dt.date
    person: PersonRef | None  # None: a case recorded on a unit
    unit_name: str


@dataclass(frozen=True, slots=True)
class MeasureFact:
    kind: str  # close_contact / home_quarantine / returnee
    start_on: dt.date
    end_on: dt.date
    person: PersonRef


@dataclass(frozen=True, slots=True)
class ZoneFact:
    zone_type: str
    start_on: dt.date
    end_on: dt.date | None
    unit_code: str
    unit_name: str
    relation: str  # "self", "below", "above"


@dataclass(frozen=True, slots=True)
class IncidentFact:
    occurred_on: dt.date
    incident_type: str
    unit_code: str
    unit_name: str


class InspectionFact(NamedTuple):
    # A named tuple, not a dataclass: the evaluator makes one per inspection row (100,000s a day).
    inspected_on: dt.date
    passed: bool


@dataclass(frozen=True, slots=True)
class SurveyFact:
    surveyed_on: dt.date
    awareness: Decimal
    approval: Decimal
    participation: Decimal


@dataclass(frozen=True, slots=True)
class ApplicationFact:
    id: int
    status: str
    unit_signed_on: dt.date | None


@dataclass(slots=True)
class Sampled:
    """A count with the first few offending items (label, machine-readable item)."""

    count: int = 0
    samples: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def add(self, label: str, item: dict[str, Any]) -> None:
        self.count += 1
        if len(self.samples) < SAMPLES:
            self.samples.append((label, item))

    def merge(self, other: Sampled) -> None:
        self.count += other.count
        room = SAMPLES - len(self.samples)
        if room > 0:
            self.samples.extend(other.samples[:room])


@dataclass(slots=True)
class Verdict:
    """What a unit below (or the unit itself, once judged) amounts to, for the criteria above it."""

    unit: UnitRef
    named: bool
    eligible: bool
    passed: dict[str, bool]


@dataclass(slots=True)
class UnitFacts:
    """Everything the criteria look at for one unit on ``on``, already rolled up over its subtree."""

    unit: UnitRef
    level: str
    on: dt.date
    cases: list[CaseFact] = field(default_factory=list)  # on U or below, in the fetched window
    measures: list[MeasureFact] = field(default_factory=list)  # residents below U, covering ``on``
    zones: list[ZoneFact] = field(default_factory=list)  # on U, below or above, covering ``on``
    households: int = 0
    unverified: Sampled = field(default_factory=Sampled)  # households not verified within verify_days
    nat_required: int = 0  # non-exempt residents
    nat_tested: int = 0  # of them, with a result sampled within nat_days
    ledger_incomplete: Sampled = field(default_factory=Sampled)
    incidents: list[IncidentFact] = field(default_factory=list)  # on U or below, in the fetched window
    inspections: dict[str, InspectionFact] = field(default_factory=dict)  # latest per item on U itself
    survey: SurveyFact | None = None  # the latest survey of U itself on or before ``on``
    application: ApplicationFact | None = None  # U's open (or latest) application for its title
    signed: int = 0  # households below U that co-signed that application by ``on``
    unsigned: Sampled = field(default_factory=Sampled)
    descendants: list[Verdict] = field(default_factory=list)  # titled units below, judged first


@dataclass(slots=True)
class CriterionResult:
    id: str
    passed: bool
    detail: str
    items: list[dict[str, Any]] = field(default_factory=list)
    # Time-window criteria: the first day it passes if nothing new happens (None: not known/applicable).
    clears_on: dt.date | None = None
    time_based: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "passed": self.passed, "detail": self.detail, "items": self.items}


CriterionFn = Callable[[UnitFacts, CriterionSpec], CriterionResult]
REGISTRY: dict[str, CriterionFn] = {}


def criterion(criterion_id: str) -> Callable[[CriterionFn], CriterionFn]:
    """Register ``fn`` as the rule of ``criterion_id`` (the id profiles and the API use)."""

    def register(fn: CriterionFn) -> CriterionFn:
        if criterion_id in REGISTRY:
            raise ValueError(f"criterion {criterion_id!r} registered twice")
        REGISTRY[criterion_id] = fn
        return fn

    return register


# --- helpers -----------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def window_start(on: dt.date, days: int) -> dt.date:
    """``wuyiqu.lib.dates.window_start``, remembered: the evaluator asks it for 100,000s of units."""
    return _window_start(on, days)


def md(day: dt.date | None) -> str:
    """11-28 (month-day, as the reasons show dates)."""
    return f"{day.month:02d}-{day.day:02d}" if day else "—"


def listing(labels: list[str], total: int, unit: str) -> str:
    """"2-1-301、2-1-302 等 7 户" — the first few, then how many in all."""
    text = "、".join(labels)
    return f"{text} 等 {total} {unit}" if total > len(labels) else text


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


# --- the criteria of the wenlong-2022 policy -----------------------------------------------------------


@criterion("no_case")
def no_case(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    days = spec.params["window_days"]
    if not f.cases:
        return _passed(spec.id, f"近{days}天无阳性感染者", True)
    start = window_start(f.on, days)
    cases = sorted((c for c in f.cases if start <= c.reported_on <= f.on), key=lambda c: c.reported_on)
    if not cases:
        return _passed(spec.id, f"近{days}天无阳性感染者", True)
    last = cases[-1].reported_on
    labels = [f"{c.person.label() if c.person else c.unit_name} {md(c.reported_on)} 报告" for c in cases[:SAMPLES]]
    items = [{"type": "resident", "id": c.person.resident_id} for c in cases if c.person and c.person.resident_id]
    clears = last + dt.timedelta(days=days)
    return CriterionResult(
        spec.id, False, f"近{days}天有 {len(cases)} 例阳性感染者：{listing(labels, len(cases), '例')}；"
        f"如无新增，{md(clears)} 起满{days}天", items[:SAMPLES], clears, True)


def _measure(kind: str, f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    label = MEASURE_LABELS[kind]
    if not f.measures:
        return _passed(spec.id, f"无{label}", True)
    active = sorted((m for m in f.measures if m.kind == kind and m.start_on <= f.on <= m.end_on),
                    key=lambda m: m.end_on)
    if not active:
        return _passed(spec.id, f"无{label}", True)
    texts = [f"{m.person.label()} 为{label}，管控至 {md(m.end_on)}" for m in active[:SAMPLES]]
    items = [{"type": "resident", "id": m.person.resident_id} for m in active if m.person.resident_id]
    clears = active[-1].end_on + dt.timedelta(days=1)
    more = f" 等 {len(active)} 人" if len(active) > SAMPLES else ""
    return CriterionResult(spec.id, False, "；".join(texts) + more, items[:SAMPLES], clears, True)


@criterion("no_close_contact")
def no_close_contact(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    return _measure("close_contact", f, spec)


@criterion("no_home_quarantine")
def no_home_quarantine(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    return _measure("home_quarantine", f, spec)


@criterion("no_returnee_under_control")
def no_returnee_under_control(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    return _measure("returnee", f, spec)


@criterion("no_risk_zone")
def no_risk_zone(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    if not f.zones:
        return _passed(spec.id, "无风险区、临时管控区", True)
    active = [z for z in f.zones if z.start_on <= f.on and (z.end_on is None or f.on <= z.end_on)]
    if not active:
        return _passed(spec.id, "无风险区、临时管控区", True)
    where = {"self": "本单位", "below": "下级单位", "above": "上级单位"}
    texts = [
        f"{where[z.relation]} {z.unit_name} 为{ZONE_LABELS.get(z.zone_type, z.zone_type)}（{md(z.start_on)} 起，"
        + (f"至 {md(z.end_on)}）" if z.end_on else "未解除）")
        for z in active[:SAMPLES]
    ]
    ends = [z.end_on for z in active]
    clears = None if any(e is None for e in ends) else max(ends) + dt.timedelta(days=1)
    items = [{"type": "unit", "code": z.unit_code} for z in active[:SAMPLES]]
    return CriterionResult(spec.id, False, "；".join(texts), items, clears, True)


@criterion("registry_verified")
def registry_verified(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    days = spec.params["verify_days"]
    if f.unverified.count == 0:
        return CriterionResult(spec.id, True, f"全部 {f.households} 户近{days}天内已核实")
    labels = [label for label, _ in f.unverified.samples]
    return CriterionResult(
        spec.id, False, f"{f.unverified.count} 户近{days}天未核实：{listing(labels, f.unverified.count, '户')}",
        [item for _, item in f.unverified.samples])


@lru_cache(maxsize=4096)
def _passed(criterion_id: str, detail: str, time_based: bool = False) -> CriterionResult:
    """A passing result whose reason does not depend on the unit, shared between units (the evaluator
    judges 100,000s of criteria; results are never changed after they are made)."""
    return CriterionResult(criterion_id, True, detail, time_based=time_based)


@lru_cache(maxsize=64)
def _all_passed_text(days: int, items: tuple[str, ...]) -> str:
    names = "、".join(INSPECTION_LABELS.get(i, i) for i in items)
    return f"近{days}天{names}检查均合格"


def _inspections(f: UnitFacts, spec: CriterionSpec, items: tuple[str, ...] | list[str]) -> CriterionResult:
    days = spec.params["inspection_days"]
    start = window_start(f.on, days)
    latest = f.inspections
    # Most units pass: check that first, without building any text (asked ~70,000 times a day).
    for item in items:
        last = latest.get(item)
        if last is None or last.inspected_on < start or not last.passed:
            break
    else:
        return _passed(spec.id, _all_passed_text(days, tuple(items)))
    problems = []
    for item in items:
        label = INSPECTION_LABELS.get(item, item)
        last = f.inspections.get(item)
        if last is None or last.inspected_on < start:
            when = f"（最近一次 {md(last.inspected_on)}）" if last else ""
            problems.append((f"近{days}天无{label}检查{when}", item))
        elif not last.passed:
            problems.append((f"{label} {md(last.inspected_on)} 检查不合格", item))
    if not problems:
        return _passed(spec.id, _all_passed_text(days, tuple(items)))
    return CriterionResult(spec.id, False, "；".join(p for p, _ in problems),
                           [{"type": "inspection", "item": i, "unit": f.unit.code} for _, i in problems])


def _over_children(f: UnitFacts, spec: CriterionSpec, kinds: tuple[str, ...], what: str) -> CriterionResult:
    """A street judged "over its villages and communities": passes when each of them passes."""
    below = [v for v in f.descendants if v.unit.kind in kinds]
    failing = [v for v in below if not v.passed.get(spec.id, False)]
    if not failing:
        return CriterionResult(spec.id, True, f"所辖 {len(below)} 个村（社区）{what}均达标")
    labels = [v.unit.name for v in failing[:SAMPLES]]
    return CriterionResult(spec.id, False, f"{len(failing)} 个村（社区）{what}未达标：{listing(labels, len(failing), '个')}",
                           [{"type": "unit", "code": v.unit.code} for v in failing[:SAMPLES]])


COMMITTEES = ("village", "community")


@criterion("mask_compliance")
def mask_compliance(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    if f.level == "street":
        return _over_children(f, spec, COMMITTEES, "口罩佩戴检查")
    return _inspections(f, spec, ["masks"])


@criterion("entrance_control")
def entrance_control(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    return _inspections(f, spec, spec.items_for(f.level))


@criterion("cleaning")
def cleaning(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    if f.level == "street":
        return _over_children(f, spec, COMMITTEES, "清洁消毒检查")
    return _inspections(f, spec, spec.items_for(f.level))


@criterion("nat_participation")
def nat_participation(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    days, rate, age = spec.params["nat_days"], spec.params["nat_rate"], spec.params["exempt_under_age"]
    if f.nat_required == 0:
        return CriterionResult(spec.id, True, f"无应检居民（免检：{age}岁以下、卧床）")
    share = f.nat_tested / f.nat_required
    text = (f"近{days}天核酸参与率 {_pct(share)}（应检 {f.nat_required} 人，已检 {f.nat_tested} 人；"
            f"要求 ≥ {_pct(rate)}）")
    # Compare in integers so that 95% of 20 is exactly 19 (no float rounding at the boundary).
    if f.nat_tested * 10000 >= round(rate * 10000) * f.nat_required:
        return CriterionResult(spec.id, True, text)
    missing = math.ceil(rate * f.nat_required - 1e-9) - f.nat_tested
    return CriterionResult(spec.id, False, text + f"，还差 {missing} 人",
                           [{"type": "households", "unit": f.unit.code}])


@criterion("all_households_signed")
def all_households_signed(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    title = TITLE_KINDS.get(f.level, "")
    if f.level in ("village", "community", "street"):
        # 经村（社区）签字申请 + every group, compound and building below had all its households
        # co-sign its own application (a street: every village/community below passes this).
        problems: list[str] = []
        items: list[dict[str, Any]] = []
        app = f.application
        if app is None:
            problems.append(f"尚未发起创建{title}申请")
        elif app.unit_signed_on is None or app.unit_signed_on > f.on:
            problems.append(f"创建{title}申请尚未由本单位签字")
            items.append({"type": "application", "id": app.id})
        kinds = COMMITTEES if f.level == "street" else ("group", "compound", "building")
        below = [v for v in f.descendants if v.unit.kind in kinds]
        failing = [v for v in below if not v.passed.get(spec.id, False)]
        if failing:
            labels = [v.unit.name for v in failing[:SAMPLES]]
            problems.append(f"{len(failing)} 个下级单位未完成100%联名：{listing(labels, len(failing), '个')}")
            items += [{"type": "unit", "code": v.unit.code} for v in failing[:SAMPLES]]
        if problems:
            return CriterionResult(spec.id, False, "；".join(problems), items)
        return CriterionResult(spec.id, True, f"本单位已签字申请，所辖 {len(below)} 个单位均已100%联名")
    if f.households == 0:
        return CriterionResult(spec.id, False, "无登记住户，无法联名申请")
    if f.application is None:
        return CriterionResult(spec.id, False, f"尚未发起创建{title}联名申请（共 {f.households} 户）",
                               [{"type": "households", "unit": f.unit.code}])
    if f.unsigned.count == 0:
        return CriterionResult(spec.id, True, f"全部 {f.households} 户已联名申请")
    labels = [label for label, _ in f.unsigned.samples]
    return CriterionResult(spec.id, False, f"{f.unsigned.count} 户未签名：{listing(labels, f.unsigned.count, '户')}",
                           [item for _, item in f.unsigned.samples])


@criterion("special_population_ledger")
def special_population_ledger(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    if f.ledger_incomplete.count == 0:
        return _passed(spec.id, "特殊人群台账完整，均在期限内复核")
    labels = [label for label, _ in f.ledger_incomplete.samples]
    return CriterionResult(
        spec.id, False,
        f"{f.ledger_incomplete.count} 人台账不完整或未按期复核：{listing(labels, f.ledger_incomplete.count, '人')}",
        [item for _, item in f.ledger_incomplete.samples])


def _incidents(f: UnitFacts, spec: CriterionSpec, types: set[str], what: str) -> CriterionResult:
    days = spec.params["window_days"]
    if not f.incidents:
        return _passed(spec.id, f"近{days}天无{what}", True)
    start = window_start(f.on, days)
    found = sorted((i for i in f.incidents if i.incident_type in types and start <= i.occurred_on <= f.on),
                   key=lambda i: i.occurred_on)
    if not found:
        return _passed(spec.id, f"近{days}天无{what}", True)
    labels = [f"{md(i.occurred_on)} {i.unit_name} {INCIDENT_LABELS.get(i.incident_type, i.incident_type)}"
              for i in found[:SAMPLES]]
    clears = found[-1].occurred_on + dt.timedelta(days=days)
    return CriterionResult(spec.id, False, f"近{days}天有 {len(found)} 起{what}：{listing(labels, len(found), '起')}；"
                           f"如无新增，{md(clears)} 起满{days}天",
                           [{"type": "unit", "code": i.unit_code} for i in found[:SAMPLES]], clears, True)


@criterion("no_secondary_incident")
def no_secondary_incident(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    return _incidents(f, spec, {"fight", "self_harm", "arson", "revenge"}, "次生事件")


@criterion("no_negative_opinion")
def no_negative_opinion(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    return _incidents(f, spec, {"negative_opinion"}, "负面舆情")


@criterion("children_named")
def children_named(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    buildings = [v for v in f.descendants if v.unit.kind == "building"]
    missing = [v for v in buildings if not v.named]
    if not missing:
        return CriterionResult(spec.id, True, f"所有 {len(buildings)} 栋楼均为无疫楼栋")
    labels = [v.unit.name for v in missing[:SAMPLES]]
    return CriterionResult(spec.id, False, f"{len(missing)} 栋楼未获无疫楼栋称号：{listing(labels, len(missing), '栋')}",
                           [{"type": "unit", "code": v.unit.code} for v in missing[:SAMPLES]])


@criterion("children_free")
def children_free(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    kinds = COMMITTEES if f.level == "street" else ("group", "compound", "building")
    below = [v for v in f.descendants if v.unit.kind in kinds]
    missing = [v for v in below if not (v.named or v.eligible)]
    if not missing:
        return CriterionResult(spec.id, True, f"所辖 {len(below)} 个单位均已获称号或达标")
    labels = [v.unit.name for v in missing[:SAMPLES]]
    return CriterionResult(spec.id, False,
                           f"{len(missing)} 个下级单位既未获称号也未达标：{listing(labels, len(missing), '个')}",
                           [{"type": "unit", "code": v.unit.code} for v in missing[:SAMPLES]])


@criterion("publicity_awareness")
def publicity_awareness(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    if f.level == "street":
        return _over_children(f, spec, COMMITTEES, "宣传知晓度调查")
    days, low = spec.params["survey_days"], spec.params["survey_min"]
    s = f.survey
    if s is None or s.surveyed_on < window_start(f.on, days) or s.surveyed_on > f.on:
        when = f"（最近一次 {md(s.surveyed_on)}）" if s else ""
        return CriterionResult(spec.id, False, f"近{days}天无知晓度、认可度、参与度调查{when}",
                               [{"type": "survey", "unit": f.unit.code}])
    rates = [("知晓度", s.awareness), ("认可度", s.approval), ("参与度", s.participation)]
    low_dec = Decimal(str(low))
    bad = [f"{name} {float(v):.2f} 低于 {low:.2f}" for name, v in rates if Decimal(v) < low_dec]
    if bad:
        return CriterionResult(spec.id, False, f"{md(s.surveyed_on)} 调查：" + "，".join(bad),
                               [{"type": "survey", "unit": f.unit.code}])
    return CriterionResult(spec.id, True, f"{md(s.surveyed_on)} 调查：知晓度 {float(s.awareness):.2f}、"
                           f"认可度 {float(s.approval):.2f}、参与度 {float(s.participation):.2f}")
