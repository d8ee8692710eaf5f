"""Policy profiles: the standards as versioned data.

A profile file (JSON, see ``profiles/wenlong-2022.json``) lists criteria in display order. Each
criterion has its stable id, a Chinese name, a default supervision severity (``revoke``, ``warn``
or ``null``), parameters, and the levels it applies to with the policy clause number and clause
text per level (the cells of the SPEC §4 table). ``street_rules`` names the level whose rules a
street (无疫街道) uses over its villages and communities.

``parse_profile`` validates everything and returns a ``Profile``; every problem is reported in
Chinese, naming the criterion and the field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from wuyiqu.inspections.models import InspectionItem

# The levels a profile may speak about, bottom up; the kinds of units that can hold a title.
LEVELS = ("building", "compound", "group", "village", "community", "street")
LEVEL_LABELS = {
    "building": "楼栋", "compound": "小区", "group": "社", "village": "村", "community": "社区", "street": "街道",
}
SEVERITIES = ("revoke", "warn", None)
DEFAULT_PROFILE = "wenlong-2022"


@dataclass(frozen=True)
class ParamSpec:
    kind: type
    low: float
    high: float
    label: str


# Every parameter a criterion may take, with its type and the range that makes sense.
PARAM_SPECS: dict[str, ParamSpec] = {
    "window_days": ParamSpec(int, 1, 60, "时间窗（天）"),
    "verify_days": ParamSpec(int, 1, 366, "核实有效期（天）"),
    "inspection_days": ParamSpec(int, 1, 60, "检查有效期（天）"),
    "nat_days": ParamSpec(int, 1, 30, "核酸有效期（天）"),
    "nat_rate": ParamSpec(float, 0, 1, "核酸参与率"),
    # At most 3: the register keeps no birth date, only a young child's third birthday (units.Resident).
    "exempt_under_age": ParamSpec(int, 0, 3, "免检年龄（岁以下）"),
    "ledger_review_days": ParamSpec(int, 1, 366, "台账复核有效期（天）"),
    "survey_days": ParamSpec(int, 1, 366, "调查有效期（天）"),
    "survey_min": ParamSpec(float, 0, 1, "调查最低比率"),
    "items": ParamSpec(dict, 0, 0, "检查项"),
}


class ProfileError(ValueError):
    """The profile is not valid; ``errors`` lists every problem in Chinese."""

    def __init__(self, errors: list[str]):
        super().__init__("；".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class LevelRule:
    clause: str
    text: str


@dataclass(frozen=True)
class CriterionSpec:
    id: str
    name: str
    severity: str | None
    params: dict[str, Any]
    levels: dict[str, LevelRule]
    _items: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    def items_for(self, level: str) -> tuple[str, ...]:
        """The inspection items this criterion checks at ``level`` (``items`` parameter); a street
        falls back to the community's. Remembered per level: asked once per unit."""
        found = self._items.get(level)
        if found is None:
            items = self.params.get("items") or {}
            found = self._items[level] = tuple(items.get(level) or items.get(_rule_level_fallback(level)) or ())
        return found


def _rule_level_fallback(level: str) -> str:
    return "community" if level == "street" else level


@dataclass(frozen=True)
class Profile:
    name: str
    version: str
    source: str
    street_rules: str | None
    criteria: tuple[CriterionSpec, ...]
    sha256: str
    content: dict[str, Any] = field(repr=False, compare=False, hash=False, default_factory=dict)

    def criteria_for(self, level: str) -> list[CriterionSpec]:
        """The criteria of ``level`` in profile order. A street takes the rules of ``street_rules``
        (village/community) unless a criterion names the street level itself."""
        out = []
        for c in self.criteria:
            if level in c.levels:
                out.append(c)
            elif level == "street" and self.street_rules and self.street_rules in c.levels:
                out.append(c)
        return out

    def rule(self, criterion: CriterionSpec, level: str) -> LevelRule | None:
        if level in criterion.levels:
            return criterion.levels[level]
        if level == "street" and self.street_rules:
            return criterion.levels.get(self.street_rules)
        return None

    def get(self, criterion_id: str) -> CriterionSpec | None:
        return next((c for c in self.criteria if c.id == criterion_id), None)


def content_sha256(content: dict[str, Any]) -> str:
    """A stable digest of the profile content (keys sorted), so equal content has equal digests."""
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _check_param(where: str, name: str, value: Any, errors: list[str]) -> None:
    spec = PARAM_SPECS.get(name)
    if spec is None:
        errors.append(f"{where}：未知参数“{name}”（可用：{'、'.join(PARAM_SPECS)}）")
        return
    if spec.kind is dict:
        if not isinstance(value, dict):
            errors.append(f"{where}：参数“{name}”应为“层级: [检查项…]”的对象")
            return
        for level, items in value.items():
            if level not in LEVELS:
                errors.append(f"{where}：参数“{name}”中的层级“{level}”未知（可用：{'、'.join(LEVELS)}）")
            if not isinstance(items, list) or not items:
                errors.append(f"{where}：参数“{name}”中“{level}”的检查项应为非空列表")
                continue
            for item in items:
                if item not in InspectionItem.values:
                    errors.append(f"{where}：检查项“{item}”未知（可用：{'、'.join(InspectionItem.values)}）")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors.append(f"{where}：参数“{name}”（{spec.label}）应为数字，实际为“{value}”")
        return
    if spec.kind is int and not (isinstance(value, int) or float(value).is_integer()):
        errors.append(f"{where}：参数“{name}”（{spec.label}）应为整数，实际为 {value}")
        return
    if not spec.low <= value <= spec.high:
        errors.append(f"{where}：参数“{name}”（{spec.label}）应在 {spec.low:g} 到 {spec.high:g} 之间，实际为 {value}")


def parse_profile(content: Any) -> Profile:
    """Validate a profile's content (the parsed JSON) and return it as a ``Profile``.
    Raises ProfileError listing every problem (unknown criterion or level, bad parameter type or
    range, missing clause, …) in Chinese."""
    from .criteria import REGISTRY  # the registered criterion functions

    errors: list[str] = []
    if not isinstance(content, dict):
        raise ProfileError(["配置文件内容应为一个 JSON 对象"])
    name = content.get("name")
    version = content.get("version")
    if not isinstance(name, str) or not name.strip():
        errors.append("缺少配置名称（name）")
    if not isinstance(version, str | int) or not str(version).strip():
        errors.append("缺少版本号（version）")
    street_rules = content.get("street_rules")
    if street_rules is not None and street_rules not in ("village", "community"):
        errors.append(f"street_rules 应为 village 或 community，实际为“{street_rules}”")
    raw_criteria = content.get("criteria")
    if not isinstance(raw_criteria, list) or not raw_criteria:
        errors.append("缺少标准列表（criteria）")
        raise ProfileError(errors)
    seen: set[str] = set()
    criteria: list[CriterionSpec] = []
    for n, raw in enumerate(raw_criteria, start=1):
        if not isinstance(raw, dict):
            errors.append(f"第 {n} 条标准应为对象")
            continue
        cid = raw.get("id")
        where = f"第 {n} 条标准“{cid}”"
        if cid not in REGISTRY:
            errors.append(f"{where}：未知的标准编号（已登记：{'、'.join(REGISTRY)}）")
        if cid in seen:
            errors.append(f"{where}：标准编号重复")
        seen.add(cid)
        cname = raw.get("name")
        if not isinstance(cname, str) or not cname.strip():
            errors.append(f"{where}：缺少中文名称（name）")
        severity = raw.get("severity")
        if severity not in SEVERITIES:
            errors.append(f"{where}：严重程度“{severity}”未知（可用：revoke、warn、null）")
        params = raw.get("params", {})
        if not isinstance(params, dict):
            errors.append(f"{where}：params 应为对象")
            params = {}
        for pname, value in params.items():
            _check_param(where, pname, value, errors)
        raw_levels = raw.get("levels")
        levels: dict[str, LevelRule] = {}
        if not isinstance(raw_levels, dict) or not raw_levels:
            errors.append(f"{where}：缺少适用层级（levels）")
            raw_levels = {}
        for level, rule in raw_levels.items():
            if level not in LEVELS:
                errors.append(f"{where}：层级“{level}”未知（可用：{'、'.join(LEVELS)}）")
                continue
            if not isinstance(rule, dict) or not str(rule.get("clause") or "").strip():
                errors.append(f"{where}：层级“{level}”缺少政策条款号（clause）")
                continue
            if not str(rule.get("text") or "").strip():
                errors.append(f"{where}：层级“{level}”缺少政策条款原文（text）")
                continue
            levels[level] = LevelRule(str(rule["clause"]).strip(), str(rule["text"]).strip())
        if "items" in (REQUIRED_PARAMS.get(cid) or ()):
            items = params.get("items") if isinstance(params.get("items"), dict) else {}
            for level in levels:
                if not items.get(_rule_level_fallback(level)) and not items.get(level):
                    errors.append(f"{where}：层级“{level}”缺少检查项（params.items.{level}）")
        for pname in REQUIRED_PARAMS.get(cid, ()):
            if pname not in params:
                errors.append(f"{where}：缺少参数“{pname}”")
        criteria.append(CriterionSpec(str(cid), str(cname or ""), severity, dict(params), levels))
    if errors:
        raise ProfileError(errors)
    return Profile(
        name=str(name).strip(), version=str(version).strip(), source=str(content.get("source") or ""),
        street_rules=street_rules, criteria=tuple(criteria), sha256=content_sha256(content), content=content,
    )


# Parameters each registered criterion cannot do without.
REQUIRED_PARAMS: dict[str, tuple[str, ...]] = {
    "no_case": ("window_days",),
    "registry_verified": ("verify_days",),
    "mask_compliance": ("inspection_days",),
    "nat_participation": ("nat_days", "nat_rate", "exempt_under_age"),
    "entrance_control": ("inspection_days", "items"),
    "cleaning": ("inspection_days", "items"),
    "special_population_ledger": ("ledger_review_days",),
    "no_secondary_incident": ("window_days",),
    "no_negative_opinion": ("window_days",),
    "publicity_awareness": ("survey_days", "survey_min"),
}


def load_profile_text(text: str) -> Profile:
    """Parse and validate profile JSON text; ProfileError (Chinese) for bad JSON too."""
    try:
        content = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProfileError([f"JSON 格式错误：第 {e.lineno} 行第 {e.colno} 列，{e.msg}"]) from None
    return parse_profile(content)


def bundled_profile_content(name: str = DEFAULT_PROFILE) -> dict[str, Any]:
    """The content of a profile file shipped in ``wuyiqu/standards/profiles/``."""
    text = resources.files("wuyiqu.standards").joinpath("profiles", f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)
