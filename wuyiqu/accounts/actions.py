"""Writes to accounts."""

from __future__ import annotations

import datetime as dt
import secrets

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from wuyiqu.audit import actions as audit
from wuyiqu.lib import crypto

from .models import LoginFailure, Role, User
from .permissions import AccountRefused, check_assignment, may_manage
from .selectors import LoginRefusal, login_refusal, normalise_username

# Failures older than this are of no use to the lock (15 minutes); they are deleted as new ones come in.
KEEP_FAILURES = dt.timedelta(days=1)


@transaction.atomic
def do_create_user(*, actor, username: str, password: str, role: str, unit, display_name: str = "",
                   phone: str = "", must_change_password: bool = False) -> User:
    """Create an account scoped to ``unit``. Refuses (ValueError, Chinese) an unknown role, a missing scope
    or a password the validators refuse (too short, too common, all digits, like the user name).
    Who may give which role where is ``do_create_account``'s business (the pages, the import, the CLI)."""
    if role not in Role.values:
        raise ValueError(_("未知角色：%(role)s") % {"role": role})
    if unit is None and role != Role.ADMIN:
        raise ValueError(_("除系统管理员外，每个账号都必须属于一个单位"))
    user = User(username=username, role=role, unit=unit, display_name=display_name,
                is_staff=role == Role.ADMIN, must_change_password=must_change_password)
    user.set_phone(phone)
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


# --- accounts managed by the people above them (SPEC §1; wuyiqu.accounts.permissions) ------------------

# No 0/o, 1/l/i: the password is read off a screen and typed on a phone.
_OTP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def one_time_password() -> str:
    """A fresh password for someone else to pass on (three groups of four, e.g. ``k7mq-2xrb-9fht``):
    about 64 bits, shown once and never stored in clear; the person must change it at the next sign-in."""
    return "-".join("".join(secrets.choice(_OTP_ALPHABET) for _ in range(4)) for _ in range(3))


def clean_phone(phone: str) -> str:
    """The phone as stored (digits, a landline's dashes), "" when empty; AccountRefused when malformed."""
    from wuyiqu.imports.fields import phone_value
    from wuyiqu.imports.registry import RowError

    try:
        return phone_value({"phone": (phone or "").strip()})
    except RowError as exc:
        raise AccountRefused(exc.message, "phone") from None


def clean_username(username: str) -> str:
    """The user name, checked: Django's rule (letters, digits and @.+-_), and no account of the same name
    in other letter case (the sign-in lock counts names case-blind)."""
    username = (username or "").strip()
    if not username:
        raise AccountRefused(_("用户名不能为空"), "username")
    try:
        User.username_validator(username)
    except ValidationError:
        raise AccountRefused(_("用户名“%(u)s”只能包含字母、数字和 @ . + - _") % {"u": username}, "username") from None
    if len(username) > 150:
        raise AccountRefused(_("用户名过长（最多150个字符）"), "username")
    if User.objects.filter(username__iexact=username).exists():
        raise AccountRefused(_("用户名“%(u)s”已被使用") % {"u": username}, "username")
    return username


@transaction.atomic
def do_create_account(*, actor, username: str, display_name: str, role: str, unit, phone: str = "") -> tuple[User, str]:
    """Create an account for someone below ``actor`` (a role ``actor`` may give, at a unit in ``actor``'s
    scope of the kind the role belongs to) with a one-time password. Returns (account, the password, to
    be shown once). Refuses with AccountRefused naming the field."""
    check_assignment(actor, role=role, unit=unit)
    username = clean_username(username)
    display_name = (display_name or "").strip()
    if not display_name:
        raise AccountRefused(_("姓名不能为空"), "display_name")
    password = one_time_password()
    user = do_create_user(actor=actor, username=username, password=password, role=role, unit=unit,
                          display_name=display_name[:50], phone=clean_phone(phone), must_change_password=True)
    return user, password


def _locked_account(actor, account: User) -> User:
    # Two managers may act on one account at once (one deactivates it while the other resets it): lock
    # the row so each decision reads the other's result, and check the right again on the locked row.
    account = User.objects.select_for_update(of=("self",)).select_related("unit").get(pk=account.pk)
    if not may_manage(actor, account):
        raise AccountRefused(_("您不能管理此账号"))
    return account


@transaction.atomic
def do_update_account(*, actor, account: User, display_name: str, phone: str | None, role: str, unit) -> User:
    """Change an account's name, phone (None: leave as it is), role and unit. The new role and unit must be
    ones ``actor`` may give. Returns the account; AccountRefused naming the field otherwise."""
    account = _locked_account(actor, account)
    check_assignment(actor, role=role, unit=unit)
    display_name = (display_name or "").strip()
    if not display_name:
        raise AccountRefused(_("姓名不能为空"), "display_name")
    changed = []
    if display_name[:50] != account.display_name:
        account.display_name = display_name[:50]
        changed.append("display_name")
    if phone is not None:
        phone = clean_phone(phone)
        c = crypto.cipher()
        # A phone under a retired key (after `wuyiqu rotate-keys`, which covers residents) is not
        # decrypted: it is written again under the current key.
        old = c.decrypt(account.phone_enc) if account.phone_enc and c.is_current(account.phone_enc) else None
        if phone != old and (phone or account.phone_enc):
            account.set_phone(phone)
            changed += ["phone_enc", "phone_masked"]
    before = {"role": account.role, "unit": account.unit.code if account.unit else None}
    if role != account.role:
        account.role = role
        account.is_staff = role == Role.ADMIN
        changed += ["role", "is_staff"]
    if (unit.pk if unit else None) != account.unit_id:
        account.unit = unit
        changed.append("unit")
    if changed:
        account.save(update_fields=changed)
        audit.record(actor=actor, action="accounts.update_user", target=account, unit=account.unit,
                     detail={"username": account.username, "fields": sorted({f.removesuffix("_enc").removesuffix("_masked")
                                                                             for f in changed} - {"is_staff"}),
                             "before": before, "role": account.role,
                             "unit": account.unit.code if account.unit else None})
    return account


@transaction.atomic
def do_deactivate_account(*, actor, account: User, reason: str = "") -> User:
    """Stop the account from signing in (its sessions end at their next request). The account and
    everything it did stay, for the audit; it can be reactivated."""
    account = _locked_account(actor, account)
    if account.is_active:
        account.is_active = False
        account.save(update_fields=["is_active"])
        audit.record(actor=actor, action="accounts.deactivate_user", target=account, unit=account.unit,
                     detail={"username": account.username, "reason": (reason or "").strip()[:500]})
    return account


@transaction.atomic
def do_reactivate_account(*, actor, account: User) -> User:
    account = _locked_account(actor, account)
    if not account.is_active:
        account.is_active = True
        account.save(update_fields=["is_active"])
        audit.record(actor=actor, action="accounts.reactivate_user", target=account, unit=account.unit,
                     detail={"username": account.username})
    return account


@transaction.atomic
def do_reset_password(*, actor, account: User) -> str:
    """Give the account a new one-time password (returned, to be shown once) that must be changed at the
    next sign-in. The old password stops working and the account's open sessions end (Django ties a
    session to the password)."""
    account = _locked_account(actor, account)
    password = one_time_password()
    account.set_password(password)
    account.must_change_password = True
    account.save(update_fields=["password", "must_change_password"])
    audit.record(actor=actor, action="accounts.reset_password", target=account, unit=account.unit,
                 detail={"username": account.username})
    return password


@transaction.atomic
def do_change_own_password(*, user: User, password: str) -> None:
    """The person's own new password (the caller checked the old one): Django's validators apply; the
    duty to change it is lifted. ValueError (Chinese) when the validators refuse it."""
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ValueError(pgettext("分句分隔", "；").join(exc.messages)) from None
    user.set_password(password)
    user.must_change_password = False
    user.save(update_fields=["password", "must_change_password"])
    audit.record(actor=user, action="accounts.change_password", target=user, unit=user.unit)


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


@transaction.atomic
def do_take_password_sheet(*, actor, job) -> list[list[str]]:
    """The one-time passwords of the accounts the import ``job`` created, for the person who ran it
    (``actor`` None: the console's imports): [[username, name, unit code, password], …], then deleted,
    so they can be taken only once. Audited (without the passwords). Empty when there are none (left)."""
    import json

    from .models import PasswordSheet

    # Two tabs taking the same sheet at once: lock its rows, so one gets the passwords and the other none.
    sheets = list(PasswordSheet.objects.select_for_update().filter(job=job, owner=actor).order_by("id"))
    rows = [row for sheet in sheets for row in json.loads(crypto.cipher().decrypt(sheet.content_enc))]
    if sheets:
        PasswordSheet.objects.filter(pk__in=[s.pk for s in sheets]).delete()
        audit.record(actor=actor, action="accounts.take_password_sheet", target=job, unit=job.scope,
                     detail={"job": job.pk, "accounts": [r[0] for r in rows]})
    return rows
