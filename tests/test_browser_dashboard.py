"""The dashboard in Debian's Chromium through Playwright: a street worker opens her dashboard on a phone
and on a desktop, reads the numbers (they match `wuyiqu evaluate` with the titles and warnings), sees
the charts drawn, and drills down the hierarchy picture from the street to the buildings of one
compound. Screenshots go to bench/out/screens/ for a person to look at."""

from __future__ import annotations

import importlib
import os
from collections import Counter
from pathlib import Path

import pytest
from django.apps import apps
from django.core.cache import cache
from test_dashboard_pages import build_world, evaluate_json, expected_statuses
from test_standards_world import D, days

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.standards.actions import do_store_evaluations

# Playwright's sync API runs an event loop in this thread; Django's guard would then refuse the
# ORM calls the test makes between browser steps. The test is synchronous, so that is safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENS = Path(__file__).resolve().parent.parent / "bench" / "out" / "screens"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
PASSWORD = "correct-horse-battery"

pytestmark = pytest.mark.browser

# Painted pixels of the canvas ECharts drew in ``sel``: neither transparent nor white.
PAINTED = """(sel) => {
  const c = document.querySelector(sel + ' canvas');
  if (!c) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 16) { if (d[i + 3] > 0 && (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240)) n++; }
  return n;
}"""

# Where the treemap drew the child ``code`` (ECharts' own layout of the node), in page coordinates.
NODE_CENTRE = """(code) => {
  const el = document.getElementById('tree');
  const tree = echarts.getInstanceByDom(el).getModel().getSeriesByIndex(0).getData().tree;
  let box = null;
  tree.root.eachNode((n) => { if (!box && n.depth === 1 && n.getModel().get('code') === code) box = n.getLayout(); });
  if (!box) return null;
  const r = el.getBoundingClientRect();
  return {x: r.left + box.x + box.width / 2, y: r.top + box.y + box.height / 2};
}"""


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def street_world(transactional_db):
    # A transactional test before this one may have flushed the seeded policy profile: seed it again.
    importlib.import_module("wuyiqu.standards.migrations.0002_seed_wenlong_2022").seed(apps, None)
    cache.clear()
    u = build_world()
    do_store_evaluations(on=D - days(2))
    do_store_evaluations(on=D)
    do_create_user(actor=None, username="sally", password=PASSWORD, role=Role.STREET_STAFF, unit=u["T1"],
                   display_name="sally")
    yield u
    cache.clear()


def log_in(page, base: str):
    page.goto(f"{base}/login/")
    page.fill("#id_username", "sally")
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_load_state()


def shows(page, selector: str, text: str):
    """Wait until ``selector`` contains ``text``. Not page.wait_for_function: polling a string predicate
    evaluates it in the page, which the Content-Security-Policy (no 'unsafe-eval') refuses."""
    from playwright.sync_api import expect

    expect(page.locator(selector)).to_contain_text(text, timeout=30_000)


def wait_for_charts(page):
    page.wait_for_selector("#tree canvas")
    page.wait_for_selector("#trend canvas")
    shows(page, "#tree-where", "下级")
    page.wait_for_timeout(700)  # the treemap's entry animation


def check_numbers(page, statuses):
    want = Counter(statuses.values())
    for status in ("named", "warned", "eligible", "withdrawn", "not_eligible"):
        shown = page.locator(f"[data-total-status={status}]").inner_text().strip()
        assert shown == str(want[status]), status
    named = want["named"] + want["warned"]
    assert page.locator("#unit-share").inner_text().strip() == f"{named / len(statuses) * 100:.1f}%"


def drill(page, code: str, where: str):
    page.locator("#tree").scroll_into_view_if_needed()
    point = page.evaluate(NODE_CENTRE, code)  # viewport coordinates, after the scroll
    assert point is not None, code
    page.mouse.click(point["x"], point["y"])
    shows(page, "#tree-where", where)
    page.wait_for_timeout(500)


def test_the_dashboard_on_a_phone_drills_down_to_the_buildings(live_server, street_world, browser):
    SCREENS.mkdir(parents=True, exist_ok=True)
    statuses = expected_statuses(evaluate_json())
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(f"{m.text} {m.location.get('url', '')}")
            if m.type == "error" and "favicon" not in m.location.get("url", "") else None)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/dashboard/?date={D.isoformat()}")
    page.wait_for_url(f"**/units/T1/dashboard/?date={D.isoformat()}")
    wait_for_charts(page)
    check_numbers(page, statuses)
    assert page.evaluate(PAINTED, "#tree") > 500
    assert page.evaluate(PAINTED, "#trend") > 200
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(SCREENS / "phone-dashboard.png"), full_page=False)
    page.screenshot(path=str(SCREENS / "phone-dashboard-full.png"), full_page=True)

    # Street -> community -> compound: the buildings of one compound, each coloured by its status.
    drill(page, "T1C", "测试社区")
    assert page.locator("#tree-up").is_visible()
    drill(page, "T1C-C1", "龙湖花园")
    buildings = [code for code in statuses if code.startswith("T1C-C1-")]
    assert f"下级 {len(buildings)} 个" in page.locator("#tree-where").inner_text()
    page.locator("#tree").screenshot(path=str(SCREENS / "phone-dashboard-compound.png"))
    page.click("#tree-up")
    shows(page, "#tree-where", "测试社区")

    page.goto(f"{live_server.url}/units/T1/blockers/?date={D.isoformat()}")
    assert page.locator("[data-criterion=all_households_signed] li[data-code='T1C-C1-B3']").count() == 1
    page.screenshot(path=str(SCREENS / "phone-blockers.png"), full_page=True)
    assert not errors, errors
    context.close()


def test_the_dashboard_on_a_desktop(live_server, street_world, browser):
    SCREENS.mkdir(parents=True, exist_ok=True)
    statuses = expected_statuses(evaluate_json())
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/units/T1/dashboard/?date={D.isoformat()}")
    wait_for_charts(page)
    check_numbers(page, statuses)
    assert page.evaluate(PAINTED, "#tree") > 1000
    assert page.evaluate(PAINTED, "#trend") > 300
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    page.screenshot(path=str(SCREENS / "desktop-dashboard.png"), full_page=True)
    drill(page, "T1C", "测试社区")
    page.locator("#tree").screenshot(path=str(SCREENS / "desktop-dashboard-community.png"))
    context.close()


def test_the_dashboard_charts_read_in_english_when_english_is_chosen(live_server, street_world, browser):
    """The chart texts come from the page's JSON data block (#dashboard-texts) in the chosen language:
    the line legend, the series and the caption of the hierarchy picture at every level."""
    from django.conf import settings

    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": "en", "url": live_server.url}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/units/T1/dashboard/?date={D.isoformat()}")
    page.wait_for_selector("#tree canvas")
    page.wait_for_selector("#trend canvas")
    shows(page, "#tree-where", "units below:")
    where = page.locator("#tree-where").inner_text()
    assert "(Street" in where and "下级" not in where and "（" not in where, where
    option = page.evaluate("""() => {
      const o = echarts.getInstanceByDom(document.getElementById('trend')).getOption();
      return {legend: o.legend[0].data, series: o.series.map((s) => s.name)};
    }""")
    assert option == {"legend": ["Named", "Meets the standard, not yet named"],
                      "series": ["Named", "Meets the standard, not yet named"]}
    page.wait_for_timeout(700)  # the treemap's entry animation
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "desktop-dashboard-en.png"), full_page=True)
    drill(page, "T1C", "测试社区")  # the unit's name is data: it stays Chinese
    where = page.locator("#tree-where").inner_text()
    assert "(Community" in where and "units below: " in where and "下级" not in where, where
    assert not errors, errors
    context.close()
