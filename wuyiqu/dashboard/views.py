"""The dashboard pages (态势总览): numbers of a scope, one level of the hierarchy as JSON, what blocks
the next title, and the reports (ledger, weekly summary) as Excel and PDF. Thin: selectors do the work."""

from __future__ import annotations

import datetime as dt
import json
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from wuyiqu.lib.dates import parse_date, today
from wuyiqu.standards.profiles import ProfileError
from wuyiqu.units import selectors as unit_selectors

from . import exports, selectors

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _day(request) -> tuple[dt.date, str]:
    """The day asked for (``?date=YYYY-MM-DD``, not after today), else today; and the error (if any)."""
    raw = request.GET.get("date", "")
    if not raw:
        return today(), ""
    try:
        on = parse_date(raw)
    except ValueError as e:
        return today(), _("%(error)s，已显示今天的情况") % {"error": e}
    if on > today():
        return today(), _("日期“%(date)s”晚于今天，已显示今天的情况") % {"date": raw}
    return on, ""


def _date_query(on: dt.date) -> str:
    return "" if on == today() else f"?date={on.isoformat()}"


@login_required
@require_GET
def home(request):
    unit = selectors.home_unit(request.user)
    on, error = _day(request)
    return redirect(reverse("dashboard:unit", args=[unit.code]) + ("" if error else _date_query(on)))


@login_required
@require_GET
def dashboard(request, code: str):
    unit = selectors.access_dashboard_unit(request.user, code)
    on, error = _day(request)
    context = {"unit": unit, "on": on, "error": error, "date_query": _date_query(on),
               "breadcrumb": unit_selectors.breadcrumb_for(request.user, unit),
               "health": selectors.may_see_health_lists(request.user)}
    try:
        fp = selectors.fingerprint()
        summary = selectors.dashboard_summary(unit, on, fp)
        children = selectors.children_status(unit, on, fp)
    except ProfileError as e:
        context["error"] = "；".join(e.errors)
        return render(request, "dashboard/dashboard.html", context)
    days = selectors.trend(unit, on, fp=fp)
    trend_json = json.dumps({
        "days": [d["on"].strftime("%m-%d") for d in days],
        "named": [d["named"] for d in days], "eligible": [d["eligible"] for d in days],
        "total": [d["total"] for d in days],
    })
    context.update({
        "summary": summary, "children": children, "trend": days, "trend_json": trend_json,
        "stored_days": sum(1 for d in days if d["total"] is not None),
        "children_url": reverse("dashboard:children", args=[unit.code]) + _date_query(on),
        "statuses": selectors.STATUSES, "chart_texts": _chart_texts(),
        # The rendered numbers are cached as a template fragment under the same fingerprint.
        "fingerprint": "-".join(str(x) for x in fp), "fragment_seconds": selectors.ttl(summary["source"]),
    })
    return render(request, "dashboard/dashboard.html", context)


def _chart_texts() -> dict[str, str]:
    """The texts of the charts (dashboard.js), in the page's language: the page hands them to the
    script as a JSON data block (no inline script). ``%(name)s`` placeholders are filled in by it."""
    return {
        "named": _("已命名"), "eligible": _("达标待命名"), "no_trend": _("近30天没有存储的评估"),
        "where": _("%(name)s（%(kind)s）· 下级 %(n)s 个"),
        "where_status": _("%(name)s（%(kind)s，%(status)s）· 下级 %(n)s 个"),
        "unit": _("%(name)s（%(kind)s，%(status)s）"), "count": _("%(label)s：%(n)s"),
    }


def _translated_level(data: dict) -> dict:
    """One level of the hierarchy with its labels (kept Chinese in the cache) in the active language."""
    for node in (data["unit"], *data["children"]):
        node["kind_label"] = _(node["kind_label"])
        node["status_label"] = _(node["status_label"]) if node["status_label"] else ""
    data["statuses"] = [{**s, "label": _(s["label"])} for s in data["statuses"]]
    return data


@login_required
@require_GET
def children_json(request, code: str):
    """One level of the hierarchy picture: ``code`` and its titled children with counts by status."""
    unit = selectors.access_dashboard_unit(request.user, code)
    on, error = _day(request)
    if error:
        return JsonResponse({"error": error}, status=400, json_dumps_params={"ensure_ascii": False})
    try:
        data = selectors.children_status(unit, on)
    except ProfileError as e:
        return JsonResponse({"error": "；".join(e.errors)}, status=400, json_dumps_params={"ensure_ascii": False})
    q = _date_query(on)
    for child in data["children"]:
        child["url"] = reverse("dashboard:children", args=[child["code"]]) + q
        child["page"] = reverse("dashboard:unit", args=[child["code"]]) + q
    parent = unit.parent if unit.parent_id else None
    scope = unit_selectors.scope_path(request.user) or "\x00"
    data["parent_url"] = (reverse("dashboard:children", args=[parent.code]) + q
                          if parent is not None and parent.path.startswith(scope) else None)
    return JsonResponse(_translated_level(data), json_dumps_params={"ensure_ascii": False})


@login_required
@require_GET
def blockers(request, code: str):
    unit = selectors.access_dashboard_unit(request.user, code)
    on, error = _day(request)
    context = {"unit": unit, "on": on, "error": error, "date_query": _date_query(on)}
    try:
        groups, live = selectors.blockers(unit, on)
    except ProfileError as e:
        context["error"] = "；".join(e.errors)
        return render(request, "dashboard/blockers.html", context)
    context.update({"groups": groups, "profile": live.profile_label,
                    "blocked_units": len(live.blocked)})
    return render(request, "dashboard/blockers.html", context)


def _download(body: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    # ASCII file name (the unit code): every browser keeps it.
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _report(request, code: str):
    unit = selectors.access_dashboard_unit(request.user, code)
    on, _ = _day(request)
    return unit, on


def refuses_without_profile(view):
    """A report on a day without a policy profile in force: the Chinese reason, 400."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except ProfileError as e:
            return HttpResponse("；".join(e.errors), status=400, content_type="text/plain; charset=utf-8")

    return wrapper


@login_required
@require_GET
@refuses_without_profile
def ledger_xlsx(request, code: str):
    unit, on = _report(request, code)
    rows = selectors.ledger(unit, on)
    title = f"{unit.display_name} 无疫区台账（{on.isoformat()}）"
    return _download(exports.ledger_xlsx(title, rows), XLSX, f"ledger-{unit.code}-{on.isoformat()}.xlsx")


@login_required
@require_GET
@refuses_without_profile
def ledger_pdf(request, code: str):
    unit, on = _report(request, code)
    rows = selectors.ledger(unit, on)
    subtitle = f"统计日期 {on.isoformat()}，共 {len(rows)} 条称号记录（含已摘牌）"
    body = exports.ledger_pdf(f"{unit.display_name} 无疫区台账", subtitle, rows)
    return _download(body, "application/pdf", f"ledger-{unit.code}-{on.isoformat()}.pdf")


@login_required
@require_GET
@refuses_without_profile
def weekly_xlsx(request, code: str):
    unit, on = _report(request, code)
    data = selectors.weekly(unit, on)
    title = f"{unit.display_name} 无疫区创建周报（{data['start'].isoformat()} 至 {on.isoformat()}）"
    return _download(exports.weekly_xlsx(title, data), XLSX, f"weekly-{unit.code}-{on.isoformat()}.xlsx")


@login_required
@require_GET
@refuses_without_profile
def weekly_pdf(request, code: str):
    unit, on = _report(request, code)
    data = selectors.weekly(unit, on)
    subtitle = f"{data['start'].isoformat()} 至 {on.isoformat()}"
    body = exports.weekly_pdf(f"{unit.display_name} 无疫区创建周报", subtitle, data)
    return _download(body, "application/pdf", f"weekly-{unit.code}-{on.isoformat()}.pdf")
