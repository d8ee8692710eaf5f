"""Every role's pages lead everywhere the role may go, and nowhere that fails.

For every role (one person each, in alice's 文龙社区 world of tests/access_map.py, where an application,
titles, a warning, a notification and an import job exist), the crawler of tests/link_crawler.py starts
at the home page and follows every link and GET form by clicks:

- every URL it reaches answers 200 or 302 — no 404 from a dead button, no 403, no 500;
- every POST form on those pages posts to a page of the URL map;
- every page the role may open — each GET page of the URL map (the access map's requests about the
  role's own side of the world) that answers the role 200 — is reached within 3 clicks of home, except
  the few listed in NOT_LINKED with the reason.

The allowed pages come from the URL map, not from a list here: a page another engineer adds (and lists
in tests/access_map.py, as test_reliability_access.py requires) is checked for every role at once.
"""

from __future__ import annotations

import pytest
from access_map import KEYED, OWN, make_side
from django.test import Client
from django.urls import reverse
from link_crawler import Answer, crawl

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.units.models import Unit, UnitKind

PASSWORD = "correct-horse-battery"
CLICKS = 3

# Pages a role may open that no page links to, by design: name -> (the roles concerned, why).
ALL = frozenset(Role.values)
NOT_LINKED: dict[str, tuple[frozenset, str]] = {
    "accounts:password_sheet": (ALL, "reached from the job page of an import of accounts, while its passwords wait"),
    "notifications:read_all": (ALL, "a POST form's target (its GET answers the inbox)"),
    "applications:queue": (frozenset({Role.ADMIN, Role.BUILDING_HEAD, Role.GROUP_LEADER, Role.PROPERTY_MANAGER}),
                           "an empty 待办 for roles that review nothing; their 申请 page lists the applications"),
    "health:held_facts": (frozenset({Role.BUILDING_HEAD, Role.GROUP_LEADER, Role.PROPERTY_MANAGER, Role.COMMAND}),
                          "an empty list for roles that decide no held facts (health.selectors.may_decide_any); "
                          "in the header of those who do"),
    "web:transfers": (frozenset({Role.BUILDING_HEAD, Role.GROUP_LEADER, Role.PROPERTY_MANAGER, Role.COMMAND}),
                      "an empty queue for roles that decide no transfer (units.transfers.DECIDER_ROLES); "
                      "in the header of those who do"),
}


@pytest.fixture
def crew(world, alice, carol, erin, root, settings, tmp_path):
    """alice's side of the world and one person of every role, each at a unit of their role's kind:
    the building head of the side's building, the property manager of its compound, a group leader in
    红旗村, the health commission and the command at the district, an administrator of everything."""
    settings.MEDIA_ROOT = tmp_path
    side = make_side(alice)
    district = Unit.objects.get(code="500110")
    group = Unit.objects.filter(path__contains="/500110002208/", kind=UnitKind.GROUP).order_by("code").first()

    def person(name, role, unit):
        return do_create_user(actor=None, username=name, password=PASSWORD, role=role, unit=unit, display_name=name)

    people = {
        Role.BUILDING_HEAD: side.account,
        Role.GROUP_LEADER: person("gl", Role.GROUP_LEADER, group),
        Role.PROPERTY_MANAGER: person("pm", Role.PROPERTY_MANAGER, side.compound),
        Role.COMMUNITY_STAFF: alice,
        Role.STREET_STAFF: carol,
        Role.HEALTH_COMMISSION: person("hc", Role.HEALTH_COMMISSION, district),
        Role.COMMAND: erin,
        Role.ADMIN: root,
    }
    assert set(people) == set(Role.values)
    return side, people


def in_the_corner(side):
    """Paths about the side's own units, households and application (see ``crawl``'s ``always``)."""
    chain = [side.community.parent.code, side.community.code, side.compound.code, side.building.code]
    own = (f"/applications/{side.application.pk}/", f"/certificates/{side.title.certificate_number}")

    def always(path: str) -> bool:
        return path.startswith(own) or any(f"/units/{code}/" in path for code in chain) or (
            path.startswith("/households/") and side.building.code in path)
    return always


def client_fetch(client: Client):
    def fetch(url: str) -> Answer:
        response = client.get(url)
        content_type = response.get("Content-Type", "")
        body = response.content.decode(errors="replace") if "html" in content_type and not response.streaming else ""
        return Answer(response.status_code, content_type, body, response.get("Location", ""))
    return fetch


def allowed_pages(client: Client, side) -> set[str]:
    """The GET pages of the URL map that answer this person 200 about their own side of the world."""
    allowed = set()
    for name, factory in {**KEYED, **OWN}.items():
        for probe in factory(side, side):
            url = reverse(name, kwargs=probe.kwargs)
            if client.get(url, probe.query).status_code == 200:
                allowed.add(name)
                break
    return allowed


@pytest.mark.parametrize("role", Role.values)
def test_every_link_of_every_page_answers_and_every_allowed_page_is_within_3_clicks(crew, role):
    side, people = crew
    client = Client()
    client.force_login(people[role])
    allowed = allowed_pages(client, side)
    result = crawl(client_fetch(client), always=in_the_corner(side))
    assert result.bad == [], "links that answer neither 200 nor 302 (url, status, found on)"
    assert result.dead_forms == [], "POST forms to no page of the URL map (action, found on)"
    near = {name for name, depth in result.depth_of.items() if depth <= CLICKS}
    exempt = {name for name, (roles, _why) in NOT_LINKED.items() if role in roles}
    far = {name: result.depth_of.get(name) for name in allowed - near - exempt}
    assert far == {}, f"allowed pages not within {CLICKS} clicks (None: not reached at all)"
    assert len(result.visited) > 10  # the crawl did go somewhere
