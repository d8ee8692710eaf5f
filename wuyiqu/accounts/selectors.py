"""Reads of accounts: whether a sign-in is refused for now because of recent failures.

Two limits over a sliding window of 15 minutes: 5 failures for one user name lock that name (the
person, or someone guessing their password, waits), and 20 failures from one client address throttle
that address (someone trying many names). Attempts refused by a lock are not counted, so a lock lasts
at most the window after the failure that set it; an administrator lifts it early with
`wuyiqu unlock-login`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import LoginFailure

FAILURES_PER_USERNAME = 5
FAILURES_PER_IP = 20
FAILURE_WINDOW = dt.timedelta(minutes=15)


def normalise_username(username: str | None) -> str:
    """The key failures are counted under: ``Alice`` and ``alice `` are one name to the lock."""
    return (username or "").strip().lower()[:150]


@dataclass(frozen=True)
class LoginRefusal:
    """Why sign-ins are refused and until when (aware datetime: the first moment one is accepted)."""

    by: str  # "username" or "ip"
    until: dt.datetime

    def message(self, now: dt.datetime | None = None) -> str:
        now = now or timezone.now()
        local = timezone.localtime(self.until)
        when = f"{local:%H:%M}" if local.date() == timezone.localtime(now).date() else f"{local:%Y-%m-%d %H:%M}"
        if self.by == "username":
            return _("该账号登录失败次数过多，已暂时锁定。请于 %(when)s 后再试，或请系统管理员解锁。") % {"when": when}
        return _("此网络地址登录失败次数过多，请于 %(when)s 后再试。") % {"when": when}

    def retry_after(self, now: dt.datetime | None = None) -> int:
        """Whole seconds until ``until`` (for the Retry-After header), at least 1."""
        return max(1, int((self.until - (now or timezone.now())).total_seconds() + 0.999))


def _until(failures: list[dt.datetime], limit: int) -> dt.datetime | None:
    # ``failures`` are the most recent ones in the window, newest first. With ``limit`` of them, sign-ins
    # are refused until the oldest of those leaves the window: then fewer than ``limit`` remain.
    return failures[limit - 1] + FAILURE_WINDOW if len(failures) >= limit else None


def login_refusal(*, username: str | None, ip: str | None, now: dt.datetime | None = None) -> LoginRefusal | None:
    """The refusal in force for a sign-in as ``username`` from ``ip``, or None when it may be tried.
    When both limits are reached, the one lasting longer."""
    now = now or timezone.now()
    since = now - FAILURE_WINDOW
    refusals = []
    key = normalise_username(username)
    if key:
        recent = list(LoginFailure.objects.filter(username=key, at__gt=since).order_by("-at")
                      .values_list("at", flat=True)[:FAILURES_PER_USERNAME])
        if until := _until(recent, FAILURES_PER_USERNAME):
            refusals.append(LoginRefusal("username", until))
    if ip:
        recent = list(LoginFailure.objects.filter(ip=ip, at__gt=since).order_by("-at")
                      .values_list("at", flat=True)[:FAILURES_PER_IP])
        if until := _until(recent, FAILURES_PER_IP):
            refusals.append(LoginRefusal("ip", until))
    return max(refusals, key=lambda r: r.until, default=None)


def locked_usernames(now: dt.datetime | None = None) -> list[tuple[str, dt.datetime]]:
    """(user name, locked until) of every name locked now, for `wuyiqu unlock-login list`."""
    now = now or timezone.now()
    # One query finds the names at the limit (few); each one's end of lock is then one more.
    names = (LoginFailure.objects.filter(at__gt=now - FAILURE_WINDOW).values("username")
             .annotate(n=Count("id")).filter(n__gte=FAILURES_PER_USERNAME)
             .order_by("username").values_list("username", flat=True))
    out = []
    for name in names:
        refusal = login_refusal(username=name, ip=None, now=now)
        if refusal is not None:
            out.append((name, refusal.until))
    return out


# --- accounts a manager looks after (wuyiqu.accounts.permissions) -------------------------------------

def manageable_accounts(user, *, query: str = "", role: str = "", active: str = ""):
    """The accounts ``user`` may manage (roles they may give, units in their scope; never their own),
    filtered by a name/user-name ``query``, a ``role`` and ``active`` ("yes"/"no"), ordered by unit."""
    from django.db.models import Q

    from wuyiqu.units.selectors import scope_path

    from .models import User
    from .permissions import assignable_roles

    roles = assignable_roles(user)
    scope = scope_path(user)
    if not roles or scope is None:
        return User.objects.none()
    qs = User.objects.filter(role__in=roles).exclude(pk=user.pk).select_related("unit")
    if scope != "/":
        qs = qs.filter(unit__path__startswith=scope)
    if query:
        qs = qs.filter(Q(username__icontains=query) | Q(display_name__icontains=query) | Q(unit__name__icontains=query)
                       | Q(unit__code=query))
    if role in roles:
        qs = qs.filter(role=role)
    if active in ("yes", "no"):
        qs = qs.filter(is_active=active == "yes")
    return qs.order_by("unit__path", "role", "username")


def access_account_by_id(user, account_id: int):
    """The account ``account_id`` if ``user`` may manage it; Http404 otherwise (missing and forbidden alike)."""
    from django.http import Http404

    account = manageable_accounts(user).filter(pk=account_id).first()
    if account is None:
        raise Http404("account")
    return account


def pending_password_sheets(user) -> list[tuple[int, str, int]]:
    """(job id, file name, number of passwords) of the imports ``user`` ran whose one-time passwords
    they have not taken yet, newest first."""
    import json

    from wuyiqu.lib import crypto

    from .models import PasswordSheet

    jobs: dict[int, list] = {}
    for sheet in PasswordSheet.objects.filter(owner=user).select_related("job").order_by("-job_id", "id"):
        entry = jobs.setdefault(sheet.job_id, [sheet.job_id, sheet.job.filename, 0])
        entry[2] += len(json.loads(crypto.cipher().decrypt(sheet.content_enc)))
    return [tuple(e) for e in jobs.values()]
