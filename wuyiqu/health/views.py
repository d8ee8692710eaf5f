"""Health pages for community staff and above, within their scope: who is under which measure, who
has not been tested, one person's timeline, and the early end / extension of a measure.

Thin: parse the query, call a scoped selector or an action, render. Every look at these lists (and
every export) writes an audit row, since they are health data about named people.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from wuyiqu.audit import actions as audit
from wuyiqu.lib import dates

from . import actions, selectors
from .exports import xlsx_response
from .models import MeasureKind

MAX_DAYS = 366
PER_PAGE = 100  # rows per page on a phone; the Excel export has them all


def _page(request, items):
    """One page of ``items`` and the query string without ``page`` (the filters the pager keeps)."""
    query = request.GET.copy()
    query.pop("page", None)
    return Paginator(items, PER_PAGE).get_page(request.GET.get("page")), query.urlencode()


def _client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _day(request, name: str = "on") -> tuple[dt.date, str]:
    """The date in ``?on=`` (default today) and an error message when it did not parse."""
    raw = request.GET.get(name, "")
    if not raw:
        return dates.today(), ""
    try:
        return dates.parse_date(raw), ""
    except ValueError as exc:
        return dates.today(), str(exc)


def _days(request) -> tuple[int | None, str]:
    raw = request.GET.get("days", "").strip()
    if not raw:
        return None, ""
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        return None, _("天数应为1到%(n)d之间的整数") % {"n": MAX_DAYS}
    return int(raw), ""


@login_required
def measures(request, code: str):
    unit = selectors.access_health_unit(request.user, code)
    on, error = _day(request)
    kind = request.GET.get("kind", "")
    if kind and kind not in MeasureKind.values:
        kind, error = "", _("未知的措施类别")
    page, filters = _page(request, selectors.measures_on(unit, on=on, kind=kind or None))
    audit.record(actor=request.user, action="health.view_measures", unit=unit, ip=_client_ip(request),
                 detail={"on": str(on), "kind": kind, "rows": page.paginator.count, "page": page.number})
    return render(request, "health/measures.html", {
        "unit": unit, "on": on, "kind": kind, "kinds": MeasureKind.choices, "page": page, "filters": filters,
        "error": error,
        "today": dates.today(), "can_change": selectors.may_see_health(request.user),
        "export_url": reverse("health:measures_xlsx", args=[unit.code]) + (f"?{filters}" if filters else ""),
    })


@login_required
def measures_xlsx(request, code: str):
    unit = selectors.access_health_unit(request.user, code)
    on, _error = _day(request)
    kind = request.GET.get("kind", "")
    kind = kind if kind in MeasureKind.values else ""
    rows = list(selectors.measures_on(unit, on=on, kind=kind or None))
    audit.record(actor=request.user, action="health.export_measures", unit=unit, ip=_client_ip(request),
                 detail={"on": str(on), "kind": kind, "rows": len(rows)})
    header = [_("姓名"), _("身份证号"), _("住户"), _("措施"), _("开始日期"), _("结束日期"), _("来源地")]
    data = [[m.resident.name if m.resident else "", m.id_masked,
             (m.resident.household.address or m.resident.household.code) if m.resident else "",
             str(m.get_kind_display()), m.start_on, m.end_on, m.origin] for m in rows]
    return xlsx_response(f"measures-{unit.code}-{on}.xlsx", _("管控人员"), header, data)


def _testing(request, unit):
    on, error = _day(request)
    days, days_error = _days(request)
    return selectors.testing_status(unit, on=on, days=days), error or days_error


@login_required
def testing(request, code: str):
    unit = selectors.access_health_unit(request.user, code)
    status, error = _testing(request, unit)
    page, filters = _page(request, status.rows)
    audit.record(actor=request.user, action="health.view_testing", unit=unit, ip=_client_ip(request),
                 detail={"on": str(status.on), "days": status.days, "rows": len(status.rows), "page": page.number})
    return render(request, "health/testing.html", {
        "unit": unit, "status": status, "page": page, "filters": filters, "error": error,
        "export_url": reverse("health:testing_xlsx", args=[unit.code]) + (f"?{filters}" if filters else ""),
    })


@login_required
def testing_xlsx(request, code: str):
    unit = selectors.access_health_unit(request.user, code)
    status, _error = _testing(request, unit)
    audit.record(actor=request.user, action="health.export_testing", unit=unit, ip=_client_ip(request),
                 detail={"on": str(status.on), "days": status.days, "rows": len(status.rows)})
    header = [_("姓名"), _("身份证号"), _("住户"), _("最近采样日期"), _("免检")]
    data = [[row.resident.name, row.resident.id_masked, row.resident.household.address or row.resident.household.code,
             row.last_sampled_on or "", row.exempt_reason] for row in [*status.rows, *status.exempt]]
    return xlsx_response(f"testing-{unit.code}-{status.on}.xlsx", _("核酸检测"), header, data)


@login_required
def timeline(request, resident_id: int):
    resident = selectors.access_health_resident(request.user, resident_id)
    entries = selectors.timeline(resident)
    audit.record(actor=request.user, action="health.view_timeline", target=resident, unit=resident.household.unit,
                 ip=_client_ip(request), detail={"entries": len(entries)})
    return render(request, "health/timeline.html", {
        "resident": resident, "entries": entries, "today": dates.today(),
        "can_change": selectors.may_see_health(request.user),
    })


@login_required
def measure(request, measure_id: int):
    """One measure: who (the person's name and timeline when registered; the masked number only when
    not, in the same words whether the number is on no register or registered elsewhere), the dates,
    every extension and early end with its reason, and the forms to change it. Audited."""
    m = selectors.access_measure_by_id(request.user, measure_id)
    changes = list(m.changes.select_related("actor").order_by("at", "id"))
    home = m.unit or m.scope_unit
    audit.record(actor=request.user, action="health.view_measure", target=m, unit=home, ip=_client_ip(request),
                 detail={"kind": m.kind, "registered": m.resident_id is not None, "changes": len(changes)})
    return render(request, "health/measure.html", {
        "m": m, "changes": changes, "home": home, "today": dates.today(),
        "can_change": selectors.may_see_health(request.user),
    })


def _change_measure(request, measure_id: int, change, date_label: str) -> HttpResponse:
    """Run ``change`` (an early end or an extension, with its reason) and say what happened: the
    refused field and why, or which units the change re-checked. Back to the person's timeline."""
    from wuyiqu.supervision.services import collecting_rechecks
    from wuyiqu.supervision.summaries import rechecked_text

    measure = selectors.access_measure_by_id(request.user, measure_id)
    labels = {"on": date_label, "until": date_label, "reason": _("原因")}
    try:
        day = dates.parse_date(request.POST.get("on", ""))
    except ValueError as exc:
        messages.error(request, _("未保存。%(field)s：%(e)s") % {"field": date_label, "e": exc})
    else:
        try:
            with collecting_rechecks() as rechecked:
                change(measure, day, request.POST.get("reason", ""))
        except actions.FactRefused as exc:
            messages.error(request, _("未保存。%(field)s：%(e)s") % {"field": labels.get(exc.field, exc.field),
                                                                   "e": exc.message})
        else:
            messages.success(request, _("已保存。") + rechecked_text(rechecked))
    if measure.resident_id:
        return redirect("health:timeline", resident_id=measure.resident_id)
    return redirect("health:measure", measure_id=measure.pk)


@require_POST
@login_required
def end_measure_early(request, measure_id: int):
    return _change_measure(request, measure_id, lambda m, day, reason: actions.do_end_measure_early(
        m, actor=request.user, on=day, reason=reason), _("解除日期"))


@require_POST
@login_required
def extend_measure(request, measure_id: int):
    return _change_measure(request, measure_id, lambda m, day, reason: actions.do_extend_measure(
        m, actor=request.user, until=day, reason=reason), _("延期至"))


@login_required
def held_facts(request):
    """The queue of facts one scope submitted about people registered in another, for the users who
    cover both (``actions.DECIDER_ROLES``); empty for everyone else."""
    rows = selectors.held_facts_for(request.user)
    page, filters = _page(request, rows)
    audit.record(actor=request.user, action="health.view_held_facts", ip=_client_ip(request),
                 detail={"rows": page.paginator.count, "page": page.number})
    return render(request, "health/held_facts.html", {
        "page": page, "filters": filters, "items": selectors.held_items(page.object_list)})


@require_POST
@login_required
def decide_held_facts(request, held_id: int):
    held = selectors.access_held_facts(request.user, held_id)
    confirm = request.POST.get("decision") == "confirm"
    try:
        actions.do_decide_held_facts(held, actor=request.user, confirm=confirm, reason=request.POST.get("reason", ""))
    except actions.FactRefused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("已确认，相关事实已计入该居民") if confirm else _("已作废，相关事实已删除"))
    return redirect("health:held_facts")
