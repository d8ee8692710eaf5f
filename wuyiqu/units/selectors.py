"""Scoped reads. Every read of a unit, household or resident on behalf of a user goes through here:
the user's unit decides what exists for them, and "missing" and "forbidden" look the same (404)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from wuyiqu.accounts.models import Role
from wuyiqu.audit import actions as audit

from .models import Household, Resident, SpecialPopulationEntry, Unit


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
    return qs if prefix == "/" else qs.filter(unit__path__startswith=prefix)


def visible_residents(user) -> QuerySet[Resident]:
    prefix = scope_path(user)
    if prefix is None:
        return Resident.objects.none()
    qs = Resident.objects.select_related("household", "household__unit")
    return qs if prefix == "/" else qs.filter(household__unit__path__startswith=prefix)


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
    """The plain ID number and phone of one resident in scope, writing an audit row for the look."""
    resident = access_resident_by_id(user, resident_id)
    audit.record(
        actor=user,
        action="resident.reveal",
        target=resident,
        unit=resident.household.unit,
        detail={"fields": ["id_number", "phone"]},
        ip=ip,
    )
    return {"id_number": resident.reveal_id_number(), "phone": resident.reveal_phone()}


def special_population_in(user, unit: Unit) -> QuerySet[SpecialPopulationEntry]:
    """Ledger entries below ``unit`` (which the caller got through access_unit_by_code)."""
    return (
        SpecialPopulationEntry.objects.filter(resident__household__unit__path__startswith=unit.path)
        .select_related("resident", "resident__household")
        .order_by("resident__household__code")
    )
