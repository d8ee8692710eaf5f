"""No one sees what is not theirs, over the whole URL map and the whole API (not a hand-picked list).

Every pattern of ``django.urls.get_resolver()`` and every operation of the OpenAPI document is listed
in tests/access_map.py with a factory that makes the request about an object of a given side of the
world; a new pattern or operation without one fails ``test_every_…_is_listed``. Then:

- alice (文龙社区 staff) and dave (a building head there) get 404, for GET and for POST, for every
  object of bob's 天桥社区 (the sibling community), the page says nothing about it, and nothing changes;
- an API token scoped to 文龙社区 gets 404 for each of them too, and its fact records about 天桥社区's
  residents get the answer of an unknown number (unmatched) and are attached to nobody;
- the same requests about alice's own objects reach them (so the 404s above come from the scope);
- the pages without a key show nothing of the sibling;
- anonymous visitors are sent to the login (pages) or get 401 (API) everywhere but the public patterns.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from access_map import (
    API_KEYED,
    API_NAMESPACE,
    API_OWN,
    API_PUBLIC,
    API_RECORDS,
    KEYED,
    OWN,
    PUBLIC,
    ROLE_LIMITED_OWN,
    api_paths_of_url_map,
    give_token,
    make_side,
    openapi_operations,
    snapshot,
    url_patterns,
)
from django.test import Client
from django.urls import reverse


@pytest.fixture
def sides(world, alice, bob, settings, tmp_path):
    """(alice's side, bob's side): 文龙社区 and its sibling 天桥社区, each with one object of every kind."""
    settings.MEDIA_ROOT = tmp_path
    return make_side(alice), make_side(bob)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text_of(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


# --- the lists cover the URL map and the API -----------------------------------------------------------------

def test_every_pattern_of_the_url_map_is_listed():
    routes = url_patterns()
    names = {r.name for r in routes}
    pages = {r.name for r in routes if not r.name.startswith(API_NAMESPACE + ":")}
    assert not (KEYED.keys() & OWN.keys() or KEYED.keys() & PUBLIC.keys() or OWN.keys() & PUBLIC.keys())
    unlisted = pages - KEYED.keys() - OWN.keys() - PUBLIC.keys()
    assert unlisted == set(), "add a factory to KEYED or OWN, or a reason to PUBLIC, in tests/access_map.py"
    assert (KEYED.keys() | OWN.keys() | PUBLIC.keys()) - names == set(), "entries for patterns that are gone"
    keyed_elsewhere = {r.name for r in routes if r.keys and r.name in OWN}
    assert keyed_elsewhere == set(), "a pattern with an object key cannot be OWN"


def test_every_api_operation_is_listed_and_the_document_covers_the_api_routes(client):
    operations = openapi_operations(client)
    listed = API_KEYED.keys() | API_RECORDS.keys() | API_OWN.keys() | API_PUBLIC.keys()
    assert set(operations) - listed == set(), "add the operation to API_KEYED/API_RECORDS/API_OWN/API_PUBLIC"
    assert listed - set(operations) == set(), "entries for operations that are gone"
    assert {op.split(" ", 1)[1] for op in operations} == set(api_paths_of_url_map())


# --- pages -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("asker", ["alice", "dave"])
def test_every_object_of_the_sibling_unit_is_404_for_get_and_post(sides, request, asker):
    mine, theirs = sides
    client = signed_in(request.getfixturevalue(asker))
    before = snapshot()
    wrong = []
    for name, factory in KEYED.items():
        for probe in factory(theirs, mine):
            url = reverse(name, kwargs=probe.kwargs)
            answers = {"GET": client.get(url, probe.query), "POST": client.post(url, probe.data)}
            statuses = {m: r.status_code for m, r in answers.items()}
            # 405: the view does not take that method at all; every method it takes must say 404.
            if set(statuses.values()) - {404, 405} or 404 not in statuses.values():
                wrong.append((name, probe.note, url, statuses))
            for response in answers.values():
                leaked = [m for m in theirs.markers if m in text_of(response).replace(url, "")]
                if leaked:
                    wrong.append((name, probe.note, url, f"names {leaked}"))
    assert wrong == []
    assert snapshot() == before  # not a row written, not even an audit row claiming a look


def test_the_same_requests_reach_the_askers_own_objects(sides, alice):
    """The 404s above come from the scope: about alice's own objects the same requests are answered."""
    mine, _theirs = sides
    client = signed_in(alice)
    missed = []
    for name, factory in KEYED.items():
        for probe in factory(mine, mine):
            url = reverse(name, kwargs=probe.kwargs)
            response = client.get(url, probe.query)
            if response.status_code == 405:  # a form's target: the form's data, as the page would post it
                response = client.post(url, probe.data)
            if response.status_code in (404, 405):
                missed.append((name, probe.note, url, response.status_code))
    assert missed == []


def test_pages_without_a_key_show_nothing_of_the_sibling(sides, alice):
    mine, theirs = sides
    client = signed_in(alice)
    leaks = []
    for name, factory in OWN.items():
        for probe in factory(theirs, mine):
            url = reverse(name)
            response = client.get(url, probe.query, follow=True)
            if response.status_code == 405:
                response = client.post(url, probe.data, follow=True)
            if name in ROLE_LIMITED_OWN and response.status_code == 403:
                continue  # community staff may not open it at all (tests/test_audit_viewer.py)
            assert response.status_code == 200, (name, response.status_code)
            # What alice typed is echoed in the search box; anything else of theirs is a leak.
            markers = [m for m in theirs.markers if m not in probe.query.values()]
            leaked = [m for m in markers if m in text_of(response)]
            if leaked:
                leaks.append((name, probe.query, leaked))
    assert leaks == []
    theirs.notification.refresh_from_db()
    assert theirs.notification.read_at is None  # "mark all read" marked alice's only


def test_anonymous_visitors_are_sent_to_the_login_from_every_page_but_the_public_ones(sides):
    mine, _theirs = sides
    client = Client()
    before = snapshot()
    wrong = []
    for name, factory in {**KEYED, **OWN}.items():
        probe = factory(mine, mine)[0]
        url = reverse(name, kwargs=probe.kwargs)
        answers = [client.get(url, probe.query), client.post(url, probe.data)]
        to_login = [r for r in answers if r.status_code == 302 and r["Location"].startswith("/login/?next=")]
        # A view that does not take a method may say so (405) before asking who is there.
        if not to_login or any(r.status_code != 405 for r in answers if r not in to_login):
            wrong.append((name, url, [r.status_code for r in answers]))
    assert wrong == []
    assert snapshot() == before


# --- the API -----------------------------------------------------------------------------------------------

def call(client, operation: str, probe, secret: str | None):
    method, template = operation.split(" ", 1)
    path = template.format(**probe.path)
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    if method == "GET":
        return client.get(path, probe.query, headers=headers)
    if probe.query:
        path += "?" + urlencode(probe.query)
    return client.post(path, json.dumps(probe.body), content_type="application/json", headers=headers)


def test_a_token_of_one_unit_gets_404_for_every_object_of_the_sibling(sides, client):
    mine, theirs = sides
    secret = give_token(mine)
    before = snapshot(audit=False)
    wrong = []
    for operation, factory in API_KEYED.items():
        response = call(client, operation, factory(theirs, mine), secret)
        if response.status_code != 404 or response.json()["code"] != "not_found":
            wrong.append((operation, response.status_code, response.content[:200]))
        leaked = [m for m in theirs.markers if m in response.content.decode()]
        if leaked:
            wrong.append((operation, f"names {leaked}"))
    for operation, factory in API_OWN.items():
        response = call(client, operation, factory(theirs, mine), secret)
        assert response.status_code == 200, operation
        leaked = [m for m in theirs.markers if m in response.content.decode()]
        if leaked or theirs.application.pk in [a["id"] for a in response.json()["items"]]:
            wrong.append((operation, f"lists {leaked or theirs.application.pk}"))
    assert wrong == []
    assert snapshot(audit=False) == before


def test_fact_records_about_the_siblings_residents_get_the_unknown_numbers_answer_and_touch_nothing_of_theirs(
        sides, client):
    # No existence oracle: the answer is the one an unregistered number gets (unmatched), and nothing
    # is attached to their resident: the facts wait, held, for the street above both.
    from wuyiqu.health.models import HeldFacts, Measure, NatResult, PositiveCase

    mine, theirs = sides
    secret = give_token(mine)
    facts = (NatResult, PositiveCase, Measure)
    before = {k: v for k, v in snapshot(audit=False).items() if k not in {m._meta.label for m in facts}}
    theirs_before = [m.objects.filter(resident_id=theirs.resident.pk).count() for m in facts]
    for operation, factory in API_RECORDS.items():
        response = call(client, operation, factory(theirs, mine), secret)
        assert response.status_code == 200, (operation, response.content)
        body = response.json()
        assert (body["received"], body["accepted"], body["rejected"], body["unmatched"]) == (1, 1, 0, 1), operation
        assert body["errors"] == [], operation
    after = {k: v for k, v in snapshot(audit=False).items() if k not in {m._meta.label for m in facts}}
    assert after == before
    assert [m.objects.filter(resident_id=theirs.resident.pk).count() for m in facts] == theirs_before
    assert HeldFacts.objects.filter(resident=theirs.resident, scope_unit=mine.community).count() == 1


def test_the_same_api_requests_reach_the_tokens_own_objects(sides, client):
    mine, _theirs = sides
    secret = give_token(mine)
    for operation, factory in API_KEYED.items():
        response = call(client, operation, factory(mine, mine), secret)
        assert response.status_code != 404, (operation, response.content)
    for operation, factory in API_RECORDS.items():
        body = call(client, operation, factory(mine, mine), secret).json()
        assert body["accepted"] == 1 and body["errors"] == [], (operation, body)


def test_without_a_token_every_operation_but_the_public_ones_is_401(sides, client):
    mine, _theirs = sides
    give_token(mine)
    before = snapshot(audit=False)
    for operation, factory in {**API_KEYED, **API_RECORDS, **API_OWN}.items():
        response = call(client, operation, factory(mine, mine), None)
        assert (response.status_code, response.json()["code"]) == (401, "unauthenticated"), operation
    number = mine.title.certificate_number
    public = client.get(f"/api/v1/public/certificates/{number}")
    assert public.status_code == 200 and public.json()["number"] == number
    assert snapshot(audit=False) == before
