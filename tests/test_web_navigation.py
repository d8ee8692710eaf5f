"""The header per role, the unit page's buttons and the title badges on unit pages and child cards."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from conftest import PASSWORD, WENLONG_COMMUNITY

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.certification.models import Title
from wuyiqu.lib.dates import today
from wuyiqu.supervision.models import Warning
from wuyiqu.units.models import TITLE_BY_KIND, Unit, UnitKind


def nav_of(html: str) -> dict[str, str]:
    """The header's links: data-nav key -> href."""
    header = html[html.index('<nav class="top-nav"'):html.index("</nav>", html.index('<nav class="top-nav"'))]
    return {key: href for href, key in re.findall(r'<a href="([^"]*)" data-nav="([^"]+)"', header)}


def unit_buttons(html: str) -> dict[str, str]:
    return {key: href for href, key in re.findall(r'<a class="button" href="([^"]*)" data-unit-link="([^"]+)"', html)}


@pytest.fixture
def compound(world):
    return Unit.objects.filter(path__contains=f"/{WENLONG_COMMUNITY}/", kind=UnitKind.COMPOUND).order_by("code").first()


def test_community_staff_reach_their_whole_toolbox_from_the_header(alice, client_for):
    html = client_for(alice).get(f"/units/{WENLONG_COMMUNITY}/").content.decode()
    nav = nav_of(html)
    # At least these (other slices add theirs, e.g. 审计); every link of the header is followed below.
    assert nav.items() >= {
        "home": "/", "queue": "/applications/queue/", "cross_scope": "/held-facts/", "applications": "/applications/",
        "dashboard": f"/units/{WENLONG_COMMUNITY}/dashboard/", "reports": f"/units/{WENLONG_COMMUNITY}/dashboard/#reports",
        "history": f"/units/{WENLONG_COMMUNITY}/history/", "import": f"/units/{WENLONG_COMMUNITY}/import/",
        "notifications": "/notifications/", "search": "/units/search/", "held_facts": "/held-facts/", "transfers": "/transfers/",
        "accounts": "/accounts/", "password": "/account/password/",
    }.items()
    buttons = unit_buttons(html)
    assert {"dashboard", "assessment", "history", "ledger", "inspections", "measures", "testing", "import"} <= set(buttons)
    client = client_for(alice)
    for key, href in {**nav, **buttons}.items():
        assert client.get(href.split("#")[0], follow=True).status_code == 200, key


@pytest.mark.parametrize("role", [Role.BUILDING_HEAD, Role.PROPERTY_MANAGER])
def test_roles_below_the_community_see_no_button_that_would_answer_404(world, compound, client_for, role):
    unit = compound if role == Role.PROPERTY_MANAGER else Unit.objects.filter(
        parent=compound, kind=UnitKind.BUILDING).order_by("code").first()
    person = do_create_user(actor=None, username=f"p-{role}", password=PASSWORD, role=role, unit=unit)
    client = client_for(person)
    html = client.get(f"/units/{unit.code}/").content.decode()
    buttons = unit_buttons(html)
    assert "measures" not in buttons and "testing" not in buttons and "import" not in buttons
    assert client.get(f"/units/{unit.code}/measures/").status_code == 404  # why they are not offered
    nav = nav_of(html)
    assert "queue" not in nav and "import" not in nav and "accounts" not in nav
    for href in [*buttons.values(), *nav.values()]:
        assert client.get(href.split("#")[0], follow=True).status_code == 200, href


def test_the_current_page_is_marked_in_the_header(alice, client_for):
    html = client_for(alice).get("/notifications/").content.decode()
    assert re.search(r'data-nav="notifications" id="inbox-link" aria-current="page"', html)


def test_the_phone_menu_works_without_script(alice, client_for):
    html = client_for(alice).get(f"/units/{WENLONG_COMMUNITY}/").content.decode()
    # A checkbox and its label open the list (CSS :checked); no script is involved.
    assert '<input type="checkbox" id="nav-toggle"' in html and '<label for="nav-toggle"' in html
    assert "onclick" not in html


def test_units_and_child_cards_show_their_title_badge(world, alice, compound, client_for):
    on = today()
    community = Unit.objects.get(code=WENLONG_COMMUNITY)
    buildings = list(Unit.objects.filter(parent=compound, kind=UnitKind.BUILDING).order_by("code")[:2])
    named = Title.objects.create(unit=compound, title=TITLE_BY_KIND["compound"], named_on=on - dt.timedelta(days=20),
                                 certificate_number="WYQ-NAV-1")
    Warning.objects.create(unit=compound, title=named, criterion="manual", detail="垃圾未分类", opened_on=on,
                           deadline=on + dt.timedelta(days=3))
    Title.objects.create(unit=buildings[0], title="无疫楼栋", named_on=on - dt.timedelta(days=40),
                         withdrawn_on=on - dt.timedelta(days=2), withdrawn_reason="阳性", certificate_number="WYQ-NAV-2")
    Title.objects.create(unit=buildings[1], title="无疫楼栋", named_on=on - dt.timedelta(days=10),
                         certificate_number="WYQ-NAV-3")
    client = client_for(alice)

    compound_page = client.get(f"/units/{compound.code}/").content.decode()
    since, until = (on - dt.timedelta(days=20)).isoformat(), (on + dt.timedelta(days=3)).isoformat()
    head = compound_page[compound_page.index("<h1>"):compound_page.index("</section>")]
    assert f"无疫小区 已命名 {since} 起" in head and f"已警示 整改至 {until}" in head
    assert 'href="/certificates/WYQ-NAV-1.pdf"' in head
    cards = compound_page[compound_page.index('<ul class="units">'):]
    withdrawn_on = (on - dt.timedelta(days=2)).isoformat()
    assert f"无疫楼栋 已摘牌 {withdrawn_on}" in cards
    assert f"无疫楼栋 已命名 {(on - dt.timedelta(days=10)).isoformat()} 起" in cards
    assert 'href="/certificates/WYQ-NAV-2.pdf"' in cards and 'href="/certificates/WYQ-NAV-3.pdf"' in cards
    assert client.get("/certificates/WYQ-NAV-3.pdf").status_code == 200
    assert cards.count('data-title-status="') == 2
    # The community was never named: "尚未命名" on its page.
    assert 'data-title-status="none"' in client.get(f"/units/{community.code}/").content.decode()
    # On the community's page the compound's card carries its badge.
    community_cards = client.get(f"/units/{community.code}/").content.decode().split('<ul class="units">')[1]
    card = community_cards[community_cards.index(f'/units/{compound.code}/'):].split("</li>")[0]
    assert 'data-title-status="warned"' in card and 'href="/certificates/WYQ-NAV-1.pdf"' in card


@pytest.mark.parametrize("page, here", [("measures", "管控人员"), ("testing", "核酸检测"), ("history", "监督记录"),
                                        ("inspections", "检查"), ("incidents", "登记事件"), ("assessment", "自评")])
def test_the_pages_of_a_unit_carry_its_breadcrumb(alice, client_for, page, here):
    html = client_for(alice).get(f"/units/{WENLONG_COMMUNITY}/{page}/").content.decode()
    crumbs = html[html.index('<nav class="crumbs"'):html.index("</nav>", html.index('<nav class="crumbs"'))]
    assert f'<a href="/units/{WENLONG_COMMUNITY}/">文龙社区</a>' in crumbs  # the unit itself, clickable
    assert "<span>文龙街道</span>" in crumbs  # above her scope: named, not a link
    assert f'<li aria-current="page">{here}</li>' in crumbs
