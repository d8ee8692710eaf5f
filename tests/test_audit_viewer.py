"""The audit viewer (issue 14): administrators, the district and the street see who looked at or changed
whose data in their scope, filter by user, person, unit, action and date, export to Excel; reveals and
refusals stand out. Community staff and volunteer roles may not open it."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
from conftest import WENLONG_COMMUNITY

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.audit import actions as audit
from wuyiqu.audit.models import AuditEvent
from wuyiqu.lib import dates
from wuyiqu.units.models import Resident, Unit, UnitKind


@pytest.fixture
def looks(world, alice, bob, client):
    """alice reveals two of her residents, bob one of his; a refused lookup recorded by another part."""
    mine = list(Resident.objects.filter(household__unit__path__startswith=alice.unit.path).order_by("id")[:2])
    theirs = Resident.objects.filter(household__unit__path__startswith=bob.unit.path).order_by("id").first()
    for user, residents in ((alice, mine), (bob, [theirs])):
        client.force_login(user)
        for r in residents:
            assert client.post(f"/residents/{r.pk}/reveal/").status_code == 200
    audit.record(actor=bob, action="imports.refused_out_of_scope", unit=bob.unit, detail={"rows": 3})
    client.logout()
    return {"mine": mine, "theirs": theirs}


def page(client, viewer, **query):
    client.force_login(viewer)
    resp = client.get("/audit/", query)
    assert resp.status_code == 200, resp.status_code
    return resp.content.decode()


@pytest.mark.parametrize("who", ["alice", "dave"])
def test_community_staff_and_volunteers_may_not_open_it(client, looks, request, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get("/audit/").status_code == 403
    assert client.get("/audit/export.xlsx").status_code == 403
    assert "/audit/" not in client.get(f"/units/{request.getfixturevalue(who).unit.code}/").content.decode()


def test_the_street_sees_its_scope_and_what_stands_out(client, looks, carol):
    html = page(client, carol)
    assert html.count('data-action="resident.reveal"') == 3  # alice's two and bob's one: both in the street
    assert html.count("stands-out") == 4 and 'id="audit-standing-out"' in html  # and the refused lookup
    masked = looks["mine"][0]
    assert f"{masked.name[0]}" in html and masked.id_masked in html
    assert masked.reveal_id_number() not in html  # the viewer never shows a whole number
    assert "/audit/?unit=" in client.get(f"/units/{carol.unit.code}/").content.decode()  # linked from the home page


def test_another_street_sees_none_of_it(client, looks, world):
    other_street = Unit.objects.filter(kind=UnitKind.STREET).exclude(code=world.code).order_by("code").first()
    stranger = do_create_user(actor=None, username="sam", password="correct-horse-battery", role=Role.STREET_STAFF,
                              unit=other_street, display_name="sam")
    html = page(client, stranger)
    assert 'data-action="resident.reveal"' not in html and "imports.refused_out_of_scope" not in html
    # A whole ID number of someone outside their scope finds nothing either.
    html = page(client, stranger, person=looks["mine"][0].reveal_id_number())
    assert 'data-action="resident.reveal"' not in html


def test_filters_by_user_person_unit_action_and_date(client, looks, root, alice):
    assert page(client, root, user="alice").count('data-action="resident.reveal"') == 2
    person = looks["mine"][1]
    by_number = page(client, root, person=person.reveal_id_number())
    assert by_number.count('data-action="resident.reveal"') == 1 and person.id_masked in by_number
    assert AuditEvent.objects.filter(actor=root, action="audit.search_person").count() == 1
    by_name = page(client, root, person=person.name)
    assert person.id_masked in by_name
    by_unit = page(client, root, unit=WENLONG_COMMUNITY)
    assert by_unit.count('data-action="resident.reveal"') == 2
    assert 'data-action="imports.refused_out_of_scope"' not in by_unit
    assert page(client, root, action="imports.refused_out_of_scope").count("stands-out") == 1
    assert page(client, root, action="resident.").count('data-action="resident.reveal"') == 3
    today = dates.today()
    assert page(client, root, since=today.isoformat(), until=today.isoformat()).count(
        'data-action="resident.reveal"') == 3
    assert 'data-action="resident.reveal"' not in page(client, root, until=(today - dt.timedelta(days=1)).isoformat())
    bad = page(client, root, since="2022-13-45")
    assert "起始日期" in bad and bad.count('data-action="resident.reveal"') == 3  # a bad date is said and ignored


def test_export_to_excel_is_the_filtered_rows_and_is_audited(client, looks, erin):
    client.force_login(erin)
    resp = client.get("/audit/export.xlsx", {"user": "alice"})
    assert resp.status_code == 200 and resp["Content-Type"].startswith("application/vnd.openxmlformats")
    with zipfile.ZipFile(io.BytesIO(resp.content)) as z:
        rows = z.read("xl/worksheets/sheet1.xml").decode()
        sheet = z.read("xl/sharedStrings.xml").decode()
    assert rows.count("<row ") == 1 + 2  # the header and alice's two reveals
    assert "resident.reveal" in sheet and looks["mine"][0].id_masked in sheet
    assert "imports.refused_out_of_scope" not in sheet
    assert AuditEvent.objects.get(actor=erin, action="audit.export").detail["rows"] == 2
