"""Screens checked by a browser (Debian's Chromium through Playwright): every role signs in and opens
its main pages — the header's links, its side's unit, household, self-assessment, measures, tests,
special-population ledger, supervision record and application, and the public pages (sign-in, the
co-signing page, the certificate check) — on a 390×844 phone and a 1366×900 desktop. A page fails on

- horizontal overflow: the document wider than the screen (the page scrolls sideways);
- a table wider than its box that no scroll container holds (clipped or spilling), or one that
  scrolls without its visible "左右滑动查看" hint;
- an error in the console or an uncaught exception.

Each screen is saved (full page) to $WUYIQU_SCREENS_DIR, by default var/test-screens/ of the
repository (git-ignored); .ci/run prints where, for CI to keep them as artefacts."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import pytest
from django.apps import apps
from django.core.cache import cache
from test_web_crawler import crew  # noqa: F401 (the fixture: one person of every role, alice's side)

from wuyiqu.accounts.models import Role

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop in this thread (as in the others)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
PASSWORD = "correct-horse-battery"
SCREENS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 900}}

pytestmark = pytest.mark.browser


def screens_dir() -> Path:
    default = Path(__file__).resolve().parent.parent / "var" / "test-screens"
    return Path(os.environ.get("WUYIQU_SCREENS_DIR") or default)


# What is wrong with the page as drawn: [kind, detail] pairs (empty: fine).
LAYOUT_PROBLEMS = """() => {
  const out = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth + 1) out.push(['page-overflow', doc.scrollWidth + ' > ' + window.innerWidth]);
  const name = (t) => t.id ? '#' + t.id : 'table.' + (t.className || '?').split(' ').join('.');
  for (const t of document.querySelectorAll('table')) {
    const box = t.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;  // not shown (in a closed <details>)
    let scroller = null;
    for (let el = t.parentElement; el && el !== document.body; el = el.parentElement) {
      const ox = getComputedStyle(el).overflowX;
      if (ox === 'auto' || ox === 'scroll') { scroller = el; break; }
    }
    if (scroller) {
      if (scroller.scrollWidth > scroller.clientWidth + 1) {
        const hint = scroller.previousElementSibling;
        const visible = hint && hint.classList.contains('scroll-hint') && !hint.hidden && hint.offsetHeight > 0;
        if (!visible) out.push(['scroll-without-hint', name(t)]);
      }
      continue;
    }
    const room = t.parentElement.clientWidth;
    if (t.scrollWidth > room + 1 || box.right > window.innerWidth + 1) {
      out.push(['table-clipped', name(t) + ' ' + Math.round(box.width) + ' > ' + room]);
    }
  }
  return out;
}"""


@pytest.fixture(autouse=True)
def policy_profile(transactional_db):
    # A transactional test before this one may have flushed the seeded policy profile: seed it again.
    importlib.import_module("wuyiqu.standards.migrations.0002_seed_wenlong_2022").seed(apps, None)
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def side_pages(side) -> list[str]:
    """The pages about the side's own units that a role may open (those it may not answer 403/404 and
    are skipped)."""
    b, c, comm = side.building.code, side.compound.code, side.community.code
    return [f"/units/{comm}/", f"/units/{c}/", f"/units/{b}/", f"/households/{side.household.code}/",
            f"/units/{b}/assessment/", f"/units/{comm}/assessment/", f"/units/{comm}/measures/",
            f"/units/{comm}/testing/", f"/units/{comm}/ledger/", f"/units/{c}/history/",
            f"/units/{comm}/blockers/", f"/applications/{side.application.pk}/", f"/imports/{side.job.pk}/",
            f"/units/{b}/inspections/"]


class Screens:
    """Opens pages in one browser context and collects what is wrong with each."""

    def __init__(self, browser, base: str, screen: str):
        self.base, self.screen = base, screen
        size = SCREENS[screen]
        phone = screen == "phone"
        self.context = browser.new_context(viewport=size, locale="zh-CN", is_mobile=phone, has_touch=phone,
                                           device_scale_factor=2 if phone else 1)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.page.on("pageerror", lambda e: self.console.append(f"exception: {e}"))
        self.page.on("console", lambda m: self.console.append(f"console: {m.text} {m.location.get('url', '')}")
                     if m.type == "error" else None)
        self.problems: dict[str, list] = {}
        self.seen = 0

    def sign_in(self, username: str) -> None:
        self.page.goto(f"{self.base}/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", PASSWORD)
        self.page.click("button.primary")
        self.page.wait_for_load_state()
        assert "/login/" not in self.page.url, username

    def header_links(self) -> list[str]:
        return self.page.eval_on_selector_all("header a[data-nav]", "(links) => links.map((a) => a.getAttribute('href'))")

    def check(self, who: str, url: str, *, skip_refused: bool = False) -> None:
        if skip_refused and self.context.request.get(self.base + url, max_redirects=0).status in (403, 404):
            return
        self.console.clear()
        response = self.page.goto(self.base + url)  # waits for the load event (scripts ran)
        assert response is not None and response.status == 200, (who, url, response and response.status)
        self.page.wait_for_timeout(200)  # scroll.js's hint after the first frame, the charts' first draw
        found = [tuple(p) for p in self.page.evaluate(LAYOUT_PROBLEMS)]
        found += [("console", line) for line in self.console]
        if found:
            self.problems[f"{who} {self.screen} {url}"] = found
        name = re.sub(r"[^A-Za-z0-9]+", "-", url).strip("-") or "home"
        out = screens_dir() / self.screen / who
        out.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(out / f"{name}.png"), full_page=True)
        self.seen += 1

    def close(self) -> None:
        self.context.close()


@pytest.mark.screens
@pytest.mark.parametrize("screen", list(SCREENS))
def test_the_main_pages_of_every_role_fit_the_screen(live_server, crew, browser, screen):  # noqa: F811
    side, people = crew
    problems: dict[str, list] = {}
    opened = 0
    public = Screens(browser, live_server.url, screen)
    for url in ("/login/", f"/s/{side.application.token}/", f"/verify/{side.title.certificate_number}/"):
        public.check("public", url)
    problems |= public.problems
    opened += public.seen
    public.close()
    for role in Role.values:
        user = people[role]
        s = Screens(browser, live_server.url, screen)
        s.sign_in(user.username)
        links = [u for u in dict.fromkeys(s.header_links()) if u and u.startswith("/") and "#" not in u]
        assert len(links) >= 4, (role, links)
        for url in links:
            s.check(role, url)
        for url in side_pages(side):
            if url not in links:
                s.check(role, url, skip_refused=True)
        problems |= s.problems
        opened += s.seen
        s.close()
    print(f"\n[screens] {opened} pages at {screen} saved under {screens_dir() / screen}")
    assert problems == {}
    assert opened >= 60


def test_the_checks_see_an_overflowing_page_a_clipped_table_and_a_missing_hint(browser):
    """The checks above on pages made to fail them (and on the fixed versions, which pass)."""
    page = browser.new_context(viewport=SCREENS["phone"]).new_page()
    wide = '<table id="wide"><tr>' + '<td>column&nbsp;with&nbsp;a&nbsp;long&nbsp;value</td>' * 8 + "</tr></table>"
    page.set_content(f"<main>{wide}</main>")
    kinds = {k for k, _ in page.evaluate(LAYOUT_PROBLEMS)}
    assert kinds == {"page-overflow", "table-clipped"}
    page.set_content(f'<main><div style="overflow-x:auto">{wide}</div></main>')
    assert page.evaluate(LAYOUT_PROBLEMS) == [["scroll-without-hint", "#wide"]]
    page.set_content(f'<main><p class="scroll-hint">hint</p><div style="overflow-x:auto">{wide}</div></main>')
    assert page.evaluate(LAYOUT_PROBLEMS) == []
    page.context.close()
