"""The audit viewer (审计日志): who looked at or changed whose data, filtered, exported to Excel."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from wuyiqu.lib.dates import parse_date

from . import actions as audit
from . import selectors
from .selectors import AuditFilter

PER_PAGE = 100
EXPORT_LIMIT = 50_000  # rows in one Excel file; narrow the filter for more


def _filter(request) -> tuple[AuditFilter, list[str]]:
    """The page's filter from the query, and the Chinese message of each bad date (ignored)."""
    errors = []
    f = AuditFilter(user=request.GET.get("user", "").strip()[:150], person=request.GET.get("person", "").strip()[:50],
                    unit=request.GET.get("unit", "").strip()[:60], action=request.GET.get("action", "").strip()[:64])
    for name, label in (("since", _("起始日期")), ("until", _("截止日期"))):
        raw = request.GET.get(name, "").strip()
        if raw:
            try:
                setattr(f, name, parse_date(raw))
            except ValueError as e:
                errors.append(f"{label}：{e}")
    return f, errors


def _rows(events) -> list[dict]:
    """What the page and the export show of each row: the person a row is about, masked."""
    events = list(events)
    people = selectors.residents_by_id({e.target_id for e in events if e.target_type == selectors.RESIDENT_TYPE})
    rows = []
    for e in events:
        actor = e.actor
        person = people.get(e.target_id) if e.target_type == selectors.RESIDENT_TYPE else None
        if person is not None:
            target = f"{person.name[0]}{'*' * max(1, len(person.name) - 1)} {person.id_masked}"
        else:
            target = f"{e.target_type}:{e.target_id}" if e.target_type else ""
        rows.append({
            "event": e, "stands_out": selectors.stands_out(e.action),
            "actor": (actor.display_name or actor.username) if actor else _("（系统）"),
            "actor_role": actor.get_role_display() if actor else "",
            "actor_unit": actor.unit.name if actor and actor.unit_id else "",
            "target": target, "unit": e.unit.name if e.unit_id else "",
            "detail": ", ".join(f"{k}={v}" for k, v in (e.detail or {}).items())[:300],
        })
    return rows


@login_required
@require_GET
def events(request):
    f, errors = _filter(request)
    qs = selectors.audit_events(request.user, f)
    page = Paginator(qs, PER_PAGE).get_page(request.GET.get("page"))
    if f.person:  # looking a person up is itself a look at personal data
        audit.record(actor=request.user, action="audit.search_person", ip=request.META.get("REMOTE_ADDR") or None,
                     detail={"found": len(page.object_list)})
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "audit/events.html", {
        "filter": f, "errors": errors, "page": page, "rows": _rows(page.object_list),
        "standing_out": qs.filter(selectors.standing_out_q()).count(), "actions": selectors.action_names(request.user),
        "query": query.urlencode(),
    })


@login_required
@require_GET
def events_xlsx(request):
    from wuyiqu.health.exports import xlsx_response

    f, _errors = _filter(request)
    events = selectors.audit_events(request.user, f)[:EXPORT_LIMIT]
    rows = _rows(events)
    audit.record(actor=request.user, action="audit.export", ip=request.META.get("REMOTE_ADDR") or None,
                 detail={"rows": len(rows), "user": f.user, "unit": f.unit, "action": f.action,
                         "since": str(f.since or ""), "until": str(f.until or ""), "person": bool(f.person)})
    header = [_("时间"), _("操作人"), _("角色"), _("所属单位"), _("操作"), _("对象"), _("单位"), _("详情"), _("IP"), _("需关注")]
    data = [[timezone.localtime(r["event"].at).strftime("%Y-%m-%d %H:%M:%S"), r["actor"], r["actor_role"], r["actor_unit"],
             r["event"].action, r["target"], r["unit"], r["detail"], r["event"].ip or "",
             _("是") if r["stands_out"] else ""] for r in rows]
    return xlsx_response("audit.xlsx", _("审计日志"), header, data)
