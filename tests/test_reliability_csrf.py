"""CSRF is enforced on every form. Over the whole URL map: a POST without the token is refused by the
CSRF check (403) and changes nothing, for a signed-in person whose request would otherwise be carried
out; the only views exempt from the check are the token-authenticated API's; and every POST form of
every template, and of the pages as rendered, carries the token."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from access_map import API_NAMESPACE, KEYED, OWN, PUBLIC, make_side, snapshot, url_patterns
from django.conf import settings
from django.http import HttpResponseForbidden
from django.test import Client
from django.urls import Resolver404, resolve, reverse

CSRF_REFUSED = "csrf-refused"


def csrf_refused(request, reason=""):
    """Stands in for Django's CSRF failure page, to tell its 403 from any other."""
    return HttpResponseForbidden(f"{CSRF_REFUSED}: {reason}")


@pytest.fixture
def sides(world, alice, bob, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.CSRF_FAILURE_VIEW = f"{__name__}.csrf_refused"
    return make_side(alice), make_side(bob)


def test_only_the_token_authenticated_api_is_exempt():
    from wuyiqu.api.api import BearerToken, api

    exempt = {r.name for r in url_patterns() if getattr(r.callback, "csrf_exempt", False)}
    assert exempt and all(name.startswith(API_NAMESPACE + ":") for name in exempt), exempt
    # Exempt is safe there only because no API call is authenticated by the session cookie.
    assert [type(a) for a in api.auth] == [BearerToken]
    sources = [p for p in Path(settings.BASE_DIR).rglob("*.py") if "csrf_exempt" in p.read_text(encoding="utf-8")]
    assert [str(p.relative_to(settings.BASE_DIR)) for p in sources] == ["api/urls.py"]


def _own_requests(mine):
    """(name, url, data) for every pattern but the API's, about alice's own objects."""
    factories = {**KEYED, **OWN}
    for route in url_patterns():
        if route.name.startswith(API_NAMESPACE + ":"):
            continue
        if route.name in factories:
            for probe in factories[route.name](mine, mine):
                yield route.name, reverse(route.name, kwargs=probe.kwargs), probe.data
        elif route.name == "applications:sign":
            yield route.name, reverse(route.name, args=[mine.application.token]), {
                "household": mine.household.pk, "proof": "0000"}
        elif route.name == "certification:verify":
            yield route.name, reverse(route.name, args=[mine.title.certificate_number]), {}
        elif route.name == "web:login":
            yield route.name, reverse(route.name), {"username": "alice", "password": "correct-horse-battery"}
        else:
            assert route.name in PUBLIC, route.name
            yield route.name, reverse(route.name), {"language": "en", "next": "/"}


def test_a_post_without_the_token_is_refused_everywhere_and_changes_nothing(sides, alice):
    mine, _theirs = sides
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    before = snapshot()
    seen, wrong = set(), []
    for name, url, data in _own_requests(mine):
        seen.add(name)
        response = client.post(url, data)
        if response.status_code != 403 or CSRF_REFUSED not in response.content.decode():
            wrong.append((name, url, response.status_code))
    assert wrong == []
    assert snapshot() == before
    assert "_auth_user_id" in client.session  # the refused logout did not sign alice out
    assert seen == {r.name for r in url_patterns() if not r.name.startswith(API_NAMESPACE + ":")}


def test_with_the_token_the_same_post_goes_through(sides, alice):
    """The refusals above are the CSRF check's: with the page's token, a form is carried out."""
    mine, _theirs = sides
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get(reverse("health:timeline", args=[mine.resident.pk]))  # a page with the form sets the cookie
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post(reverse("health:extend_measure", args=[mine.measure.pk]),
                           {"on": "2099-01-01", "reason": "复核", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    mine.measure.refresh_from_db()
    assert mine.measure.end_on.isoformat() == "2099-01-01"


# --- the forms ------------------------------------------------------------------------------------------------

FORM = re.compile(r"<form\b(?P<attrs>[^>]*)>(?P<body>.*?)</form>", re.S | re.I)


def test_every_post_form_in_the_templates_has_the_token_and_posts_to_a_checked_view():
    root = Path(settings.BASE_DIR)
    missing, exempt_targets, targets = [], [], set()
    exempt = {r.name for r in url_patterns() if getattr(r.callback, "csrf_exempt", False)}
    for path in sorted(p for p in root.rglob("*.html") if "templates" in p.relative_to(root).parts):
        for form in FORM.finditer(path.read_text(encoding="utf-8")):
            attrs = form["attrs"]
            if not re.search(r"""method=["']?post""", attrs, re.I) and "hx-post" not in attrs:
                continue
            where = f"{path.relative_to(root)}:{form['attrs'].strip()[:60]}"
            if "{% csrf_token %}" not in form["body"]:
                missing.append(where)
            for name in re.findall(r"""(?:action|hx-post)="\{% url '([\w:-]+)'""", attrs):
                targets.add(name)
                if name in exempt:
                    exempt_targets.append(where)
    assert missing == [] and exempt_targets == []
    assert len(targets) >= 15, targets  # the scan does reach the forms


class Forms(HTMLParser):
    """The POST forms of a rendered page: (action, has the token)."""

    def __init__(self):
        super().__init__()
        self.forms: list[list] = []
        self._open = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and ((a.get("method") or "").lower() == "post" or "hx-post" in a):
            self._open = [a.get("hx-post") or a.get("action") or "", False]
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None and a.get("name") == "csrfmiddlewaretoken" and a.get("value"):
            self._open[1] = True

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None


def test_every_post_form_of_the_rendered_pages_has_the_token(sides, alice, carol, erin, dave):
    mine, _theirs = sides
    exempt = {r.name for r in url_patterns() if getattr(r.callback, "csrf_exempt", False)}
    wrong, posted_to = [], set()
    pages = [reverse("web:login"), reverse("applications:sign", args=[mine.application.token])]
    for name, factory in {**KEYED, **OWN}.items():
        for probe in factory(mine, mine):
            pages.append(reverse(name, kwargs=probe.kwargs))
    for user in (None, alice, carol, erin, dave):
        client = Client()
        if user is not None:
            client.force_login(user)
        for url in pages:
            response = client.get(url)
            if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
                continue
            parser = Forms()
            parser.feed(response.content.decode())
            for action, has_token in parser.forms:
                try:
                    target = resolve(action or url).view_name
                except Resolver404:
                    target = f"? {action}"
                posted_to.add(target)
                if not has_token or target in exempt:
                    wrong.append((url, action, has_token, target))
    assert wrong == []
    assert {"web:login", "web:logout", "set_language", "web:resident_reveal", "applications:sign",
            "applications:open", "applications:paper", "applications:add_attachment", "health:end_measure_early",
            "health:extend_measure", "inspections:record", "inspections:incident", "web:import",
            "notifications:read_all", "notifications:open", "supervision:warn", "supervision:close_warning",
            "supervision:withdraw", "supervision:reinstate"} <= posted_to
