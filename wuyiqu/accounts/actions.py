"""Writes to accounts."""

from __future__ import annotations

from django.db import transaction

from wuyiqu.audit import actions as audit

from .models import Role, User


@transaction.atomic
def do_create_user(*, actor, username: str, password: str, role: str, unit, display_name: str = "") -> User:
    """Create an account scoped to ``unit``. Refuses an unknown role or a missing scope."""
    if role not in Role.values:
        raise ValueError(f"未知角色：{role}")
    if unit is None and role != Role.ADMIN:
        raise ValueError("除系统管理员外，每个账号都必须属于一个单位")
    user = User(username=username, role=role, unit=unit, display_name=display_name,
                is_staff=role == Role.ADMIN)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    audit.record(actor=actor, action="accounts.create_user", target=user, unit=unit,
                 detail={"username": username, "role": role})
    return user
