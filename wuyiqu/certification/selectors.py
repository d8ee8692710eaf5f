"""Reads of titles: the public verification (no login, no personal data) and the scoped certificate."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.http import Http404

from wuyiqu.lib.dates import today
from wuyiqu.units import selectors as unit_selectors

from .models import Title


@dataclass(frozen=True)
class PublicTitle:
    number: str
    unit_name: str
    title: str
    named_on: dt.date
    current: bool
    withdrawn_on: dt.date | None
    on: dt.date


def verify_certificate(number: str) -> PublicTitle:
    """What the public page behind a certificate's QR code shows: the unit, its title, the naming date
    and whether the title is current today. Http404 for an unknown number."""
    title = (Title.objects.select_related("unit").filter(certificate_number=number).first()
             if number and len(number) <= 32 else None)
    if title is None:
        raise Http404("certificate")
    on = today()
    current = title.named_on <= on and (title.withdrawn_on is None or title.withdrawn_on > on)
    return PublicTitle(number, title.unit.name, title.title, title.named_on, current, title.withdrawn_on, on)


def access_title_by_certificate(user, number: str) -> Title:
    """The title with certificate ``number`` if its unit is in the user's scope; Http404 otherwise."""
    prefix = unit_selectors.scope_path(user)
    qs = Title.objects.select_related("unit").filter(certificate_number=number)
    if prefix is None:
        raise Http404("certificate")
    if prefix != "/":
        qs = qs.filter(unit__path__startswith=prefix)
    title = qs.first()
    if title is None:
        raise Http404("certificate")
    return title
