"""The month behind `wuyiqu demo` (web/demo_history.py), lived in-process on a small world on the
test database (SQLite and PostgreSQL): 30 days of stored evaluations, titles at several levels, some
withdrawn, a warning, applications waiting at every review step and one returned, accounts for every
role; and the same seed gives the same month."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Count

from wuyiqu.accounts.models import Role, User
from wuyiqu.applications.models import Application, ReviewStep
from wuyiqu.certification.models import Title
from wuyiqu.health.models import Measure, NatResult, PositiveCase, RiskZone
from wuyiqu.inspections.models import Inspection, Survey
from wuyiqu.standards.models import Evaluation
from wuyiqu.supervision.models import Warning
from wuyiqu.units.actions import do_load_divisions, do_load_generated_world
from wuyiqu.units.generator import generate_world
from wuyiqu.units.models import Resident, SpecialPopulationEntry, Unit
from wuyiqu.web.demo_history import DAYS, HONGQI, TIANQIAO, WENLONG, first_day, live_month

pytestmark = pytest.mark.django_db(transaction=False)


def build(today: dt.date, seed: int = 11):
    do_load_divisions()
    committees = list(Unit.objects.filter(parent__code="500110002").order_by("code")
                      .values_list("code", "name", "kind"))
    world = generate_world(committees, residents=2000, seed=seed, today=first_day(today))
    do_load_generated_world(world=world)
    return live_month(world=world, last=today, seed=seed)


def check_every_day_of_the_month_has_its_stored_evaluations(month, today):
    days = sorted(Evaluation.objects.values_list("on", flat=True).distinct())
    assert days == [first_day(today) + dt.timedelta(days=n) for n in range(DAYS)]
    per_day = set(Evaluation.objects.values("on").annotate(n=Count("id")).values_list("n", flat=True))
    assert len(per_day) == 1 and per_day.pop() > 500  # every unit on every day
    # today some units meet the whole standard (达标), and the named ones among them
    eligible = set(Evaluation.objects.filter(on=today, eligible=True).values_list("unit__code", flat=True))
    assert {WENLONG, f"{WENLONG}-C01", f"{WENLONG}-C01-B01"} <= eligible


def check_titles_at_several_levels_some_withdrawn(month, today):
    current = dict(Title.objects.filter(withdrawn_on__isnull=True).values_list("unit__code", "unit__kind"))
    assert current[WENLONG] == "community"
    assert current[f"{WENLONG}-C01"] == "compound"
    assert current[f"{WENLONG}-C01-B01"] == "building"
    withdrawn = Title.objects.filter(withdrawn_on__isnull=False).select_related("unit")
    assert withdrawn.exists()
    assert {t.unit.parent.code for t in withdrawn} == {HONGQI}  # the 社 of the case (and of a missed warning)
    assert all(first_day(today) < t.withdrawn_on <= today for t in withdrawn)


def check_the_facts_of_the_month_are_there(month, today):
    assert PositiveCase.objects.count() == 1
    assert Measure.objects.filter(kind="close_contact").count() == 3
    zone = RiskZone.objects.get()
    assert zone.end_on is not None and zone.end_on < today  # opened and lifted
    assert Inspection.objects.filter(passed=False).exists() and Inspection.objects.filter(passed=True).count() > 1000
    assert Survey.objects.count() == 2 * 20
    ledger = SpecialPopulationEntry.objects.all()
    assert ledger.count() > 20 and 0 < ledger.filter(helper="").count() <= 3  # a few gaps
    # realistic participation: a round reaches most residents, not all
    last_round = NatResult.objects.filter(sampled_on=today).count()
    residents = Resident.objects.count()
    assert 0.8 * residents < last_round < residents


def check_applications_wait_at_every_step_and_one_was_returned(month):
    # The small world has four buildings to wait (the default world, measured: five, one returned):
    # they wait at the first steps in order, one step further each day.
    statuses = set(Application.objects.values_list("status", flat=True))
    assert {"community_review", "street_review", "health_review", "command_review", "named"} <= statuses
    for app in Application.objects.filter(status__in=("street_review", "health_review", "command_review")):
        assert ReviewStep.objects.filter(application=app, decision="approve").exists()


def check_every_role_has_accounts_in_two_communities_and_a_village(month):
    by_unit = set(User.objects.values_list("role", "unit__code"))
    for role in (Role.COMMUNITY_STAFF, Role.BUILDING_HEAD, Role.PROPERTY_MANAGER):
        assert {code[:12] for r, code in by_unit if r == role} >= {WENLONG, TIANQIAO}, role
    assert (Role.COMMUNITY_STAFF, WENLONG) in by_unit and (Role.COMMUNITY_STAFF, TIANQIAO) in by_unit
    assert (Role.COMMUNITY_STAFF, HONGQI) in by_unit
    assert {r for r, _ in by_unit} == set(Role.values)


def check_a_warning_runs_out_into_a_withdrawal(month):
    expired = Warning.objects.filter(criterion="mask_compliance", status="expired")
    assert expired.exists()
    assert Title.objects.filter(unit__in=expired.values("unit"), withdrawn_on__isnull=False).exists()


def test_the_month_behind_the_demo(today):
    """One month lived once per database (it takes a while); each check says what it looks at."""
    month = build(today)
    check_every_day_of_the_month_has_its_stored_evaluations(month, today)
    check_titles_at_several_levels_some_withdrawn(month, today)
    check_the_facts_of_the_month_are_there(month, today)
    check_applications_wait_at_every_step_and_one_was_returned(month)
    check_every_role_has_accounts_in_two_communities_and_a_village(month)
    check_a_warning_runs_out_into_a_withdrawal(month)
    assert not month.state.get("refused"), month.state.get("refused")  # every step of the script went through
