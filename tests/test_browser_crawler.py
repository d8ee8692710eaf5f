"""The link crawl of test_web_crawler.py in Debian's Chromium (Playwright): every role signs in through
the login form on a 390 px phone screen, and the crawler follows the links of the pages as Chromium
renders them (after their scripts ran); the same checks. And the phone menu: closed at first, opened by
a tap without any script of ours, every header link then on screen."""

from __future__ import annotations

import importlib
import os

import pytest
from django.apps import apps
from django.core.cache import cache
from link_crawler import Answer, crawl
from test_web_crawler import (
    CLICKS,
    NOT_LINKED,
    allowed_pages,
    crew,  # noqa: F401 (the fixture, shared with the test-client crawl)
    in_the_corner,
)

from wuyiqu.accounts.models import Role

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop in this thread (as in the others)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct-horse-battery"

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def policy_profile(transactional_db):
    # A transactional test before this one may have flushed the seeded policy profile: seed it again.
    importlib.import_module("wuyiqu.standards.migrations.0002_seed_wenlong_2022").seed(apps, None)
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def signed_in_page(browser, base: str, username: str):
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_load_state()
    assert "/login/" not in page.url, username
    return context, page


def browser_fetch(context, page, base: str):
    """Each URL asked once without following a redirect (its status); HTML pages then opened in the tab,
    and their links read from the rendered page."""
    def fetch(url: str) -> Answer:
        response = context.request.get(base + url, max_redirects=0)
        status, content_type = response.status, response.headers.get("content-type", "")
        if status in (301, 302):
            return Answer(302, content_type, "", response.headers.get("location", "").removeprefix(base))
        if status != 200 or "html" not in content_type:
            return Answer(status, content_type)
        opened = page.goto(base + url)
        return Answer(opened.status if opened else status, content_type, page.content())
    return fetch


@pytest.mark.screens  # a walk of every page, as the screen walk: the SQLite pass (test_web_crawler: both)
@pytest.mark.parametrize("role", Role.values)
def test_every_role_clicks_through_its_pages_in_chromium(live_server, crew, browser, role, client):  # noqa: F811
    side, people = crew
    person = people[role]
    client.force_login(person)
    allowed = allowed_pages(client, side)  # what the role may open, asked as in test_web_crawler.py
    context, page = signed_in_page(browser, live_server.url, person.username)
    try:
        result = crawl(browser_fetch(context, page, live_server.url), per_route=1, always=in_the_corner(side))
    finally:
        context.close()
    assert result.bad == [], "links that answer neither 200 nor 302 (url, status, found on)"
    assert result.dead_forms == []
    near = {name for name, depth in result.depth_of.items() if depth <= CLICKS}
    exempt = {name for name, (roles, _why) in NOT_LINKED.items() if role in roles}
    assert {name: result.depth_of.get(name) for name in allowed - near - exempt} == {}
    assert len(result.visited) > 10


def test_the_phone_menu_opens_without_script_and_fits_the_screen(live_server, crew, browser):  # noqa: F811
    side, people = crew
    context, page = signed_in_page(browser, live_server.url, people[Role.COMMUNITY_STAFF].username)
    try:
        nav = page.locator("#top-nav")
        assert not nav.is_visible()  # folded on a phone
        page.click("label[for=nav-toggle]")
        assert nav.is_visible()
        links = nav.locator("a")
        assert links.count() >= 10
        for i in range(links.count()):
            box = links.nth(i).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1
            assert box["height"] >= 40  # a tap target
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.click("label[for=nav-toggle]")
        assert not nav.is_visible()
        # On a desktop screen the header shows its links without the menu button.
        page.set_viewport_size({"width": 1280, "height": 800})
        assert nav.is_visible() and not page.locator("label[for=nav-toggle]").is_visible()
    finally:
        context.close()
