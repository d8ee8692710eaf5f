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


@dataclass(frozen=True)
class TitleStatus:
    """What a unit's badge says: ``state`` is "named" (current title, ``since``), "warned" (current title
    with an open warning, ``until`` its earliest deadline) or "withdrawn" (no current title; the latest
    withdrawal ``on``). ``certificate`` is the current or withdrawn title's certificate number, if any."""

    state: str
    title: str
    since: dt.date | None = None
    until: dt.date | None = None
    on: dt.date | None = None
    certificate: str | None = None


def title_statuses(unit_ids) -> dict[int, TitleStatus]:
    """The badge of each unit in ``unit_ids`` that holds or held a title (units never named are absent).
    The caller got the units through the scoped selectors; two queries whatever their number."""
    from django.db.models import Min

    from wuyiqu.supervision.models import Warning, WarningStatus

    unit_ids = list(unit_ids)
    if not unit_ids:
        return {}
    current: dict[int, Title] = {}
    withdrawn: dict[int, Title] = {}
    for t in Title.objects.filter(unit_id__in=unit_ids).order_by("withdrawn_on", "id"):
        if t.withdrawn_on is None:
            current[t.unit_id] = t
        else:
            withdrawn[t.unit_id] = t  # ordered: the latest withdrawal stays
    deadlines = dict(Warning.objects.filter(unit_id__in=list(current), status=WarningStatus.OPEN)
                     .values("unit_id").annotate(d=Min("deadline")).values_list("unit_id", "d"))
    out = {}
    for unit_id, t in withdrawn.items():
        out[unit_id] = TitleStatus("withdrawn", t.title, since=t.named_on, on=t.withdrawn_on,
                                   certificate=t.certificate_number)
    for unit_id, t in current.items():
        until = deadlines.get(unit_id)
        out[unit_id] = TitleStatus("warned" if until else "named", t.title, since=t.named_on, until=until,
                                   certificate=t.certificate_number)
    return out
