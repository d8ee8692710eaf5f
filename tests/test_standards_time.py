"""Evaluation as of a day (SPEC §7 "Time"): people counted where they lived on D, a measure where its
person lives on D, a case where its person lived on its date, households and ledger entries as
registered on D. On the hand-built street of the standards tests (everything passes on D)."""

from __future__ import annotations

import pytest
from test_standards_world import D, build_street, days, make_resident, nat

from wuyiqu.health.models import Measure, PositiveCase
from wuyiqu.standards.evaluator import evaluate
from wuyiqu.units.actions import Move, move_residents
from wuyiqu.units.models import Household, HouseholdVerification, Resident, SpecialPopulationEntry

pytestmark = pytest.mark.django_db


def failed(on, code) -> set[str]:
    return {c.id for e in evaluate(on) if e.unit.code == code for c in e.criteria if not c.passed}


def verdicts(on) -> dict[str, tuple[str, ...]]:
    return {e.unit.code: tuple(sorted(c.id for c in e.criteria if not c.passed)) for e in evaluate(on)}


def move(resident: Resident, household: Household, on) -> None:
    resident.refresh_from_db()
    move_residents([Move(resident.pk, resident.household_id, resident.moved_on, household.pk, on)])


def home(unit) -> Household:
    return Household.objects.filter(unit=unit).order_by("code").first()


def resident_of(unit) -> Resident:
    return Resident.objects.filter(household__unit=unit).order_by("id").first()


def test_a_measure_counts_where_its_person_lives_on_the_day():
    u = build_street(D - days(1))  # everything dated D-1 passes on D-1 and on D
    person = resident_of(u["B9"])
    Measure.objects.create(kind="close_contact", resident=person, unit=u["B9"], id_hash=person.id_hash,
                           id_masked=person.id_masked, start_on=D - days(5), end_on=D)
    move(person, home(u["B1"]), D - days(1))
    assert "no_close_contact" in failed(D, "T1C-C1-B1")  # lives there now
    assert "no_close_contact" not in failed(D, "T1C-B9")  # left the day before
    assert "no_close_contact" in failed(D - days(2), "T1C-B9")  # lived there then
    assert "no_close_contact" not in failed(D - days(2), "T1C-C1-B1")
    assert "no_close_contact" in failed(D, "T1C") and "no_close_contact" in failed(D - days(2), "T1C")


def test_a_case_counts_where_its_person_lived_on_the_case_date():
    u = build_street(D - days(1))  # everything dated D-1 passes on D-1 and on D
    person = resident_of(u["B1"])
    PositiveCase.objects.create(resident=person, unit=u["B1"], id_hash=person.id_hash, id_masked=person.id_masked,
                                reported_on=D - days(3), case_type="confirmed")
    move(person, home(u["G1"]), D - days(1))
    assert "no_case" in failed(D, "T1C-C1-B1") and "no_case" in failed(D, "T1C-C1")
    assert "no_case" not in failed(D, "T1V-G1") and "no_case" not in failed(D, "T1V")
    # A move back-dated before the case takes the case along: the person lived in G1 on its date.
    person.past_residences.all().delete()
    Resident.objects.filter(pk=person.pk).update(moved_on=None)
    move(person, home(u["G1"]), D - days(4))
    assert "no_case" in failed(D, "T1V-G1") and "no_case" not in failed(D, "T1C-C1-B1")


def test_a_case_on_a_unit_stays_on_the_unit():
    u = build_street(D - days(1))  # everything dated D-1 passes on D-1 and on D
    PositiveCase.objects.create(unit=u["B2"], reported_on=D - days(1), case_type="asymptomatic")
    assert "no_case" in failed(D, "T1C-C1-B2") and "no_case" in failed(D, "T1C-C1")
    assert "no_case" not in failed(D, "T1C-C1-B1")


def test_participation_counts_people_where_they_lived_on_the_day():
    """A resident who moved into B1 on D without a test breaks B1 from D on, not before; B9, which
    they left, counts them until the day before."""
    u = build_street(D - days(1))  # everything dated D-1 passes on D-1 and on D
    untested = make_resident(home(u["B9"]))
    nat(untested, D - days(30))  # outside every window
    assert "nat_participation" in failed(D - days(1), "T1C-B9")
    move(untested, home(u["B1"]), D)
    assert "nat_participation" in failed(D, "T1C-C1-B1") and "nat_participation" not in failed(D, "T1C-B9")
    assert "nat_participation" in failed(D - days(1), "T1C-B9")
    assert "nat_participation" not in failed(D - days(1), "T1C-C1-B1")


def test_a_first_registration_counts_from_its_date_and_without_one_on_every_day():
    u = build_street(D - days(1))  # everything dated D-1 passes on D-1 and on D
    dated = make_resident(home(u["B1"]))
    Resident.objects.filter(pk=dated.pk).update(moved_on=D)
    assert "nat_participation" in failed(D, "T1C-C1-B1")
    assert "nat_participation" not in failed(D - days(1), "T1C-C1-B1")
    make_resident(home(u["B9"]))  # no date: the register is being back-filled
    assert "nat_participation" in failed(D - days(1), "T1C-B9")


def test_households_count_from_their_registration():
    u = build_street(D - days(1))  # everything dated D-1 passes on D-1 and on D
    late = Household.objects.create(code=f"{u['B1'].code}-109", unit=u["B1"], address="1栋109", registered_on=D)
    assert "registry_verified" in failed(D, "T1C-C1-B1")
    assert "all_households_signed" in failed(D, "T1C-C1")  # the compound's households co-sign (not named)
    assert "registry_verified" not in failed(D - days(1), "T1C-C1-B1")
    assert "all_households_signed" not in failed(D - days(1), "T1C-C1")
    HouseholdVerification.objects.create(household=late, verified_on=D)
    Household.objects.filter(pk=late.pk).update(registered_on=None)
    assert "registry_verified" in failed(D - days(1), "T1C-C1-B1")  # undated: on every day


def test_ledger_entries_count_from_their_registration():
    u = build_street(D - days(1))  # everything dated D-1 passes on D-1 and on D
    person = resident_of(u["B9"])
    entry = SpecialPopulationEntry.objects.create(resident=person, tags="elderly_alone", needs="", helper="",
                                                  registered_on=D)
    assert "special_population_ledger" in failed(D, "T1C-B9")
    assert "special_population_ledger" not in failed(D - days(1), "T1C-B9")
    move(person, home(u["G1"]), D)  # the entry follows its person
    assert "special_population_ledger" not in failed(D, "T1C-B9")
    assert "special_population_ledger" in failed(D, "T1V-G1")
    entry.registered_on = None
    entry.save()
    assert "special_population_ledger" in failed(D - days(1), "T1C-B9")


def test_facts_after_the_day_change_no_verdict_of_the_day():
    u = build_street(D - days(1))  # everything dated D-1 passes on D-1 and on D
    before = verdicts(D - days(1))
    person = resident_of(u["B1"])
    move(person, home(u["B9"]), D)
    Household.objects.create(code=f"{u['B2'].code}-199", unit=u["B2"], address="x", registered_on=D)
    SpecialPopulationEntry.objects.create(resident=resident_of(u["G1"]), tags="pregnant", registered_on=D)
    late = make_resident(home(u["B9"]))
    Resident.objects.filter(pk=late.pk).update(moved_on=D)
    assert verdicts(D - days(1)) == before
    assert verdicts(D) != verdicts(D - days(1))


def test_still_set_based_moves_add_no_query_per_person_or_unit(django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    u = build_street(D - days(1))  # everything dated D-1 passes on D-1 and on D
    with CaptureQueriesContext(connection) as plain:
        evaluate(D - days(1))
    for key, target in (("B1", "B9"), ("B2", "G1"), ("B9", "B1"), ("G1", "B2")):
        for person in Resident.objects.filter(household__unit=u[key]):
            move(person, home(u[target]), D)
    with CaptureQueriesContext(connection) as moved:
        evaluate(D - days(1))
    assert len(moved) == len(plain)
