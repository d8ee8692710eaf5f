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
from wuyiqu.units.models import Household, Unit

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


# The texts the treemap drew, each with whether ECharts cut it to fit its block ("未达…").
DRAWN_TEXTS = """() => {
  const chart = echarts.getInstanceByDom(document.getElementById('tree'));
  const out = [];
  chart.getZr().storage.getDisplayList(true).forEach((el) => {
    if (el.style && typeof el.style.text === 'string' && el.style.text) out.push([el.style.text, !!el.isTruncated]);
  });
  return out;
}"""
STATUS_WORDS = ("已命名", "警示中", "达标待命名", "已摘牌", "未达标", "暂无住户数据")


def check_labels(page):
    """No status word is drawn in a block (the colour and the legend say it, the tooltip too), so none
    is cut; what may be cut to fit a small block is a unit's name (the tooltip gives it whole)."""
    drawn = page.evaluate(DRAWN_TEXTS)
    assert drawn
    assert not [t for t, _ in drawn if any(w in t for w in STATUS_WORDS)], drawn
    names = set(Unit.objects.values_list("name", flat=True))
    assert not [t for t, cut in drawn if cut and t not in names], drawn


def children_rows(page) -> list[str]:
    """The codes of the 下级单位 table's rows."""
    return page.eval_on_selector_all("#children tbody tr", "(rows) => rows.map((r) => r.dataset.code)")


def drill(page, code: str, where: str):
    page.locator("#tree").scroll_into_view_if_needed()
    point = page.evaluate(NODE_CENTRE, code)  # viewport coordinates, after the scroll
    assert point is not None, code
    page.mouse.click(point["x"], point["y"])
    shows(page, "#tree-where", where)
    page.wait_for_timeout(500)
    check_labels(page)


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
    check_labels(page)
    street_rows = children_rows(page)
    assert "T1C" in street_rows and page.locator("#children").get_attribute("data-unit") == "T1"
    drill(page, "T1C", "测试社区")
    assert page.locator("#tree-up").is_visible()
    # The 下级单位 table follows the picture: the community's children now.
    community_children = sorted(c for c in statuses if c.startswith("T1C-") and c.count("-") == 1)
    assert sorted(children_rows(page)) == community_children
    assert page.locator("#children-of").inner_text() == "测试社区"
    assert page.locator("#children").get_attribute("data-unit") == "T1C"
    row = page.locator("#children tr[data-code='T1C-C1'] a")
    assert row.inner_text() == "龙湖花园" and row.get_attribute("href").startswith("/units/T1C-C1/dashboard/")
    drill(page, "T1C-C1", "龙湖花园")
    buildings = [code for code in statuses if code.startswith("T1C-C1-")]
    assert f"下级 {len(buildings)} 个" in page.locator("#tree-where").inner_text()
    assert sorted(children_rows(page)) == sorted(buildings)
    pill = page.locator(f"#children tr[data-code='{buildings[0]}'] .dash-pill")
    assert pill.get_attribute("class").endswith(f"st-{statuses[buildings[0]]}")
    page.locator("#tree").screenshot(path=str(SCREENS / "phone-dashboard-compound.png"))
    page.click("#tree-up")
    shows(page, "#tree-where", "测试社区")
    assert sorted(children_rows(page)) == community_children
    page.click("#tree-up")
    shows(page, "#children-of", "测试街道")
    assert children_rows(page) == street_rows

    page.goto(f"{live_server.url}/units/T1/blockers/?date={D.isoformat()}")
    assert page.locator("[data-criterion=all_households_signed] li[data-code='T1C-C1-B3']").count() == 1
    page.screenshot(path=str(SCREENS / "phone-blockers.png"), full_page=True)
    assert not errors, errors
    context.close()


def test_treemap_labels_are_not_cut_among_many_buildings(live_server, street_world, browser):
    """Twenty buildings in one compound on a phone: the blocks are small, and a label such as
    "龙湖花园12栋 未达标" was cut to "未达…". Now the blocks carry no status word to cut."""
    from test_standards_world import make_unit

    compound = street_world["C1"]
    for n in range(7, 21):
        b = make_unit(f"T1C-C1-B{n}", "building", compound, f"龙湖花园{n}栋")
        Household.objects.create(code=f"{b.code}-0101", unit=b, address=f"龙湖花园{n}栋101")
    cache.clear()
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, locale="zh-CN")
    page = context.new_page()
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/units/T1/dashboard/?date={D.isoformat()}")
    wait_for_charts(page)
    check_labels(page)
    drill(page, "T1C", "测试社区")
    drill(page, "T1C-C1", "龙湖花园")
    assert len(children_rows(page)) == 20
    page.locator("#tree").screenshot(path=str(SCREENS / "phone-dashboard-many-buildings.png"))
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
