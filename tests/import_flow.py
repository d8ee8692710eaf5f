"""The web import as a person goes through it: upload (a preview is made), then 确认导入."""

from __future__ import annotations

from wuyiqu.imports.models import ImportJob, ImportStatus


def job_of(response) -> ImportJob:
    """The job an upload (or a confirmation) redirected to."""
    assert response.status_code == 302, response.content.decode()[:500]
    return ImportJob.objects.get(pk=int(response["Location"].rstrip("/").rsplit("/", 1)[1]))


def confirm(client, response, *, skip_invalid: bool = False) -> ImportJob:
    """After an upload's ``response``: confirm the preview as shown (when there is one to confirm)
    and return the job as the real run left it."""
    job = job_of(response)
    if job.status == ImportStatus.PREVIEWED:
        data = {"action": "confirm", **({"skip_invalid": "on"} if skip_invalid else {})}
        job = job_of(client.post(f"/imports/{job.pk}/confirm/", data))
    job.refresh_from_db()
    return job
