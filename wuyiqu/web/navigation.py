"""The links to the pages a signed-in person may use, per role, each in one list:

- ``NAV_ITEMS``: the page header (every page);
- ``UNIT_ITEMS``: the buttons of a unit page (the pages about that unit).

To add a page, add one item to the list (in the order it should appear): a key, a Chinese label and a
function that returns the URL, or None when this person may not use the page (or it does not apply to
the unit's kind). Only pages that answer the person are linked: a button that leads to a 404 or a 403
is a defect (the link crawler in tests/test_web_navigation.py follows every link of every role).
Keep the functions cheap: they run on every full page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from wuyiqu.dashboard.selectors import DASHBOARD_KINDS
from wuyiqu.units.models import TITLE_BY_KIND


class Viewer:
    """The signed-in person as the header sees them: the role and the unit their pages start from
    (their own unit; for an administrator without one, the root of the tree)."""

    def __init__(self, user):
        self.user = user

    @property
    def role(self) -> str:
        return self.user.role

    @cached_property
    def unit(self):
        if self.user.unit_id is not None:
            return self.user.unit
        from wuyiqu.units import selectors

        return selectors.visible_units(self.user).order_by("depth", "code").first()

    def is_one_of(self, *roles: str) -> bool:
        return self.role in roles or self.user.is_superuser


def _url(name: str, *args) -> str | None:
    """The URL of ``name``, or None when no such page is installed (another app's page may come later)."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _own_unit_page(name: str, kinds=None, suffix: str = "") -> Callable[[Viewer], str | None]:
    def url(viewer: Viewer) -> str | None:
        unit = viewer.unit
        if unit is None or (kinds is not None and unit.kind not in kinds):
            return None
        found = _url(name, unit.code)
        return found + suffix if found else None
    return url


def _reviewers(viewer: Viewer) -> str | None:
    from wuyiqu.applications.workflow import STEP_ROLE

    return _url("applications:queue") if viewer.role in STEP_ROLE.values() else None


def _transfer_deciders(viewer: Viewer) -> str | None:
    try:
        from wuyiqu.units.transfers import DECIDER_ROLES
    except ImportError:
        return None
    from wuyiqu.units.selectors import scope_path

    may = viewer.role in DECIDER_ROLES or scope_path(viewer.user) == "/"
    return _url("web:transfers") if may else None


def _held_facts_deciders(viewer: Viewer) -> str | None:
    try:
        from wuyiqu.health.selectors import may_decide_any
    except ImportError:  # the page belongs to the health app; absent, nothing to link
        return None
    return _url("health:held_facts") if may_decide_any(viewer.user) else None


def _importers(viewer: Viewer) -> str | None:
    from .permissions import can_import

    return _own_unit_page("web:import")(viewer) if can_import(viewer.user) else None


def _account_managers(viewer: Viewer) -> str | None:
    from wuyiqu.accounts.permissions import may_manage_accounts

    return _url("accounts:list") if may_manage_accounts(viewer.user) else None


def _cross_scope_deciders(viewer: Viewer) -> str | None:
    """The queue of cross-scope facts and transfer requests (health.held_facts links to both pages)."""
    from wuyiqu.units.transfers import DECIDER_ROLES

    return _url("health:held_facts") if viewer.is_one_of(*DECIDER_ROLES, "admin") else None


def _may_view_audit(user) -> bool:
    from wuyiqu.audit.selectors import can_view_audit

    return can_view_audit(user)


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    url: Callable[[Viewer], str | None]


NAV_ITEMS: list[NavItem] = [
    NavItem("home", _("首页"), lambda v: _url("web:home")),
    NavItem("queue", _("待办"), _reviewers),
    NavItem("cross_scope", _("跨辖区待确认"), _cross_scope_deciders),
    NavItem("applications", _("申请"), lambda v: _url("applications:index")),
    NavItem("dashboard", _("态势总览"), _own_unit_page("dashboard:unit", DASHBOARD_KINDS)),
    NavItem("reports", _("台账/周报"), _own_unit_page("dashboard:unit", DASHBOARD_KINDS, "#reports")),
    NavItem("history", _("监督记录"), _own_unit_page("supervision:history", tuple(TITLE_BY_KIND))),
    NavItem("import", _("导入"), _importers),
    NavItem("held_facts", _("待确认事实"), _held_facts_deciders),
    NavItem("transfers", _("跨辖区迁入申请"), _transfer_deciders),
    NavItem("notifications", _("通知"), lambda v: _url("notifications:inbox")),
    NavItem("search", _("搜索"), lambda v: _url("web:unit_search")),
    NavItem("accounts", _("账号管理"), _account_managers),
    NavItem("audit", _("审计日志"), lambda v: _url("audit:events") if _may_view_audit(v.user) else None),
    NavItem("password", _("修改密码"), lambda v: _url("accounts:password")),
]


def _unit_page(name: str, *, kinds=None, allowed: Callable[[object], bool] | None = None):
    """A unit's page ``name`` for units of ``kinds`` (all when None), to users ``allowed`` (all when None)."""
    def url(user, unit) -> str | None:
        if kinds is not None and unit.kind not in kinds:
            return None
        if allowed is not None and not allowed(user):
            return None
        return _url(name, unit.code)
    return url


def _may_import(user) -> bool:
    from .permissions import can_import

    return can_import(user)


def _may_see_health(user) -> bool:
    from wuyiqu.health.selectors import may_see_health

    return may_see_health(user)


def _inspected_kinds():
    from wuyiqu.inspections.actions import ITEMS_BY_KIND

    return tuple(ITEMS_BY_KIND)


@dataclass(frozen=True)
class UnitItem:
    key: str
    label: str
    url: Callable[[object, object], str | None]  # (user, unit) -> URL or None


TITLED = tuple(TITLE_BY_KIND)

UNIT_ITEMS: list[UnitItem] = [
    UnitItem("dashboard", _("态势总览"), _unit_page("dashboard:unit", kinds=DASHBOARD_KINDS)),
    UnitItem("assessment", _("自评"), _unit_page("standards:assessment", kinds=TITLED)),
    UnitItem("history", _("监督记录"), _unit_page("supervision:history", kinds=TITLED)),
    UnitItem("ledger", _("特殊人群台账"), _unit_page("web:ledger")),
    UnitItem("inspections", _("检查记录"),
             lambda user, unit: _unit_page("inspections:record", kinds=_inspected_kinds())(user, unit)),
    UnitItem("measures", _("管控人员"), _unit_page("health:measures", allowed=_may_see_health)),
    UnitItem("testing", _("核酸检测"), _unit_page("health:testing", allowed=_may_see_health)),
    UnitItem("import", _("导入数据"), _unit_page("web:import", allowed=_may_import)),
    UnitItem("audit", _("审计日志"), lambda user, unit: (
        f"{_url('audit:events')}?unit={unit.code}" if _may_view_audit(user) and _url("audit:events") else None)),
    # Pages of other slices about one unit go here too (e.g. the forms that record a fact by hand).
]


def unit_links(user, unit) -> list[tuple[str, str, str]]:
    """(key, label, URL) of the unit page's buttons for ``user`` (who may see ``unit``), in order."""
    links = []
    for item in UNIT_ITEMS:
        url = item.url(user, unit)
        if url:
            links.append((item.key, str(item.label), url))
    return links


@dataclass(frozen=True)
class NavLink:
    key: str
    label: str
    url: str
    current: bool


def nav_links(user, path: str = "") -> list[NavLink]:
    """The header's links for ``user`` (signed in), in order; ``current`` marks the one for ``path``."""
    viewer = Viewer(user)
    links = []
    for item in NAV_ITEMS:
        url = item.url(viewer)
        if url:
            links.append(NavLink(item.key, str(item.label), url, url.split("#")[0] == path and "#" not in url))
    return links


def navigation(request) -> dict:
    """Context processor: ``nav_links``, computed only when a template reads it (full pages, not htmx
    fragments)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from django.utils.functional import SimpleLazyObject

    return {"nav_links": SimpleLazyObject(lambda: nav_links(user, request.path))}
