"""health.selectors: the latest test of every resident, who was not tested within N days, exemptions."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import TIANQIAO_COMMUNITY, WENLONG_COMMUNITY
from django.utils import timezone

from wuyiqu.health import actions, selectors
from wuyiqu.health.models import CaseType, MeasureKind, NatResult
from wuyiqu.lib import dates
from wuyiqu.lib.idcard import age_on, kept_third_birthday, turns_three_on
from wuyiqu.units.models import Resident, Unit

DAY = dt.timedelta(days=1)


def sample(resident, on: dt.date, result="negative"):
    at = timezone.make_aware(dt.datetime(on.year, on.month, on.day, 9, 30))
    return NatResult.objects.create(id_hash=resident.id_hash, resident_id=resident.pk, unit_id=resident.household.unit_id,
                                    sampled_at=at, sampled_on=on, result=result)


@pytest.mark.parametrize("born", [dt.date(2020, 2, 29), dt.date(2021, 3, 1), dt.date(2023, 12, 31)])
def test_the_kept_third_birthday_agrees_with_age_on(born):
    turns = turns_three_on(born)
    assert age_on(born, turns - DAY) == 2 and age_on(born, turns) == 3
    # Kept while it may change a verdict of the past year, then forgotten.
    assert kept_third_birthday(born, turns + 366 * DAY) == turns
    assert kept_third_birthday(born, turns + 367 * DAY) is None


@pytest.fixture
def wenlong(world):
    return Unit.objects.get(code=WENLONG_COMMUNITY)


def test_latest_test_dates_is_one_aggregate_query_within_scope(world, wenlong, django_assert_num_queries):
    today = dates.today()
    mine = list(Resident.objects.filter(household__unit__path__startswith=wenlong.path).order_by("id")[:3])
    theirs = Resident.objects.filter(household__unit__path__contains=f"/{TIANQIAO_COMMUNITY}/").first()
    sample(mine[0], today - 9 * DAY)
    sample(mine[0], today - 2 * DAY)
    sample(mine[1], today - 6 * DAY)
    sample(mine[1], today + DAY)  # after the day asked about: not counted
    sample(theirs, today)
    residents = Resident.objects.filter(household__unit__path__startswith=wenlong.path)
    with django_assert_num_queries(1):
        latest = selectors.latest_test_dates(residents, on=today)
    assert latest == {mine[0].pk: today - 2 * DAY, mine[1].pk: today - 6 * DAY}


def test_not_tested_within_n_days_with_exempt_apart(world, wenlong, django_assert_num_queries):
    today = dates.today()
    residents = list(Resident.objects.filter(household__unit__path__startswith=wenlong.path).order_by("id"))
    Resident.objects.filter(household__unit__path__startswith=wenlong.path).update(bedridden=False)
    adults = [r for r in residents if r.age_on(today) >= 18]
    tested_edge, tested_old, never, bedridden, infant = adults[:5]
    sample(tested_edge, today - 6 * DAY)  # the first day of a 7-day window: tested within 7 days
    sample(tested_old, today - 7 * DAY)  # one day before it: not
    Resident.objects.filter(pk=bedridden.pk).update(bedridden=True)
    Resident.objects.filter(pk=infant.pk).update(turns_three_on=today + DAY)
    with django_assert_num_queries(2):  # the residents, and the aggregate of their latest samples
        status = selectors.testing_status(wenlong, on=today, days=7)
    listed = {row.resident.pk: row for row in status.rows}
    assert tested_edge.pk not in listed
    assert listed[tested_old.pk].last_sampled_on == today - 7 * DAY
    assert listed[never.pk].last_sampled_on is None
    exempt = {row.resident.pk: row.exempt_reason for row in status.exempt}
    assert exempt[bedridden.pk] == "卧床" and exempt[infant.pk] == "未满3周岁"
    assert bedridden.pk not in listed and infant.pk not in listed
    assert len(status.exempt) == 1 + sum(1 for r in residents if r.pk != bedridden.pk and
                                         (r.pk == infant.pk or r.age_on(today) < 3))
    assert status.non_exempt_total == len(residents) - len(status.exempt)
    assert status.tested_within == 1 and len(status.rows) == status.non_exempt_total - 1
    # Without days: every non-exempt resident with their latest date.
    everyone = selectors.testing_status(wenlong, on=today)
    assert len(everyone.rows) == everyone.non_exempt_total
    assert {r.resident.pk: r.last_sampled_on for r in everyone.rows}[tested_edge.pk] == today - 6 * DAY


def test_timeline_is_a_fixed_number_of_queries_in_date_order(world, wenlong, django_assert_num_queries):
    today = dates.today()
    r = Resident.objects.filter(household__unit__path__startswith=wenlong.path).order_by("id").first()
    number = r.reveal_id_number()
    m = actions.do_record_measure(actor=None, kind=MeasureKind.CLOSE_CONTACT, id_number=number,
                                  start_on=today - 9 * DAY, end_on=today + DAY)
    actions.do_end_measure_early(m, actor=None, on=today - 2 * DAY, reason="解除")
    actions.do_record_case(actor=None, id_number=number, reported_on=today - 4 * DAY, case_type=CaseType.CONFIRMED)
    for days_ago in (8, 6, 3):
        sample(r, today - days_ago * DAY, result="positive" if days_ago == 3 else "negative")
    with django_assert_num_queries(5):  # cases, measures, their changes, NAT results, ledger entry
        entries = selectors.timeline(r)
    assert [e.kind for e in entries] == ["measure_change", "nat", "case", "nat", "nat", "measure"]
    assert [e.on for e in entries] == sorted((e.on for e in entries), reverse=True)
    assert "解除" in entries[0].detail and entries[-1].measure == m
