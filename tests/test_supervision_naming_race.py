"""A positive case and the command's naming of the same building, at the same time: the building must
not end up named over the case (found by bench/load_mixed.py, where a laboratory's positives met
the command's approvals: five buildings named over a case in one minute, not withdrawn until the
daily run).

Either order must end consistent: the case first, the naming is refused (a revoke criterion fails);
the naming first, the case's re-check withdraws the new title. On PostgreSQL the two transactions
really overlap (each thread its own connection, the first one held open after its write): without
supervision/locks.py neither would see the other. The SQLite test database is in memory, and its
threads share one connection that cannot hold two transactions at once; there (as SQLite serialises
writing transactions anyway) the two are run one after the other, and the same end state is checked.
"""

from __future__ import annotations

import threading
import time

import pytest
import time_machine
from django.db import connection, transaction
from test_applications_world import NOW, build, people, sign_all

from wuyiqu.api.actions import do_create_api_token, do_submit_fact_batch
from wuyiqu.applications.actions import (
    ApplicationRefused,
    do_open_application,
    do_review_application,
    do_submit_application,
)
from wuyiqu.applications.models import Application
from wuyiqu.certification.models import Title
from wuyiqu.health.models import PositiveCase
from wuyiqu.units.models import Resident

HOLD = 1.0  # seconds the first transaction stays open after its write


def at_the_command(u, p) -> Application:
    app = do_open_application(actor=p["hank"], unit=u["B1"])
    sign_all(app)
    app = do_submit_application(actor=p["hank"], application=app)
    for actor in ("cora", "sam", "hugo"):
        app = do_review_application(app, actor=p[actor], decision="approve", opinion="同意")
    assert app.status == "command_review"
    return app


def report_case(token, number: str) -> None:
    out = do_submit_fact_batch(token=token, kind="cases", batch_key=f"case-{number}",
                               records=[{"id_number": number, "reported_on": NOW.date().isoformat(),
                                         "type": "confirmed"}])
    assert out.counts.created == 1, out.as_dict()


def name(app, cmd, outcome: list[str]) -> None:
    try:
        do_review_application(Application.objects.get(pk=app.pk), actor=cmd, decision="approve", opinion="命名")
        outcome.append("named")
    except ApplicationRefused as e:
        outcome.append(str(e))


def in_thread(fn, *args) -> threading.Thread:
    def run():
        try:
            fn(*args)
        finally:
            connection.close()

    t = threading.Thread(target=run)
    t.start()
    return t


def held_open(started: threading.Event, fn, *args) -> None:
    """``fn`` inside a transaction kept open HOLD seconds after it returned."""
    with transaction.atomic():
        fn(*args)
        started.set()
        time.sleep(HOLD)


@pytest.mark.parametrize("first", ["case", "naming"])
def test_a_case_and_a_naming_at_once_never_leave_the_unit_named_over_the_case(transactional_db, first):
    with time_machine.travel(NOW, tick=True):
        u = build()
        p = people(u)
        app = at_the_command(u, p)
        token, _secret = do_create_api_token(actor=None, name="lab", unit=u["T"], kinds=["cases"], days=30)
        number = Resident.objects.filter(household__unit=u["B1"]).first().reveal_id_number()
        outcome: list[str] = []
        steps = [(report_case, token, number), (name, app, p["cmd"], outcome)]
        if first == "naming":
            steps.reverse()
        if connection.vendor == "postgresql":
            started = threading.Event()
            one = in_thread(held_open, started, *steps[0])
            assert started.wait(30)
            two = in_thread(*steps[1])  # runs while the first transaction is still open
            one.join(60)
            two.join(60)
        else:
            for fn, *args in steps:
                fn(*args)

        assert PositiveCase.objects.filter(unit=u["B1"]).count() == 1
        assert Title.objects.filter(unit=u["B1"], withdrawn_on__isnull=True).count() == 0
        if first == "case":
            assert len(outcome) == 1 and "“龙湖花园1栋”" in outcome[0] and "未全部达标，不能命名" in outcome[0], outcome
            assert "阳性" in outcome[0] or "病例" in outcome[0], outcome
            assert Application.objects.get(pk=app.pk).status == "command_review"
        else:
            assert outcome == ["named"]
            title = Title.objects.get(unit=u["B1"])
            assert title.withdrawn_on == NOW.date()  # withdrawn by the case's own re-check
