"""The review chain of SPEC §5 as data: the route of each title, who acts at each step, and the
table of legal transitions. ``target_status`` is the only place that decides where a decision leads."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from wuyiqu.accounts.models import Role

from .models import ApplicationStatus as S
from .models import ReviewDecision as D

# Who opens (and submits) the application of each kind of unit.
APPLICANT_ROLE: dict[str, str] = {
    "building": Role.BUILDING_HEAD,
    "group": Role.GROUP_LEADER,
    "compound": Role.PROPERTY_MANAGER,
    "village": Role.COMMUNITY_STAFF,
    "community": Role.COMMUNITY_STAFF,
    "street": Role.STREET_STAFF,
}

# The review steps, in order, that a submitted application of each kind passes through.
_LOCAL = (S.COMMUNITY_REVIEW, S.STREET_REVIEW, S.HEALTH_REVIEW, S.COMMAND_REVIEW)
ROUTE: dict[str, tuple[str, ...]] = {
    "building": _LOCAL,  # 楼栋长 → 社区/村受理 → 街道初审 → 区卫健委复核 → 区指挥部命名
    "group": _LOCAL,  # 社长 → 村受理 → …
    "compound": _LOCAL,  # 物业 → 社区受理 → …
    "village": _LOCAL[1:],  # 村签字申请 → 街道初审 → …
    "community": _LOCAL[1:],
    "street": _LOCAL[2:],  # 街道 → 区卫健委 → 区指挥部
}

# The role that acts at each review step (within its scope: the unit must lie below the actor's unit).
STEP_ROLE: dict[str, str] = {
    S.COMMUNITY_REVIEW: Role.COMMUNITY_STAFF,
    S.STREET_REVIEW: Role.STREET_STAFF,
    S.HEALTH_REVIEW: Role.HEALTH_COMMISSION,
    S.COMMAND_REVIEW: Role.COMMAND,
}

# Households may sign (online or on paper) while the applicant holds the application.
SIGNING_STATUSES = (S.DRAFT, S.RETURNED)
SUBMITTABLE_STATUSES = (S.DRAFT, S.RETURNED)
REVIEW_DECISIONS = (D.APPROVE, D.RETURN, D.REJECT, D.SEND_BACK)


class IllegalTransition(ValueError):
    """A decision the table does not allow from the application's status; the message is Chinese."""


def transitions(kind: str) -> dict[tuple[str, str], tuple[str, ...]]:
    """(from status, decision) -> the statuses it may lead to, for an application of a ``kind`` unit."""
    route = ROUTE[kind]
    table: dict[tuple[str, str], tuple[str, ...]] = {
        (S.DRAFT, D.SUBMIT): (route[0],),
        (S.RETURNED, D.SUBMIT): (route[0],),
    }
    for i, step in enumerate(route):
        table[(step, D.APPROVE)] = (route[i + 1] if i + 1 < len(route) else S.NAMED,)
        table[(step, D.RETURN)] = (S.RETURNED,)
        table[(step, D.REJECT)] = (S.REJECTED,)
        if i > 0:
            table[(step, D.SEND_BACK)] = route[:i]  # a higher step may send it back to any lower one
    return table


def target_status(kind: str, from_status: str, decision: str, send_back_to: str | None = None) -> str:
    """Where ``decision`` leads from ``from_status``. IllegalTransition (Chinese) when the table has
    no such move, or ``send_back_to`` is not a lower step of this application's route."""
    options = transitions(kind).get((from_status, decision))
    label = S(from_status).label if from_status in S.values else from_status
    dlabel = D(decision).label if decision in D.values else decision
    if not options:
        raise IllegalTransition(_("当前状态为“%(status)s”，不能“%(decision)s”") % {"status": label, "decision": dlabel})
    if decision == D.SEND_BACK:
        if send_back_to not in options:
            names = pgettext("列举分隔", "、").join(str(S(o).label) for o in options)
            raise IllegalTransition(_("只能发回到本环节之前的环节：%(steps)s") % {"steps": names})
        return send_back_to
    return options[0]
