"""The history page of a unit (/units/<code>/history/) and the manual supervision forms on it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from wuyiqu.certification.models import Title
from wuyiqu.units.models import district_of

from . import actions, selectors
from .models import MANUAL, Warning, WarningStatus


@login_required
@require_GET
def history(request, code: str):
    unit = selectors.access_supervised_unit(request.user, code)
    current = Title.objects.filter(district_code=district_of(unit.path), unit=unit, withdrawn_on__isnull=True).first()
    withdrawn = Title.objects.filter(district_code=district_of(unit.path), unit=unit, withdrawn_on__isnull=False).order_by("-withdrawn_on", "-id").first()
    role = request.user.role
    return render(request, "supervision/history.html", {
        "unit": unit, "current": current, "withdrawn": withdrawn, "entries": selectors.history(unit),
        "open_warnings": selectors.open_warnings(unit), "manual": MANUAL,
        "can_warn": role in actions.WARN_ROLES and current is not None,
        "can_withdraw": role in actions.COMMAND_ROLES and current is not None,
        "can_reinstate": role in actions.COMMAND_ROLES and current is None and withdrawn is not None,
    })


def _done(request, code: str, fn, ok: str):
    """Run the action and go back to the history page with its outcome. A role that may not act at all
    is not a form error: PermissionDenied goes on to the 403 page, as on every other page."""
    try:
        fn()
    except actions.SupervisionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, ok)
    return redirect("supervision:history", code=code)


@login_required
@require_POST
def warn(request, code: str):
    unit = selectors.access_supervised_unit(request.user, code)
    raw_days = (request.POST.get("days") or "").strip()
    if raw_days and not raw_days.isdigit():
        messages.error(request, _("整改天数应为1到60之间的整数"))
        return redirect("supervision:history", code=code)
    days = int(raw_days) if raw_days else None
    return _done(request, code, lambda: actions.do_issue_warning(
        actor=request.user, unit=unit, detail=request.POST.get("reason", ""), days=days), _("已发出警示提醒"))


@login_required
@require_POST
def close_warning(request, code: str, warning_id: int):
    unit = selectors.access_supervised_unit(request.user, code)
    warning = Warning.objects.filter(district_code=district_of(unit.path), pk=warning_id, unit=unit, status=WarningStatus.OPEN).first()
    if warning is None:
        raise Http404("warning")
    return _done(request, code, lambda: actions.do_close_warning(
        actor=request.user, warning=warning, note=request.POST.get("reason", "")), _("已记录整改完成"))


@login_required
@require_POST
def withdraw(request, code: str):
    unit = selectors.access_supervised_unit(request.user, code)
    return _done(request, code, lambda: actions.do_withdraw_title(
        actor=request.user, unit=unit, reason=request.POST.get("reason", "")), _("已摘牌"))


@login_required
@require_POST
def reinstate(request, code: str):
    unit = selectors.access_supervised_unit(request.user, code)
    title = Title.objects.filter(district_code=district_of(unit.path), unit=unit, withdrawn_on__isnull=False).order_by("-withdrawn_on", "-id").first()
    if title is None:
        raise Http404("title")
    return _done(request, code, lambda: actions.do_reinstate_title(
        actor=request.user, title=title, reason=request.POST.get("reason", "")), _("已恢复称号"))
