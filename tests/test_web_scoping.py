"""Every web page that shows personal data is inside the user's scope: alice (文龙社区) sees her
community's pages, bob (天桥社区, her sibling) gets 404 for each of them — the same answer as for
something that does not exist — and anonymous visitors are sent to the login page."""

from __future__ import annotations

import base64

import pytest
from conftest import WENLONG_COMMUNITY

from wuyiqu.audit.models import AuditEvent
from wuyiqu.imports.models import ImportJob
from wuyiqu.imports.services import build_template, create_job
from wuyiqu.lib import crypto
from wuyiqu.units.models import Household, Resident, SpecialPopulationEntry, Unit, UnitKind


@pytest.fixture
def alices(world):
    """Objects of alice's community: the community, a building, a household, a resident, a job."""
    community = Unit.objects.get(code=WENLONG_COMMUNITY)
    building = Unit.objects.filter(path__startswith=community.path, kind=UnitKind.BUILDING,
                                   households__isnull=False).order_by("code").first()
    household = Household.objects.filter(unit=building).order_by("code").first()
    resident = Resident.objects.filter(household=household).order_by("id").first()
    SpecialPopulationEntry.objects.create(resident=resident, tags="elderly_alone", needs="送药", helper="张三")
    job = create_job(kind="households", filename="a.csv", actor=None, scope=community)
    # Its refused rows, as the job keeps them (encrypted): the workbook a person downloads.
    ImportJob.objects.filter(pk=job.pk).update(error_workbook=crypto.cipher().encrypt(
        base64.b64encode(build_template("households")).decode()))
    return {"community": community, "building": building, "household": household, "resident": resident, "job": job}


def personal_pages(o) -> list[tuple[str, str]]:
    """(method, url) of every page that shows personal data, for objects of alice's community."""
    return [
        ("get", f"/units/{o['community'].code}/"),
        ("get", f"/units/{o['building'].code}/"),
        ("get", f"/households/{o['household'].code}/"),
        ("post", f"/residents/{o['resident'].pk}/reveal/"),
        ("get", f"/units/{o['community'].code}/ledger/"),
        ("get", f"/units/{o['building'].code}/ledger/"),
        ("get", f"/units/{o['community'].code}/import/"),
        ("get", f"/units/{o['community'].code}/import/template/households/"),
        ("get", f"/imports/{o['job'].pk}/"),
        ("get", f"/imports/{o['job'].pk}/errors.xlsx"),
        # The forms of web/records.py (tests/test_web_records.py posts to them).
        ("get", f"/units/{o['building'].code}/record/cases/"),
        ("get", f"/households/{o['household'].code}/residents/add/"),
        ("get", f"/residents/{o['resident'].pk}/ledger/"),
        ("get", f"/residents/{o['resident'].pk}/remove/"),
        ("get", f"/residents/{o['resident'].pk}/move/"),
    ]


# No object of someone else's in the URL (the transfer queue lists only what the user may decide).
PUBLIC_OR_OWN = {"login", "logout", "home", "unit_search", "transfers"}
# POST-only forms that show nothing (tests/test_web_records.py checks their scope and roles).
POST_ONLY = {"lift_risk_zone", "verify_household", "review_ledger_entry",
             "import_confirm",  # tests/test_web_import_preview.py: bob gets 404
             "decide_transfer"}  # tests/test_cross_scope.py: a user not covering both households gets 404


def test_the_list_covers_every_page_of_the_web_app(alices):
    """A new page with an object in its URL must be added to personal_pages (and so to these tests)."""
    from django.urls import resolve

    from wuyiqu.web.urls import urlpatterns

    covered = {resolve(url).url_name for _method, url in personal_pages(alices)}
    assert {p.name for p in urlpatterns} - PUBLIC_OR_OWN - POST_ONLY == covered


def test_it_serves_alice_every_page_of_her_community(alices, alice, client_for):
    # The job is her upload: its refused rows (the error workbook) go back only to who uploaded them.
    ImportJob.objects.filter(pk=alices["job"].pk).update(created_by=alice)
    client = client_for(alice)
    for method, url in personal_pages(alices):
        response = getattr(client, method)(url)
        assert response.status_code == 200, url


def test_it_answers_404_to_bob_for_every_page_of_his_sibling(alices, bob, client_for):
    client = client_for(bob)
    events_before = AuditEvent.objects.count()
    for method, url in personal_pages(alices):
        response = getattr(client, method)(url)
        assert response.status_code == 404, url
        html = response.content.decode()
        assert alices["community"].code not in html.replace(url, "")  # nothing about the object leaks
        assert alices["resident"].name not in html
    assert "不在您的管辖范围内" in html  # the same friendly page as for a missing object
    # A refused look leaves no audit row claiming bob saw something.
    assert AuditEvent.objects.count() == events_before


def test_it_answers_404_for_missing_objects_as_for_forbidden_ones(alice, client_for):
    client = client_for(alice)
    missing = client.get("/units/999999999999/")
    assert missing.status_code == 404 and "不在您的管辖范围内" in missing.content.decode()
    assert client.get("/households/NOPE/").status_code == 404
    assert client.post("/residents/987654321/reveal/").status_code == 404
    assert client.get("/imports/987654321/").status_code == 404


def test_it_sends_anonymous_visitors_to_login(alices, client):
    for method, url in personal_pages(alices) + [("get", "/"), ("get", "/units/search/?q=文龙")]:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/"), url


def test_it_lets_a_street_officer_see_the_communities_below(alices, carol, client_for):
    client = client_for(carol)
    assert client.get(f"/units/{alices['building'].code}/").status_code == 200
    assert client.get(f"/households/{alices['household'].code}/").status_code == 200


def test_it_keeps_a_building_head_inside_his_building(alices, dave, client_for):
    client = client_for(dave)
    assert client.get(f"/units/{dave.unit.code}/").status_code == 200
    assert client.get(f"/units/{alices['community'].code}/").status_code == 404
    other = Household.objects.filter(unit__path__startswith=alices["community"].path).exclude(
        unit__path__startswith=dave.unit.path).first()
    assert client.get(f"/households/{other.code}/").status_code == 404


def test_it_shows_only_masked_numbers(alices, alice, client_for):
    client = client_for(alice)
    residents = list(Resident.objects.filter(household__unit=alices["building"]))
    html = client.get(f"/units/{alices['building'].code}/").content.decode()
    html += client.get(f"/households/{alices['household'].code}/").content.decode()
    html += client.get(f"/units/{alices['community'].code}/ledger/").content.decode()
    shown = 0
    for r in residents:
        assert r.reveal_id_number() not in html
        if r.phone_enc:
            assert r.reveal_phone() not in html
        if r.id_masked in html:
            shown += 1
    assert shown >= 1
    assert alices["resident"].id_masked in html


def test_it_reveals_one_resident_and_audits_it(alices, alice, client_for):
    client = client_for(alice)
    resident = alices["resident"]
    response = client.post(f"/residents/{resident.pk}/reveal/", HTTP_HX_REQUEST="true", REMOTE_ADDR="10.1.2.3")
    html = response.content.decode()
    assert response.status_code == 200
    assert resident.reveal_id_number() in html
    assert html.lstrip().startswith(f'<tr id="resident-{resident.pk}"')  # the row htmx swaps in
    assert response["Cache-Control"] == "no-store"
    event = AuditEvent.objects.get(action="resident.reveal")
    assert event.actor == alice
    assert event.target_id == str(resident.pk)
    assert event.ip == "10.1.2.3"


def test_it_refuses_reveal_by_get(alices, alice, client_for):
    response = client_for(alice).get(f"/residents/{alices['resident'].pk}/reveal/")
    assert response.status_code == 405
    assert not AuditEvent.objects.filter(action="resident.reveal").exists()


def test_it_requires_the_csrf_token_to_reveal(alices, alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(f"/residents/{alices['resident'].pk}/reveal/")
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="resident.reveal").exists()
