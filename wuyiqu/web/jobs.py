"""Imports started from the web: store the upload, create the job and enqueue its task (the worker
runs it; see wuyiqu.imports.tasks), and the scoped read of a job for its page."""

from __future__ import annotations

import logging
from pathlib import Path

from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext as _

from wuyiqu.audit import actions as audit
from wuyiqu.imports import actions, errorbook, services, storage
from wuyiqu.imports.actions import ImportRefused
from wuyiqu.imports.models import ImportJob, ImportStatus
from wuyiqu.imports.registry import get_kind
from wuyiqu.imports.tasks import run_import_job
from wuyiqu.lib import crypto
from wuyiqu.units.selectors import scope_path

log = logging.getLogger(__name__)


def store_upload(upload) -> Path:
    """The uploaded file sealed under MEDIA_ROOT/imports/ (wuyiqu.imports.storage); its path."""
    return storage.store(upload)


def start_import(*, kind: str, upload, actor, scope, skip_invalid: bool) -> ImportJob:
    """Store ``upload``, create a pending preview job and enqueue the task that runs it. Returns the job.

    With the database queue the job row and the task row are written in one transaction: the worker
    never sees a task without its job, and a job is never left pending without its task. (With the
    immediate backend of demo and tests, the task runs right here.)"""
    path = store_upload(upload)
    with transaction.atomic():
        # A preview first: nothing is written until the person has seen the mapping and the counts
        # and confirmed (imports.actions.do_confirm_import).
        job = services.create_job(kind=kind, filename=Path(upload.name).name[:255], actor=actor, scope=scope,
                                  skip_invalid=skip_invalid, stored_path=str(path), dry_run=True)
        run_import_job.enqueue(job.pk)
    job.refresh_from_db()
    # Previews left unconfirmed a day end here too (and with the worker's schedule): a site whose
    # worker does not schedule still deletes their uploads. Never at the cost of this upload.
    try:
        services.expire_previews()
    except Exception:
        log.exception("could not expire the unconfirmed import previews")
    return job


def visible_jobs(user):
    """Import jobs whose scope lies within the user's scope; jobs without a scope (the console's)
    only for an unscoped administrator."""
    prefix = scope_path(user)
    if prefix is None:
        return ImportJob.objects.none()
    qs = ImportJob.objects.select_related("scope")
    return qs if prefix == "/" else qs.filter(scope__path__startswith=prefix)


def access_import_job_by_id(user, job_id: int) -> ImportJob:
    """The job if the user may see it; Http404 for missing and forbidden alike."""
    try:
        return visible_jobs(user).get(pk=job_id)
    except ImportJob.DoesNotExist:
        raise Http404("import job") from None


def recent_jobs(user, unit, *, limit: int = 10) -> list[ImportJob]:
    """The latest jobs started for ``unit`` or below, that the user may see."""
    return list(visible_jobs(user).filter(scope__path__startswith=unit.path).order_by("-created_at")[:limit])


def template_for(kind: str) -> bytes:
    """The XLSX template of ``kind``; Http404 for a kind the registry does not know."""
    try:
        return services.build_template(kind)
    except KeyError:
        raise Http404("import kind") from None


def describe_job(job: ImportJob, user=None) -> dict:
    """What the job page shows ``user`` beside the job: the kind's label and the bad rows with each field
    named by its column header in the template (``身份证号``) rather than its key (``id_number``), and
    the error workbook for the person who uploaded the file (``owns_error_workbook``)."""
    from wuyiqu.imports.registry import all_kinds

    kind = all_kinds().get(job.kind)
    headers = {c.key: c.header for c in kind.columns} if kind else {}
    errors = [
        {"line": e.get("line"), "sheet": e.get("sheet", ""),
         "field": e.get("header") or headers.get(e.get("field") or "", e.get("field") or ""),
         "message": e.get("message", "")}
        for e in (job.errors or [])
    ]
    return {"kind_label": kind.label if kind else job.kind, "errors": errors,
            "preview": describe_preview(job, kind) if kind else None,
            "has_error_workbook": user is not None and owns_error_workbook(user, job)}


def owns_error_workbook(user, job: ImportJob) -> bool:
    """The refused rows go back, with their full ID numbers and phones, only to the person who uploaded
    them (their own file's rows, to fix and send again): to nobody else, whatever their scope."""
    return job.error_workbook is not None and job.created_by_id is not None and job.created_by_id == user.pk


def describe_preview(job: ImportJob, kind) -> dict | None:
    """For a preview waiting for the person: the columns with the field each feeds (to change), the
    sheets (to choose), the first rows as they would be imported, and what may be done next. The
    samples were masked when the job stored them (ID numbers, phones)."""
    if not services.awaits_person(job) or not job.layout.get("sheets"):
        return None
    layout = job.layout
    fields = [{"key": c.key, "label": c.header, "required": c.required} for c in kind.columns]
    columns: list[dict] = []
    seen: set[str] = set()
    for sheet in layout["sheets"]:
        for i, header in enumerate(sheet["headers"]):
            header = header.strip()
            if not header or header in seen:
                continue
            seen.add(header)
            samples = [row[i] for row in sheet["samples"] if i < len(row) and row[i]][:3]
            columns.append({"n": len(columns), "header": header, "letter": sheet["letters"][i],
                            "sheet": sheet["name"], "key": sheet["keys"][i], "samples": samples})
    labels = {f["key"]: f["label"] for f in fields}
    first = layout["sheets"][0]
    used = [(i, k) for i, k in enumerate(first["keys"]) if k]
    rows = [[row[i] if i < len(row) else "" for i, _k in used] for row in first["samples"]]
    imported = {s["name"] for s in layout["sheets"]}
    return {
        "fields": fields,
        "columns": columns,
        "mapped_headers": [labels[k] for _i, k in used],
        "mapped_rows": rows,
        "sheets": [{"name": n, "chosen": n in imported} for n in layout.get("all_sheets", [])],
        "skipped": layout.get("skipped", []),
        "header_at": [(s["name"], s["header_line"]) for s in layout["sheets"]],
        "remembered": layout.get("remembered", False),
        "can_confirm": job.status == ImportStatus.PREVIEWED,
    }


def confirm_or_remap(*, job: ImportJob, actor, post) -> ImportJob:
    """The preview form's answer: confirm the import when the person kept the mapping and sheets
    shown (and asked to import), else preview again with theirs. ImportRefused when neither may be done."""
    preview = describe_preview(job, get_kind(job.kind))
    if preview is None:
        raise ImportRefused(_("这个导入任务已不是待确认的预览（可能已确认或已过期）"))
    columns = {c["header"]: post.get(f"col-{c['n']}", c["key"]) for c in preview["columns"]}
    # The check boxes of the sheets are on the form ("sheets_shown"): none ticked there is a choice of none.
    shown = [s["name"] for s in preview["sheets"] if s["chosen"]]
    sheets = (post.getlist("sheet") if post.get("sheets_shown") else shown) if preview["sheets"] else None
    skip_invalid = post.get("skip_invalid") == "on"
    same_sheets = sheets is None or set(sheets) == {s["name"] for s in preview["sheets"] if s["chosen"]}
    unchanged = all(columns[c["header"]] == c["key"] for c in preview["columns"]) and same_sheets
    if post.get("action") == "confirm" and unchanged:
        return actions.do_confirm_import(job=job, actor=actor, skip_invalid=skip_invalid)
    if sheets is not None and not sheets:
        raise ImportRefused(_("请至少选择一张工作表"))
    return actions.do_remap_import(job=job, actor=actor, columns=columns, sheets=sheets, skip_invalid=skip_invalid)


def error_workbook_for(user, job_id: int) -> tuple[ImportJob, bytes]:
    """The refused rows of a job the user uploaded, as the XLSX the person fixes and sends back; the
    look is audited (it shows personal data). Http404 when the job has none or is not the user's."""
    job = access_import_job_by_id(user, job_id)
    if not owns_error_workbook(user, job):
        raise Http404("error workbook")
    try:
        data = errorbook.decrypt(job.error_workbook)
    except crypto.DecryptionError:  # kept under a data key rotated away since: gone, like an expired upload
        raise Http404("error workbook") from None
    audit.record(actor=user, action="imports.error_workbook", target=job, unit=job.scope,
                 detail={"kind": job.kind, "file": job.filename, "invalid": job.invalid})
    return job, data
