"""Manual supervision actions (audited, reason required): issue a warning (street staff, health
commission, command — within scope), close a person's warning as rectified (the same roles),
withdraw a title (command only), reinstate a title withdrawn in error (command only).

Withdrawal writes ``Title.withdrawn_on``/``withdrawn_reason`` (read by the public page) and a
``TitleEvent``; it then re-checks the named units above, so that the cascade goes exactly as far
as the criteria say (a compound loses ``children_named`` when a building of it is withdrawn).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from wuyiqu.audit import actions as audit
from wuyiqu.certification.models import Title
from wuyiqu.lib.dates import today
from wuyiqu.standards import criteria as C
from wuyiqu.units import selectors as unit_selectors
from wuyiqu.units.models import district_of

from .models import MANUAL, TitleEvent, TitleEventKind, Warning, WarningStatus
from .notices import Notices

WARN_ROLES = ("street_staff", "health_commission", "command")
COMMAND_ROLES = ("command",)


class SupervisionRefused(ValueError):
    """The action cannot be done; the message (in the active language) names what to fix."""


def _in_scope(actor, unit) -> bool:
    prefix = unit_selectors.scope_path(actor)
    return prefix is not None and unit.path.startswith(prefix)


def _check(actor, unit, roles: tuple[str, ...], what: str) -> None:
    if not _in_scope(actor, unit):
        raise Http404("unit")
    if actor.role not in roles:
        raise PermissionDenied(_("%(what)s须由%(roles)s办理") % {
            "what": what, "roles": pgettext("列举分隔", "、").join(_role_labels(roles))})


def _role_labels(roles) -> list[str]:
    from wuyiqu.accounts.models import Role

    return [str(Role(r).label) for r in roles]


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise SupervisionRefused(_("请填写原因"))
    if len(reason) > 500:
        raise SupervisionRefused(_("原因不能超过500字"))
    return reason


def _current_title(unit, *, lock: bool) -> Title | None:
    # The district named: one shard on Citus, where a row lock must be routed to one.
    qs = Title.objects.filter(district_code=district_of(unit.path), unit=unit, withdrawn_on__isnull=True)
    if lock:
        qs = qs.select_for_update()
    return qs.first()


@transaction.atomic
def do_issue_warning(*, actor, unit, detail: str, days: int | None = None) -> Warning:
    """A person's warning (criterion ``manual``) on a named unit, to be rectified within ``days``
    (default: the profile's rectify_days). It closes when someone of the same roles records the
    rectification; at its deadline it expires and the command in scope is told (no automatic
    withdrawal). Refuses a unit outside scope (404), a role that may not warn, an empty reason, a
    bad number of days and a unit without a current title."""
    from wuyiqu.standards.evaluator import parsed_profile, profile_row_in_force

    from .services import rectify_days

    _check(actor, unit, WARN_ROLES, pgettext("办理事项", "警示提醒"))
    detail = _reason(detail)
    on = today()
    if days is None:
        days = rectify_days(parsed_profile(profile_row_in_force(on)))
    if not 1 <= days <= 60:
        raise SupervisionRefused(_("整改天数应在1到60之间"))
    title = _current_title(unit, lock=True)
    if title is None:
        raise SupervisionRefused(_("“%(name)s”当前没有称号，无需警示") % {"name": unit.name})
    warning = Warning.objects.create(unit=unit, title=title, criterion=MANUAL, detail=detail, opened_on=on,
                                     deadline=on + dt.timedelta(days=days), opened_by=actor)
    notices = Notices()
    notices.manual_warning(unit, detail, warning.deadline)
    notices.send()
    audit.record(actor=actor, action="supervision.warn", target=warning, unit=unit,
                 detail={"detail": detail, "deadline": warning.deadline.isoformat()})
    return warning


@transaction.atomic
def do_close_warning(*, actor, warning: Warning, note: str) -> Warning:
    """Record that a person's warning was rectified (with a note). Warnings opened by the evaluation
    close themselves when their criterion passes again; refused here."""
    # The race: the daily run expiring the warning while a person closes it; the lock orders them.
    w = Warning.objects.select_for_update().select_related("unit").get(district_code=warning.district_code,
                                                                       pk=warning.pk)
    _check(actor, w.unit, WARN_ROLES, pgettext("办理事项", "关闭警示"))
    note = _reason(note)
    if w.status != WarningStatus.OPEN:
        raise SupervisionRefused(_("该警示已关闭"))
    if w.criterion != MANUAL:
        raise SupervisionRefused(_("系统警示在对应标准重新达标后自动关闭"))
    w.status, w.closed_on, w.closed_note, w.closed_by = WarningStatus.RECTIFIED, today(), note, actor
    w.save(update_fields=["status", "closed_on", "closed_note", "closed_by"])
    audit.record(actor=actor, action="supervision.close_warning", target=w, unit=w.unit, detail={"note": note})
    return w


@transaction.atomic
def do_withdraw_title(*, actor, unit, reason: str, source: str = "manual"):
    """摘牌: the command withdraws ``unit``'s current title today with ``reason``. The unit's open
    warnings close with it; the named units above are re-checked in the same transaction (a
    compound whose building goes fails children_named). Returns the recheck's outcome. Refuses a
    unit outside scope (404), another role, an empty reason and a unit without a current title."""
    from .services import Outcome, recheck_after_facts

    _check(actor, unit, COMMAND_ROLES, pgettext("办理事项", "摘牌"))
    reason = _reason(reason)
    on = today()
    title = _current_title(unit, lock=True)
    if title is None:
        raise SupervisionRefused(_("“%(name)s”当前没有称号") % {"name": unit.name})
    # The frame is the system's (stored in zh-hans and in its machine form, shown in the reader's
    # language); the command's words inside it stay as written.
    form = C.machine_messages().text("command_withdrawal", reason=C.plain(reason))
    with translation.override(settings.LANGUAGE_CODE):
        stored = C.render(form)
    title.withdrawn_on, title.withdrawn_reason, title.withdrawn_form = on, stored, form
    title.save(update_fields=["withdrawn_on", "withdrawn_reason", "withdrawn_form"])
    TitleEvent.objects.create(title=title, unit=unit, kind=TitleEventKind.WITHDRAWN, on=on,
                              reason=stored, reason_form=form, criteria=[], source=source, actor=actor)
    Warning.objects.filter(district_code=title.district_code, unit=unit, status=WarningStatus.OPEN).update(
        status=WarningStatus.CLOSED, closed_on=on)
    notices = Notices()
    notices.withdrawn(unit, title.title, on, stored, form)
    notices.send()
    audit.record(actor=actor, action="supervision.withdraw", target=title, unit=unit,
                 detail={"reason": reason, "on": on.isoformat()})
    out = recheck_after_facts({unit.pk}, on=on, actor=actor, source=f"cascade:{unit.code}") if unit.parent_id else Outcome()
    out.withdrawn = [unit.code, *out.withdrawn]
    return out


@transaction.atomic
def do_reinstate_title(*, actor, title: Title, reason: str) -> Title:
    """Reinstate a title withdrawn in error: the command, with a reason. The withdrawal stays in the
    history (TitleEvent). Refuses a title that is current, a unit holding another current title (it
    was named again), and a unit that still fails a ``revoke`` criterion today (fix the data first,
    or the next check would withdraw it again); the units above are not reinstated with it."""
    from wuyiqu.standards.evaluator import evaluate, parsed_profile, profile_row_in_force

    # The race: two reinstatements, or a reinstatement and a new naming; the lock orders them and
    # one_current_title_per_unit backs it up.
    t = Title.objects.select_for_update().select_related("unit").get(district_code=title.district_code, pk=title.pk)
    unit = t.unit
    _check(actor, unit, COMMAND_ROLES, pgettext("办理事项", "恢复称号"))
    reason = _reason(reason)
    if t.withdrawn_on is None:
        raise SupervisionRefused(_("该称号未被摘牌"))
    if Title.objects.filter(district_code=t.district_code, unit=unit, withdrawn_on__isnull=True).exists():
        raise SupervisionRefused(_("“%(name)s”已持有新的称号") % {"name": unit.name})
    on = today()
    profile = parsed_profile(profile_row_in_force(on))
    severity = {c.id: c.severity for c in profile.criteria}
    ev = next((e for e in evaluate(on, root=unit, profile=profile) if e.unit.id == unit.pk), None)
    failing = [c for c in (ev.criteria if ev else []) if not c.passed and severity.get(c.id) == "revoke"]
    if failing:
        raise SupervisionRefused(_("该单位仍不符合以下标准，恢复后会再次摘牌，请先更正数据：%(list)s") % {
            "list": pgettext("分句分隔", "；").join(f"{_(profile.get(c.id).name)}：{c.detail}" for c in failing)})
    old_on = t.withdrawn_on
    t.withdrawn_on, t.withdrawn_reason, t.withdrawn_form = None, "", None
    t.save(update_fields=["withdrawn_on", "withdrawn_reason", "withdrawn_form"])
    TitleEvent.objects.create(title=t, unit=unit, kind=TitleEventKind.REINSTATED, on=on, reason=reason,
                              source="manual", actor=actor)
    audit.record(actor=actor, action="supervision.reinstate", target=t, unit=unit,
                 detail={"reason": reason, "withdrawn_on": old_on.isoformat()})
    return t
