"""The background task of an import started from the web (`wuyiqu worker` runs it; see docs/deploy.md).

The job row carries everything the task needs (kind, stored file, who started it, for which unit), so
the task's only argument is the job's id. The job's status is the truth the job page polls: a task
that finds its job no longer pending (run already, e.g. a task retried by hand) does nothing.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils.translation import gettext as _

from wuyiqu.lib.tasks import task

from . import services
from .models import ImportJob, ImportStatus

log = logging.getLogger(__name__)


@task(priority=10)
def run_import_job(job_id: int) -> str:
    """Run the pending web import ``job_id``; returns the job's final status."""
    with transaction.atomic():
        job = (ImportJob.objects.select_for_update(of=("self",)).select_related("created_by", "scope")
               .filter(pk=job_id, status=ImportStatus.PENDING).first())
        if job is None:
            log.warning("import job %s is not pending: nothing to run", job_id)
            return ImportJob.objects.filter(pk=job_id).values_list("status", flat=True).first() or "missing"
        if job.created_by is None or job.scope is None or not job.stored_path:
            # A web job is always scoped to its unit and run as its user: never run it unscoped.
            services.fail_job(job, job.created_by, _("发起导入的用户或单位已不存在，未导入任何数据"))
            return job.status
        job.status = ImportStatus.RUNNING  # claimed: a second task for the same job finds it running
        job.runner = services.current_runner()
        job.save(update_fields=["status", "runner"])
    services.run_import(kind=job.kind, path=job.stored_path, actor=job.created_by, scope=job.scope,
                        skip_invalid=job.skip_invalid, job=job)
    return job.status
