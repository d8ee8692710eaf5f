"""Health facts by role (SPEC §1; issue 14, 3): volunteer roles see counts and what to do, never who.

A world where every kind of fact names residents of a building (in a compound) and of a group: a
positive case, a positive nucleic-acid result, a close contact, a home quarantine, a returnee and
special-population entries; the units held titles, the daily run withdrew them (reasons, warnings and
notices). Signed in as a building head, a property manager and a group leader, every GET route of the
URL map is walked with every key of their scope (pages, htmx fragments, exports), and the API: no
answer has a line that puts a health fact beside a person (name, masked name, masked number or phone).
Community staff, on the same pages, do see who.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from conftest import HONGQI_VILLAGE, WENLONG_COMMUNITY
from test_reliability_personal_data import _fill, _get_patterns, _text_of

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.applications.actions import do_open_application
from wuyiqu.applications.models import Application
from wuyiqu.certification.actions import write_existing_titles
from wuyiqu.imports.models import ImportJob, ImportStatus
from wuyiqu.imports.services import run_import
from wuyiqu.lib import dates
from wuyiqu.notifications.models import Notification
from wuyiqu.supervision.services import run_daily
from wuyiqu.units.models import Household, Resident, SpecialTag, Unit, UnitKind

DAY = dt.timedelta(days=1)
PASSWORD = "correct-horse-battery"
HEALTH_WORDS = ("阳性", "确诊", "无症状", "密接", "居家隔离", "返綦", "管控", "隔离", "感染", "来源地",
                "独居老人", "孕产妇", "残疾人", "婴幼儿", "血透病人", "肿瘤患者", "慢性病患者")
# Where a line ends in what a person reads: a block of HTML, a row of a sheet, a line of text.
LINE_BREAK = re.compile(r"</?(?:tr|li|p|div|section|h[1-6]|br|dt|dd|article|header|footer|option|row)\b[^>]*>|\n")
TAG = re.compile(r"<[^>]+>")


def _masked_name(name: str) -> str:
    return name[0] + "*" * max(1, len(name) - 1)


def _imported(tmp_path, kind, lines):
    path = tmp_path / f"{kind}.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    job = run_import(kind=kind, path=path)
    assert job.status == ImportStatus.SUCCEEDED, job.errors
    return job


def _facts_on(tmp_path, residents: list[Resident], tag: str):
    """Every kind of fact, each on another of ``residents``."""
    today = dates.today()
    n = [r.reveal_id_number() for r in residents]
    _imported(tmp_path, "cases", ["id_number,reported_on,type", f"{n[0]},{today - 2 * DAY},确诊"])
    _imported(tmp_path, "close-contacts", ["id_number,start_on,end_on", f"{n[1]},{today - 3 * DAY},{today + 4 * DAY}"])
    _imported(tmp_path, "home-quarantines", ["id_number,start_on,end_on",
                                             f"{n[2]},{today - 1 * DAY},{today + 6 * DAY}"])
    _imported(tmp_path, "returnees", ["id_number,origin,arrived_on,control_until",
                                      f"{n[3]},某省某市,{today - 2 * DAY},{today + 5 * DAY}"])
    _imported(tmp_path, "nat-results", ["id_number,sampled_at,result", f"{n[4]},{today - DAY} 08:30,阳性"])
    _imported(tmp_path, "special-population", ["id_number,tags,needs", f"{n[5]},{tag},", f"{n[6]},血透病人,透析"])


@pytest.fixture
def volunteer_world(world, alice, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    today = dates.today()
    community = Unit.objects.get(code=WENLONG_COMMUNITY)
    compound = Unit.objects.filter(path__startswith=community.path, kind=UnitKind.COMPOUND).order_by("code").first()
    building = next(b for b in Unit.objects.filter(path__startswith=compound.path, kind=UnitKind.BUILDING)
                    .order_by("code") if Resident.objects.filter(household__unit__path__startswith=b.path).count() >= 7)
    group = next(g for g in Unit.objects.filter(path__contains=f"/{HONGQI_VILLAGE}/", kind=UnitKind.GROUP)
                 .order_by("code") if Resident.objects.filter(household__unit__path__startswith=g.path).count() >= 7)
    village = Unit.objects.get(code=HONGQI_VILLAGE)
    write_existing_titles([(u.pk, u.kind, today - 30 * DAY) for u in (building, compound, community, group, village)])

    def person(name, role, unit):
        return do_create_user(actor=None, username=name, password=PASSWORD, role=role, unit=unit, display_name=name)

    volunteers = {
        Role.BUILDING_HEAD: person("bh", Role.BUILDING_HEAD, building),
        Role.PROPERTY_MANAGER: person("pm", Role.PROPERTY_MANAGER, compound),
        Role.GROUP_LEADER: person("gl", Role.GROUP_LEADER, group),
    }
    people = []
    for unit, tag in ((building, "独居老人"), (group, "肿瘤患者")):
        residents = list(Resident.objects.filter(household__unit__path__startswith=unit.path).order_by("id")[:7])
        people += residents
        _facts_on(tmp_path, residents, tag)

    run_daily(on=today)  # titles withdrawn with their reasons, warnings, notices to the people of the units
    for user in volunteers.values():
        do_open_application(actor=user, unit=user.unit)
    return {"people": people, "volunteers": volunteers, "building": building, "compound": compound, "group": group}


def _identities(people: list[Resident]) -> set[str]:
    out = set()
    for r in people:
        out |= {r.name, _masked_name(r.name), r.id_masked}
        if r.phone_masked:
            out.add(r.phone_masked)
    return out


def _health_lines(text: str, identities: set[str]) -> list[str]:
    """The lines of ``text`` that name a health fact and one of ``identities``."""
    out = []
    assert len(HEALTH_WORDS) == 10 + len(SpecialTag.values)
    if "</" in text:  # HTML or a sheet's XML: lines are its blocks and rows, not its source lines
        text = text.replace("\n", " ")
    for line in LINE_BREAK.split(text):
        line = TAG.sub(" ", line)
        if any(w in line for w in HEALTH_WORDS) and any(i in line for i in identities):
            out.append(line.strip()[:200])
    return out


def _walk(client, user, values, tmp_path) -> dict[str, str]:
    texts = {}
    for route, _pattern in _get_patterns():
        for url in _fill(route, values):
            for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
                resp = client.get(url, **headers)
                if resp.status_code != 200:
                    continue
                body = b"".join(resp.streaming_content) if resp.streaming else resp.content
                texts[f"{user.username} {url} {'htmx' if headers else ''}"] = _text_of(
                    body, resp.get("Content-Type", ""), tmp_path)
    return texts


def _values(world, user) -> dict[str, list[str]]:
    scope = user.unit
    units = list(Unit.objects.filter(path__startswith=scope.path).values_list("code", flat=True))
    units += [c for c in scope.ancestor_codes]
    households = {r.household.code for r in world["people"]} | set(
        Household.objects.filter(unit__path__startswith=scope.path).values_list("code", flat=True)[:4])
    return {
        "code": units + sorted(households),
        "resident_id": [str(r.pk) for r in world["people"]],
        "application_id": [str(pk) for pk in Application.objects.values_list("pk", flat=True)],
        "job_id": [str(pk) for pk in ImportJob.objects.values_list("pk", flat=True)[:3]],
        "kind": ["residents", "cases"],
        "notification_id": [str(pk) for pk in Notification.objects.filter(user=user).values_list("pk", flat=True)],
        "token": list(Application.objects.values_list("token", flat=True)),
    }


def test_volunteer_roles_see_no_person_beside_a_health_fact(client, volunteer_world, tmp_path):
    identities = _identities(volunteer_world["people"])
    for role, user in volunteer_world["volunteers"].items():
        client.force_login(user)
        texts = _walk(client, user, _values(volunteer_world, user), tmp_path)
        reached = " ".join(texts)
        # They did reach the pages that judge health facts: the self-assessment, their application
        # (with its live evaluation), their unit's page, households, notifications.
        assert f"/units/{user.unit.code}/assessment/" in reached, role
        assert "/applications/" in reached and "/notifications/" in reached, role
        assert any(h in reached for h in Household.objects.filter(unit__path__startswith=user.unit.path)
                   .values_list("code", flat=True)), role
        leaks = {url: lines for url, text in texts.items() if (lines := _health_lines(text, identities))}
        assert leaks == {}, role
        # The reasons told them how many and until when.
        assessment = texts[f"{user.username} /units/{user.unit.code}/assessment/ "]
        assert "名居民处于管控中，至" in assessment or "例阳性感染者" in assessment, role
        assert Notification.objects.filter(user=user).exists(), role
        # The API takes tokens, not a volunteer's session.
        assert client.get(f"/api/v1/units/{user.unit.code}/evaluation").status_code == 401


def test_community_staff_see_who_on_the_same_pages(client, volunteer_world, alice):
    building = volunteer_world["building"]
    client.force_login(alice)
    html = client.get(f"/units/{building.code}/assessment/").content.decode()
    names = [_masked_name(r.name) for r in volunteer_world["people"][:4]]
    assert all(n in html for n in names[1:4]), names  # the close contact, home quarantine and returnee
    assert "为密接，管控至" in html and "为居家隔离，管控至" in html
