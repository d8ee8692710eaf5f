"""Every page of the applications, certification and notifications apps: inside the scope it is
served, outside it is a 404 (the same as a missing object), anonymous visitors are sent to the login
page — except the two public pages (signing by token, certificate verification), which show no names."""

from __future__ import annotations

import pytest
import time_machine
from django.urls import resolve
from test_applications_world import NOW, build, name_through_chain, people, sign_all

from wuyiqu.applications.actions import do_open_application, do_record_paper_sheet, do_submit_application
from wuyiqu.certification.models import Title
from wuyiqu.notifications.models import Notification
from wuyiqu.units.models import Household, Resident

PUBLIC = {"applications:sign", "certification:verify"}
NO_SUCH_CERTIFICATE = {"certification:verify_malformed"}  # public too: 查无此证书 (tests/test_public_pages.py)


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def objs(db, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = tmp_path
    u = build()
    p = people(u)
    named = do_open_application(actor=p["bella"], unit=u["B9"])
    sign_all(named)
    named = name_through_chain(do_submit_application(actor=p["bella"], application=named), p)
    app = do_open_application(actor=p["hank"], unit=u["B1"])
    hh = Household.objects.filter(unit=u["B1"]).first()
    _c, _e, att = do_record_paper_sheet(actor=p["hank"], application=app, household_ids=[hh.pk],
                                        signed_on=NOW.date(), scan=SimpleUploadedFile("s.png", b"\x89PNG\r\n\x1a\n1"))
    title = Title.objects.get(application=named)
    note = Notification.objects.filter(user=p["cora"]).first()
    return u, p, {"app": app, "att": att, "title": title, "note": note}


def pages(o) -> list[tuple[str, str, dict]]:
    a = o["app"].pk
    return [
        ("get", "/applications/", {}),
        ("get", "/applications/queue/", {}),
        ("post", "/applications/open/", {"unit": "T1C-C1-B1"}),
        ("get", f"/applications/{a}/", {}),
        ("get", f"/applications/{a}/progress/", {}),
        ("post", f"/applications/{a}/paper/", {"signed_on": "2022-11-28"}),
        ("post", f"/applications/{a}/attachments/", {"kind": "photo"}),
        ("get", f"/applications/{a}/attachments/{o['att'].pk}/", {}),
        ("post", f"/applications/{a}/unit-signature/", {"signed_on": "2022-11-28"}),
        ("post", f"/applications/{a}/submit/", {}),
        ("post", f"/applications/{a}/unlock/", {"household": "0"}),
        ("post", f"/applications/{a}/review/", {"decision": "approve", "opinion": "x"}),
        ("get", f"/applications/{a}/poster/", {}),
        ("get", f"/applications/{a}/qr.png", {}),
        ("get", f"/s/{o['app'].token}/", {}),
        ("get", f"/certificates/{o['title'].certificate_number}.pdf", {}),
        ("get", f"/verify/{o['title'].certificate_number}/", {}),
        ("get", "/verify/a/b/", {}),
        ("get", "/notifications/", {}),
        ("post", "/notifications/read/", {}),
        ("post", f"/notifications/{o['note'].pk}/open/", {}),
    ]


SCOPED = {f"applications:{n}" for n in ("open", "detail", "progress", "paper", "add_attachment", "attachment",
                                        "unit_signature", "submit", "unlock", "review", "poster", "qr")} | {
    "certification:certificate", "notifications:open"}  # the last: someone else's notification


def test_the_list_covers_every_page(objs):
    from wuyiqu.applications.urls import urlpatterns as a
    from wuyiqu.certification.urls import urlpatterns as c
    from wuyiqu.notifications.urls import urlpatterns as n

    covered = {resolve(url).view_name for _m, url, _d in pages(objs[2])}
    assert {f"{ns}:{x.name}" for ns, patterns in (("applications", a), ("certification", c), ("notifications", n))
            for x in patterns} == covered


def test_outside_the_scope_every_object_page_is_404(objs, client_for):
    u, p, o = objs
    c = client_for(p["tom"])  # street staff of another street
    for method, url, data in pages(o):
        r = getattr(c, method)(url, data)
        name = resolve(url).view_name
        if name in SCOPED or name in NO_SUCH_CERTIFICATE:
            assert r.status_code == 404, url
        else:
            assert r.status_code in (200, 302), url
    assert o["app"].__class__.objects.get(pk=o["app"].pk).status == "draft"


def test_inside_the_scope_the_pages_are_served(objs, client_for):
    u, p, o = objs
    c = client_for(p["hank"])
    for url in (f"/applications/{o['app'].pk}/", f"/applications/{o['app'].pk}/poster/",
                f"/applications/{o['app'].pk}/attachments/{o['att'].pk}/", "/applications/", "/notifications/"):
        assert c.get(url).status_code == 200, url
    assert client_for(p["bella"]).get(f"/certificates/{o['title'].certificate_number}.pdf").status_code == 200


def test_anonymous_visitors_are_sent_to_login_except_on_the_public_pages(objs, client):
    u, p, o = objs
    for method, url, data in pages(o):
        r = getattr(client, method)(url, data)
        if resolve(url).view_name in NO_SUCH_CERTIFICATE:
            assert r.status_code == 404 and "查无此证书" in r.content.decode(), url
        elif resolve(url).view_name in PUBLIC:
            assert r.status_code == 200, url
            html = r.content.decode()
            assert "hank" not in html and "bella" not in html
            for r_name, masked in Resident.objects.values_list("name", "phone_masked"):
                assert r_name not in html and masked not in html, url
        else:
            assert r.status_code == 302 and "/login/" in r["Location"], url
