"""Writes of inspections and incidents recorded on the phone pages, with their evidence files."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from wuyiqu.audit import actions as audit
from wuyiqu.lib import uploads
from wuyiqu.lib.dates import today
from wuyiqu.supervision import services as supervision
from wuyiqu.units.models import district_of

from .models import Incident, IncidentType, Inspection, InspectionItem

MAX_EVIDENCE_BYTES = settings.ATTACHMENT_MAX_BYTES  # the type is judged on the content: wuyiqu.lib.uploads

# Items that make sense for each kind (the page offers these; the action accepts any known item).
ITEMS_BY_KIND = {
    "building": ["masks", "entrance", "vehicles", "visitors", "disinfection", "garbage", "environment"],
    "compound": ["masks", "entrance", "vehicles", "visitors", "disinfection", "garbage", "environment"],
    "group": ["masks", "environment", "garbage", "weekly_cleaning"],
    "village": ["masks", "environment", "garbage", "weekly_cleaning"],
    "community": ["masks", "environment", "garbage", "weekly_cleaning"],
    "street": ["masks", "environment", "garbage", "weekly_cleaning"],
}


class RecordRefused(ValueError):
    """Input that cannot be recorded; the message is Chinese and names the field."""


def store_evidence(upload, unit) -> str:
    """Check an uploaded file by content and size and store it below MEDIA_ROOT (never served
    directly). Returns its path relative to MEDIA_ROOT. RecordRefused when it is not a JPEG, PNG
    or PDF or is too large."""
    try:
        _content_type, ext = uploads.check_upload(upload, max_bytes=MAX_EVIDENCE_BYTES)
    except uploads.UploadRefused as exc:
        raise RecordRefused(_("证明材料：%(reason)s") % {"reason": exc}) from None
    relative = Path("evidence") / unit.code / f"{uuid.uuid4().hex}.{ext}"
    # Sealed like every upload (a photo may show people): wuyiqu.lib.sealed_storage.
    return default_storage.save(str(relative), upload)


def _remove(relative: str) -> None:
    if relative:
        default_storage.delete(relative)


def _check_day(day: dt.date, label: str) -> None:
    if day > today():
        raise RecordRefused(_("%(what)s%(date)s晚于今天") % {"what": label, "date": day.isoformat()})


def do_record_inspection(*, actor, unit, inspected_on: dt.date, results: dict[str, bool], inspector: str,
                         evidence=None, note: str = "") -> list[Inspection]:
    """Record the inspection of ``unit`` on ``inspected_on``: one row per item in ``results``
    (item -> passed). The same unit, item and day again updates that row. Returns the rows.
    RecordRefused (nothing stored) for an unknown item, no item, a future date or bad evidence."""
    if not results:
        raise RecordRefused(_("请至少填写一个检查项的结果"))
    unknown = [i for i in results if i not in InspectionItem.values]
    if unknown:
        raise RecordRefused(_("检查项“%(items)s”未知") % {"items": pgettext("列举分隔", "、").join(unknown)})
    _check_day(inspected_on, pgettext("晚于今天的日期", "检查日期"))
    path = store_evidence(evidence, unit) if evidence else ""
    try:
        with transaction.atomic():
            # Two people recording the same unit and day at once: lock the day's rows so the
            # second update sees the first (the unique constraint backs up the creates).
            # The district named: one shard on Citus (where SELECT … FOR UPDATE must be routed).
            existing = {i.item: i for i in Inspection.objects.select_for_update().filter(
                district_code=district_of(unit.path), unit=unit, inspected_on=inspected_on, item__in=list(results))}
            rows = []
            for item, passed in results.items():
                row = existing.get(item)
                if row is None:
                    row = Inspection.objects.create(unit=unit, inspected_on=inspected_on, item=item, passed=passed,
                                                    inspector=inspector, note=note, evidence=path)
                else:
                    row.passed, row.inspector, row.note = passed, inspector, note
                    fields = ["passed", "inspector", "note"]
                    if path:
                        row.evidence = path
                        fields.append("evidence")
                    row.save(update_fields=fields)
                rows.append(row)
            audit.record(actor=actor, action="inspections.record", target=unit, unit=unit, detail={
                "on": inspected_on.isoformat(), "results": results, "inspector": inspector, "evidence": path})
            supervision.recheck_after_facts({unit.pk}, actor=actor, source="inspections.record")
    except Exception:
        _remove(path)
        raise
    return rows


def do_record_incident(*, actor, unit, occurred_on: dt.date, incident_type: str, description: str,
                       evidence=None) -> Incident:
    """Record an incident (次生事件 or 负面舆情) on ``unit``. RecordRefused for an unknown type, a
    future date, a duplicate or bad evidence; nothing is stored then."""
    if incident_type not in IncidentType.values:
        raise RecordRefused(_("事件类型“%(type)s”未知") % {"type": incident_type})
    _check_day(occurred_on, pgettext("晚于今天的日期", "发生日期"))
    if Incident.objects.filter(district_code=district_of(unit.path), unit=unit, occurred_on=occurred_on,
                               incident_type=incident_type, description=description).exists():
        raise RecordRefused(_("该事件已登记过"))
    path = store_evidence(evidence, unit) if evidence else ""
    try:
        with transaction.atomic():
            incident = Incident.objects.create(unit=unit, district_code=district_of(unit.path), occurred_on=occurred_on,
                                               incident_type=incident_type, description=description, evidence=path)
            audit.record(actor=actor, action="inspections.record_incident", target=incident, unit=unit,
                         detail={"on": occurred_on.isoformat(), "type": incident_type, "evidence": path})
            supervision.recheck_after_facts({unit.pk}, actor=actor, source="inspections.record_incident")
    except Exception:
        _remove(path)
        raise
    return incident


class OpinionRefused(RecordRefused):
    """A handling or acceptance of a negative opinion that cannot be recorded; ``field`` names the input."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def _locked_opinion(incident: Incident) -> Incident:
    # Locked: the community re-marking its handling while the street accepts it must not leave an
    # acceptance of a note the street never saw.
    # The district named: Citus routes a row lock only to one shard.
    locked = Incident.objects.select_for_update().get(district_code=incident.district_code, pk=incident.pk)
    if locked.incident_type != IncidentType.NEGATIVE_OPINION:
        raise OpinionRefused(_("只有负面舆情需要处置和认可"), "incident_type")
    return locked


@transaction.atomic
def do_mark_opinion_handled(*, actor, incident: Incident, handled_on: dt.date, note: str) -> Incident:
    """处置完毕: the village/community records that a negative opinion was handled, on ``handled_on``
    with a note of what was done. It still counts until the street accepts it. May be recorded again
    (a corrected note) until the street has accepted it. OpinionRefused (Chinese, naming the field)
    for another type of incident, an empty note, a day in the future or before the opinion, or an
    opinion already accepted; nothing changes then."""
    note = (note or "").strip()
    if not note:
        raise OpinionRefused(_("处置情况说明不能为空"), "note")
    opinion = _locked_opinion(incident)
    if handled_on > today():
        raise OpinionRefused(_("处置完毕日期%(date)s晚于今天") % {"date": handled_on.isoformat()}, "handled_on")
    if handled_on < opinion.occurred_on:
        raise OpinionRefused(_("处置完毕日期%(date)s早于舆情发生日期%(occurred)s") % {
            "date": handled_on.isoformat(), "occurred": opinion.occurred_on.isoformat()}, "handled_on")
    if opinion.accepted_on is not None:
        raise OpinionRefused(_("街道已于%(date)s认可处置结果，不能再修改") % {"date": opinion.accepted_on.isoformat()},
                             "handled_on")
    opinion.handled_on, opinion.handled_note, opinion.handled_by = handled_on, note[:2000], actor
    opinion.save(update_fields=["handled_on", "handled_note", "handled_by"])
    audit.record(actor=actor, action="inspections.opinion_handled", target=opinion, unit=opinion.unit,
                 detail={"handled_on": handled_on.isoformat(), "occurred_on": opinion.occurred_on.isoformat()})
    return opinion


@transaction.atomic
def do_accept_opinion_handling(*, actor, incident: Incident) -> Incident:
    """街道认可: the street accepts the community's handling of a negative opinion, today. From today
    the opinion no longer fails no_negative_opinion; the named units above it are re-checked at once
    (a warning on it closes as rectified). OpinionRefused when it has not been handled yet or was
    accepted already."""
    opinion = _locked_opinion(incident)
    if opinion.handled_on is None:
        raise OpinionRefused(_("村（社区）尚未登记处置完毕，不能认可"), "handled_on")
    if opinion.accepted_on is not None:
        raise OpinionRefused(_("街道已于%(date)s认可处置结果") % {"date": opinion.accepted_on.isoformat()}, "accepted_on")
    opinion.accepted_on, opinion.accepted_by = today(), actor
    opinion.save(update_fields=["accepted_on", "accepted_by"])
    audit.record(actor=actor, action="inspections.opinion_accepted", target=opinion, unit=opinion.unit,
                 detail={"accepted_on": opinion.accepted_on.isoformat(), "handled_on": opinion.handled_on.isoformat()})
    supervision.recheck_after_facts({opinion.unit_id}, actor=actor, source="inspections.opinion_accepted")
    return opinion


@transaction.atomic
def do_return_opinion_handling(*, actor, incident: Incident, reason: str) -> Incident:
    """街道退回: the street sends the community's handling of a negative opinion back, with a reason,
    whether it had accepted it or not. The handling is kept as an ``OpinionReturn`` (the days it was
    accepted stay so for past evaluations); the opinion is unhandled again and, from today, fails
    no_negative_opinion again until it is handled and accepted anew; the named units above it are
    re-checked at once. OpinionRefused (naming the field) for an empty reason or an opinion not
    handled; nothing changes then."""
    from .models import OpinionReturn

    reason = (reason or "").strip()
    if not reason:
        raise OpinionRefused(_("退回理由不能为空"), "reason")
    opinion = _locked_opinion(incident)
    if opinion.handled_on is None:
        raise OpinionRefused(_("村（社区）尚未登记处置完毕，无可退回"), "handled_on")
    returned = OpinionReturn.objects.create(
        incident=opinion, district_code=opinion.district_code, handled_on=opinion.handled_on, handled_note=opinion.handled_note,
        handled_by=opinion.handled_by, accepted_on=opinion.accepted_on, accepted_by=opinion.accepted_by,
        returned_on=today(), returned_by=actor, reason=reason[:2000])
    opinion.handled_on = opinion.handled_by = opinion.accepted_on = opinion.accepted_by = None
    opinion.handled_note = ""
    opinion.save(update_fields=["handled_on", "handled_note", "handled_by", "accepted_on", "accepted_by"])
    audit.record(actor=actor, action="inspections.opinion_returned", target=opinion, unit=opinion.unit,
                 detail={"returned_on": returned.returned_on.isoformat(), "handled_on": returned.handled_on.isoformat(),
                         "accepted_on": returned.accepted_on.isoformat() if returned.accepted_on else None})
    supervision.recheck_after_facts({opinion.unit_id}, actor=actor, source="inspections.opinion_returned")
    return opinion
