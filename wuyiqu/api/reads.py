"""What the API reads (and the one review decision it makes), on behalf of a token.

A token is not an account; ``TokenPrincipal`` lets it through the same scoped selectors as the web
pages (``wuyiqu.units.selectors``, ``wuyiqu.applications.selectors``): its unit decides what exists,
and a missing or out-of-scope object is the same Http404. ``call`` checks the token's scope, and
writes the call's one audit row whatever the outcome.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _

from wuyiqu.audit import actions as audit
from wuyiqu.lib.dates import today

from .actions import ApiError
from .models import ApiToken

FIRST_DAY = dt.date(2000, 1, 1)
LAST_DAY = dt.date(2100, 12, 31)


@dataclass(frozen=True)
class TokenPrincipal:
    """The token as the selectors see a user: its unit is its scope, its role the review step."""

    token: ApiToken

    is_authenticated = True
    is_superuser = False

    @property
    def unit(self):
        return self.token.unit

    @property
    def unit_id(self):
        return self.token.unit_id

    @property
    def role(self) -> str:
        return self.token.role


class _Call:
    def __init__(self, request, op: str, action: str):
        self.request = request
        self.token: ApiToken = request.auth
        self.principal = TokenPrincipal(self.token)
        self.op = op
        self.action = action
        self.target = ""
        self.detail: dict[str, Any] = {}

    def done(self, result, target: Any = "", **detail):
        self.target = str(target)[:100]
        self.detail.update(detail)
        return result


def _status_of(exc: BaseException) -> tuple[int, str]:
    from django.db import DataError

    if isinstance(exc, ApiError):
        return exc.status, exc.code
    if isinstance(exc, Http404):
        return 404, "not_found"
    if isinstance(exc, PermissionDenied):
        return 403, "forbidden"
    if isinstance(exc, DataError):
        return 422, "invalid"
    return 500, "server_error"


@contextlib.contextmanager
def call(request, scope: str, op: str, *, action: str = "api.read"):
    """One API call needing ``scope``: 403 without it; one audit row (``action``) with the status."""
    c = _Call(request, op, action)
    request._api_audited = True
    status, code = 200, ""
    try:
        if not c.token.allows(scope):
            raise ApiError(403, "scope_missing", _("此令牌没有“%(s)s”权限") % {"s": scope}, {"scope": scope})
        yield c
    except BaseException as exc:
        status, code = _status_of(exc)
        raise
    finally:
        detail = {"token": c.token.name, "op": op, "target": c.target, "status": status, **c.detail}
        if code:
            detail["code"] = code
        actor = c.token.acts_as if action == "api.act" else None
        audit.record(actor=actor, action=action, target_type="api.apitoken", target_id=c.token.pk,
                     unit=c.token.unit, detail=detail, ip=request.META.get("REMOTE_ADDR") or None)


# --- units ---------------------------------------------------------------------------------------------

def _ref(unit) -> dict[str, str]:
    return {"code": unit.code, "name": unit.name, "kind": unit.kind}


def _on(date: dt.date | None) -> dt.date:
    on = date or today()
    if not FIRST_DAY <= on <= LAST_DAY:
        raise ApiError(422, "invalid", _("日期应在%(a)s至%(b)s之间") % {"a": FIRST_DAY, "b": LAST_DAY},
                       {"date": on.isoformat()})
    return on


def _evaluate(on: dt.date, root):
    """``evaluate(on, root=root)`` with the profile in force; a day without one is a 422. In Chinese
    whatever language the request chose: the entries are those of `wuyiqu evaluate --json`."""
    from django.conf import settings
    from django.utils import translation

    from wuyiqu.standards.evaluator import evaluate, parsed_profile, profile_row_in_force
    from wuyiqu.standards.profiles import ProfileError

    try:
        with translation.override(settings.LANGUAGE_CODE):
            return evaluate(on, root=root, profile=parsed_profile(profile_row_in_force(on)))
    except ProfileError as exc:
        # No policy was in force that day, so no evaluation of it exists: a 404, like any missing
        # object. (It was a 422, which told a client its well-formed request was malformed.)
        raise ApiError(404, "no_profile", str(exc), {"date": on.isoformat()}) from None


def unit_overview(principal, code: str) -> dict[str, Any]:
    from wuyiqu.certification.models import Title
    from wuyiqu.standards.evaluator import EVALUATED_KINDS
    from wuyiqu.units import selectors
    from wuyiqu.units.models import Unit, district_of

    unit = selectors.access_unit_by_code(principal, code)
    ancestors = {u.code: u for u in Unit.objects.filter(code__in=unit.ancestor_codes)}
    path = [_ref(ancestors[c]) for c in unit.ancestor_codes if c in ancestors] + [_ref(unit)]
    counts = selectors.subtree_counts(unit)["total"]
    counts["children"] = Unit.objects.filter(parent=unit).count()
    title = Title.objects.filter(district_code=district_of(unit.path), unit=unit, withdrawn_on__isnull=True).order_by("-named_on").first()
    eligibility = None
    if unit.kind in EVALUATED_KINDS:
        on = today()
        ev = next(e for e in _evaluate(on, unit) if e.unit.id == unit.id).as_contract()
        eligibility = {"on": on, "eligible": ev["eligible"], "named": ev["named"], "criteria": ev["criteria"]}
    return {**_ref(unit), "path": path, "counts": counts, "eligibility": eligibility,
            "title": ({"title": title.title, "named_on": title.named_on,
                       "certificate_number": title.certificate_number} if title else None)}


def unit_children(principal, code: str, limit: int, offset: int) -> dict[str, Any]:
    from wuyiqu.units import selectors
    from wuyiqu.units.models import Unit

    unit = selectors.access_unit_by_code(principal, code)
    qs = Unit.objects.filter(parent=unit).order_by("code")
    return {"count": qs.count(), "items": [_ref(u) for u in qs[offset:offset + limit]]}


def unit_history(principal, code: str) -> list[dict[str, Any]]:
    from wuyiqu.supervision.selectors import history
    from wuyiqu.units import selectors

    unit = selectors.access_unit_by_code(principal, code)
    return [{"on": e.on, "kind": e.kind, "label": str(e.label), "text": str(e.text), "who": str(e.who)}
            for e in history(unit)]


def unit_evaluation(principal, code: str, date: dt.date | None) -> dict[str, Any]:
    """The unit's entry of `wuyiqu evaluate --json --date D` (``UnitEvaluation.as_contract``)."""
    from wuyiqu.standards.evaluator import EVALUATED_KINDS
    from wuyiqu.units import selectors

    unit = selectors.access_unit_by_code(principal, code)
    if unit.kind not in EVALUATED_KINDS:
        raise Http404("no title for this kind")
    on = _on(date)
    return next(e for e in _evaluate(on, unit) if e.unit.id == unit.id).as_contract()


def evaluations(principal, date: dt.date | None, root: str | None, limit: int, offset: int) -> dict[str, Any]:
    from wuyiqu.units import selectors

    unit = selectors.access_unit_by_code(principal, root) if root else principal.unit
    on = _on(date)
    results = _evaluate(on, unit)
    return {"on": on, "count": len(results), "items": [e.as_contract() for e in results[offset:offset + limit]]}


# --- applications --------------------------------------------------------------------------------------

def _application(app, *, steps: bool = False) -> dict[str, Any]:
    from wuyiqu.applications.models import ApplicationStatus
    from wuyiqu.applications.workflow import STEP_ROLE

    out = {
        "id": app.pk, "unit": _ref(app.unit), "title": app.title, "status": app.status,
        "status_label": str(ApplicationStatus(app.status).label), "step_role": STEP_ROLE.get(app.status),
        "opened_at": app.opened_at, "submitted_at": app.submitted_at,
        "signatures": getattr(app, "n_signatures", None),
    }
    if out["signatures"] is None:
        out["signatures"] = app.signatures.filter(district_code=app.district_code).count()
    if steps:
        out["steps"] = [{"decision": s.decision, "opinion": s.opinion, "actor_name": s.actor_name,
                         "actor_role": s.actor_role, "from_status": s.from_status, "to_status": s.to_status,
                         "decided_at": s.decided_at} for s in app.steps.filter(district_code=app.district_code)]
    return out


def applications(principal, step: str | None, limit: int, offset: int) -> dict[str, Any]:
    from django.db.models import Count

    from wuyiqu.applications import selectors

    if step == "mine":
        qs = selectors.review_queue(principal) if principal.role else selectors.visible_applications(principal).none()
    else:
        qs = selectors.visible_applications(principal).order_by("-opened_at", "-id")
    page = qs.annotate(n_signatures=Count("signatures"))[offset:offset + limit]
    return {"count": qs.count(), "items": [_application(a) for a in page]}


def application_detail(principal, application_id: int) -> dict[str, Any]:
    from wuyiqu.applications import selectors

    return _application(selectors.access_application_by_id(principal, application_id), steps=True)


def decide(principal, token: ApiToken, application_id: int, *, status: str, decision: str, opinion: str,
           send_back_to: str | None) -> dict[str, Any]:
    """The review decision through ``do_review_application``, as the token's account: the same state
    machine and refusals as the web form. ``status`` is the status the client saw."""
    from wuyiqu.applications import selectors
    from wuyiqu.applications.actions import do_review_application

    app = selectors.access_application_by_id(principal, application_id)
    actor = token.acts_as
    if actor is None or not actor.is_active or actor.role != token.role:
        raise ApiError(403, "actor_unavailable", _("令牌的经办人账号已停用或角色已变更，请重新签发令牌"))
    app.status = status  # what the client saw: a different current status is a ReviewConflict (409)
    do_review_application(app, actor=actor, decision=decision, opinion=opinion, send_back_to=send_back_to)
    return application_detail(principal, application_id)
