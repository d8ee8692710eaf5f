"""Import files uploaded on the web, while their job runs: sealed, private, removed at the end.

An upload is written to ``MEDIA_ROOT/imports/`` sealed under the data key as it arrives (mode 0600,
``wuyiqu.lib.sealed``): its content is never on disk in clear. The readers open it through
``sealed.open_plain`` (``wuyiqu.imports.parsers``). When the job ends — succeeded, failed, refused
before it ran, or found killed — the file is removed (``discard``); what stays is the job's report:
row numbers, reasons and masked values. ``purge`` removes what earlier versions left behind
(plaintext uploads of ended jobs) and seals the file of a job still waiting to run.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db.models import Q

from wuyiqu.lib import sealed

from .models import ImportJob, ImportStatus

log = logging.getLogger(__name__)

# Jobs whose upload is still needed: waiting, running, or a preview waiting for the person to confirm
# it or correct its mapping (``services.expire_previews`` ends those left alone for a day).
KEPT = (ImportStatus.PENDING, ImportStatus.RUNNING, ImportStatus.PREVIEWED)


def _kept():
    return Q(status__in=KEPT) | Q(status=ImportStatus.FAILED, dry_run=True)


def upload_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "imports"


def _safe_name(name: str) -> str:
    stem = Path(name).name
    return re.sub(r"[^\w.\-]+", "_", stem)[-100:] or "upload"


def store(upload) -> Path:
    """Seal the uploaded file (a Django UploadedFile) into a new file of ``upload_dir()``; return its
    path. The name keeps the uploaded one's extension (the readers judge XLSX by it and the content)."""
    folder = upload_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return sealed.seal(folder / f"{uuid.uuid4().hex}-{_safe_name(upload.name)}", upload.chunks())


def _ours(path: Path) -> bool:
    """Whether ``path`` lies in the upload folder (a stored path is never trusted to delete elsewhere)."""
    try:
        return path.resolve().parent == upload_dir().resolve()
    except OSError:
        return False


def discard(job: ImportJob) -> None:
    """Remove the stored upload of ``job`` (nothing for a console import, which reads the operator's
    own file) and forget its path."""
    if not job.stored_path:
        return
    path = Path(job.stored_path)
    if _ours(path):
        try:
            path.unlink(missing_ok=True)
        except OSError:  # the purge at the worker's next start removes it
            log.warning("could not remove the upload of import job %s", job.pk, exc_info=True)
    job.stored_path = ""
    ImportJob.objects.filter(pk=job.pk).update(stored_path="")


@dataclass(frozen=True, slots=True)
class Purged:
    removed: int  # files of ended jobs, or of no job
    sealed: int  # plaintext files of jobs still waiting, sealed in place


def purge() -> Purged:
    """Remove every file of the upload folder that no pending or running job needs, and seal in
    place the plaintext file of a job still waiting (an upload of an earlier version)."""
    folder = upload_dir()
    if not folder.is_dir():
        return Purged(0, 0)
    live = {Path(p).name: p for p in ImportJob.objects.filter(_kept()).exclude(stored_path="").values_list(
        "stored_path", flat=True)}
    removed = sealed_now = 0
    for path in folder.iterdir():
        if not path.is_file():
            continue
        if path.name not in live:
            path.unlink(missing_ok=True)
            removed += 1
        elif not sealed.is_sealed(path):
            seal_in_place(path)
            sealed_now += 1
    ImportJob.objects.exclude(_kept()).exclude(stored_path="").update(stored_path="")
    return Purged(removed, sealed_now)


def seal_other_uploads() -> tuple[int, int]:
    """Every file below MEDIA_ROOT outside the import folder (attachments and photos) sealed under the
    current data key: (plaintext files an earlier version wrote, sealed in place; files whose key was
    under an old data key, re-wrapped)."""
    root = Path(settings.MEDIA_ROOT)
    if not root.is_dir():
        return 0, 0
    imports = upload_dir().resolve()
    sealed_now = rewrapped = 0
    for path in sorted(root.rglob("*")):
        if not path.is_file() or imports in path.resolve().parents:
            continue
        if not sealed.is_sealed(path):
            seal_in_place(path)
            sealed_now += 1
        elif sealed.rewrap(path):
            rewrapped += 1
    return sealed_now, rewrapped


def seal_in_place(path: Path) -> None:
    """Replace the plaintext file ``path`` by its sealed copy (written beside it, then renamed over it)."""
    partial = path.with_name(path.name + ".sealing")
    partial.unlink(missing_ok=True)

    def chunks():
        with open(path, "rb") as f:
            while block := f.read(sealed.CHUNK):
                yield block

    sealed.seal(partial, chunks())
    partial.replace(path)
