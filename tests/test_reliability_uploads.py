"""Hostile uploads (issue 9): attachments of an application and inspection/incident photos are judged
by their content — never by their name or the browser's Content-Type — and by their size; a refused
file leaves no row, no audit entry and no file behind. Served attachments carry their sniffed type,
``nosniff`` and a disposition with a name of our own."""

from __future__ import annotations

import io
import zipfile

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from test_applications_world import NOW, build, people
from test_standards_world import make_unit

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.applications import actions as application_actions
from wuyiqu.applications.actions import do_open_application
from wuyiqu.applications.models import Attachment
from wuyiqu.audit.models import AuditEvent
from wuyiqu.inspections import actions as inspection_actions
from wuyiqu.inspections.models import Incident, Inspection
from wuyiqu.lib import uploads
from wuyiqu.lib.dates import today

pytestmark = pytest.mark.django_db

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def a_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("payload.html", "<script>alert(1)</script>")
    return buf.getvalue()


# (name the client gives, the type the browser claims, the bytes, what the refusal must say)
HOSTILE = [
    ("scan.pdf", "application/pdf", b"MZ\x90\x00\x03\x00\x00\x00" + bytes(120), "它是Windows 程序"),
    ("scan.pdf", "application/pdf", b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>",
     "它是网页或脚本"),
    ("photo.png", "image/png", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "它是网页或脚本"),
    ("photo.png", "image/png", a_zip(), "它是ZIP 压缩包"),  # a "PNG" that is a zip
    ("photo.jpg", "image/jpeg", b"just some text, not a picture", "不是 JPEG、PNG 或 PDF 文件"),
    ("photo.jpg", "image/jpeg", b"", "是空的"),
]
HOSTILE_IDS = ["exe-named-pdf", "html-named-pdf", "svg-named-png", "zip-named-png", "text-named-jpg", "empty"]


@pytest.fixture(autouse=True)
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def files_under(folder) -> list:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# --- the content check on its own -------------------------------------------------------------------------


def test_the_type_comes_from_the_first_bytes_only():
    assert uploads.sniff(PNG) == ("image/png", "png")
    assert uploads.sniff(JPEG) == ("image/jpeg", "jpg")
    assert uploads.sniff(PDF) == ("application/pdf", "pdf")
    assert uploads.sniff(a_zip()) is None and uploads.sniff(b"GIF89a") is None and uploads.sniff(b"") is None
    assert uploads.describe(b"\xef\xbb\xbf  <HTML>") == "网页或脚本（HTML/SVG/XML）"
    assert uploads.describe(b"hello") is None


# --- application attachments -------------------------------------------------------------------------------


@pytest.fixture
def application():
    with time_machine.travel(NOW, tick=True):
        u = build()
        p = people(u)
        app = do_open_application(actor=p["hank"], unit=u["B1"])
        yield app, p


def post_attachment(client, app, name, content_type, data):
    upload = SimpleUploadedFile(name, data, content_type=content_type)
    return client.post(f"/applications/{app.pk}/attachments/", {"kind": "photo", "file": upload, "note": "x"},
                       follow=True)


@pytest.mark.parametrize(("name", "claimed", "data", "says"), HOSTILE, ids=HOSTILE_IDS)
def test_an_attachment_of_another_type_is_refused_with_its_reason(application, client_for, media, name, claimed,
                                                                   data, says):
    app, p = application
    response = post_attachment(client_for(p["hank"]), app, name, claimed, data)
    assert response.status_code == 200
    assert says in response.content.decode()
    assert not Attachment.objects.exists()
    assert not AuditEvent.objects.filter(action="applications.attachment").exists()
    assert files_under(media) == []


def test_an_attachment_over_the_size_limit_is_refused(application, client_for, media, monkeypatch):
    monkeypatch.setattr(application_actions, "SCAN_MAX_BYTES", 1024)
    app, p = application
    response = post_attachment(client_for(p["hank"]), app, "big.png", "image/png", PNG + bytes(2000))
    assert "超过上限 1.0\xa0KB" in response.content.decode()
    assert not Attachment.objects.exists() and files_under(media) == []


def test_the_limit_is_a_setting():
    from django.conf import settings

    assert application_actions.SCAN_MAX_BYTES == settings.ATTACHMENT_MAX_BYTES == 10 * 1024 * 1024
    assert inspection_actions.MAX_EVIDENCE_BYTES == settings.ATTACHMENT_MAX_BYTES


@pytest.mark.parametrize(("name", "data", "content_type", "ext"), [
    ("photo.exe", PNG, "image/png", "png"),  # the name says nothing: the content is a PNG
    ("scan.png", JPEG, "image/jpeg", "jpg"),
    ("scan", PDF, "application/pdf", "pdf"),
])
def test_an_accepted_attachment_is_stored_and_served_as_what_its_content_is(application, client_for, name, data,
                                                                             content_type, ext):
    app, p = application
    client = client_for(p["hank"])
    response = post_attachment(client, app, name, "text/html", data)  # the browser's claim is ignored
    assert "附件已上传" in response.content.decode()
    att = Attachment.objects.get()
    assert (att.content_type, att.size) == (content_type, len(data))
    assert att.file.name.endswith(f".{ext}") and name not in att.file.name
    served = client.get(f"/applications/{app.pk}/attachments/{att.pk}/")
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == data
    assert served["Content-Type"] == content_type
    assert served["X-Content-Type-Options"] == "nosniff"
    assert served["Content-Disposition"] == f'inline; filename="attachment-{att.pk}.{ext}"'
    assert served["Cache-Control"] == "private, no-store"


# --- inspection and incident photos -----------------------------------------------------------------------


@pytest.fixture
def staff(client):
    t = make_unit("T", "district")
    s = make_unit("T1", "street", t)
    c = make_unit("T1C", "community", s)
    make_unit("T1C-B1", "building", c, "1栋")
    user = do_create_user(actor=None, username="amy", password="correct-horse-battery", role=Role.COMMUNITY_STAFF,
                          unit=c, display_name="amy")
    client.force_login(user)
    return client


def post_inspection(client, upload):
    data = {"inspected_on": today().isoformat(), "inspector": "王五", "item_masks": "pass", "evidence": upload}
    return client.post("/units/T1C-B1/inspections/", data)


@pytest.mark.parametrize(("name", "claimed", "data", "says"), [h for h in HOSTILE if h[2]],
                         ids=[i for i, h in zip(HOSTILE_IDS, HOSTILE, strict=True) if h[2]])
def test_an_inspection_photo_of_another_type_is_refused(staff, media, name, claimed, data, says):
    response = post_inspection(staff, SimpleUploadedFile(name, data, content_type=claimed))
    assert response.status_code == 400
    assert says in response.content.decode()
    assert not Inspection.objects.exists() and files_under(media) == []


def test_an_empty_photo_is_refused_by_the_form(staff, media):
    response = post_inspection(staff, SimpleUploadedFile("a.jpg", b"", content_type="image/jpeg"))
    assert response.status_code == 400
    assert "所提交的是空文件" in response.content.decode()
    assert not Inspection.objects.exists() and files_under(media) == []


def test_an_oversize_incident_photo_is_refused(staff, media, monkeypatch):
    monkeypatch.setattr(inspection_actions, "MAX_EVIDENCE_BYTES", 100)
    data = {"occurred_on": today().isoformat(), "incident_type": "negative_opinion", "description": "网上传言",
            "evidence": SimpleUploadedFile("a.jpg", JPEG + bytes(200), content_type="image/jpeg")}
    response = staff.post("/units/T1C-B1/incidents/", data)
    assert response.status_code == 400
    assert "证明材料：文件“a.jpg”有 222\xa0字节，超过上限 100\xa0字节" in response.content.decode()
    assert not Incident.objects.exists() and files_under(media) == []
