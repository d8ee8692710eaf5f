"""Scoped reads. Every read of a unit, household or resident on behalf of a user goes through here:
the user's unit decides what exists for them, and "missing" and "forbidden" look the same (404)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.db.models.functions import Length
from django.http import Http404

from wuyiqu.accounts.models import Role
from wuyiqu.audit import actions as audit

from .models import Household, Resident, SpecialPopulationEntry, SpecialTag, Unit, district_of


def scope_path(user) -> str | None:
    """The path prefix of everything the user may see; None means nothing."""
    if not user.is_authenticated:
        return None
    if user.unit_id is None:
        # Only an administrator may be unscoped, and then sees the whole registry.
        return "/" if (user.role == Role.ADMIN or user.is_superuser) else None
    return user.unit.path


def visible_units(user) -> QuerySet[Unit]:
    """Units in the user's scope: their unit and everything below it."""
    prefix = scope_path(user)
    if prefix is None:
        return Unit.objects.none()
    if prefix == "/":
        return Unit.objects.all()
    return Unit.objects.filter(path__startswith=prefix)


def visible_households(user) -> QuerySet[Household]:
    prefix = scope_path(user)
    if prefix is None:
        return Household.objects.none()
    qs = Household.objects.select_related("unit")
    # A scope lies in one district: named, the read goes to that district's shard on Citus.
    return qs if prefix == "/" else qs.filter(district_code=district_of(prefix), unit__path__startswith=prefix)


def visible_residents(user) -> QuerySet[Resident]:
    prefix = scope_path(user)
    if prefix is None:
        return Resident.objects.none()
    qs = Resident.objects.select_related("household", "household__unit")
    return qs if prefix == "/" else qs.filter(district_code=district_of(prefix), household__unit__path__startswith=prefix)


def access_unit_by_code(user, code: str) -> Unit:
    """The unit with ``code`` if the user may see it; Http404 otherwise (missing or forbidden alike)."""
    try:
        return visible_units(user).get(code=code)
    except Unit.DoesNotExist:
        raise Http404("unit") from None


def access_household_by_code(user, code: str) -> Household:
    try:
        return visible_households(user).get(code=code)
    except Household.DoesNotExist:
        raise Http404("household") from None


def access_resident_by_id(user, resident_id: int) -> Resident:
    try:
        return visible_residents(user).get(pk=resident_id)
    except Resident.DoesNotExist:
        raise Http404("resident") from None


def reveal_resident(user, resident_id: int, *, ip: str | None = None) -> dict[str, str]:
    """The plain ID number and phone of one resident in scope, writing an audit row for the look
    (``units.actions.do_reveal_resident``: 404 out of scope, 403 for a role that may not, and beyond
    the hourly limit)."""
    from .actions import do_reveal_resident

    return do_reveal_resident(actor=user, resident=access_resident_by_id(user, resident_id), ip=ip)


def special_population_summary(unit: Unit) -> dict:
    """The special-population ledger below ``unit`` (got through access_unit_by_code) as counts only,
    for the roles that may not see who: {"total", "by_tag": [(label, n)], "incomplete"} (an entry
    lacks its needs or its helper). One query."""
    by_tag: dict[str, int] = {}
    total = incomplete = 0
    for tags, needs, helper in (SpecialPopulationEntry.objects.filter(
            resident__household__unit__path__startswith=unit.path).values_list("tags", "needs", "helper")):
        total += 1
        incomplete += not ((needs or "").strip() and (helper or "").strip())
        for tag in tags.split(","):
            if tag:
                by_tag[tag] = by_tag.get(tag, 0) + 1
    labels = dict(SpecialTag.choices)
    return {"total": total, "incomplete": incomplete,
            "by_tag": [(labels.get(t, t), n) for t, n in sorted(by_tag.items(), key=lambda kv: -kv[1])]}


def special_population_in(user, unit: Unit) -> QuerySet[SpecialPopulationEntry]:
    """Ledger entries below ``unit`` (which the caller got through access_unit_by_code)."""
    return (
        SpecialPopulationEntry.objects.filter(resident__household__unit__path__startswith=unit.path)
        .select_related("resident", "resident__household")
        .order_by("resident__household__code")
    )


# --- Read-only selectors for the web pages (unit page, search, household lists, ledger). ---------


def _child_path_expr(field: str, parent_path: str):
    """SQL expression giving, for a row whose ``field`` path lies below ``parent_path``, the path of
    the child of the parent that contains it (the parent's own path for rows on the parent itself).
    Works on SQLite (instr) and PostgreSQL (strpos) alike through Django's StrIndex."""
    from django.db.models import IntegerField, Value
    from django.db.models.functions import StrIndex, Substr

    start = len(parent_path)
    rest = Substr(field, start + 1)
    return Substr(field, 1, Value(start, output_field=IntegerField()) + StrIndex(rest, Value("/")))


def subtree_counts(unit: Unit) -> dict[str, dict[str, int]]:
    """Households, residents and special-population residents below ``unit``, grouped by the child
    of ``unit`` they sit under (keyed by the child's path; rows directly on ``unit`` are keyed by its
    own path), plus the total under the key ``"total"``. One aggregate query, whatever the size:
    households left-joined to their residents and ledger entries, grouped by child."""
    from django.db.models import Count

    rows = (
        Household.objects.filter(unit__path__startswith=unit.path)
        .annotate(child=_child_path_expr("unit__path", unit.path))
        .values("child")
        .annotate(  # n_ names: "residents" would shadow the relation it counts
            n_households=Count("id", distinct=True),
            n_residents=Count("residents"),
            n_special=Count("residents__special_entry"),
        )
        .order_by()
    )
    counts: dict[str, dict[str, int]] = {}
    total = {"households": 0, "residents": 0, "special": 0}
    for row in rows:
        counts[row["child"]] = {"households": row["n_households"], "residents": row["n_residents"],
                                "special": row["n_special"]}
        for k in total:
            total[k] += counts[row["child"]][k]
    counts["total"] = total
    return counts


def breadcrumb_for(user, unit: Unit) -> list[dict]:
    """The ancestors of ``unit`` from the root down (not ``unit`` itself), each as
    ``{"unit": Unit, "clickable": bool}``; clickable only inside the user's scope. One query."""
    scope = scope_path(user) or "\x00"  # no scope: nothing clickable
    codes = unit.ancestor_codes
    by_code = {u.code: u for u in Unit.objects.filter(code__in=codes)} if codes else {}
    return [{"unit": by_code[c], "clickable": by_code[c].path.startswith(scope)} for c in codes if c in by_code]


def unit_overview(user, unit: Unit) -> dict:
    """What the unit page shows about ``unit`` (got through access_unit_by_code): the breadcrumb from
    the root (each with ``clickable`` when inside the user's scope), the subtree counts, and the
    children with their own counts. Three queries."""
    breadcrumb = breadcrumb_for(user, unit)
    counts = subtree_counts(unit)
    empty = {"households": 0, "residents": 0, "special": 0}
    children = [
        {"unit": child, **counts.get(child.path, empty)}
        for child in Unit.objects.filter(parent=unit).order_by("code")
    ]
    return {"breadcrumb": breadcrumb, "counts": counts["total"], "children": children}


def search_units(user, query: str, *, limit: int = 30) -> list[Unit]:
    """Units in the user's scope whose name contains ``query`` or whose code starts with it; the
    shallowest first. An empty query finds nothing."""
    from django.db.models import Q

    query = (query or "").strip()
    if not query:
        return []
    return list(
        visible_units(user)
        .filter(Q(name__icontains=query) | Q(code__istartswith=query))
        .order_by("depth", "code")[:limit]
    )


def in_room_order(households: QuerySet[Household]) -> QuerySet[Household]:
    """Households unit by unit, rooms in natural order (101, 102, …, 1001 — not 1001 before 101): the
    codes of one unit share their prefix, so a shorter code is a lower room."""
    return households.order_by("unit__code", Length("code"), "code")


def households_below(unit: Unit) -> QuerySet[Household]:
    """Households of ``unit`` and the units below it (a building's entrances), residents prefetched.
    ``unit`` must come from access_unit_by_code."""
    return in_room_order(
        Household.objects.filter(unit__path__startswith=unit.path).select_related("unit").prefetch_related("residents"))


def view_special_population(user, unit: Unit, *, ip: str | None = None) -> QuerySet[SpecialPopulationEntry]:
    """The special-population ledger below ``unit`` (got through access_unit_by_code). This is health
    data: every look writes an audit row ``special_population.view``."""
    access_unit_by_code(user, unit.code)  # re-check: the audit row must never record a look outside scope
    audit.record(actor=user, action="special_population.view", target=unit, unit=unit, ip=ip)
    return special_population_in(user, unit).select_related("resident__household__unit")
