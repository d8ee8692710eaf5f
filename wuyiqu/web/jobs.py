"""Imports started from the web: store the upload, create the job and enqueue its task (the worker
runs it; see wuyiqu.imports.tasks), and the scoped read of a job for its page."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction
from django.http import Http404

from wuyiqu.imports import services, storage
from wuyiqu.imports.models import ImportJob
from wuyiqu.imports.tasks import run_import_job
from wuyiqu.units.selectors import scope_path


def store_upload(upload) -> Path:
    """The uploaded file sealed under MEDIA_ROOT/imports/ (wuyiqu.imports.storage); its path."""
    return storage.store(upload)


def start_import(*, kind: str, upload, actor, scope, skip_invalid: bool) -> ImportJob:
    """Store ``upload``, create a pending job and enqueue the task that runs it. Returns the job.

    With the database queue the job row and the task row are written in one transaction: the worker
    never sees a task without its job, and a job is never left pending without its task. (With the
    immediate backend of demo and tests, the task runs right here.)"""
    path = store_upload(upload)
    with transaction.atomic():
        job = services.create_job(kind=kind, filename=Path(upload.name).name[:255], actor=actor, scope=scope,
                                  skip_invalid=skip_invalid, stored_path=str(path))
        run_import_job.enqueue(job.pk)
    job.refresh_from_db()
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


def describe_job(job: ImportJob) -> dict:
    """What the job page shows beside the job: the kind's label and the bad rows with each field named
    by its column header in the template (``身份证号``) rather than its key (``id_number``)."""
    from wuyiqu.imports.registry import all_kinds

    kind = all_kinds().get(job.kind)
    headers = {c.key: c.header for c in kind.columns} if kind else {}
    errors = [
        {"line": e.get("line"), "field": headers.get(e.get("field") or "", e.get("field") or ""),
         "message": e.get("message", "")}
        for e in (job.errors or [])
    ]
    return {"kind_label": kind.label if kind else job.kind, "errors": errors}
