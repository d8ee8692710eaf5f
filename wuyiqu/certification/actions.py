"""Writes of titles: titles named before the system existed (the `titles` import and staff entry),
each re-checked at once like any named unit (SPEC §7), and naming through the review chain
(``do_name_unit``). Withdrawal is supervision's (wuyiqu/supervision/services.py)."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from wuyiqu.audit import actions as audit
from wuyiqu.units.models import TITLE_BY_KIND, Unit, district_of

from .models import Title


class TitleRefused(ValueError):
    """A title that cannot be recorded; the message is Chinese."""


@dataclass
class TitlesWritten:
    created: int = 0
    existing: int = 0


def write_existing_titles(rows: list[tuple]) -> TitlesWritten:
    """Record (unit_id, unit_kind, named_on, district_code) as current titles, the title following
    from the kind (rows without the unit's district: looked up, one query). A unit that already holds
    a current title keeps it (counted as existing). Locks the units' current titles, one query per
    district (Citus routes a row lock only to one shard): two imports must not both create one
    (one_current_title_per_unit backs this)."""
    out = TitlesWritten()
    missing = {r[0] for r in rows if len(r) < 4}
    paths = dict(Unit.objects.filter(pk__in=missing).values_list("id", "path")) if missing else {}
    rows = [tuple(r) if len(r) == 4 else (*r, district_of(paths[r[0]])) for r in rows]
    ids = {uid for uid, _kind, _d, _district in rows}
    current = {uid for district in sorted({r[3] for r in rows})
               for uid in Title.objects.select_for_update().filter(district_code=district, unit_id__in=ids,
                                                                   withdrawn_on__isnull=True)
               .values_list("unit_id", flat=True)}
    new = {}
    for uid, kind, named_on, district in rows:
        if uid in current or uid in new:
            out.existing += 1
            continue
        new[uid] = Title(unit_id=uid, district_code=district, title=TITLE_BY_KIND[kind], named_on=named_on)
    Title.objects.bulk_create(new.values())
    out.created = len(new)
    return out


@transaction.atomic
def do_record_existing_title(*, actor, unit, named_on: dt.date) -> Title:
    """Record that ``unit`` was named (before the system) on ``named_on``, then re-check it at once as
    a new fact would (a unit failing a revoke criterion today loses the title again, with the reason;
    a failing warn criterion opens a warning). Returns the title (the existing one if the unit held
    one; ``withdrawn_on`` is set when the re-check withdrew it). TitleRefused when the unit's kind
    has no title."""
    if unit.kind not in TITLE_BY_KIND:
        raise TitleRefused(_("“%(name)s”这类单位没有称号") % {"name": unit.name})
    district = district_of(unit.path)
    written = write_existing_titles([(unit.pk, unit.kind, named_on, district)])
    title = Title.objects.get(district_code=district, unit=unit, withdrawn_on__isnull=True)
    if written.created:
        from wuyiqu.supervision.services import recheck_after_facts

        audit.record(actor=actor, action="certification.record_existing_title", target=title, unit=unit,
                     detail={"named_on": named_on.isoformat(), "title": title.title})
        recheck_after_facts({unit.pk}, actor=actor, source="certification.record_existing_title")
        title.refresh_from_db()
    return title


# Crockford's base32: no I, L, O or U, so a number read aloud or typed from paper is not mistaken.
CERTIFICATE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_certificate_number(named_on) -> str:
    """``WYQ-<year>-XXXX-XXXX-XXXX``: 12 random characters (60 bits). The number was the title's row
    id (WYQ-2022-000042), so the public check (/verify/<number>/) listed every named unit to anyone
    counting upwards; numbers given before keep working as they are."""
    while True:
        code = "".join(secrets.choice(CERTIFICATE_ALPHABET) for _ in range(12))
        number = f"WYQ-{named_on:%Y}-{code[:4]}-{code[4:8]}-{code[8:]}"
        if not Title.objects.filter(certificate_number=number).exists():  # the unique index backs this
            return number


@transaction.atomic
def do_name_unit(*, actor, application) -> Title:
    """命名: the command's approval of ``application`` names its unit — a current Title from now, with
    a certificate number. Called by applications.actions.do_review_application inside its transaction
    (the application row is locked there). TitleRefused when the unit already holds a current title."""
    from django.utils import timezone

    from wuyiqu.lib.dates import today

    unit = application.unit
    # Lock the unit's current titles: a concurrent import of old titles must not also create one
    # (one_current_title_per_unit backs this up).
    if Title.objects.select_for_update().filter(district_code=district_of(unit.path), unit=unit,
                                                withdrawn_on__isnull=True).exists():
        raise TitleRefused(_("“%(name)s”已持有称号") % {"name": unit.name})
    named_on = today()
    title = Title.objects.create(unit=unit, title=application.title, named_on=named_on, named_at=timezone.now(),
                                 application=application)
    title.certificate_number = new_certificate_number(named_on)
    title.save(update_fields=["certificate_number"])
    audit.record(actor=actor, action="certification.name", target=title, unit=unit,
                 detail={"title": title.title, "application": application.pk, "certificate": title.certificate_number})
    return title
