"""Pages that record one fact by hand (issue 15), phone-first.

Every form goes through ``wuyiqu.imports.actions.do_record_row`` with the row a file would hold, so it
is refused for what a file row is refused for, naming the same field, and nothing is written then;
the changes that are no import row (an extension, an early end, a removal) go through their one
action. After a change the page says which units it re-checked (``supervision.summaries``). Only
the roles that may record facts (``permissions.can_record``: community staff and above) get these
pages, inside their scope; for anyone else, and outside the scope, every URL here is a 404.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from wuyiqu.health.models import RiskZone
from wuyiqu.imports.actions import RowRefused, do_record_row
from wuyiqu.imports.kinds.people import scoped_note
from wuyiqu.lib import dates
from wuyiqu.supervision.summaries import rechecked_text
from wuyiqu.units import selectors
from wuyiqu.units.models import HOUSEHOLD_UNIT_KINDS

from .entry import (
    HOUSEHOLD_FORMS,
    LEDGER_EDIT_FORM,
    MOVE_FORM,
    REMOVE_FORM,
    RESIDENT_FORM,
    UNIT_FORMS,
    EntrySpec,
)
from .permissions import can_record


def _ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _scope(user):
    """The unit whose subtree bounds what ``user`` may record (None: an unscoped administrator)."""
    return user.unit if user.unit_id else None


def _refuse_unless_recorder(user) -> None:
    if not can_record(user):
        raise Http404("record")


def recording_unit(user, code: str):
    """The unit ``code`` if ``user`` may record facts on it; Http404 otherwise (the same answer for
    a role without the right, a unit outside the scope and a unit that does not exist)."""
    _refuse_unless_recorder(user)
    return selectors.access_unit_by_code(user, code)


def recording_household(user, code: str):
    _refuse_unless_recorder(user)
    return selectors.access_household_by_code(user, code)


def recording_resident(user, resident_id: int):
    _refuse_unless_recorder(user)
    return selectors.access_resident_by_id(user, resident_id)


def _typed(spec: EntrySpec, post) -> dict[str, str]:
    """The text of each field as typed (tags: the chosen categories joined as a file cell holds them)."""
    raw = {}
    for f in spec.fields:
        if f.input == "tags":
            raw[f.key] = ";".join(v for v in post.getlist(f.key) if v)
        elif f.input == "check":
            raw[f.key] = "是" if post.get(f.key) else ""
        else:
            raw[f.key] = post.get(f.key, "")
    return raw


def _initial(spec: EntrySpec, values: dict | None = None) -> dict:
    today = dates.today().isoformat()
    initial = {f.key: today for f in spec.fields if f.today}
    return {**initial, **(values or {})}


def _saved(request, result, what: str) -> None:
    """The message after a submitted row: what was recorded and which units were re-checked."""
    if not result.changed:
        messages.info(request, _("%(what)s：与已登记的内容相同，未作更改。") % {"what": what})
        return
    if result.kind == "residents" and result.scoped and result.counts.created:
        # The same words whether the number was new or registered elsewhere (then a transfer request
        # waits for a user above both): the page must not tell which (issue 14).
        text = _("%(what)s：已保存（%(note)s）。") % {"what": what, "note": scoped_note()}
    else:
        text = _("%(what)s：已保存。") % {"what": what}
    if result.counts.unmatched:
        # The same words whether the number is on no register or registered outside the scope: the
        # answer must not tell which (issue 14; the second kind waits for a user above both).
        text += _("本辖区尚无该身份证号的登记居民，已先保存；待其在本辖区登记后自动关联，如登记在其他辖区则由上级核实后确认。")
    messages.success(request, text + rechecked_text(result.recheck))


Save = Callable[[dict[str, str]], None]  # writes the row and says so, or raises RowRefused


def _as_row(request, *, spec: EntrySpec, unit, only_new: tuple[str, str] | None = None) -> Save:
    """The usual save: the row through the import kind of ``spec``."""
    def save(raw: dict[str, str]) -> None:
        result = do_record_row(kind=spec.kind, raw=raw, actor=request.user, scope=_scope(request.user), unit=unit,
                               ip=_ip(request), only_new=only_new)
        _saved(request, result, str(spec.title))
    return save


def _entry_page(request, *, spec: EntrySpec, unit, back: str, save: Save, fixed: dict[str, str] | None = None,
                initial: dict | None = None, heading: str = "", extra: dict | None = None):
    """GET: the form. POST: the typed row plus ``fixed`` handed to ``save``; a refusal renders the
    form again with what was typed and the field's message (status 400), a success redirects to
    ``back`` (POST/redirect/GET)."""
    values = _initial(spec, initial)
    errors: dict[str, str] = {}
    refusal = ""
    status = 200
    if request.method == "POST":
        values = _typed(spec, request.POST)
        try:
            save({**values, **(fixed or {})})
        except RowRefused as exc:
            # Named as the form names the field (its label, in the page's language).
            label = next((str(f.label) for f in spec.fields if f.key == exc.field), exc.header)
            refusal = f"{label}：{exc.message}" if label else exc.message
            if any(f.key == exc.field for f in spec.fields):
                errors[exc.field] = exc.message
            status = 400
        else:
            return redirect(back)
    rows = [{"field": f, "value": values.get(f.key, ""), "error": errors.get(f.key, ""),
             "chosen": set(values.get(f.key, "").split(";")) if f.input == "tags" else set()} for f in spec.fields]
    context = {"spec": spec, "unit": unit, "rows": rows, "refusal": refusal, "back": back,
               "heading": heading or spec.title,
               "breadcrumb": [*selectors.breadcrumb_for(request.user, unit), {"unit": unit, "clickable": True}],
               **(extra or {})}
    return render(request, "web/entry_form.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def record_on_unit(request, code: str, kind: str):
    """One of UNIT_FORMS on a unit: a case, a measure, a risk zone, a household, a ledger entry."""
    unit = recording_unit(request.user, code)
    spec = UNIT_FORMS.get(kind)
    if spec is None or (kind in HOUSEHOLD_FORMS and unit.kind not in HOUSEHOLD_UNIT_KINDS):
        raise Http404("form")
    fixed: dict[str, str] = {}
    only_new = None
    extra = {}
    if kind == "cases":
        fixed["unit_code"] = unit.code if request.POST.get("on_unit") else ""
    elif kind in ("risk-zones", "households"):
        fixed["unit_code"] = unit.code
    if kind == "households":
        only_new = ("code", _("该户编码已登记；修改住户请用导入"))
    if kind == "risk-zones":
        extra["zones"] = RiskZone.objects.filter(unit=unit, end_on__isnull=True).order_by("start_on")
    back = reverse("web:unit", args=[unit.code])
    return _entry_page(request, spec=spec, unit=unit, back=back, fixed=fixed, extra=extra,
                       save=_as_row(request, spec=spec, unit=unit, only_new=only_new),
                       heading=f"{spec.title} · {unit.display_name}")


@login_required
@require_POST
def lift_risk_zone(request, code: str, zone_id: int):
    """Lift an ongoing zone on the unit: the risk-zones row with its end date filled in, as a file
    lifts it (``RiskZoneKind``: an ongoing zone's end may be filled in once)."""
    unit = recording_unit(request.user, code)
    zone = RiskZone.objects.filter(unit=unit, pk=zone_id).first()
    if zone is None:
        raise Http404("zone")
    raw = {"unit_code": unit.code, "type": zone.zone_type, "start_on": zone.start_on.isoformat(),
           "end_on": request.POST.get("end_on", "")}
    try:
        result = do_record_row(kind="risk-zones", raw=raw, actor=request.user, scope=_scope(request.user), unit=unit,
                               ip=_ip(request))
    except RowRefused as exc:
        messages.error(request, _("解除风险区未保存。%(reason)s") % {"reason": exc})
    else:
        _saved(request, result, _("解除风险区"))
    return redirect("web:record", code=unit.code, kind="risk-zones")


@login_required
@require_http_methods(["GET", "POST"])
def add_resident(request, code: str):
    household = recording_household(request.user, code)
    back = reverse("web:household", args=[household.code])
    only_new = ("id_number", _("该身份证号已登记为居民；迁入本户请在其原住户页面办理迁移"))
    return _entry_page(request, spec=RESIDENT_FORM, unit=household.unit, back=back,
                       fixed={"household_code": household.code},
                       save=_as_row(request, spec=RESIDENT_FORM, unit=household.unit, only_new=only_new),
                       heading=f"{RESIDENT_FORM.title} · {household.address or household.code}")


def _ledger_values(entry) -> dict[str, str]:
    return {"tags": entry.tags.replace(",", ";"), "needs": entry.needs, "helper": entry.helper,
            "reviewed_on": entry.reviewed_on.isoformat() if entry.reviewed_on else "",
            "registered_on": entry.registered_on.isoformat() if entry.registered_on else ""}


@login_required
@require_http_methods(["GET", "POST"])
def edit_ledger_entry(request, resident_id: int):
    """Add or edit one resident's ledger entry (categories, needs, helper, review date). The row
    carries the resident's ID number as a file row does; it is read here, never shown."""
    resident = recording_resident(request.user, resident_id)
    entry = getattr(resident, "special_entry", None)
    initial = _ledger_values(entry) if entry else {}
    back = reverse("web:household", args=[resident.household.code])
    return _entry_page(request, spec=LEDGER_EDIT_FORM, unit=resident.household.unit, back=back,
                       save=_as_row(request, spec=LEDGER_EDIT_FORM, unit=resident.household.unit),
                       fixed={"id_number": resident.reveal_id_number()} if request.method == "POST" else {},
                       initial=initial,
                       heading=f"{LEDGER_EDIT_FORM.title} · {resident.name}", extra={"resident": resident})


@login_required
@require_POST
def review_ledger_entry(request, resident_id: int):
    """Mark one ledger entry reviewed today, its other columns unchanged (the ledger's row again)."""
    resident = recording_resident(request.user, resident_id)
    entry = getattr(resident, "special_entry", None)
    if entry is None:
        raise Http404("entry")
    raw = {**_ledger_values(entry), "id_number": resident.reveal_id_number(),
           "reviewed_on": dates.today().isoformat()}
    try:
        result = do_record_row(kind="special-population", raw=raw, actor=request.user, scope=_scope(request.user),
                               unit=resident.household.unit, ip=_ip(request))
    except RowRefused as exc:
        messages.error(request, _("复核未保存。%(reason)s") % {"reason": exc})
    else:
        _saved(request, result, _("台账复核（%(name)s）") % {"name": resident.name})
    return redirect(request.POST.get("next") if _safe_next(request) else
                    reverse("web:household", args=[resident.household.code]))


def _safe_next(request) -> bool:
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.POST.get("next", "")
    return bool(target) and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                            require_https=request.is_secure())


@login_required
@require_POST
def verify_household(request, code: str):
    """住户清楚、人员准确 in one tap: a verifications row for today by the signed-in user. htmx swaps
    the household's status line; without JavaScript the browser comes back to the page it was on."""
    household = recording_household(request.user, code)
    raw = {"household_code": household.code, "verified_on": dates.today().isoformat(),
           "verifier": str(request.user)[:50]}
    error = ""
    result = None
    try:
        result = do_record_row(kind="verifications", raw=raw, actor=request.user, scope=_scope(request.user),
                               unit=household.unit, ip=_ip(request))
    except RowRefused as exc:
        error = str(exc)
    if _is_htmx(request):
        last = household.verifications.order_by("-verified_on").first()
        note = rechecked_text(result.recheck) if result and result.changed else ""
        return render(request, "web/_verify.html", {
            "household": household, "verified_on": last.verified_on if last else None,
            "verifier": last.verifier if last else "", "can_record": True, "error": error, "note": note,
            "today": dates.today(), "next": request.POST.get("next", "") if _safe_next(request) else "",
        }, status=400 if error else 200)
    if error:
        messages.error(request, _("核实未保存。%(reason)s") % {"reason": error})
    else:
        _saved(request, result, _("核实（%(h)s）") % {"h": household.address or household.code})
    return redirect(request.POST.get("next") if _safe_next(request) else
                    reverse("web:household", args=[household.code]))


@login_required
@require_http_methods(["GET", "POST"])
def remove_resident(request, resident_id: int):
    """Take a person off the register, with the reason (``units.actions.do_remove_resident``)."""
    from wuyiqu.supervision.services import collecting_rechecks
    from wuyiqu.units.actions import RemovalRefused, do_remove_resident

    resident = recording_resident(request.user, resident_id)
    household = resident.household

    def save(raw: dict[str, str]) -> None:
        try:
            with collecting_rechecks() as rechecked:
                do_remove_resident(actor=request.user, resident=resident, reason=raw.get("reason", ""))
        except RemovalRefused as exc:
            raise RowRefused(exc.field, exc.message, _("原因") if exc.field == "reason" else "") from None
        messages.success(request, _("已将%(name)s移出登记。") % {"name": resident.name} + rechecked_text(rechecked))

    return _entry_page(request, spec=REMOVE_FORM, unit=household.unit, save=save,
                       back=reverse("web:household", args=[household.code]),
                       heading=f"{REMOVE_FORM.title} · {resident.name} {resident.id_masked}")


@login_required
@require_http_methods(["GET", "POST"])
def move_resident(request, resident_id: int):
    """Move a person into another household of the user's scope from a day
    (``units.actions.do_move_resident``: the old spell closed, both homes' chains re-checked)."""
    from wuyiqu.supervision.services import collecting_rechecks
    from wuyiqu.units.actions import MoveRefused, do_move_resident

    resident = recording_resident(request.user, resident_id)
    household = resident.household
    labels = {f.key: f.label for f in MOVE_FORM.fields}

    def save(raw: dict[str, str]) -> None:
        try:
            moved_on = dates.parse_date(raw["moved_on"]) if raw.get("moved_on") else None
        except ValueError as exc:
            raise RowRefused("moved_on", str(exc), str(labels["moved_on"])) from None
        try:
            with collecting_rechecks() as rechecked:
                moved = do_move_resident(actor=request.user, resident=resident,
                                         household_code=raw.get("household_code", ""), moved_on=moved_on)
        except MoveRefused as exc:
            raise RowRefused(exc.field, exc.message, str(labels.get(exc.field, ""))) from None
        messages.success(request, _("已将%(name)s迁入%(h)s（%(on)s起）。") % {
            "name": resident.name, "h": moved.household.address or moved.household.code,
            "on": moved.moved_on.isoformat() if moved.moved_on else ""} + rechecked_text(rechecked))

    nearby = selectors.visible_households(request.user).filter(unit=household.unit).exclude(pk=household.pk)
    return _entry_page(request, spec=MOVE_FORM, unit=household.unit, save=save,
                       back=reverse("web:household", args=[household.code]),
                       heading=f"{MOVE_FORM.title} · {resident.name} {resident.id_masked}",
                       extra={"households_nearby": nearby.order_by("code")[:200]})
