"""Writes to accounts."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from wuyiqu.audit import actions as audit

from .models import LoginFailure, Role, User
from .selectors import LoginRefusal, login_refusal, normalise_username

# Failures older than this are of no use to the lock (15 minutes); they are deleted as new ones come in.
KEEP_FAILURES = dt.timedelta(days=1)


@transaction.atomic
def do_create_user(*, actor, username: str, password: str, role: str, unit, display_name: str = "") -> User:
    """Create an account scoped to ``unit``. Refuses (ValueError, Chinese) an unknown role, a missing scope
    or a password the validators refuse (too short, too common, all digits, like the user name)."""
    if role not in Role.values:
        raise ValueError(_("未知角色：%(role)s") % {"role": role})
    if unit is None and role != Role.ADMIN:
        raise ValueError(_("除系统管理员外，每个账号都必须属于一个单位"))
    user = User(username=username, role=role, unit=unit, display_name=display_name,
                is_staff=role == Role.ADMIN)
    try:
        password_validation.validate_password(password, user)  # AUTH_PASSWORD_VALIDATORS
    except ValidationError as exc:
        raise ValueError(_("密码不符合要求：%(reasons)s") % {"reasons": pgettext("分句分隔", "；").join(exc.messages)}) from None
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    audit.record(actor=actor, action="accounts.create_user", target=user, unit=unit,
                 detail={"username": username, "role": role})
    return user


def _account_named(username: str) -> User | None:
    return User.objects.filter(username=(username or "").strip()).first()


@transaction.atomic
def do_record_login_failure(*, username: str, ip: str | None, now: dt.datetime | None = None) -> LoginRefusal | None:
    """Keep one failed sign-in as ``username`` from ``ip`` (whether or not the account exists, so that
    the answer does not tell) and write its audit row. Returns the refusal this failure brought on when it
    reached a limit (the audit row then says until when), else None."""
    now = now or timezone.now()
    key = normalise_username(username)
    LoginFailure.objects.create(username=key, ip=ip, at=now)
    LoginFailure.objects.filter(at__lt=now - KEEP_FAILURES).delete()
    refusal = login_refusal(username=key, ip=ip, now=now)
    account = _account_named(username)
    audit.record(actor=None, action="accounts.login_failed", target=account, unit=account.unit if account else None,
                 detail={"username": key, "locked": refusal.by if refusal else None,
                         "until": refusal.until.isoformat() if refusal else None}, ip=ip)
    return refusal


@transaction.atomic
def do_record_login(*, user: User, ip: str | None) -> None:
    """A successful sign-in: audited, and the failures counted against the name are forgotten."""
    LoginFailure.objects.filter(username=normalise_username(user.get_username())).delete()
    audit.record(actor=user, action="accounts.login", target=user, unit=user.unit, ip=ip)


@transaction.atomic
def do_unlock_login(*, actor, username: str = "", ip: str = "") -> int:
    """Lift the lock on a user name and/or the throttle on a client address at once (an administrator's
    decision, audited). Returns how many recorded failures were cleared. Refuses (ValueError, Chinese)
    when given neither."""
    key = normalise_username(username)
    ip = (ip or "").strip()
    if not key and not ip:
        raise ValueError(_("请指定要解锁的用户名或网络地址"))
    if ip:
        try:
            validate_ipv46_address(ip)
        except ValidationError:
            raise ValueError(_("“%(ip)s”不是有效的网络地址") % {"ip": ip}) from None
    cleared = 0
    if key:
        cleared += LoginFailure.objects.filter(username=key).delete()[0]
    if ip:
        cleared += LoginFailure.objects.filter(ip=ip).delete()[0]
    account = _account_named(username) if key else None
    audit.record(actor=actor, action="accounts.unlock_login", target=account, unit=account.unit if account else None,
                 detail={"username": key, "ip": ip, "cleared": cleared})
    return cleared
