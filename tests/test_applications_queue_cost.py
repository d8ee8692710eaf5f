"""The reviewers' queue (待办) costs the same few queries however long it is, and no per-row rebuild of
the status choices: the health commission's queue lists every application of the district waiting at
its step (about a thousand in bench/load_mixed.py's world after a few runs, where the page took
~0.3 s of CPU; docs/benchmarks.md, load_mixed). ``Application.status_label`` reads the enum's label
instead of ``get_status_display()``, which builds a dict of every choice on each call."""

from __future__ import annotations

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation
from test_applications_world import NOW, build, make_unit, people

from wuyiqu.applications.models import Application, ApplicationStatus
from wuyiqu.units.models import TITLE_BY_KIND

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def w(db):
    u = build()
    return u, people(u)


def _waiting(u, first: int, n: int, status: str = ApplicationStatus.HEALTH_REVIEW) -> list[Application]:
    buildings = [make_unit(f"T1C-C1-Q{i:03d}", "building", u["C1"], f"排队楼{i}栋") for i in range(first, first + n)]
    return Application.objects.bulk_create([
        Application(unit=b, title=TITLE_BY_KIND["building"], status=status, submitted_at=NOW) for b in buildings])


def _queue(client) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as q:
        r = client.get("/applications/queue/")
    assert r.status_code == 200
    return r.content.decode(), len(q.captured_queries)


def test_the_queue_costs_the_same_queries_for_3_or_40_applications(w, client_for):
    u, p = w
    c = client_for(p["hugo"])  # the health commission: every application of the district at its step
    few = _waiting(u, 0, 3)
    html, queries_few = _queue(c)
    assert all(f'data-application="{a.pk}"' in html for a in few)
    many = few + _waiting(u, 3, 37)
    html, queries_many = _queue(c)
    assert all(f'data-application="{a.pk}"' in html for a in many)
    assert html.count("data-application=") == 40
    assert queries_many == queries_few, (queries_few, queries_many)


def test_the_queue_does_not_rebuild_the_status_choices_per_row(w, client_for, monkeypatch):
    u, p = w
    _waiting(u, 0, 40)
    calls = []
    original = Application.get_status_display

    def counting(self):
        calls.append(self.pk)
        return original(self)

    monkeypatch.setattr(Application, "get_status_display", counting)
    html, _queries = _queue(client_for(p["hugo"]))
    assert html.count("区卫健委复核") >= 40  # each row still says where it is
    assert calls == [], len(calls)


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_status_label_is_the_status_display_for_every_status(w, language):
    u, _p = w
    apps = _waiting(u, 0, len(ApplicationStatus), ApplicationStatus.DRAFT)
    with translation.override(language):
        for app, status in zip(apps, ApplicationStatus, strict=True):
            app.status = status
            assert app.status_label == str(app.get_status_display()), status
        apps[0].status = "no_such_status"  # a value outside the choices is shown as stored, like Django does
        assert apps[0].status_label == "no_such_status" == apps[0].get_status_display()
