"""Attachments and inspection photos at rest (issue 14, 1): a scan of a paper co-signature sheet
carries residents' names and signatures, a photo may show people, so both are sealed under the data
key like import files (wuyiqu.lib.sealed_storage), mode 0600, and read back decrypted only through
the scoped views. `wuyiqu seal-uploads` seals what earlier versions wrote in clear."""

from __future__ import annotations

import io
import stat

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from test_reliability_uploads import (
    JPEG,
    PDF,
    application,
    files_under,
    post_attachment,
    post_inspection,
    staff,
)

from wuyiqu.applications.models import Attachment
from wuyiqu.inspections.models import Inspection
from wuyiqu.lib import sealed

pytestmark = pytest.mark.django_db
__all__ = ["application", "staff"]  # fixtures used by name

# A "scan" whose bytes carry a resident's name and number in clear, as a PDF of a sheet would.
SHEET = PDF + "联名表 张三 500110198203017011 签名".encode()


@pytest.fixture(autouse=True)
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def holds(folder, needle: bytes) -> list:
    return [p for p in files_under(folder) if needle in p.read_bytes()]


def test_an_attachment_is_sealed_0600_and_served_as_uploaded(application, client_for, media):
    app, p = application
    client = client_for(p["hank"])
    post_attachment(client, app, "sheet.pdf", "application/pdf", SHEET)
    att = Attachment.objects.get()
    stored = media / att.file.name
    assert sealed.is_sealed(stored) and stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert holds(media, b"500110198203017011") == [] and holds(media, "张三".encode()) == []
    assert default_storage.size(att.file.name) == len(SHEET) == att.size
    served = client.get(f"/applications/{app.pk}/attachments/{att.pk}/")
    assert b"".join(served.streaming_content) == SHEET and served["Content-Length"] == str(len(SHEET))


def test_an_inspection_photo_is_sealed(staff, media):
    response = post_inspection(staff, SimpleUploadedFile("a.jpg", JPEG + b"Exif face", content_type="image/jpeg"))
    assert response.status_code == 302
    stored = media / Inspection.objects.get().evidence
    assert sealed.is_sealed(stored) and stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert holds(media, b"Exif face") == []
    with default_storage.open(Inspection.objects.get().evidence) as f:
        assert f.read() == JPEG + b"Exif face"


def test_seal_uploads_seals_what_an_earlier_version_left_in_clear(application, client_for, media):
    app, p = application
    client = client_for(p["hank"])
    post_attachment(client, app, "sheet.pdf", "application/pdf", SHEET)
    att = Attachment.objects.get()
    stored = media / att.file.name
    with default_storage.open(att.file.name) as f:  # as an earlier version wrote it: in clear
        stored.chmod(0o644)
        stored.write_bytes(f.read())
    photo = media / "evidence" / "T1C-B1" / "old.jpg"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(JPEG)
    assert holds(media, "张三".encode()) == [stored]
    out = io.StringIO()
    call_command("seal-uploads", stdout=out)
    assert "附件和照片：加密 2 个，换用当前数据密钥 0 个" in out.getvalue()
    assert holds(media, "张三".encode()) == [] and sealed.is_sealed(photo)
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    served = client.get(f"/applications/{app.pk}/attachments/{att.pk}/")
    assert b"".join(served.streaming_content) == SHEET
    call_command("seal-uploads", stdout=io.StringIO())  # a second run finds nothing to do
    with default_storage.open(att.file.name) as f:
        assert f.read() == SHEET


def test_seal_uploads_moves_the_file_keys_to_a_rotated_data_key(application, client_for, media, settings):
    app, p = application
    client = client_for(p["hank"])
    post_attachment(client, app, "sheet.pdf", "application/pdf", SHEET)
    att = Attachment.objects.get()
    old = settings.DATA_KEY
    settings.DATA_KEY, settings.OLD_DATA_KEYS = "B" * 43 + "=", [old]  # rotated: the old key still reads
    settings.LOOKUP_KEY = settings.LOOKUP_KEY or old
    out = io.StringIO()
    call_command("seal-uploads", stdout=out)
    assert "换用当前数据密钥 1 个" in out.getvalue()
    settings.OLD_DATA_KEYS = []  # the old key dropped: the file still opens
    with default_storage.open(att.file.name) as f:
        assert f.read() == SHEET
