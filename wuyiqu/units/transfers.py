"""Moves across scopes: a scoped residents import naming a person registered outside its scope
(issue 14, item 5; docs/imports.md "Scope").

Until issue 14 such a row was refused with "该居民现登记的户不在您的管辖范围内", which told a community
whether any ID number was registered elsewhere: one 999-row upload (a county, a birth date, every
sequence number) returned two numbers of another community and wrote nothing. Now:

- the row is not refused and the person is not moved: it becomes a ``TransferRequest`` for a user
  whose scope covers both households (community staff when both lie in their community, else the
  street or the health commission above both), who approves (the move is made by
  ``units.actions.move_residents``, as the import and the move form make one, and the named units of
  both homes are re-checked) or refuses it on ``/transfers/``; every step audited;
- the importer is answered as for a number new to the register (the row counts as created, or as
  unchanged when the same row comes again while its request waits: ``asked_already``; one sentence
  in every scoped import's summary, whatever it names), and such rows are counted per user and day (``CrossScopeHits``): past ``PER_DAY`` every residents import and
  resident form of the user is refused for the rest of the day, whatever it names (a refusal only of
  rows naming people registered elsewhere would answer the question), with a message naming no row,
  and the street above the user is alerted once that day. Audit actions: ``units.cross_scope_probe`` (every
  counted batch: how many such rows, the day's total, the cap), ``units.cross_scope_cap`` (the cap
  reached: the alert), ``units.transfer_request``, ``units.approve_transfer``, ``units.refuse_transfer``.

``request_transfers`` is the one place that turns such rows into requests; a move that finds its
person registered outside the mover's scope calls it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.http import Http404
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from wuyiqu.audit import actions as audit
from wuyiqu.lib import dates

from .actions import Move, move_residents
from .models import CrossScopeHits, Household, Resident, TransferRequest, TransferStatus, Unit
from .residence import move_problem

PER_DAY = 10  # rows naming a person registered elsewhere, per user and day (Asia/Shanghai)
DECIDER_ROLES = ("community_staff", "street_staff", "health_commission")
ALERT_ROLES = ("street_staff",)


class TransferRefused(ValueError):
    """A decision that cannot be made; ``message`` is Chinese."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def common_path(a: str, b: str) -> str:
    """The path of the deepest unit above (or equal to) both units of paths ``a`` and ``b``."""
    shared = []
    for x, y in zip(a.strip("/").split("/"), b.strip("/").split("/"), strict=False):
        if x != y:
            break
        shared.append(x)
    return "/" + "".join(p + "/" for p in shared)


def _ancestor_paths(path: str) -> list[str]:
    parts = [p for p in path.strip("/").split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


# --- counting and the cap ---------------------------------------------------------------------------

@transaction.atomic
def count_cross_scope(*, actor, scope: Unit, hits: int) -> bool:
    """Count ``hits`` rows of ``actor`` naming people registered outside ``scope`` today; one audit
    row (``units.cross_scope_probe``). Returns whether the day's total is still within ``PER_DAY``.
    The batch that first goes past it alerts the street above the actor (``units.cross_scope_cap``).
    Committed at once, whatever becomes of the import: a refused probe is still a probe."""
    if actor is None or not getattr(actor, "is_authenticated", False) or hits <= 0:
        return True
    today = dates.today()
    row, _created = CrossScopeHits.objects.select_for_update().get_or_create(user=actor, day=today)
    before = row.hits
    CrossScopeHits.objects.filter(pk=row.pk).update(hits=F("hits") + hits)
    total = before + hits
    audit.record(actor=actor, action="units.cross_scope_probe", unit=scope,
                 detail={"rows": hits, "today": total, "cap": PER_DAY, "refused": total > PER_DAY})
    if before <= PER_DAY < total:
        _alert_street(actor, scope, total)
    return total <= PER_DAY


def over_cap(actor) -> bool:
    """Whether ``actor`` went past ``PER_DAY`` today: then every residents row of theirs is refused
    until tomorrow (a refusal only of the rows naming people registered elsewhere would tell which)."""
    if actor is None or not getattr(actor, "is_authenticated", False):
        return False
    return CrossScopeHits.objects.filter(user=actor, day=dates.today(), hits__gt=PER_DAY).exists()


def _alert_street(actor, scope: Unit, total: int) -> None:
    from django.urls import reverse

    from wuyiqu.accounts.models import User
    from wuyiqu.notifications.actions import notify

    home = actor.unit.path if actor.unit_id else scope.path
    users = User.objects.filter(role__in=ALERT_ROLES, is_active=True, unit__path__in=_ancestor_paths(home))
    audit.record(actor=actor, action="units.cross_scope_cap", unit=scope,
                 detail={"today": total, "cap": PER_DAY, "told": sorted(u.username for u in users)})
    with translation.override(settings.LANGUAGE_CODE):  # the stored parameters: Chinese whoever acted
        scope_name = str(scope.display_name)
    notify(users, template="units.cross_scope_cap", params={
        "who": actor.display_name or actor.username, "scope": scope_name, "n": total, "cap": PER_DAY},
        link=reverse("web:transfers"))


def refusal_message() -> str:
    """The whole import's refusal past the cap: names no row, so it tells nothing about any one number."""
    return _("您今天导入或登记的居民中涉及其他辖区已登记人员的次数已超过每日上限（%(n)d次），今天不能再导入或登记居民，"
             "本次未写入任何数据，已通知街道。如确有居民迁入，请联系街道办理。") % {"n": PER_DAY}


# --- requests ----------------------------------------------------------------------------------------

def asked_already(hashes: set[str], *, actor) -> set[tuple[str, str]]:
    """(ID lookup hash, household code) of the pending requests ``actor`` made already for the people of
    ``hashes``: the same row imported again is answered "unchanged" and not counted again, as the same
    row about a person new to the register would be (no existence oracle)."""
    from . import directory

    if not hashes or not getattr(actor, "is_authenticated", False):
        return set()
    # The people through the directory, then the requests (a table of the coordinator on Citus), then
    # their households: three plain reads, where one join of the three was refused on Citus.
    number_of = {pk: h for h, pk in directory.resident_values(hashes, "pk")}
    asked = list(TransferRequest.objects.filter(resident_id__in=list(number_of), requested_by=actor,
                                                status=TransferStatus.PENDING)
                 .values_list("resident_id", "to_household_id"))
    codes = dict(Household.objects.filter(pk__in={hh for _r, hh in asked}).values_list("pk", "code"))
    return {(number_of[rid], codes[hh]) for rid, hh in asked}


def request_transfers(rows: Sequence[tuple[int, int, dt.date | None]], *, actor, scope: Unit | None) -> int:
    """Turn (resident id, household id to move into, moved_on) rows into pending TransferRequests, in
    the caller's transaction; a person with a pending request keeps it (the first one). Tells the users
    who may decide and writes one audit row (``units.transfer_request``). Returns how many were made."""
    if not rows:
        return 0
    ids = [rid for rid, _hh, _on in rows]
    pending = set(TransferRequest.objects.filter(resident_id__in=ids, status=TransferStatus.PENDING)
                  .values_list("resident_id", flat=True))
    current = dict(Resident.objects.filter(pk__in=ids).values_list("pk", "household_id"))
    made = [TransferRequest(resident_id=rid, from_household_id=current[rid], to_household_id=hh, moved_on=on,
                            requested_by=actor if getattr(actor, "is_authenticated", False) else None)
            for rid, hh, on in dict.fromkeys(rows) if rid not in pending and current.get(rid) not in (None, hh)]
    TransferRequest.objects.bulk_create(made)
    if made:
        audit.record(actor=actor, action="units.transfer_request", unit=scope,
                     detail={"requests": len(made), "already_pending": len(pending)})
        _tell_deciders(made)
    return len(made)


def _tell_deciders(made: list[TransferRequest]) -> None:
    from django.urls import reverse

    from wuyiqu.accounts.models import User
    from wuyiqu.notifications.actions import notify

    paths = dict(Household.objects.filter(pk__in={r.from_household_id for r in made} | {r.to_household_id for r in made})
                 .values_list("pk", "unit__path"))
    per_common: dict[str, int] = {}
    for r in made:
        common = common_path(paths[r.from_household_id], paths[r.to_household_id])
        per_common[common] = per_common.get(common, 0) + 1
    told = []
    for user in User.objects.filter(role__in=DECIDER_ROLES, is_active=True, unit__isnull=False).select_related("unit"):
        n = sum(c for path, c in per_common.items() if path.startswith(user.unit.path))
        if n:
            told.append((user, n))
    with translation.override(settings.LANGUAGE_CODE):
        for user, n in told:
            notify([user], template="units.transfers_waiting", params={"n": n}, link=reverse("web:transfers"))


# --- deciding ----------------------------------------------------------------------------------------

def transfers_for(user) -> QuerySet[TransferRequest]:
    """Pending requests ``user`` may decide: ``DECIDER_ROLES`` (or an unscoped administrator) whose
    scope holds both households; nothing for anyone else. Oldest first."""
    from .selectors import scope_path

    prefix = scope_path(user)
    if prefix is None or not (user.role in DECIDER_ROLES or prefix == "/"):
        return TransferRequest.objects.none()
    qs = (TransferRequest.objects.filter(status=TransferStatus.PENDING)
          .select_related("resident", "from_household__unit", "to_household__unit", "requested_by")
          .order_by("requested_at", "id"))
    if prefix == "/":
        return qs
    return qs.filter(from_household__unit__path__startswith=prefix, to_household__unit__path__startswith=prefix)


def access_transfer(user, transfer_id: int) -> TransferRequest:
    """A pending request ``user`` may decide; Http404 otherwise (missing and forbidden alike)."""
    try:
        return transfers_for(user).get(pk=transfer_id)
    except TransferRequest.DoesNotExist:
        raise Http404("transfer") from None


@transaction.atomic
def do_decide_transfer(request: TransferRequest, *, actor, approve: bool, reason: str = "") -> TransferRequest:
    """Approve (move the person into the requested household from ``moved_on``, or today, and re-check
    the named units of both homes at once) or refuse (reason required) a transfer request. Refuses
    (TransferRefused) a request decided already, one the actor's scope does not cover on both sides,
    and a move the person's history does not allow (they moved since, or the day lies before their
    last move). One audit row; returns the decided request."""
    from wuyiqu.supervision.services import recheck_after_facts

    # The race: two deciders at once, or a decision racing another move of the same person.
    req = TransferRequest.objects.select_for_update().get(pk=request.pk)
    if req.status != TransferStatus.PENDING:
        raise TransferRefused(_("该申请已处理"))
    if not transfers_for(actor).filter(pk=req.pk).exists():
        raise TransferRefused(_("您的管辖范围未同时覆盖迁出户和迁入户"))
    reason = (reason or "").strip()
    if not approve and not reason:
        raise TransferRefused(_("请填写不同意的原因"))
    if len(reason) > 200:
        raise TransferRefused(_("原因不能超过200字"))
    district = Resident.objects.filter(pk=req.resident_id).values_list("district_code", flat=True).first()
    resident = Resident.objects.select_for_update().get(district_code=district, pk=req.resident_id)  # one shard
    from_hh = Household.objects.select_related("unit").get(pk=req.from_household_id)
    to_hh = Household.objects.select_related("unit").get(pk=req.to_household_id)
    moved_on = req.moved_on or dates.today()
    moved_units: set[int] = set()
    if approve:
        if resident.household_id != req.from_household_id:
            raise TransferRefused(_("该居民已迁往其他户，本申请不再适用"))
        problem = move_problem(last_moved_on=resident.moved_on, moved_on=moved_on, today=dates.today(),
                               born_on=resident.born_on())
        if problem:
            raise TransferRefused(problem)
        # The move itself is the residents import's and the move form's (units.actions.move_residents).
        moved_units = move_residents([Move(resident.pk, from_hh.pk, resident.moved_on, to_hh.pk, moved_on)])
    req.status = TransferStatus.APPROVED if approve else TransferStatus.REFUSED
    req.decided_by, req.decided_at, req.reason = actor, timezone.now(), reason
    req.save(update_fields=["status", "decided_by", "decided_at", "reason"])
    common = Unit.objects.filter(path=common_path(from_hh.unit.path, to_hh.unit.path)).first()
    audit.record(actor=actor, action="units.approve_transfer" if approve else "units.refuse_transfer",
                 target=req, unit=common,
                 detail={"resident": resident.pk, "from_household": from_hh.code, "to_household": to_hh.code,
                         "moved_on": moved_on.isoformat(), "reason": reason,
                         "requested_by": req.requested_by.username if req.requested_by else ""})
    if approve:
        recheck_after_facts(moved_units, actor=actor, source="units.approve_transfer")
    return req
