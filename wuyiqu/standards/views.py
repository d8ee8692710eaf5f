"""The self-assessment page (自评): the unit's criteria on a date, each with its reason and links."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_GET

from wuyiqu.accounts.visibility import items_for, reason_for
from wuyiqu.lib.dates import parse_date, today
from wuyiqu.units import selectors as unit_selectors

from .profiles import ProfileError
from .selectors import assess_unit

SEVERITY_LABELS = {"revoke": pgettext_lazy("未达标时", "摘牌"), "warn": pgettext_lazy("未达标时", "警示"), None: "—"}


class _Reach:
    """What this person may open among the things a reason names: a reason of a compound may name its
    community, which a property manager does not see; a person's timeline is for the health roles. A
    link to a page that would answer 404 is not shown (two queries, whatever the number of items)."""

    def __init__(self, user, items: list[dict]):
        from wuyiqu.health.selectors import may_see_health
        from wuyiqu.units.selectors import visible_households, visible_units

        self.health = may_see_health(user)
        codes = {i.get("code") or i.get("unit") for i in items if i.get("type") != "household"} - {None}
        self.units = set(visible_units(user).filter(code__in=codes).values_list("code", flat=True)) if codes else set()
        households = {i["code"] for i in items if i.get("type") == "household" and i.get("code")}
        self.households = set(visible_households(user).filter(code__in=households).values_list(
            "code", flat=True)) if households else set()

    def allows(self, item: dict) -> bool:
        kind = item.get("type")
        if kind == "resident":
            return self.health
        if kind == "household":
            return item.get("code") in self.households
        return (item.get("code") or item.get("unit")) in self.units


def _link(item: dict, reach: _Reach) -> tuple[str, str] | None:
    """(url, label) of what must be fixed for one machine-readable item of a reason, when the person may
    open it."""
    if not reach.allows(item):
        return None
    kind = item.get("type")
    if kind == "resident" and item.get("id"):
        return reverse("health:timeline", args=[item["id"]]), _("查看人员轨迹")
    if kind == "household" and item.get("code"):
        return reverse("web:household", args=[item["code"]]), item["code"]
    if kind == "households" and item.get("unit"):
        return reverse("web:unit", args=[item["unit"]]), _("住户名单")
    if kind == "unit" and item.get("code"):
        return reverse("standards:assessment", args=[item["code"]]), item["code"]
    if kind == "inspection" and item.get("unit"):
        return reverse("inspections:record", args=[item["unit"]]), _("录入检查")
    return None


@login_required
@require_GET
def assessment(request, code: str):
    error = ""
    on = today()
    if request.GET.get("date"):
        try:
            on = parse_date(request.GET["date"])
        except ValueError as e:
            error = str(e)
    try:
        result = assess_unit(request.user, code, on)
    except ProfileError as e:
        return render(request, "standards/assessment.html", {"error": str(e), "on": on, "code": code}, status=200)
    ev = result.evaluation
    rows = []
    reach = _Reach(request.user, [item for c in ev.criteria for item in c.items])
    for c in ev.criteria:
        name, clause, text, severity = result.rules[c.id]
        links = [link for item in items_for(c.items, request.user) if (link := _link(item, reach))]
        rows.append({"result": c, "reason": reason_for(c, request.user), "name": name, "clause": clause, "text": text,
                     "severity": SEVERITY_LABELS.get(severity, severity), "links": links})
    unit = unit_selectors.access_unit_by_code(request.user, code)  # assess_unit let it through already
    breadcrumb = [*unit_selectors.breadcrumb_for(request.user, unit), {"unit": unit, "clickable": True}]
    return render(request, "standards/assessment.html", {
        "ev": ev, "unit": ev.unit, "rows": rows, "on": on, "error": error, "profile": result.profile_label,
        "breadcrumb": breadcrumb,
        "passed_count": sum(1 for c in ev.criteria if c.passed),
    })
