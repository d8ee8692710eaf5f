"""A strict Content-Security-Policy is sent with every response (pages, the API, errors, static files),
on Django 6 by its own middleware and on Django 5.2 by ours with the same header; and no template has
an inline script, an inline style or an event-handler attribute that the policy would block."""

from __future__ import annotations

import html.parser
from pathlib import Path

import django
import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory

from wuyiqu.web.csp import ContentSecurityPolicyMiddleware, build_policy

POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
          "base-uri 'self'; frame-ancestors 'none'; form-action 'self'")


@pytest.mark.parametrize("url", [
    "/login/",                      # a page
    "/units/500110002015/",         # a signed-in page
    "/units/999999999/",            # a 404 page
    "/api/v1/units/500110002015",   # the API (401 without a token)
    "/api/v1/docs",                 # Swagger UI
])  # Static files are served by WhiteNoise ahead of the middleware: CSS and JS only (no HTML or SVG).
def test_every_response_carries_the_policy(client_for, alice, url):
    response = client_for(alice).get(url)
    assert response["Content-Security-Policy"] == POLICY, url


def test_django_6_uses_its_own_middleware_and_5_2_ours_with_the_same_header():
    ours = "wuyiqu.web.csp.ContentSecurityPolicyMiddleware"
    djangos = "django.middleware.csp.ContentSecurityPolicyMiddleware"
    expected = djangos if django.VERSION >= (6, 0) else ours
    other = ours if expected == djangos else djangos
    assert expected in settings.MIDDLEWARE and other not in settings.MIDDLEWARE
    assert build_policy(settings.SECURE_CSP) == POLICY
    if django.VERSION >= (6, 0):
        from django.utils.csp import build_policy as djangos_build_policy

        assert djangos_build_policy(settings.SECURE_CSP) == POLICY


def test_our_middleware_adds_the_header_unless_the_view_set_one():
    request = RequestFactory().get("/")
    plain = ContentSecurityPolicyMiddleware(lambda r: HttpResponse("x"))(request)
    assert plain["Content-Security-Policy"] == POLICY

    def own(r):
        response = HttpResponse("x")
        response["Content-Security-Policy"] = "default-src 'none'"
        return response

    assert ContentSecurityPolicyMiddleware(own)(request)["Content-Security-Policy"] == "default-src 'none'"
    assert build_policy({"upgrade-insecure-requests": True, "report-uri": None, "img-src": "'self'"}) == (
        "upgrade-insecure-requests; img-src 'self'")


class InlineFinder(html.parser.HTMLParser):
    """What the policy would block in one template: inline <script> and <style>, style="…", on…=
    handlers, javascript: URLs, htmx's hx-on (it compiles its code with Function)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        names = {name.lower(): value or "" for name, value in attrs}
        if tag == "style":
            self.found.append("<style>")
        if tag == "script":
            self._in_script = True
            if "src" not in names:
                self.found.append("<script> without src")
        for name, value in names.items():
            if name.startswith("on") or name.startswith("hx-on"):
                self.found.append(f"{name}=")
            if name == "style":
                self.found.append("style=")
            if value.strip().lower().startswith("javascript:"):
                self.found.append(f"{name}=javascript:")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.found.append("code inside <script>")


def templates() -> list[Path]:
    root = Path(settings.BASE_DIR)
    return sorted(p for p in root.rglob("*.html") if "templates" in p.relative_to(root).parts)


def test_the_scan_reads_every_template_of_every_app():
    apps = {p.relative_to(settings.BASE_DIR).parts[0] for p in templates()}
    assert {"templates", "api", "applications", "certification", "dashboard", "health", "inspections",
            "notifications", "standards", "supervision"} <= apps


def test_the_scan_finds_what_the_policy_blocks():
    finder = InlineFinder()
    finder.feed('<script>alert(1)</script><div style="color:red" onclick="x()" hx-on:click="y()">'
                '<a href="javascript:void(0)">a</a><style>p{}</style><script src="/static/a.js"></script>')
    assert finder.found == ["<script> without src", "code inside <script>", "style=", "onclick=", "hx-on:click=",
                            "href=javascript:", "<style>"]


def test_no_template_has_inline_script_style_or_handlers():
    found = {}
    for path in templates():
        finder = InlineFinder()
        finder.feed(path.read_text(encoding="utf-8"))
        if finder.found:
            found[str(path.relative_to(settings.BASE_DIR))] = finder.found
    assert found == {}


def test_htmx_is_told_not_to_inject_its_style_or_evaluate_code():
    base = (Path(settings.BASE_DIR) / "templates" / "base.html").read_text(encoding="utf-8")
    assert '"includeIndicatorStyles": false, "allowEval": false, "allowScriptTags": false' in base
