"""Scoped reads of the standards: the self-assessment (自评) of one unit."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.http import Http404
from django.utils.translation import gettext

from wuyiqu.units import selectors as unit_selectors

from .evaluator import EVALUATED_KINDS, UnitEvaluation, evaluate, parsed_profile, profile_row_in_force


@dataclass
class Assessment:
    evaluation: UnitEvaluation
    profile_label: str
    rules: dict[str, tuple[str, str, str, str | None]]  # criterion id -> (name, clause, text, severity)


def assess_unit(user, code: str, on: dt.date) -> Assessment:
    """The evaluation of the unit ``code`` on ``on`` for a user who may see it (Http404 otherwise, and
    for units that hold no title). The same evaluator as `wuyiqu evaluate`, over the unit's subtree."""
    unit = unit_selectors.access_unit_by_code(user, code)
    if unit.kind not in EVALUATED_KINDS:
        raise Http404("no title for this kind")
    row = profile_row_in_force(on)
    profile = parsed_profile(row)
    evaluation = next(e for e in evaluate(on, root=unit, profile=profile) if e.unit.id == unit.id)
    rules = {}
    for spec in profile.criteria_for(unit.kind):
        rule = profile.rule(spec, unit.kind)
        rules[spec.id] = (gettext(spec.name), rule.clause, gettext(rule.text), spec.severity)
    return Assessment(evaluation, f"{row.name} {row.version}", rules)
