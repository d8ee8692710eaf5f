"""A link crawler for the tests (no tests here; test_web_crawler.py and test_browser_crawler.py use it).

Starting from a role's home page, it follows what a person can click or what the page fetches by
itself, breadth first, and records how each answered:

- ``<a href>``, the target of every ``<form method="get">`` (submitted as it stands), ``<img src>``,
  htmx's ``hx-get`` and the ``data-url`` a script fetches; same site only;
- POST forms are not submitted (they change things), but their targets must be pages of the URL map.

Nothing in it knows the pages: a page another engineer adds is crawled as soon as something links to
it. Every URL pattern is followed for at most ``per_route`` distinct URLs (a street has thousands of
household pages; the first few of each pattern stand for the rest). ``fetch`` is the transport: the
Django test client or a real browser.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlencode, urljoin, urlsplit

from django.urls import Resolver404, resolve

SKIPPED_PREFIXES = ("/static/", "/media/", "/api/v1/", "/i18n/")


class Links(HTMLParser):
    """The GET targets of one HTML page — ``get``, reached by a click, and ``loads``, fetched by the page
    itself (images, htmx, a chart's data) — and its POST form targets."""

    def __init__(self):
        super().__init__()
        self.get: list[str] = []
        self.loads: list[str] = []
        self.post: list[str] = []
        self._form: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.get.append(a["href"])
        elif tag == "img" and a.get("src"):
            self.loads.append(a["src"])
        elif tag == "form":
            method = (a.get("method") or "get").lower()
            self._form = {"method": method, "action": a.get("action") or "", "fields": []}
            (self.post if method == "post" else []).append(a.get("action") or "")
        elif tag in ("input", "select", "textarea") and self._form is not None and self._form["method"] == "get":
            kind = (a.get("type") or "").lower()
            if a.get("name") and kind not in ("submit", "button", "checkbox", "radio", "file"):
                self._form["fields"].append((a["name"], a.get("value") or ""))
        if a.get("hx-get"):
            self.loads.append(a["hx-get"])
        if a.get("data-url"):
            self.loads.append(a["data-url"])

    def handle_endtag(self, tag):
        if tag == "form" and self._form is not None:
            if self._form["method"] == "get":
                query = urlencode(self._form["fields"])
                self.get.append(self._form["action"] + ("?" + query if query else ""))
            self._form = None


@dataclass
class Answer:
    status: int
    content_type: str = ""
    body: str = ""
    location: str = ""  # of a redirect


@dataclass
class Crawl:
    """What a crawl found: the first depth (clicks from home) each URL pattern was reached at, every
    URL that answered something else than 200/302, and POST targets that are no page of the URL map."""

    depth_of: dict[str, int] = field(default_factory=dict)
    visited: list[tuple[str, int, int]] = field(default_factory=list)  # (url, depth, status)
    bad: list[tuple[str, int, str]] = field(default_factory=list)  # (url, status, found on)
    dead_forms: list[tuple[str, str]] = field(default_factory=list)  # (action, found on)


def route_of(url: str) -> str | None:
    """The URL pattern's name ("namespace:name") of a same-site path, None when none matches."""
    try:
        return resolve(urlsplit(url).path).view_name
    except Resolver404:
        return None


def crawl(fetch: Callable[[str], Answer], *, start: str = "/", per_route: int = 3, max_pages: int = 600,
          always: Callable[[str], bool] = lambda path: False) -> Crawl:
    """Crawl from ``start``. ``always(path)``: links followed beyond the per-pattern limit — the test's
    own corner of the world, so that the pages about its objects are reached whichever siblings the
    limit happens to sample first (a street has 20 communities; the objects are in one)."""
    result = Crawl()
    queue: deque[tuple[str, int, str]] = deque([(start, 0, "")])
    seen = {start}
    taken: dict[str, int] = {}

    def enqueue(href: str, base: str, depth: int) -> None:
        url, _fragment = urldefrag(urljoin(base, href))
        parts = urlsplit(url)
        if parts.scheme not in ("", "http", "https") or (parts.netloc and parts.netloc != urlsplit(base).netloc):
            return
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if not path or path in seen or path.startswith(SKIPPED_PREFIXES):
            return
        name = route_of(path) or f"? {parts.path}"
        if taken.get(name, 0) >= per_route and not always(path):
            return
        taken[name] = taken.get(name, 0) + 1
        seen.add(path)
        queue.append((path, depth, base))

    while queue and len(result.visited) < max_pages:
        url, depth, found_on = queue.popleft()
        answer = fetch(url)
        result.visited.append((url, depth, answer.status))
        name = route_of(url)
        if answer.status not in (200, 302) or name is None:
            result.bad.append((url, answer.status, found_on))
            continue
        result.depth_of[name] = min(depth, result.depth_of.get(name, depth))
        if answer.status == 302:
            if answer.location:  # a redirect is not a click: same depth
                enqueue(answer.location, url if url.startswith("http") else "http://testserver" + url, depth)
            continue
        if "html" not in answer.content_type:
            continue
        links = Links()
        links.feed(answer.body)
        base = "http://testserver" + url
        for href in links.get:
            enqueue(href, base, depth + 1)
        for href in links.loads:  # part of this page, not a click further
            enqueue(href, base, depth)
        for action in links.post:
            target = urlsplit(urljoin(base, action)).path
            if route_of(target) is None:
                result.dead_forms.append((action, url))
    return result
