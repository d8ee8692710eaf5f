"""Writes of applications. For now: paper co-signatures (the `signatures` import and staff entry).
The review chain (SPEC §5) is built elsewhere."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction

from wuyiqu.audit import actions as audit
from wuyiqu.units.models import TITLE_BY_KIND

from .models import OPEN_STATUSES, Application, ApplicationStatus, CoSignature, SignatureSource

# Units whose households co-sign (楼栋/社/小区); a village or community signs its application itself.
CO_SIGNED_KINDS = ("building", "group", "compound")


class SignatureRefused(ValueError):
    """A co-signature that cannot be recorded; ``message`` is Chinese."""


@dataclass(frozen=True, slots=True)
class PaperSignature:
    unit_id: int
    unit_kind: str
    household_id: int
    signed_on: dt.date


@dataclass
class SignaturesWritten:
    created: int = 0
    existing: int = 0
    drafts_opened: int = 0


def open_applications_for(unit_ids_kinds: dict[int, str]) -> tuple[dict[int, Application], int]:
    """The open application of each unit for its title, opening a draft where there is none.
    Locks the open applications found (two imports of one sheet must not open two drafts; the
    partial unique constraint one_open_application_per_title backs this up). Returns them by unit
    id and how many drafts were opened."""
    found = {
        a.unit_id: a
        for a in Application.objects.select_for_update().filter(
            unit_id__in=list(unit_ids_kinds), status__in=[s.value for s in OPEN_STATUSES])
        if a.title == TITLE_BY_KIND.get(unit_ids_kinds[a.unit_id])
    }
    drafts = [Application(unit_id=uid, title=TITLE_BY_KIND[kind], status=ApplicationStatus.DRAFT)
              for uid, kind in unit_ids_kinds.items() if uid not in found]
    for app in drafts:  # few; each needs its id back on every database
        app.save()
        found[app.unit_id] = app
    return found, len(drafts)


def write_paper_signatures(rows: list[PaperSignature]) -> SignaturesWritten:
    """Record paper co-signatures set-based (callers: the import kind inside its transaction, and
    ``do_record_paper_signatures``). A household that signed already is left as it is."""
    out = SignaturesWritten()
    if not rows:
        return out
    apps, out.drafts_opened = open_applications_for({r.unit_id: r.unit_kind for r in rows})
    wanted = {(apps[r.unit_id].pk, r.household_id): r.signed_on for r in rows}
    existing = set(CoSignature.objects.filter(
        application_id__in={k[0] for k in wanted}, household_id__in={k[1] for k in wanted},
    ).values_list("application_id", "household_id"))
    new = [CoSignature(application_id=a, household_id=h, signed_on=d, source=SignatureSource.PAPER)
           for (a, h), d in wanted.items() if (a, h) not in existing]
    CoSignature.objects.bulk_create(new)
    out.created, out.existing = len(new), len(wanted) - len(new)
    return out


@transaction.atomic
def do_record_paper_signatures(*, actor, unit, households, signed_on: dt.date) -> SignaturesWritten:
    """Record a paper co-signature sheet of ``unit`` (a building, group or compound): one signature
    per household of ``households`` (each must lie below ``unit``) on its open application.
    Raises SignatureRefused (Chinese) and records nothing when a household is not below the unit."""
    if unit.kind not in CO_SIGNED_KINDS:
        raise SignatureRefused(f"“{unit.name}”不收集住户联名（村、社区由本单位签字申请）")
    outside = [h.code for h in households if not h.unit.path.startswith(unit.path)]
    if outside:
        raise SignatureRefused(f"住户 {'、'.join(outside[:5])} 不属于“{unit.name}”")
    written = write_paper_signatures(
        [PaperSignature(unit.pk, unit.kind, h.pk, signed_on) for h in households])
    audit.record(actor=actor, action="applications.paper_signatures", target=unit, unit=unit,
                 detail={"created": written.created, "existing": written.existing, "signed_on": signed_on.isoformat()})
    return written
