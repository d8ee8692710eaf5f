"""Small things of the applications pages and the header: the header names the role once; reviewers
who apply for nothing (区卫健委, 区指挥部) get no empty 创建申请 card; the draft of a village's,
community's or street's application, which no household co-signs (the unit signs it, SPEC §5), is
待本单位签字 / 已签字待提交, not 征集联名中."""

from __future__ import annotations

import re

import pytest
import time_machine
from test_applications_world import NOW, build, people

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.applications.actions import do_open_application, do_record_unit_signature

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def w(db):
    u = build()
    return u, people(u)


def who(html: str) -> str:
    return re.search(r'<p class="who">(.*?)</p>', html, re.S).group(1).strip()


def test_the_header_names_the_role_once(w, client_for):
    u, p = w
    admin = do_create_user(actor=None, username="sysadmin", password="correct-horse-battery", role=Role.ADMIN,
                           unit=None, display_name="系统管理员")
    assert who(client_for(admin).get("/applications/").content.decode()) == "系统管理员"
    assert who(client_for(p["cora"]).get("/applications/").content.decode()) == "cora · 村/社区工作人员 · 测试社区"


@pytest.mark.parametrize("name", ["hugo", "cmd"])
def test_reviewers_who_apply_for_nothing_get_no_empty_card(w, client_for, name):
    u, p = w
    html = client_for(p[name]).get("/applications/").content.decode()
    assert 'id="apply"' not in html and "发起申请" not in html
    cards = re.findall(r'<section class="card"[^>]*>(.*?)</section>', html, re.S)
    assert not [c for c in cards if re.fullmatch(r"\s*<h1>[^<]*</h1>\s*", c)], cards
    assert "<h1>申请</h1>" in html and "待办" in html


def test_applicants_still_get_the_card(w, client_for):
    u, p = w
    for name in ("hank", "cora", "sam"):  # building head; community staff; street staff (also a reviewer)
        html = client_for(p[name]).get("/applications/").content.decode()
        assert 'id="apply"' in html and "发起申请" in html, name


def test_a_community_application_waits_for_the_unit_signature_not_for_households(w, client_for, today):
    u, p = w
    app = do_open_application(actor=p["cora"], unit=u["T1C"])
    c = client_for(p["cora"])
    status = re.compile(r'<dd id="status" data-status="draft">([^<]*)</dd>')
    assert status.search(c.get(f"/applications/{app.pk}/").content.decode()).group(1) == "待本单位签字"
    index = c.get("/applications/").content.decode()
    assert "待本单位签字" in index and "征集联名中" not in index
    do_record_unit_signature(actor=p["cora"], application=app, signed_on=today)
    assert status.search(c.get(f"/applications/{app.pk}/").content.decode()).group(1) == "已签字待提交"

    # Opening it again says so in the same words.
    from wuyiqu.applications.actions import ApplicationRefused

    other = do_create_user(actor=None, username="cora2", password="correct-horse-battery",
                           role=Role.COMMUNITY_STAFF, unit=u["T1C"], display_name="cora2")
    with pytest.raises(ApplicationRefused, match="（已签字待提交）"):
        do_open_application(actor=other, unit=u["T1C"])

    street = do_open_application(actor=p["sam"], unit=u["T1"])
    assert street.status_label == "待本单位签字"
    building = do_open_application(actor=p["hank"], unit=u["B1"])
    assert building.status_label == "征集联名中"
    html = client_for(p["hank"]).get(f"/applications/{building.pk}/").content.decode()
    assert status.search(html).group(1) == "征集联名中"

    c = client_for(p["cora"])  # the same test client, signed in as hank meanwhile
    c.cookies["django_language"] = "en"
    html = c.get(f"/applications/{app.pk}/").content.decode()
    assert status.search(html).group(1) == "Signed by the unit, to be submitted"
