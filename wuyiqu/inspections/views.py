"""Phone-sized pages to record an inspection (item by item) and an incident on a unit in scope, and
to handle a negative opinion (处置完毕 by the village/community, accepted by the street)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from wuyiqu.accounts.models import Role
from wuyiqu.lib import dates
from wuyiqu.units import selectors
from wuyiqu.units.models import district_of

from . import actions
from .forms import IncidentForm, InspectionForm
from .models import Incident, Inspection

# Inspections and incidents are recorded by the staff who supervise the unit (SPEC §1:
# community staff record inspections; the street and administrators may too).
RECORDING_ROLES = frozenset({Role.COMMUNITY_STAFF, Role.STREET_STAFF, Role.ADMIN})


def _may_record(user) -> bool:
    return user.role in RECORDING_ROLES or user.is_superuser


def _unit(request, code: str):
    unit = selectors.access_unit_by_code(request.user, code)
    if unit.kind not in actions.ITEMS_BY_KIND:
        raise Http404("no inspections for this kind")
    return unit


@login_required
@require_http_methods(["GET", "POST"])
def record_inspection(request, code: str):
    unit = _unit(request, code)
    items = actions.ITEMS_BY_KIND[unit.kind]
    form = InspectionForm(request.POST or None, request.FILES or None, items=items)
    if request.method == "POST":
        if not _may_record(request.user):
            raise PermissionDenied
        if form.is_valid():
            try:
                actions.do_record_inspection(
                    actor=request.user, unit=unit, inspected_on=form.cleaned_data["inspected_on"],
                    results=form.results(), inspector=form.cleaned_data["inspector"],
                    evidence=form.cleaned_data.get("evidence"), note=form.cleaned_data.get("note", ""))
            except actions.RecordRefused as e:
                form.add_error(None, str(e))
            else:
                messages.success(request, _("检查结果已记录"))
                return redirect("inspections:record", code=unit.code)
    recent = Inspection.objects.filter(district_code=district_of(unit.path), unit=unit).order_by(
        "-inspected_on", "item")[:30]
    return render(request, "inspections/record.html", {
        "unit": unit, "form": form, "recent": recent, "may_record": _may_record(request.user)},
        status=400 if request.method == "POST" else 200)


@login_required
@require_http_methods(["GET", "POST"])
def record_incident(request, code: str):
    unit = _unit(request, code)
    form = IncidentForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if not _may_record(request.user):
            raise PermissionDenied
        if form.is_valid():
            try:
                actions.do_record_incident(
                    actor=request.user, unit=unit, occurred_on=form.cleaned_data["occurred_on"],
                    incident_type=form.cleaned_data["incident_type"],
                    description=form.cleaned_data["description"], evidence=form.cleaned_data.get("evidence"))
            except actions.RecordRefused as e:
                form.add_error(None, str(e))
            else:
                messages.success(request, _("事件已登记"))
                return redirect("inspections:incident", code=unit.code)
    recent = Incident.objects.filter(district_code=district_of(unit.path), unit=unit).order_by("-occurred_on")[:30]
    return render(request, "inspections/incident.html", {
        "unit": unit, "form": form, "recent": recent, "may_record": _may_record(request.user),
        "may_handle": request.user.role == Role.COMMUNITY_STAFF, "may_accept": request.user.role == Role.STREET_STAFF,
        "today": dates.today()},
        status=400 if request.method == "POST" else 200)


def _opinion(request, code: str, incident_id: int) -> Incident:
    unit = _unit(request, code)
    incident = Incident.objects.filter(district_code=district_of(unit.path), pk=incident_id, unit=unit).select_related(
        "unit").first()
    if incident is None:
        raise Http404("incident")
    return incident


@login_required
@require_POST
def opinion_handled(request, code: str, incident_id: int):
    """The village/community's staff record that a negative opinion was handled (处置完毕)."""
    incident = _opinion(request, code, incident_id)
    if request.user.role != Role.COMMUNITY_STAFF:
        raise PermissionDenied
    try:
        handled_on = dates.parse_date(request.POST.get("handled_on", ""))
    except ValueError as exc:
        messages.error(request, _("处置完毕日期：%(e)s") % {"e": exc})
    else:
        try:
            actions.do_mark_opinion_handled(actor=request.user, incident=incident, handled_on=handled_on,
                                            note=request.POST.get("note", ""))
        except actions.OpinionRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("已登记处置完毕，待街道认可"))
    return redirect("inspections:incident", code=incident.unit.code)


@login_required
@require_POST
def opinion_accept(request, code: str, incident_id: int):
    """The street's staff accept the handling of a negative opinion (街道认可)."""
    incident = _opinion(request, code, incident_id)
    if request.user.role != Role.STREET_STAFF:
        raise PermissionDenied
    try:
        actions.do_accept_opinion_handling(actor=request.user, incident=incident)
    except actions.OpinionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("已认可处置结果，该舆情不再计入"))
    return redirect("inspections:incident", code=incident.unit.code)


@login_required
@require_POST
def opinion_return(request, code: str, incident_id: int):
    """The street's staff send the handling of a negative opinion back (街道退回), with a reason."""
    incident = _opinion(request, code, incident_id)
    if request.user.role != Role.STREET_STAFF:
        raise PermissionDenied
    try:
        actions.do_return_opinion_handling(actor=request.user, incident=incident, reason=request.POST.get("reason", ""))
    except actions.OpinionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("已退回处置结果，该舆情重新计入"))
    return redirect("inspections:incident", code=incident.unit.code)
