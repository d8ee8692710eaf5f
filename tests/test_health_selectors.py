"""health.selectors: the latest test of every resident, who was not tested within N days, exemptions."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import TIANQIAO_COMMUNITY, WENLONG_COMMUNITY
from django.utils import timezone

from wuyiqu.health import actions, selectors
from wuyiqu.health.models import CaseType, MeasureKind, NatResult
from wuyiqu.lib import dates
from wuyiqu.lib.idcard import age_on
from wuyiqu.units.models import Resident, Unit

DAY = dt.timedelta(days=1)


def sample(resident, on: dt.date, result="negative"):
    at = timezone.make_aware(dt.datetime(on.year, on.month, on.day, 9, 30))
    return NatResult.objects.create(id_hash=resident.id_hash, resident_id=resident.pk, unit_id=resident.household.unit_id,
                                    sampled_at=at, sampled_on=on, result=result)


@pytest.mark.parametrize("on", [dt.date(2024, 2, 29), dt.date(2025, 3, 1), dt.date(2026, 11, 29), dt.date(2027, 2, 28)])
def test_the_under_3_cut_off_agrees_with_age_on(on):
    cut = selectors.born_after_is_exempt(on)
    day = cut - 3 * DAY
    while day <= cut + 3 * DAY:
        assert (day > cut) == (age_on(day, on) < 3), day
        day += DAY
    # Born on 29 February: still 2 on 28 February three years on, 3 on 1 March.
    assert age_on(dt.date(2020, 2, 29), dt.date(2023, 2, 28)) == 2
    assert (dt.date(2020, 2, 29) > selectors.born_after_is_exempt(dt.date(2023, 2, 28)))


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
    adults = [r for r in residents if age_on(r.birth_date, today) >= 18]
    tested_edge, tested_old, never, bedridden, infant = adults[:5]
    sample(tested_edge, today - 6 * DAY)  # the first day of a 7-day window: tested within 7 days
    sample(tested_old, today - 7 * DAY)  # one day before it: not
    Resident.objects.filter(pk=bedridden.pk).update(bedridden=True)
    Resident.objects.filter(pk=infant.pk).update(birth_date=today - 2 * 365 * DAY)
    with django_assert_num_queries(2):  # the residents, and the aggregate of their latest samples
        status = selectors.testing_status(wenlong, on=today, days=7)
    listed = {row.resident.pk: row for row in status.rows}
    assert tested_edge.pk not in listed
    assert listed[tested_old.pk].last_sampled_on == today - 7 * DAY
    assert listed[never.pk].last_sampled_on is None
    exempt = {row.resident.pk: row.exempt_reason for row in status.exempt}
    assert exempt[bedridden.pk] == "卧床" and exempt[infant.pk] == "未满3周岁"
    assert bedridden.pk not in listed and infant.pk not in listed
    born_after = selectors.born_after_is_exempt(today)
    assert len(status.exempt) == 1 + sum(1 for r in residents if r.pk != bedridden.pk and
                                         (r.pk == infant.pk or r.birth_date > born_after))
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
