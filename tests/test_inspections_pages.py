"""Recording an inspection and an incident from a phone: scoped, checked evidence, audited."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from test_standards_world import make_unit

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.audit.models import AuditEvent
from wuyiqu.inspections.models import Incident, Inspection
from wuyiqu.lib import sealed
from wuyiqu.lib.dates import today

pytestmark = pytest.mark.django_db
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


@pytest.fixture
def units():
    t = make_unit("T", "district")
    s = make_unit("T1", "street", t)
    c = make_unit("T1C", "community", s)
    v = make_unit("T1V", "village", s)
    return {"b": make_unit("T1C-B1", "building", c, "1栋"), "c": c, "v": v}


@pytest.fixture(autouse=True)
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def login(client, unit, role=Role.COMMUNITY_STAFF, name="amy"):
    user = do_create_user(actor=None, username=name, password="correct-horse-battery", role=role, unit=unit,
                          display_name=name)
    client.force_login(user)
    return user


def post_inspection(client, code, evidence=None, **items):
    data = {"inspected_on": today().isoformat(), "inspector": "王五", **{f"item_{k}": v for k, v in items.items()}}
    if evidence is not None:
        data["evidence"] = evidence
    return client.post(f"/units/{code}/inspections/", data)


def test_it_records_items_and_stores_the_photo_outside_static(client, units, media):
    login(client, units["c"])
    page = client.get("/units/T1C-B1/inspections/")
    assert page.status_code == 200 and "出入口值守" in page.content.decode()
    resp = post_inspection(client, "T1C-B1", SimpleUploadedFile("a.jpg", PNG, "image/jpeg"),
                           masks="pass", entrance="fail")
    assert resp.status_code == 302
    rows = {i.item: i for i in Inspection.objects.all()}
    assert set(rows) == {"masks", "entrance"} and rows["masks"].passed and not rows["entrance"].passed
    assert rows["masks"].evidence.endswith(".png")  # typed by content, not by its name
    stored = Path(media) / rows["masks"].evidence
    assert stored.read_bytes()[:8] == b"WYQSEAL1" and PNG not in stored.read_bytes()  # sealed at rest
    with sealed.open_plain(stored) as f:
        assert f.read() == PNG
    assert AuditEvent.objects.filter(action="inspections.record").count() == 1
    post_inspection(client, "T1C-B1", entrance="pass")  # same day again: updated, not doubled
    assert Inspection.objects.count() == 2 and Inspection.objects.get(item="entrance").passed


@pytest.mark.parametrize(("content", "name"), [
    (b"MZ\x90\x00 not a picture", "photo.jpg"),
    (b"<html>", "scan.pdf"),
])
def test_a_file_that_is_not_jpeg_png_or_pdf_is_refused(client, units, media, content, name):
    login(client, units["c"])
    resp = post_inspection(client, "T1C-B1", SimpleUploadedFile(name, content, "image/jpeg"), masks="pass")
    assert resp.status_code == 400
    assert "不是 JPEG、PNG 或 PDF 文件" in resp.content.decode()
    assert not Inspection.objects.exists()
    assert not any(Path(media).rglob("*.*"))


def test_too_large_a_file_is_refused(client, units, monkeypatch):
    from wuyiqu.inspections import actions

    monkeypatch.setattr(actions, "MAX_EVIDENCE_BYTES", 50)
    login(client, units["c"])
    resp = post_inspection(client, "T1C-B1", SimpleUploadedFile("a.pdf", b"%PDF-1.4" + b"x" * 100), masks="pass")
    assert resp.status_code == 400 and "超过上限" in resp.content.decode()
    assert not Inspection.objects.exists()


def test_no_item_or_a_future_date_is_refused(client, units):
    login(client, units["c"])
    assert "至少填写一个检查项" in post_inspection(client, "T1C-B1").content.decode()
    data = {"inspected_on": (today() + dt.timedelta(days=1)).isoformat(), "inspector": "王五", "item_masks": "pass"}
    assert "晚于今天" in client.post("/units/T1C-B1/inspections/", data).content.decode()
    assert not Inspection.objects.exists()


def test_outside_scope_is_404_and_a_building_head_cannot_record(client, units):
    login(client, units["v"])
    assert client.get("/units/T1C-B1/inspections/").status_code == 404
    assert post_inspection(client, "T1C-B1", masks="pass").status_code == 404
    client.logout()
    login(client, units["b"], Role.BUILDING_HEAD, "ben")
    assert client.get("/units/T1C-B1/inspections/").status_code == 200
    assert post_inspection(client, "T1C-B1", masks="pass").status_code == 403
    assert not Inspection.objects.exists()


def test_it_records_an_incident(client, units):
    login(client, units["c"])
    data = {"occurred_on": today().isoformat(), "incident_type": "negative_opinion", "description": "网上传言"}
    assert client.post("/units/T1C/incidents/", data).status_code == 302
    assert Incident.objects.get().incident_type == "negative_opinion"
    again = client.post("/units/T1C/incidents/", data)
    assert again.status_code == 400 and "已登记过" in again.content.decode()
    assert AuditEvent.objects.filter(action="inspections.record_incident").count() == 1


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_date_inputs_carry_iso_values_the_browser_accepts(client, units, language, today):
    """<input type="date"> takes only YYYY-MM-DD; a localised 2026/12/07 is dropped by the browser."""
    login(client, units["c"])
    for url in ("/units/T1C-B1/inspections/", "/units/T1C/incidents/"):
        html = client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()
        inputs = re.findall(r'<input type="date"[^>]*>', html)
        assert inputs, url
        for tag in inputs:
            assert f'value="{today.isoformat()}"' in tag, (url, tag)
