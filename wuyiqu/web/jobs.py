"""Imports started from the web: store the upload, create the job, run it in a background thread,
and the scoped read of a job for its page."""

from __future__ import annotations

import logging
import re
import threading
import uuid
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.http import Http404

from wuyiqu.imports import services
from wuyiqu.imports.models import ImportJob
from wuyiqu.units.selectors import scope_path

log = logging.getLogger(__name__)

# The threads started by this process, so that tests (and a graceful shutdown) can wait for them.
running_threads: list[threading.Thread] = []


def _safe_name(name: str) -> str:
    stem = Path(name).name
    return re.sub(r"[^\w.\-]+", "_", stem)[-100:] or "upload"


def store_upload(upload) -> Path:
    """Write the uploaded file under MEDIA_ROOT/imports/ with a unique name; return its path."""
    folder = Path(settings.MEDIA_ROOT) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{uuid.uuid4().hex}-{_safe_name(upload.name)}"
    with target.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return target


def _run_in_thread(job_id: int, kind: str, path: str, actor_id: int, scope_id: int | None,
                   skip_invalid: bool) -> None:
    """Body of the background thread: run the import on the pending job, then close the thread's
    database connections (each thread has its own, and nobody else would close them)."""
    from wuyiqu.accounts.models import User
    from wuyiqu.units.models import Unit

    close_old_connections()
    try:
        job = ImportJob.objects.get(pk=job_id)
        actor = User.objects.get(pk=actor_id)
        scope = Unit.objects.get(pk=scope_id) if scope_id else None
        services.run_import(kind=kind, path=path, actor=actor, scope=scope, skip_invalid=skip_invalid, job=job)
    except Exception:  # run_import already marked the job failed; keep the traceback in the log
        log.exception("background import %s failed", job_id)
    finally:
        connections.close_all()


def start_import(*, kind: str, upload, actor, scope, skip_invalid: bool) -> ImportJob:
    """Store ``upload``, create a pending job and start it in a daemon thread once the job row is
    committed (the thread uses its own connection and must see it). Returns the pending job."""
    path = store_upload(upload)
    job = services.create_job(kind=kind, filename=Path(upload.name).name[:255], actor=actor, scope=scope,
                              skip_invalid=skip_invalid, stored_path=str(path))

    def launch():
        thread = threading.Thread(
            target=_run_in_thread, name=f"import-{job.pk}", daemon=True,
            args=(job.pk, kind, str(path), actor.pk, scope.pk if scope else None, skip_invalid),
        )
        running_threads[:] = [t for t in running_threads if t.is_alive()]
        running_threads.append(thread)
        thread.start()

    transaction.on_commit(launch)
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
