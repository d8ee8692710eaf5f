"""Reads of supervision: the scoped history (timeline) of a unit."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from wuyiqu.standards.criteria import shown
from wuyiqu.units import selectors as unit_selectors
from wuyiqu.units.models import TITLE_BY_KIND, district_of

from .models import TitleEvent, Warning, WarningStatus


@dataclass
class Entry:
    on: dt.date
    kind: str  # application, review, named, warning, warning_closed, withdrawn, reinstated, evaluation
    label: str
    text: str
    who: str = ""
    extra: dict = field(default_factory=dict)


def access_supervised_unit(user, code: str):
    """The unit with ``code`` if it is in the user's scope and its kind carries a title; Http404 otherwise."""
    unit = unit_selectors.access_unit_by_code(user, code)
    if unit.kind not in TITLE_BY_KIND:
        raise Http404("unit")
    return unit


def _names() -> dict[str, str]:
    """Criterion id → name (a page shows the name, never the id; SPEC §4 keeps ids for the API)."""
    from wuyiqu.dashboard.selectors import criterion_names
    from wuyiqu.lib.dates import today

    return criterion_names(today())


def open_warnings(unit) -> list[Warning]:
    """The unit's open warnings, each with ``criterion_name`` for the page."""
    warnings = list(Warning.objects.filter(district_code=district_of(unit.path), unit=unit, status=WarningStatus.OPEN).order_by("deadline", "id"))
    names = _names()
    for w in warnings:
        w.criterion_name = names.get(w.criterion, w.criterion)
    return warnings


def _who(user) -> str:
    return (user.display_name or user.username) if user is not None else _("系统")


def history(unit, *, evaluations: int = 60) -> list[Entry]:
    """Applications (and their review steps), namings, warnings, withdrawals, reinstatements and the
    last ``evaluations`` stored daily evaluations of ``unit``, in date order (a fixed number of queries).
    Labels and the texts around the records are in the active language, and so are the reasons the
    system wrote (warnings, withdrawals, stored evaluations: rendered from their machine form); what
    people wrote (opinions, notes, a manual warning or withdrawal's words) stays as written."""
    from django.utils import timezone

    from wuyiqu.applications.models import Application, ReviewStep
    from wuyiqu.certification.models import Title
    from wuyiqu.standards.models import Evaluation

    names = _names()
    out: list[Entry] = []
    for app in Application.objects.filter(district_code=district_of(unit.path), unit=unit).select_related("applicant", "unit").order_by("opened_at"):
        out.append(Entry(timezone.localdate(app.opened_at), "application", pgettext("监督记录", "发起申请"),
                         _("%(title)s申请（%(status)s）") % {"title": _(app.title), "status": app.status_label},
                         _who(app.applicant), {"id": app.pk}))
    for step in ReviewStep.objects.filter(district_code=district_of(unit.path), application__unit=unit).order_by("decided_at"):
        out.append(Entry(timezone.localdate(step.decided_at), "review", step.get_decision_display(),
                         step.opinion, step.actor_name))
    for t in Title.objects.filter(district_code=district_of(unit.path), unit=unit).order_by("named_on", "id"):
        text = (_("获%(title)s称号（证书 %(number)s）") if t.certificate_number else _("获%(title)s称号")) % {
            "title": _(t.title), "number": t.certificate_number}
        out.append(Entry(t.named_on, "named", _("命名"), text))
    for w in Warning.objects.filter(district_code=district_of(unit.path), unit=unit).select_related("opened_by", "closed_by").order_by("opened_on", "id"):
        out.append(Entry(w.opened_on, "warning", _("警示提醒"), _("%(criterion)s：%(detail)s（整改期限 %(deadline)s）") % {
            "criterion": names.get(w.criterion, w.criterion), "detail": w.shown_detail, "deadline": f"{w.deadline:%Y-%m-%d}"},
            _who(w.opened_by), {"warning": w}))
        if w.closed_on:
            out.append(Entry(w.closed_on, "warning_closed", w.get_status_display(),
                             _("%(criterion)s：%(note)s") % {"criterion": names.get(w.criterion, w.criterion),
                                                            "note": w.closed_note}
                             if w.closed_note else names.get(w.criterion, w.criterion),
                             _who(w.closed_by) if w.closed_by_id else _("系统")))
    for e in TitleEvent.objects.filter(district_code=district_of(unit.path), unit=unit).select_related("actor").order_by("at", "id"):
        out.append(Entry(e.on, e.kind, e.get_kind_display(), e.shown_reason, _who(e.actor), {"source": e.source}))
    stored = list(Evaluation.objects.filter(district_code=district_of(unit.path), unit=unit)
                  .order_by("-on")[:evaluations])
    for ev in stored:
        # The stored reasons: zh-hans, shown in the reader's language from their machine form when
        # the row has it (rows stored before the forms show the text as stored).
        forms = ev.detail_forms or {}
        text = _("达标") if ev.eligible else _("未达标：%(reasons)s") % {
            "reasons": pgettext("分句分隔", "；").join(
                _("%(criterion)s：%(detail)s") % {"criterion": names.get(k, k), "detail": shown(v, forms.get(k))}
                for k, v in (ev.details or {}).items())}
        out.append(Entry(ev.on, "evaluation", _("每日评估"), text, "", {"named": ev.named}))
    order = {"application": 0, "review": 1, "named": 2, "evaluation": 3, "warning": 4, "warning_closed": 5,
             "withdrawn": 6, "reinstated": 7}
    out.sort(key=lambda e: (e.on, order.get(e.kind, 9)))
    return out
