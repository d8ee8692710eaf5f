"""No id of the criterion registry (``no_case``, ``mask_compliance`` …) reaches what a person reads:
the 监督记录 page (warnings open, rectified and expired, the withdrawal's reason, the daily
evaluations), the notifications and the 差一两项 page, in Chinese and in English. The ids stay for the
API, the exports and ``wuyiqu evaluate`` (SPEC §4), and in HTML attributes (data-criterion)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from test_standards_world import D, days
from test_supervision_daily import people
from test_supervision_world import at, named_street

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.inspections.actions import do_record_inspection
from wuyiqu.notifications.models import Notification
from wuyiqu.standards.criteria import REGISTRY
from wuyiqu.supervision.models import Warning
from wuyiqu.supervision.services import run_daily

pytestmark = pytest.mark.django_db

IDS = re.compile(r"(?<![A-Za-z_])(" + "|".join(sorted(REGISTRY, key=len, reverse=True)) + r")(?![A-Za-z_])")


def visible_text(html: str) -> str:
    """The page as read: scripts, styles and tags (with their attributes) removed."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def month_of_warnings(u):
    """B9: a warning rectified; G1: a warning that runs out (withdrawn); B2: a warning still open."""
    with at(D):
        for key in ("B9", "G1"):
            do_record_inspection(actor=None, unit=u[key], inspected_on=D, results={"masks": False}, inspector="王")
    with at(D + days(1)):
        do_record_inspection(actor=None, unit=u["B9"], inspected_on=D + days(1), results={"masks": True},
                             inspector="王")
    for n in (1, 2, 3):
        with at(D + days(n)):
            run_daily(on=D + days(n))
    with at(D + days(3)):
        do_record_inspection(actor=None, unit=u["B2"], inspected_on=D + days(3), results={"masks": False},
                             inspector="王")


def test_no_criterion_id_on_the_pages_people_read():
    u = named_street()
    head, staff, _ = people(u)
    command = do_create_user(actor=None, username="cmd", password="x-long-password-1", role="command",
                             unit=u["T1"].parent if u["T1"].parent_id else u["T1"], display_name="指挥部")
    month_of_warnings(u)
    assert set(Warning.objects.values_list("status", flat=True)) == {"rectified", "expired", "open"}
    assert Notification.objects.exists()

    pages = [
        (staff, reverse("supervision:history", args=[u["B9"].code])),
        (staff, reverse("supervision:history", args=[u["C1"].code])),
        (command, reverse("supervision:history", args=[u["G1"].code])),
        (command, reverse("supervision:history", args=[u["T1V"].code])),
        (head, reverse("notifications:inbox")),
        (staff, reverse("notifications:inbox")),
        (command, reverse("notifications:inbox")),
        (command, reverse("dashboard:blockers", args=[u["T1"].code])),
    ]
    with at(D + days(3)):
        for user, url in pages:
            for language in ("zh-hans", "en"):
                client = Client(HTTP_ACCEPT_LANGUAGE=language)
                client.force_login(user)
                response = client.get(url)
                assert response.status_code == 200, (url, language)
                html = response.content.decode()
                found = IDS.findall(visible_text(html))
                assert not found, f"{url} ({language}) shows {sorted(set(found))}"
    # the pages did show the warnings and the withdrawal, by name
    with at(D + days(3)):
        client = Client()
        client.force_login(staff)
        text = visible_text(client.get(reverse("supervision:history", args=[u["B9"].code])).content.decode())
    assert "规范佩戴口罩" in text
