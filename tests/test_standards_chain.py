"""evaluate_chain after a new fact: the street judged from its live committee and the day's stored
rows of the others gives the same verdicts as a full evaluation; stale or missing rows are not used."""

from __future__ import annotations

import pytest
from test_standards_world import (
    BUILDING_ITEMS,
    COMMITTEE_ITEMS,
    D,
    build_street,
    days,
    inspect,
    make_resident,
    make_unit,
    nat,
)

from wuyiqu.audit import actions as audit
from wuyiqu.health.models import PositiveCase
from wuyiqu.standards import evaluator as ev_module
from wuyiqu.standards.actions import do_store_evaluations
from wuyiqu.standards.evaluator import evaluate, evaluate_chain
from wuyiqu.standards.models import Evaluation
from wuyiqu.units.actions import Move, move_residents
from wuyiqu.units.models import Household, HouseholdVerification, Resident, SpecialPopulationEntry

pytestmark = pytest.mark.django_db


def summary(e):
    return (e.unit.code, e.eligible, e.named, [(c.id, c.passed, c.detail, c.items) for c in e.criteria],
            e.earliest_pass_on, e.waits_on_open_zone, e.other_failures)


def build_three_committees():
    """The tiny street plus a third community, with failing facts in every committee's subtree (so
    that the street's reasons name samples from several branches)."""
    u = build_street()
    u["T1K"] = make_unit("T1K", "community", u["T1"], "第三社区")
    u["K1"] = make_unit("T1K-B1", "building", u["T1K"], "第三社区1号楼")
    inspect(u["K1"], BUILDING_ITEMS, D)
    inspect(u["T1K"], COMMITTEE_ITEMS[:2], D)  # two cleaning items missing
    for room in ("101", "102", "103"):
        hh = Household.objects.create(code=f"T1K-B1-{room}", unit=u["K1"], address=f"第三社区1号楼{room}")
        r = make_resident(hh, name="李四")
        if room != "103":
            nat(r, D)
            HouseholdVerification.objects.create(household=hh, verified_on=D)
        SpecialPopulationEntry.objects.create(resident=r, tags="elderly_alone", needs="送药", helper="",
                                              reviewed_on=D)
    # The village: an unverified household without a test, a ledger entry never reviewed.
    hh = Household.objects.create(code="T1V-G1-H9", unit=u["G1"], address="测试村一社H9")
    r = make_resident(hh, name="王五")
    SpecialPopulationEntry.objects.create(resident=r, tags="disabled", needs="", helper="赵六")
    # The community of the chain: one unverified household in another building.
    hh = Household.objects.create(code="T1C-B9-109", unit=u["B9"], address="测试社区9号楼109")
    nat(make_resident(hh), D)
    return u


def new_case(unit):
    r = Resident.objects.filter(household__unit=unit).first()
    PositiveCase.objects.create(resident=r, unit=unit, id_hash=r.id_hash, id_masked=r.id_masked, reported_on=D,
                                case_type="confirmed")
    audit.record(actor=None, action="health.record_case", unit=unit, detail={})


@pytest.fixture
def spy(monkeypatch):
    """What ``_stored_committees`` returned on each call (None: the street's subtree was read)."""
    calls = []
    original = ev_module._stored_committees

    def recorded(*args):
        calls.append(original(*args))
        return calls[-1]

    monkeypatch.setattr(ev_module, "_stored_committees", recorded)
    return calls


def full_chain(unit):
    wanted = set(unit.ancestor_codes) | {unit.code}
    return sorted((summary(e) for e in evaluate(D) if e.unit.code in wanted), key=lambda s: -len(s[0]))


def test_the_chain_from_stored_rows_equals_the_full_evaluation(spy):
    u = build_three_committees()
    assert do_store_evaluations(on=D) == len(evaluate(D))
    assert Evaluation.objects.get(on=D, unit=u["T1V"]).rollup["nat"] == [3, 2]
    new_case(u["B1"])
    chain = evaluate_chain(D, u["B1"])
    assert spy[-1] is not None and set(spy[-1]) == {u["T1V"].pk, u["T1K"].pk}
    assert [e.unit.code for e in chain] == ["T1C-C1-B1", "T1C-C1", "T1C", "T1"]
    assert [summary(e) for e in chain] == sorted(full_chain(u["B1"]), key=lambda s: -len(s[0]))
    street = chain[-1]
    assert {"no_case", "registry_verified", "nat_participation", "special_population_ledger", "cleaning",
            "children_free"} <= set(street.failed)
    reason = next(c.detail for c in street.criteria if c.id == "registry_verified")
    assert "测试村一社H9" in reason and "第三社区1号楼103" in reason and "测试社区9号楼109" in reason


def test_a_committee_itself_as_the_unit_of_the_chain(spy):
    u = build_three_committees()
    do_store_evaluations(on=D)
    new_case(u["G1"])
    chain = evaluate_chain(D, u["T1V"])
    assert spy[-1] is not None
    assert [summary(e) for e in chain] == full_chain(u["T1V"])


def test_the_stored_verdicts_are_what_the_street_sees(spy):
    """Proof that the stored rows are used: a stored row saying the village fails shows in the street."""
    u = build_street()
    do_store_evaluations(on=D)
    Evaluation.objects.filter(unit=u["T1V"]).update(eligible=False, named=False, failed=["cleaning"])
    street = evaluate_chain(D, u["B1"])[-1]
    assert spy[-1] is not None
    assert sorted(street.failed) == ["children_free", "cleaning"]
    assert evaluate(D, root=u["T1"])[0].eligible  # the live evaluation disagrees: the row was doctored


def test_a_fact_elsewhere_after_storing_makes_the_rows_stale(spy):
    u = build_three_committees()
    do_store_evaluations(on=D)
    inspect(u["T1V"], ["masks"], D, passed=False)
    audit.record(actor=None, action="inspections.record", unit=u["T1V"], detail={})
    chain = evaluate_chain(D, u["B1"])
    assert spy[-1] is None
    assert "mask_compliance" in chain[-1].failed
    assert [summary(e) for e in chain] == full_chain(u["B1"])


def test_an_event_without_unit_makes_the_rows_stale_and_a_look_does_not(spy):
    u = build_three_committees()
    do_store_evaluations(on=D)
    audit.record(actor=None, action="health.view_timeline", unit=u["T1V"], detail={})
    evaluate_chain(D, u["B1"])
    assert spy[-1] is not None
    audit.record(actor=None, action="imports.run", detail={"kind": "nat-results"})
    assert [summary(e) for e in evaluate_chain(D, u["B1"])] == full_chain(u["B1"])
    assert spy[-1] is None


def test_an_import_inside_the_live_subtree_makes_the_rows_stale(spy):
    """An import scoped to the chain's committee may have moved residents in from another one."""
    u = build_three_committees()
    do_store_evaluations(on=D)
    audit.record(actor=None, action="inspections.record", unit=u["C1"], detail={})
    evaluate_chain(D, u["B1"])
    assert spy[-1] is not None
    audit.record(actor=None, action="imports.run", unit=u["T1C"], detail={"kind": "residents"})
    assert [summary(e) for e in evaluate_chain(D, u["B1"])] == full_chain(u["B1"])
    assert spy[-1] is None


def test_rows_of_another_day_or_profile_or_without_rollup_are_not_used(spy):
    u = build_three_committees()
    do_store_evaluations(on=D)
    Evaluation.objects.filter(unit=u["T1K"]).update(rollup=None)
    evaluate_chain(D, u["B1"])
    assert spy[-1] is None
    do_store_evaluations(on=D)
    Evaluation.objects.filter(unit=u["T1K"]).update(profile_version="wenlong-2022 0.0")
    evaluate_chain(D, u["B1"])
    assert spy[-1] is None
    Evaluation.objects.all().delete()
    assert [summary(e) for e in evaluate_chain(D, u["B1"])] == full_chain(u["B1"])
    assert spy[-1] is None


def test_the_chain_reads_its_ledger_from_the_people_who_lived_in_its_committee_on_the_day(spy):
    """The live committee's ledger lines are read from its people on D (docs/benchmarks.md, the chain's
    ledger read from its people): someone who left after D counts where they lived, someone who came
    after D counts where they came from, someone who came before D where they came to — as in the full
    evaluation."""
    u = build_three_committees()

    def incomplete(unit, name):
        r = make_resident(Household.objects.create(code=f"{unit.code}-L{name}", unit=unit, address=f"{unit.name}{name}"),
                          name=name)
        nat(r, D)
        HouseholdVerification.objects.create(household=r.household, verified_on=D)
        SpecialPopulationEntry.objects.create(resident=r, tags="elderly_alone", needs="", helper="")
        return r

    def move(r, unit, on):
        to = Household.objects.create(code=f"{unit.code}-M{r.pk}", unit=unit, address=f"{unit.name}M{r.pk}")
        HouseholdVerification.objects.create(household=to, verified_on=D)
        move_residents([Move(r.pk, r.household_id, r.moved_on, to.pk, on)])

    left = incomplete(u["B9"], "甲")  # in the chain's community on D, in the village since D+1
    move(left, u["G1"], D + days(1))
    came = incomplete(u["G1"], "乙")  # in the village on D, in the chain's community since D+1
    move(came, u["B2"], D + days(1))
    early = incomplete(u["K1"], "丙")  # from the third community into the chain's, before D
    move(early, u["B2"], D - days(2))
    do_store_evaluations(on=D)
    new_case(u["B1"])
    chain = evaluate_chain(D, u["B1"])
    assert spy[-1] is not None  # the street from the stored rows, the community read live
    assert [summary(e) for e in chain] == sorted(full_chain(u["B1"]), key=lambda s: -len(s[0]))
    community = next(e for e in chain if e.unit.code == "T1C")
    ledger = next(c for c in community.criteria if c.id == "special_population_ledger")
    assert not ledger.passed
    assert {item["id"] for item in ledger.items} == {left.pk, early.pk}
    assert "special_population_ledger" in chain[-1].failed  # the street: the village's line from its stored row


def test_the_street_takes_its_other_committees_cases_and_measures_from_their_stored_rows(spy):
    """The chain reads cases and measures from its live committee's people only (docs/benchmarks.md,
    "Measures and cases from the stored rows"); the other committees' come from their stored rows,
    which hold them with the names masked."""
    from wuyiqu.health.models import Measure

    u = build_three_committees()
    villager = Resident.objects.filter(household__unit=u["G1"]).first()
    Measure.objects.create(kind="close_contact", resident=villager, unit=u["G1"], id_hash=villager.id_hash,
                           id_masked=villager.id_masked, start_on=D - days(3), end_on=D + days(4))
    third = Resident.objects.filter(household__unit=u["K1"]).first()
    PositiveCase.objects.create(resident=third, unit=u["K1"], id_hash=third.id_hash, id_masked=third.id_masked,
                                reported_on=D - days(2), case_type="confirmed")
    PositiveCase.objects.create(unit=u["K1"], id_hash="on-the-unit", id_masked="", reported_on=D - days(1),
                                case_type="asymptomatic")
    do_store_evaluations(on=D)
    stored = Evaluation.objects.get(on=D, unit=u["T1V"]).rollup
    assert [m[0] for m in stored["measures"]] == ["close_contact"]
    assert stored["measures"][0][3][1] == villager.name[0] + "*" * max(1, len(villager.name) - 1)
    assert len(Evaluation.objects.get(on=D, unit=u["T1K"]).rollup["cases"]) == 2
    assert villager.name not in str(stored) and third.name not in str(Evaluation.objects.get(unit=u["T1K"]).rollup)
    new_case(u["B1"])
    chain = evaluate_chain(D, u["B1"])
    assert spy[-1] is not None
    assert [summary(e) for e in chain] == sorted(full_chain(u["B1"]), key=lambda s: -len(s[0]))
    street = chain[-1]
    assert {"no_case", "no_close_contact"} <= set(street.failed)
    cases = next(c for c in street.criteria if c.id == "no_case")
    assert {item["id"] for item in cases.items} == {third.pk, Resident.objects.filter(household__unit=u["B1"]).first().pk}
    contact = next(c for c in street.criteria if c.id == "no_close_contact")
    assert [item["id"] for item in contact.items] == [villager.pk]
    assert "no_close_contact" not in chain[0].failed  # the building: the villager is not there


def test_the_chain_places_a_measure_by_its_persons_home_not_by_its_recorded_unit(spy):
    """A household re-imported into the chain's community moves its people without a history row: a
    measure recorded on the village's unit belongs to the community on D, read live from its people."""
    from wuyiqu.health.models import Measure

    u = build_three_committees()
    villager = Resident.objects.filter(household__unit=u["G1"]).first()
    Measure.objects.create(kind="home_quarantine", resident=villager, unit=u["G1"], id_hash=villager.id_hash,
                           id_masked=villager.id_masked, start_on=D - days(3), end_on=D + days(4))
    Household.objects.filter(pk=villager.household_id).update(unit=u["B1"])  # re-imported, no history row
    do_store_evaluations(on=D)
    assert Evaluation.objects.get(on=D, unit=u["T1V"]).rollup["measures"] == []
    new_case(u["B1"])
    chain = evaluate_chain(D, u["B1"])
    assert spy[-1] is not None
    assert [summary(e) for e in chain] == sorted(full_chain(u["B1"]), key=lambda s: -len(s[0]))
    assert all("no_home_quarantine" in e.failed for e in chain)


def test_rows_stored_before_the_rollups_held_measures_are_not_used(spy):
    u = build_three_committees()
    do_store_evaluations(on=D)
    row = Evaluation.objects.get(on=D, unit=u["T1K"])
    row.rollup = {k: v for k, v in row.rollup.items() if k not in ("cases", "measures")}
    row.save(update_fields=["rollup"])
    new_case(u["B1"])
    assert [summary(e) for e in evaluate_chain(D, u["B1"])] == full_chain(u["B1"])
    assert spy[-1] is None


def test_the_chain_loads_only_its_committee_and_takes_zones_and_incidents_below_the_others(spy):
    """The chain walks the live committee, the street, its committees and the ancestors only: a risk
    zone on a building of another committee still reaches the street (placed below its committee), an
    incident there comes from the committee's stored row, and the street's reasons are the full
    evaluation's."""
    from wuyiqu.health.models import RiskZone
    from wuyiqu.inspections.models import Incident

    u = build_three_committees()
    RiskZone.objects.create(unit=u["K1"], zone_type="temporary", start_on=D - days(2), end_on=None)
    Incident.objects.create(unit=u["G1"], occurred_on=D - days(1), incident_type="fight", description="争执")
    Incident.objects.create(unit=u["K1"], occurred_on=D, incident_type="negative_opinion", description="网帖",
                            handled_on=D, handled_note="已处置")
    do_store_evaluations(on=D)
    assert [i[1] for i in Evaluation.objects.get(on=D, unit=u["T1V"]).rollup["incidents"]] == ["fight"]
    new_case(u["B1"])
    loaded = []
    real_units = ev_module._Gather.units

    def units(self):
        loaded.append(real_units(self))
        return loaded[-1]

    ev_module._Gather.units = units
    try:
        chain = evaluate_chain(D, u["B1"])
    finally:
        ev_module._Gather.units = real_units
    assert spy[-1] is not None
    assert {row[1] for row in loaded[-1]} >= {"T1", "T1V", "T1K", "T1C-C1-B1"} and not {"T1V-G1", "T1K-B1"} & {
        row[1] for row in loaded[-1]}
    assert [summary(e) for e in chain] == sorted(full_chain(u["B1"]), key=lambda s: -len(s[0]))
    street = chain[-1]
    assert {"no_risk_zone", "no_secondary_incident", "no_negative_opinion"} <= set(street.failed)
    zone = next(c for c in street.criteria if c.id == "no_risk_zone")
    assert "第三社区1号楼" in zone.detail
    opinion = next(c for c in street.criteria if c.id == "no_negative_opinion")
    assert "已处置完毕，待街道认可" in opinion.detail
