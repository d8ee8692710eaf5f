"""The public pages (a resident scanning a plaque's or a poster's QR code, no account) answer an unknown
or malformed number with their own page: never the staff 404, never Django's debug page."""

from __future__ import annotations

import datetime as dt

import pytest

from wuyiqu.certification.models import Title
from wuyiqu.lib.dates import today
from wuyiqu.units.models import TITLE_BY_KIND, Unit, UnitKind

STAFF_WORDS = ("管辖", "/login/", "返回首页")
DEBUG_WORDS = ("URLconf", "Django", "Traceback", "urlpatterns")


def assert_public(response, heading: str):
    html = response.content.decode()
    assert response.status_code == 404
    assert f"<h1>{heading}</h1>" in html
    assert not [w for w in (*STAFF_WORDS, *DEBUG_WORDS) if w in html]


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", [
    "/verify/WYQ-2022-99999/",  # unknown
    "/verify/" + "9" * 40 + "/",  # too long to be one
    "/verify/%E4%BC%AA%E9%80%A0/",  # 伪造
    "/verify/WYQ/2022/1/",  # a slash in it
    "/verify/",  # none
])
def test_an_unknown_or_malformed_certificate_number_says_no_such_certificate(db, client, settings, debug, path):
    settings.DEBUG = debug  # the demo runs with DEBUG on
    assert_public(client.get(path), "查无此证书")


def test_a_real_certificate_still_verifies_and_a_missing_slash_is_forgiven(world, client):
    unit = Unit.objects.filter(kind=UnitKind.BUILDING).first()
    Title.objects.create(unit=unit, title=TITLE_BY_KIND[unit.kind], named_on=today() - dt.timedelta(days=3),
                         certificate_number="WYQ-PUB-1")
    response = client.get("/verify/WYQ-PUB-1/")
    assert response.status_code == 200 and 'data-current="true"' in response.content.decode()
    assert client.get("/verify/WYQ-PUB-1")["Location"] == "/verify/WYQ-PUB-1/"


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_signing_link_says_so_in_words_for_residents(db, client, settings, debug):
    settings.DEBUG = debug
    assert_public(client.get("/s/no-such-token/"), "链接无效")
    assert_public(client.post("/s/no-such-token/", {"household": "1", "proof": "1234"}), "链接无效")


def test_an_unknown_page_tells_a_visitor_nothing_about_scopes(db, client):
    html = client.get("/no/such/page/").content.decode()
    assert "该页面不存在" in html and "管辖" not in html
