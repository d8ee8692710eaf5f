"""Who may manage whose account (SPEC §1): administrators, the district (health commission, command),
street and community staff create and look after the accounts of the roles below them, inside their
own scope. Nobody manages their own account here (everyone changes their own password on their page),
nor a colleague of the same rank.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from wuyiqu.units.models import UnitKind

from .models import Role

_BELOW_STREET = (Role.COMMUNITY_STAFF, Role.PROPERTY_MANAGER, Role.BUILDING_HEAD, Role.GROUP_LEADER)

# The roles each manager role may give (and whose accounts it may manage).
ASSIGNABLE_ROLES: dict[str, tuple[str, ...]] = {
    Role.ADMIN: tuple(Role.values),
    Role.COMMAND: (Role.STREET_STAFF, *_BELOW_STREET),
    Role.HEALTH_COMMISSION: (Role.STREET_STAFF, *_BELOW_STREET),
    Role.STREET_STAFF: _BELOW_STREET,
    Role.COMMUNITY_STAFF: (Role.PROPERTY_MANAGER, Role.BUILDING_HEAD, Role.GROUP_LEADER),
}

# The kind of unit an account of each role belongs to (an administrator: any unit, or none).
ROLE_UNIT_KINDS: dict[str, tuple[str, ...]] = {
    Role.BUILDING_HEAD: (UnitKind.BUILDING, UnitKind.ENTRANCE),
    Role.GROUP_LEADER: (UnitKind.GROUP,),
    Role.PROPERTY_MANAGER: (UnitKind.COMPOUND,),
    Role.COMMUNITY_STAFF: (UnitKind.COMMUNITY, UnitKind.VILLAGE),
    Role.STREET_STAFF: (UnitKind.STREET,),
    Role.HEALTH_COMMISSION: (UnitKind.DISTRICT,),
    Role.COMMAND: (UnitKind.DISTRICT,),
}


class AccountRefused(ValueError):
    """An account change this person may not make, or bad input; the message is Chinese and names the field."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def assignable_roles(user) -> tuple[str, ...]:
    if not user.is_authenticated or not user.is_active:
        return ()
    if user.is_superuser:
        return tuple(Role.values)
    return ASSIGNABLE_ROLES.get(user.role, ())


def may_manage_accounts(user) -> bool:
    """True when ``user`` may open 账号管理 at all."""
    return bool(assignable_roles(user))


def _scope(user) -> str | None:
    from wuyiqu.units.selectors import scope_path

    return scope_path(user)


def check_assignment(actor, *, role: str, unit) -> None:
    """Refuses (AccountRefused naming the field) giving ``role`` at ``unit``: a role the actor may not give,
    a unit outside the actor's scope, or a unit of the wrong kind for the role. ``actor`` None is the
    shell (`wuyiqu user`, run by whoever administers the machine): any role anywhere, of the right kind."""
    if role not in Role.values:
        raise AccountRefused(_("未知角色：%(role)s") % {"role": role}, "role")
    if actor is None:
        if unit is None and role != Role.ADMIN:
            raise AccountRefused(_("除系统管理员外，每个账号都必须属于一个单位"), "unit")
        _check_kind(role, unit)
        return
    if role not in assignable_roles(actor):
        raise AccountRefused(_("您不能创建或管理“%(role)s”账号") % {"role": Role(role).label}, "role")
    scope = _scope(actor)
    if unit is None:
        if role != Role.ADMIN:
            raise AccountRefused(_("除系统管理员外，每个账号都必须属于一个单位"), "unit")
        if scope != "/":
            raise AccountRefused(_("只有不限单位的系统管理员才能创建不限单位的账号"), "unit")
        return
    if scope is None or not unit.path.startswith(scope):
        raise AccountRefused(_("单位“%(unit)s”不在您的管辖范围内") % {"unit": unit.code}, "unit")
    _check_kind(role, unit)


def _check_kind(role: str, unit) -> None:
    kinds = ROLE_UNIT_KINDS.get(role)
    if unit is not None and kinds is not None and unit.kind not in kinds:
        raise AccountRefused(
            _("“%(role)s”账号应属于%(kinds)s，“%(unit)s”是%(kind)s") % {
                "role": Role(role).label, "kinds": "、".join(str(UnitKind(k).label) for k in kinds),
                "unit": unit.display_name, "kind": unit.level_label},
            "unit")


def may_manage(actor, account) -> bool:
    """True when ``actor`` may edit, deactivate, reset or unlock ``account`` (``actor`` None: the shell)."""
    if actor is None:
        return True
    if account.pk == actor.pk or account.role not in assignable_roles(actor):
        return False
    scope = _scope(actor)
    if scope is None:
        return False
    if account.unit_id is None:
        return scope == "/"
    return account.unit.path.startswith(scope)
