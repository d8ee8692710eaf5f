"""A move to a household of another district (``units.relocation``): the resident and the rows kept with
them — ledger entry, cases, measures with their changes, held facts, nucleic-acid results — are deleted
in the old district and inserted in the new one with the same ids, in the move's transaction; the past
spell stays in the district it was spent in, and the old district's verdicts of the days the person
lived there still count their facts. A household does not change district."""

from __future__ import annotations

import pytest
from test_standards_world import D, days, make_resident, make_unit, nat
from test_supervision_world import at, named_street

from wuyiqu.health.actions import (
    CaseRow,
    MeasureRow,
    do_extend_measure,
    write_cases,
    write_measures,
)
from wuyiqu.health.models import HeldFacts, Measure, MeasureChange, NatResult, PositiveCase
from wuyiqu.imports.models import ImportStatus
from wuyiqu.imports.services import run_import
from wuyiqu.lib import crypto
from wuyiqu.standards.evaluator import evaluate
from wuyiqu.units.actions import do_move_resident
from wuyiqu.units.models import Household, PastResidence, Resident, SpecialPopulationEntry

pytestmark = pytest.mark.django_db

KEPT_WITH = (Resident, SpecialPopulationEntry, PositiveCase, Measure, MeasureChange, HeldFacts)


def other_district() -> Household:
    s = make_unit("S", "district", name="另一区")
    street = make_unit("S1", "street", s, "另一街道")
    community = make_unit("S1C", "community", street, "另一社区")
    building = make_unit("S1C-B1", "building", community, "另一社区1栋")
    return Household.objects.create(code="S1C-B1-101", unit=building, address="另一社区1栋101")


def rows_of(person_id: int) -> dict[str, list[tuple[str, int]]]:
    """(district, id) of every row kept with the person, by table."""
    out = {}
    for model in KEPT_WITH:
        if model is Resident:
            qs = Resident.objects.filter(pk=person_id)
        elif model is MeasureChange:
            qs = MeasureChange.objects.filter(measure__resident_id=person_id)
        else:
            qs = model.objects.filter(resident_id=person_id)
        out[model.__name__] = sorted(qs.values_list("district_code", "pk"))
    return out


def test_a_move_to_another_district_takes_the_person_and_their_facts_along_with_the_same_ids():
    u = named_street()
    target = other_district()
    with at(D):
        person = Resident.objects.filter(household__unit=u["B9"]).order_by("id").first()
        number = person.reveal_id_number()
        write_cases([CaseRow(D - days(2), "asymptomatic", number)])
        write_measures([MeasureRow("home_quarantine", number, D - days(3), D + days(2))])
        do_extend_measure(Measure.objects.get(resident=person), actor=None, until=D + days(5), reason="复核延期")
        SpecialPopulationEntry.objects.create(resident=person, tags="chronic", needs="送药", helper="王五")
        HeldFacts.objects.create(id_hash=person.id_hash, resident=person, scope_unit=u["T1V"], results=1)
        nat(person, D - days(1))
        before = rows_of(person.pk)
        assert {d for rows in before.values() for d, _pk in rows} == {"T"}
        assert all(len(rows) == 1 for rows in before.values()), before
        failing = {e.unit.code for e in evaluate(D, root=u["T1"]) if "no_case" in e.failed}
        assert "T1C-B9" in failing
        moved = do_move_resident(actor=None, resident=person, household_code=target.code)
    assert (moved.pk, moved.district_code, moved.household_id) == (person.pk, "S", target.pk)
    after = rows_of(person.pk)
    assert after == {name: [("S", pk) for _d, pk in rows] for name, rows in before.items()}
    # Nothing left in the old district but the past spell, kept where it was spent.
    for model in KEPT_WITH:
        assert not model.objects.filter(district_code="T", pk__in=[pk for _d, pk in before[model.__name__]]).exists()
    assert list(PastResidence.objects.filter(resident_id=person.pk).values_list("district_code", "household__unit__code")) \
        == [("T", "T1C-B9")]
    assert set(NatResult.objects.filter(resident_id=person.pk).values_list("district_code", flat=True)) == {"S"}
    assert Measure.objects.get(pk=after["Measure"][0][1]).changes.get().new_end_on == D + days(5)
    # T's verdicts of the day still count the case where the person lived when it was reported, read
    # from the district they live in now; the new home counts the person's measure.
    with at(D):
        assert {e.unit.code for e in evaluate(D, root=u["T1"]) if "no_case" in e.failed} == failing
        assert "no_home_quarantine" in next(e for e in evaluate(D, root=target.unit.parent.parent.parent)
                                            if e.unit.code == "S1C-B1").failed


def test_a_move_inside_the_district_updates_the_person_in_place():
    u = named_street()
    with at(D):
        person = Resident.objects.filter(household__unit=u["B9"]).order_by("id").first()
        SpecialPopulationEntry.objects.create(resident=person, tags="chronic", needs="送药", helper="王五")
        before = rows_of(person.pk)
        do_move_resident(actor=None, resident=person, household_code=f"{u['B1'].code}-101")
    assert rows_of(person.pk) == before


def test_a_household_is_not_moved_to_a_unit_of_another_district(tmp_path):
    u = named_street()
    other_district()
    make_resident(Household.objects.get(code="S1C-B1-101"))
    path = tmp_path / "households.csv"
    path.write_text(f"户编码,所属单位编码,地址\n{u['B9'].code}-101,S1C-B1,另一社区1栋\n", encoding="utf-8")
    job = run_import(kind="households", path=path)
    assert job.status == ImportStatus.FAILED
    error = job.errors[0]
    assert error["field"] == "unit_code" and "其他区" in error["message"] and "迁入" in error["message"]
    assert Household.objects.get(code=f"{u['B9'].code}-101").district_code == "T"


def test_a_fact_is_kept_with_its_person_else_its_unit_else_its_submitter_and_linking_moves_it():
    from test_standards_world import id_number

    from wuyiqu.health.linking import link_facts

    u = named_street()
    other_district()
    assert set(Resident.objects.values_list("district_code", flat=True)) == {"T"}
    assert set(SpecialPopulationEntry.objects.values_list("district_code", flat=True)) <= {"T"}
    stranger, outsider = id_number(D.replace(year=1990)), id_number(D.replace(year=1991))
    s1c = Household.objects.get(code="S1C-B1-101").unit.parent
    with at(D):
        write_cases([CaseRow(D, "confirmed", unit_id=u["T1V"].pk)])  # on a unit: the unit's district
        write_cases([CaseRow(D, "confirmed", stranger)])  # unscoped, nobody: ""
        write_measures([MeasureRow("returnee", outsider, D, D + days(7))], scope=s1c)  # S's community: S
    hashed = crypto.cipher().lookup_hash
    assert sorted(PositiveCase.objects.values_list("district_code", "id_hash")) == [("", hashed(stranger)), ("T", "")]
    assert Measure.objects.get(id_hash=hashed(outsider)).district_code == "S"
    case_id = PositiveCase.objects.get(id_hash=hashed(stranger)).pk
    person = make_resident(Household.objects.get(code=f"{u['B9'].code}-101"))
    person.set_id_number(stranger)
    person.save(update_fields=["id_enc", "id_hash", "id_masked", "turns_three_on"])
    assert link_facts([person.id_hash]).cases == 1
    # Linked: moved from "" into the person's district, the same id.
    case = PositiveCase.objects.get(id_hash=hashed(stranger))
    assert (case.pk, case.district_code, case.resident_id) == (case_id, "T", person.pk)
    assert not PositiveCase.objects.filter(district_code="", pk=case_id).exists()
