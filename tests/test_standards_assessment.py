"""The self-assessment page: scoped, the same verdicts as `wuyiqu evaluate`, links to what to fix."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core.management import call_command
from test_standards_world import D, build_street, days

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.health.models import Measure
from wuyiqu.units.models import Resident

pytestmark = pytest.mark.django_db


def staff(unit, name="amy", role=Role.COMMUNITY_STAFF):
    return do_create_user(actor=None, username=name, password="correct-horse-battery", role=role, unit=unit,
                          display_name=name)


def page_verdicts(html: str) -> dict[str, bool]:
    return {cid: passed == "true" for cid, passed in re.findall(r'data-criterion="(\w+)"\s+data-passed="(\w+)"', html)}


def test_the_page_shows_what_evaluate_says(client):
    u = build_street()
    r = Resident.objects.filter(household__unit=u["B9"]).first()
    Measure.objects.create(resident=r, unit=u["B9"], id_hash=r.id_hash, id_masked=r.id_masked,
                           kind="close_contact", start_on=D - days(2), end_on=D + days(3))
    client.force_login(staff(u["T1C"]))
    out = io.StringIO()
    call_command("evaluate", "--json", "--date", D.isoformat(), stdout=out)
    by_unit = {d["unit"]: d for d in json.loads(out.getvalue())}
    for code in ("T1C", "T1C-B9", "T1C-C1", "T1C-C1-B1"):
        resp = client.get(f"/units/{code}/assessment/", {"date": D.isoformat()})
        assert resp.status_code == 200
        html = resp.content.decode()
        assert page_verdicts(html) == {c["id"]: c["passed"] for c in by_unit[code]["criteria"]}, code
        assert f'data-eligible="{str(by_unit[code]["eligible"]).lower()}"' in html
    html = client.get("/units/T1C-B9/assessment/", {"date": D.isoformat()}).content.decode()
    assert "为密接，管控至 2022-12-01" in html
    assert f"/residents/{r.pk}/timeline/" in html  # the link to what must be fixed
    assert "2022-12-02" in html  # the earliest day the measure no longer covers


def test_outside_the_users_subtree_is_404(client):
    u = build_street()
    client.force_login(staff(u["T1V"], "vic"))
    assert client.get("/units/T1C-B9/assessment/").status_code == 404
    assert client.get("/units/NOPE/assessment/").status_code == 404
    assert client.get("/units/T1V-G1/assessment/", {"date": D.isoformat()}).status_code == 200


def test_a_bad_date_is_said_and_today_used(client):
    u = build_street()
    client.force_login(staff(u["T1"], "sam", Role.STREET_STAFF))
    resp = client.get("/units/T1/assessment/", {"date": "2022-13-40"})
    assert resp.status_code == 200 and "不存在" in resp.content.decode()


def test_anonymous_is_sent_to_login(client):
    build_street()
    resp = client.get("/units/T1/assessment/")
    assert resp.status_code == 302 and "login" in resp["Location"]
