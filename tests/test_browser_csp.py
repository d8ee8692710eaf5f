"""The pages work under the Content-Security-Policy in Debian's Chromium: a community worker signs in,
opens her unit, a household, reveals a resident (htmx POST), searches (htmx GET), opens her dashboard
(ECharts, with its tooltips shown), an application (its progress polling), its poster (QR code) and
signing page, and the API's Swagger UI; the browser reports no violation of the
policy on any of them, and no script error."""

from __future__ import annotations

import importlib

import pytest
from conftest import PASSWORD, WENLONG_COMMUNITY
from django.apps import apps

from wuyiqu.applications.actions import do_open_application
from wuyiqu.lib.dates import today
from wuyiqu.standards.actions import do_store_evaluations
from wuyiqu.units.models import Household, Unit, UnitKind

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
# Collected in the page before any of its own scripts run (an init script is not subject to the policy).
LISTEN = ("window.__csp = []; document.addEventListener('securitypolicyviolation', "
          "(e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || '')));")

pytestmark = pytest.mark.browser


@pytest.fixture
def page(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django's guard would then refuse the ORM
    # calls the test makes between browser steps. The test is synchronous, so that is safe. Set for
    # this test only: set at import it would reach every subprocess of the suite (`check --deploy`).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_context(locale="zh-CN").new_page()
        page.add_init_script(LISTEN)
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("console", lambda m: page.errors.append(m.text)
                if m.type == "error" and "favicon" not in m.location.get("url", "") else None)
        yield page
        browser.close()


def violations(page) -> list[str]:
    return page.evaluate("window.__csp")


def test_the_pages_need_nothing_the_policy_blocks(live_server, world, alice, dave, page):
    # A transactional test before this one may have flushed the seeded policy profile: seed it again.
    importlib.import_module("wuyiqu.standards.migrations.0002_seed_wenlong_2022").seed(apps, None)
    base = live_server.url
    seen = {}

    def check(what: str):
        seen[what] = violations(page)

    response = page.goto(f"{base}/login/")
    assert response.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self';")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(f"**/units/{WENLONG_COMMUNITY}/")
    check("unit")

    community = Unit.objects.get(code=WENLONG_COMMUNITY)
    building = Unit.objects.filter(path__startswith=community.path, kind=UnitKind.BUILDING,
                                   households__isnull=False).order_by("code").first()
    household = Household.objects.filter(unit=building).order_by("code").first()
    page.goto(f"{base}/households/{household.code}/")
    page.locator("tr form[hx-post] button").first.click()  # reveal: an htmx POST with the CSRF token
    page.wait_for_selector("tr.revealed", timeout=5000)
    check("household + reveal")

    page.goto(f"{base}/units/search/")
    page.fill("input[name=q]", "滨江")
    page.wait_for_selector("#results a", timeout=5000)
    check("search (htmx)")

    do_store_evaluations(on=today())  # a point on the trend, for its tooltip
    page.goto(f"{base}/units/{WENLONG_COMMUNITY}/dashboard/")
    page.wait_for_selector("#trend canvas")  # not wait_for_function: its polling evals, which the policy refuses
    page.wait_for_selector("#tree canvas")
    for chart in ("#tree", "#trend"):  # hover each chart: its tooltip is drawn
        page.locator(chart).scroll_into_view_if_needed()
        box = page.locator(chart).bounding_box()  # in the viewport, after the scroll
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.6)
        page.mouse.move(box["x"] + box["width"] - 30, box["y"] + box["height"] * 0.6, steps=10)
        page.wait_for_timeout(1000)
        if chart == "#tree":  # an HTML tooltip of our own formatter: escaped text and <br>, no style=""
            assert page.locator("#tree > div").nth(1).inner_text().strip()  # e.g. "未达标：3"
    # The trend's tooltip is drawn on the canvas (ECharts' own HTML for it has style="" attributes): the
    # series' names are there twice, in the legend and in the tooltip.
    texts = page.evaluate("""() => echarts.getInstanceByDom(document.getElementById('trend')).getZr().storage
        .getDisplayList().filter((e) => e.style && e.style.text).map((e) => e.style.text)""")
    assert texts.count("已命名") == 2, texts
    check("dashboard (ECharts)")

    app = do_open_application(actor=dave, unit=dave.unit)
    page.goto(f"{base}/applications/{app.pk}/")  # the co-signature progress polls (htmx every 5 s)
    page.wait_for_timeout(5500)
    check("application")
    page.goto(f"{base}/applications/{app.pk}/poster/")  # the QR code as inline SVG
    check("poster")
    page.goto(f"{base}/s/{app.token}/")  # the residents' signing page
    check("signing page")

    page.goto(f"{base}/api/v1/docs")
    page.wait_for_selector(".opblock", timeout=10000)
    page.locator(".opblock-summary").first.click()
    page.wait_for_selector(".opblock-body", timeout=5000)
    assert page.locator(".opblock").count() >= 10
    check("Swagger UI")

    assert seen == {k: [] for k in seen}
    assert page.errors == []
    # The listener does hear a violation: an inline style written into the page is one.
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">x</p>')")
    page.wait_for_timeout(200)
    assert any(v.startswith("style-src") for v in violations(page)), violations(page)
