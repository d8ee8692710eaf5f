"""A community worker's journey on a phone, in Debian's Chromium through Playwright: log in, walk the
tree down to a building, see its households with masked ID numbers, reveal one resident.
Screenshots (phone and desktop) go to bench/out/screens/ for a person to look at."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import PASSWORD, WENLONG_COMMUNITY

from wuyiqu.audit.models import AuditEvent
from wuyiqu.units.models import Resident, Unit, UnitKind

# Playwright's sync API runs an event loop in this thread; Django's guard would then refuse the
# ORM calls the test makes between browser steps. The test is synchronous, so that is safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENS = Path(__file__).resolve().parent.parent / "bench" / "out" / "screens"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
MASK = re.compile(r"^\d{3}\*{14}[\dX]$")  # first 3 and last 1 (docs/reliability.md)

pytestmark = pytest.mark.browser


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def log_in(page, base: str, username: str):
    page.goto(f"{base}/login/")
    assert page.locator("h1").inner_text() == "登录"
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_load_state()


def the_building(community: Unit) -> Unit:
    """The first building of the first compound of the community, as the tree shows them."""
    compound = Unit.objects.filter(parent=community, kind=UnitKind.COMPOUND).order_by("code").first()
    return Unit.objects.filter(parent=compound, kind=UnitKind.BUILDING).order_by("code").first()


def test_a_community_worker_finds_a_building_on_her_phone(live_server, world, alice, browser):
    SCREENS.mkdir(parents=True, exist_ok=True)
    community = Unit.objects.get(code=WENLONG_COMMUNITY)
    building = the_building(community)
    residents = list(Resident.objects.filter(household__unit__path__startswith=building.path))
    assert residents

    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                  is_mobile=True, has_touch=True, locale="zh-CN")
    page = context.new_page()
    log_in(page, live_server.url, "alice")
    # Home is alice's own community.
    assert page.url.endswith(f"/units/{WENLONG_COMMUNITY}/")
    assert community.display_name in page.locator("h1").inner_text()
    page.screenshot(path=str(SCREENS / "phone-community.png"), full_page=False)

    # Down the tree: community -> compound -> building, by tapping the list entries.
    page.click(f"ul.units a[href='/units/{building.parent.code}/']")
    page.wait_for_url(f"**/units/{building.parent.code}/")
    page.click(f"ul.units a[href='/units/{building.code}/']")
    page.wait_for_url(f"**/units/{building.code}/")
    assert building.name in page.locator("h1").inner_text()

    # Households with masked ID numbers; no full number anywhere on the page.
    id_cells = page.locator("table.residents td.mono:nth-child(2)")
    assert id_cells.count() >= 3
    for text in id_cells.all_inner_texts()[:10]:
        assert MASK.match(text.strip()), text
    html = page.content()
    for r in residents:
        assert r.reveal_id_number() not in html
    # Readable at phone width: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(SCREENS / "phone-building.png"), full_page=False)
    page.screenshot(path=str(SCREENS / "phone-building-full.png"), full_page=True)

    # Reveal one resident: htmx swaps the row in place and the look is audited.
    first = Resident.objects.filter(household__unit__path__startswith=building.path).order_by(
        "household__code", "id").first()
    row = page.locator(f"#resident-{first.pk}")
    row.locator("button").click()
    page.wait_for_selector(f"#resident-{first.pk}.revealed")
    assert first.reveal_id_number() in page.locator(f"#resident-{first.pk}").inner_text()
    assert page.url.endswith(f"/units/{building.code}/")  # swapped, not navigated
    assert AuditEvent.objects.filter(action="resident.reveal", actor=alice, target_id=str(first.pk)).count() == 1
    page.locator(f"#resident-{first.pk}").screenshot(path=str(SCREENS / "phone-revealed-row.png"))
    context.close()


def test_the_building_page_reads_well_on_a_desktop(live_server, world, alice, browser):
    SCREENS.mkdir(parents=True, exist_ok=True)
    building = the_building(Unit.objects.get(code=WENLONG_COMMUNITY))
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    log_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/units/{building.code}/")
    # On a desktop the residents are a table with a header row.
    assert page.locator("table.residents thead th").first.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.screenshot(path=str(SCREENS / "desktop-building.png"), full_page=False)
    # Search with htmx live results.
    page.goto(f"{live_server.url}/units/search/")
    page.fill("#q", building.parent.name[:2])
    page.wait_for_selector(f"#results a[href='/units/{building.parent.code}/']")
    page.screenshot(path=str(SCREENS / "desktop-search.png"), full_page=False)
    context.close()


def test_the_pages_fit_a_small_phone_in_english(live_server, world, alice, browser):
    """360 px wide, the longer English words: nothing may run off the side of the screen."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    building = the_building(Unit.objects.get(code=WENLONG_COMMUNITY))
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2, locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    # Chinese first even for an English browser; English is a choice made with the switch.
    assert page.locator("h1").inner_text() == "登录"
    page.click("form.lang button[value='en']")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Log in"
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_load_state()
    for url in (f"/units/{WENLONG_COMMUNITY}/", f"/units/{building.code}/", f"/units/{WENLONG_COMMUNITY}/import/",
                f"/units/{WENLONG_COMMUNITY}/ledger/", "/units/search/?q=1"):
        page.goto(f"{live_server.url}{url}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, url
    page.goto(f"{live_server.url}/units/{building.code}/")
    assert page.locator("h2", has_text="Households").count() == 1  # the page's headings in English
    page.screenshot(path=str(SCREENS / "phone360-en-building.png"), full_page=False)
    context.close()
