"""Nucleic-acid participation is counted two ways by the evaluator's ``nat`` query: for the whole
tree on PostgreSQL from the window's tested residents read once (DISTINCT ON), for a subtree (and
always on SQLite) by one probe per resident — on PostgreSQL unit by unit, as a subtree's households
are read. Both must give the same counts at the window's edges, with repeated tests, unmatched
results and exempt residents."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from test_standards_world import D, build_street, days, make_resident, make_unit, nat

from wuyiqu.health.models import NatResult
from wuyiqu.standards.evaluator import _Gather, parsed_profile, profile_row_in_force
from wuyiqu.units.models import Household, Unit

pytestmark = pytest.mark.django_db


def counts(root=None) -> tuple[dict[int, tuple[int, int]], str]:
    """unit_id -> (required, tested) as the nat query gives them, and the SQL it ran."""
    gather = _Gather(D, parsed_profile(profile_row_in_force(D)), root)
    with CaptureQueriesContext(connection) as q:
        rows = gather.nat()
    sql = next(x["sql"] for x in q.captured_queries if "GROUP BY h.unit_id" in x["sql"])
    return {uid: (required, tested) for uid, required, tested in rows}, sql


def test_whole_tree_and_subtree_count_the_same_residents():
    u = build_street()
    b8 = make_unit("T1C-B8", "building", u["T1C"], "测试社区8号楼")
    hh = Household.objects.create(code="T1C-B8-101", unit=b8, address="测试社区8号楼101")
    twice = make_resident(hh)
    nat(twice, D)
    nat(twice, D - days(2))  # two tests in the window: one tested resident
    nat(make_resident(hh), D - days(6))  # first day of the 7-day window
    nat(make_resident(hh), D - days(7))  # the day before: not tested
    make_resident(hh)  # never tested
    nat(make_resident(hh, born=D.replace(year=D.year - 2)), D)  # under three: neither required nor tested
    nat(make_resident(hh, bedridden=True), D)  # bedridden: neither
    NatResult.objects.create(  # a result matched to no resident
        id_hash="x" * 64, resident_id=None, unit_id=b8.pk,
        sampled_at=dt.datetime(2022, 11, 28, 9, 0, tzinfo=dt.UTC), sampled_on=D, result="negative")

    whole, whole_sql = counts()
    street, street_sql = counts(Unit.objects.get(code="T1"))
    assert whole[b8.pk] == (4, 2)
    assert street == {uid: c for uid, c in whole.items() if uid in street}
    assert set(street) == set(whole)  # the test world is this one street
    # A subtree: the window's tested residents of its district (where they are kept, and on Citus the
    # one shard to read), of the subtree's residents; uncorrelated (Citus refuses a correlated probe).
    tested = "r.id IN (SELECT n.resident_id FROM health_natresult n WHERE "
    assert "DISTINCT ON" not in street_sql and tested in street_sql and "n.district_code = " in street_sql
    assert "EXISTS (SELECT 1 FROM health_natresult" not in street_sql
    if connection.vendor == "postgresql":
        # The residents in their households of D: no probe per resident. (The people who lived on D
        # in a household they have left since, after UNION ALL, are few: their results are read on
        # every district's shard, for their ids only.)
        current = whole_sql.split(" UNION ALL ")[0]
        assert "DISTINCT ON" in current and "health_natresult n" not in current
        assert "LATERAL" in street_sql  # unit by unit through the indexes (Gather.by_unit)
    else:
        assert tested in whole_sql and "n.district_code" not in whole_sql.split(" UNION ALL ")[0]


def test_a_subtree_reads_its_households_unit_by_unit_with_the_whole_trees_counts():
    """On PostgreSQL a subtree's households are read unit by unit (LATERAL: index scans, never the
    whole table); the counts and the unverified households are those of the whole tree's query."""
    u = build_street()
    Household.objects.create(code="T1C-C1-B1-103", unit=u["B1"], address="龙湖花园1栋103")  # never verified
    profile = parsed_profile(profile_row_in_force(D))
    whole, street = _Gather(D, profile, None), _Gather(D, profile, Unit.objects.get(code="T1"))
    with CaptureQueriesContext(connection) as q:
        households, unverified = sorted(street.households()), sorted(street.unverified_households())
    assert households == sorted(whole.households())
    assert (u["B1"].pk, 3) in households
    assert unverified == sorted(whole.unverified_households()) == [(u["B1"].pk, "T1C-C1-B1-103", "龙湖花园1栋103")]
    assert all(("LATERAL" in x["sql"]) == (connection.vendor == "postgresql") for x in q.captured_queries)


def test_a_unit_with_nobody_tested_counts_zero_both_ways():
    u = build_street()
    b8 = make_unit("T1C-B8", "building", u["T1C"], "测试社区8号楼")
    hh = Household.objects.create(code="T1C-B8-101", unit=b8, address="测试社区8号楼101")
    make_resident(hh)
    nat(make_resident(hh), D + days(1))  # after D: not in the window
    assert counts()[0][b8.pk] == (2, 0)
    assert counts(u["C1"].parent)[0][b8.pk] == (2, 0)



def test_the_whole_tree_query_runs_serial_at_4mb_and_restores_the_settings():
    build_street()
    if connection.vendor != "postgresql":  # SQLite: the probe, no planner settings touched
        with CaptureQueriesContext(connection) as q:
            counts()
        assert not [x for x in q.captured_queries if "SET " in x["sql"]]
        return
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL max_parallel_workers_per_gather = 1")
        cur.execute("SET LOCAL work_mem = '8MB'")
        with CaptureQueriesContext(connection) as q:
            counts()
        sqls = [x["sql"] for x in q.captured_queries]
        at = next(i for i, x in enumerate(sqls) if "DISTINCT ON" in x)
        assert "set_config('max_parallel_workers_per_gather', '0', true)" in sqls[at - 1]
        assert "set_config('work_mem', '4MB', true)" in sqls[at - 1]
        assert sqls[at + 1] == ("SELECT set_config('max_parallel_workers_per_gather', '1', true), "
                                "set_config('work_mem', '8MB', true)")  # put back
        cur.execute("SELECT current_setting('max_parallel_workers_per_gather'), current_setting('work_mem')")
        assert cur.fetchone() == ("1", "8MB")


@pytest.mark.django_db(transaction=True)  # committed rows: the second connection must see them
def test_outside_a_transaction_the_whole_tree_counts_participation_on_a_second_connection(settings):
    """On PostgreSQL, a whole-tree evaluation outside a transaction runs the participation query on
    its own connection in a thread, beside the other queries and the walk; the verdicts are the same
    as with everything on one connection. Inside a transaction (a test, the daily run) and on SQLite
    everything stays on the caller's connection."""
    import importlib

    from django.apps import apps

    from wuyiqu.standards import evaluator as E

    # A transactional test run before this one flushed the tables, the seeded policy profile with them.
    importlib.import_module("wuyiqu.standards.migrations.0002_seed_wenlong_2022").seed(apps, None)
    u = build_street()
    hh = Household.objects.filter(unit__path__startswith=u["T1C"].path).first()
    nat(make_resident(hh), D)
    make_resident(hh)  # never tested
    profile = parsed_profile(profile_row_in_force(D))

    started = []
    real = E._Beside.__init__

    def spy(self, fn):
        started.append(fn)
        real(self, fn)

    E._Beside.__init__ = spy
    try:
        settings.WUYIQU_EVALUATE_CONCURRENT = True
        beside = [e.as_contract() for e in E.evaluate(D, profile=profile)]
        assert len(started) == (1 if connection.vendor == "postgresql" else 0)
        settings.WUYIQU_EVALUATE_CONCURRENT = False
        alone = [e.as_contract() for e in E.evaluate(D, profile=profile)]
        assert len(started) == (1 if connection.vendor == "postgresql" else 0)  # switched off: no thread
        with transaction.atomic():
            settings.WUYIQU_EVALUATE_CONCURRENT = True
            in_transaction = [e.as_contract() for e in E.evaluate(D, profile=profile)]
        assert len(started) == (1 if connection.vendor == "postgresql" else 0)  # in a transaction: no thread
        E.evaluate(D, root=u["T1"], profile=profile)
        assert len(started) == (1 if connection.vendor == "postgresql" else 0)  # a subtree: no thread
    finally:
        E._Beside.__init__ = real
    assert beside == alone == in_transaction
    community = next(e for e in beside if e["unit"] == u["T1C"].code)
    nat_criterion = next(c for c in community["criteria"] if c["id"] == "nat_participation")
    assert nat_criterion["passed"] is False  # the never-tested resident is counted on both paths


def test_an_error_on_the_second_connection_reaches_the_caller():
    from wuyiqu.standards.evaluator import _Beside

    def boom():
        raise RuntimeError("participation failed")

    with pytest.raises(RuntimeError, match="participation failed"):
        _Beside(boom).result()
    assert _Beside(lambda: 42).result() == 42
