"""The audit viewer's reads: who looked at or changed whose data, in the viewer's scope.

Administrators see every row; district users (health commission, command) and street staff see the rows
about their scope: the row's unit is in it, or the person who acted belongs to it. The filters are those
of the page (user, person, unit, action, date); the person filter takes a whole ID number (found by its
keyed hash, never stored) or a resident's name, and only finds residents in the viewer's scope.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from wuyiqu.accounts.models import Role
from wuyiqu.lib import crypto
from wuyiqu.units.models import Resident, Unit
from wuyiqu.units.selectors import scope_path

from .models import AuditEvent

# Who may open the viewer (SPEC §1: the administrator, the district, the street; each in their scope).
VIEWER_ROLES = frozenset({Role.ADMIN, Role.HEALTH_COMMISSION, Role.COMMAND, Role.STREET_STAFF})

RESIDENT_TYPE = Resident._meta.label_lower


def can_view_audit(user) -> bool:
    return bool(user.is_authenticated) and (user.role in VIEWER_ROLES or user.is_superuser)


def stands_out(action: str) -> bool:
    """A look at whole numbers, a refused look or a refusal that could answer "is this person
    registered elsewhere" (issue 14; a residents import or form naming people registered outside the
    user's scope: ``units.cross_scope_probe``, and the daily cap reached: ``units.cross_scope_cap``):
    shown apart and counted at the top of the viewer."""
    return (action.endswith(".reveal") or "refus" in action or "denied" in action or "out_of_scope" in action
            or "cross_scope" in action)


def standing_out_q() -> Q:
    """``stands_out`` as a query condition (to count them over the whole filter, not one page)."""
    return (Q(action__endswith=".reveal") | Q(action__contains="refus") | Q(action__contains="denied")
            | Q(action__contains="out_of_scope") | Q(action__contains="cross_scope"))


@dataclass
class AuditFilter:
    user: str = ""  # username (exact) or part of a display name
    person: str = ""  # a whole ID number, or a resident's name
    unit: str = ""  # a unit code: that unit and everything below it
    action: str = ""  # exact action, or a prefix ending with "." ("resident.")
    since: dt.date | None = None
    until: dt.date | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.user or self.person or self.unit or self.action or self.since or self.until)


def audit_events(viewer, f: AuditFilter) -> QuerySet[AuditEvent]:
    """The rows ``viewer`` may see that match ``f``, newest first. PermissionDenied for a role that may
    not open the viewer; an unknown unit or person in ``f`` gives no rows (not an error that would say
    whether it exists out of scope)."""
    if not can_view_audit(viewer):
        raise PermissionDenied(_("只有系统管理员、区和街道用户可以查看审计日志"))
    prefix = scope_path(viewer)
    if prefix is None:
        return AuditEvent.objects.none()
    qs = AuditEvent.objects.select_related("actor", "actor__unit", "unit")
    if prefix != "/":
        qs = qs.filter(Q(unit__path__startswith=prefix) | Q(actor__unit__path__startswith=prefix))
    if f.user:
        qs = qs.filter(Q(actor__username=f.user) | Q(actor__display_name__contains=f.user))
    if f.unit:
        unit = Unit.objects.filter(code=f.unit).first()
        if unit is None:
            return AuditEvent.objects.none()
        qs = qs.filter(Q(unit__path__startswith=unit.path) | Q(actor__unit__path__startswith=unit.path))
    if f.action:
        qs = qs.filter(action__startswith=f.action) if f.action.endswith(".") else qs.filter(action=f.action)
    if f.since:
        qs = qs.filter(at__gte=_midnight(f.since))
    if f.until:
        qs = qs.filter(at__lt=_midnight(f.until + dt.timedelta(days=1)))
    if f.person:
        ids = _residents_named(viewer, f.person.strip())
        qs = qs.filter(target_type=RESIDENT_TYPE, target_id__in=[str(pk) for pk in ids])
    return qs.order_by("-at", "-id")


def _midnight(day: dt.date) -> dt.datetime:
    """The start of ``day`` in Asia/Shanghai (the dates of the filter are local days)."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _residents_named(viewer, text: str) -> list[int]:
    """Residents in ``viewer``'s scope with this whole ID number (by keyed hash) or this name."""
    prefix = scope_path(viewer)
    residents = Resident.objects.all() if prefix == "/" else Resident.objects.filter(
        household__unit__path__startswith=prefix)
    if len(text) == 18:
        return list(residents.filter(id_hash=crypto.cipher().lookup_hash(text)).values_list("pk", flat=True))
    return list(residents.filter(name=text).values_list("pk", flat=True)[:200])


def residents_by_id(ids: set[str]) -> dict[str, Resident]:
    """The residents the shown rows are about (one query), to name them masked."""
    pks = [int(i) for i in ids if i.isdigit()]
    return {str(r.pk): r for r in Resident.objects.filter(pk__in=pks).only("pk", "name", "id_masked")}


def action_names(viewer) -> list[str]:
    """The actions of the rows ``viewer`` may see (for the filter's list)."""
    return list(audit_events(viewer, AuditFilter()).order_by("action").values_list("action", flat=True).distinct())
