"""Revocation inside the writing transaction: file imports and API batches."""

from __future__ import annotations

import json

import pytest
from test_standards_world import D
from test_supervision_world import ALL, at, current_codes, named_street

from wuyiqu.api.actions import do_create_api_token
from wuyiqu.health.models import PositiveCase
from wuyiqu.imports.services import run_import
from wuyiqu.supervision.models import TitleEvent, Warning
from wuyiqu.units.models import Resident

pytestmark = pytest.mark.django_db


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def number_in(unit):
    return Resident.objects.filter(household__unit=unit).first().reveal_id_number()


def test_a_cases_import_withdraws_the_chain_in_its_transaction(tmp_path):
    u = named_street()
    path = write(tmp_path, "cases.csv", f"id_number,reported_on,type\n{number_in(u['B1'])},2022-11-27,confirmed\n")
    with at(D):
        job = run_import(kind="cases", path=path)
    assert job.status == "succeeded", job.message
    assert current_codes() == ALL - {"T1C-C1-B1", "T1C-C1", "T1C", "T1"}
    assert set(TitleEvent.objects.values_list("source", flat=True)) == {"import:cases"}


def test_an_import_that_fails_validation_withdraws_nothing(tmp_path):
    u = named_street()
    path = write(tmp_path, "cases.csv", f"id_number,reported_on,type\n{number_in(u['B1'])},2022-11-27,confirmed\n"
                                        f"{number_in(u['B2'])},2022-11-27,unknown\n")
    with at(D):
        job = run_import(kind="cases", path=path)
    assert job.status == "failed"
    assert current_codes() == ALL and not PositiveCase.objects.exists()


def test_a_failure_of_the_supervision_rolls_the_import_back(tmp_path, monkeypatch):
    """Same transaction: if the withdrawal cannot be written, the facts are not written either."""
    from wuyiqu.supervision import notices

    u = named_street()

    def broken(self):
        raise RuntimeError("mail server on fire")

    monkeypatch.setattr(notices.Notices, "send", broken)
    path = write(tmp_path, "cases.csv", f"id_number,reported_on,type\n{number_in(u['B1'])},2022-11-27,confirmed\n")
    with at(D), pytest.raises(RuntimeError):
        run_import(kind="cases", path=path)
    assert current_codes() == ALL and not PositiveCase.objects.exists() and not TitleEvent.objects.exists()


def test_a_positive_nucleic_acid_result_withdraws_and_a_negative_one_does_not(tmp_path):
    u = named_street()
    path = write(tmp_path, "nat.csv", f"id_number,sampled_at,result\n{number_in(u['B2'])},2022-11-28 08:00,阴性\n")
    with at(D):
        assert run_import(kind="nat-results", path=path).status == "succeeded"
    assert current_codes() == ALL
    path = write(tmp_path, "nat2.csv", f"id_number,sampled_at,result\n{number_in(u['B9'])},2022-11-28 08:00,阳性\n")
    with at(D):
        assert run_import(kind="nat-results", path=path).status == "succeeded"
    assert current_codes() == ALL - {"T1C-B9", "T1C", "T1"}


def test_a_positive_result_of_someone_who_moved_since_rechecks_where_they_lived_that_day(tmp_path):
    """The result of 11-26 is a case where the person lived on 11-26 (B1), not in the village they
    moved to on 11-27; both units are re-checked (SPEC §7 "Time")."""
    from test_standards_world import days

    from wuyiqu.supervision.services import collecting_rechecks
    from wuyiqu.units.actions import Move, move_residents
    from wuyiqu.units.models import Household

    u = named_street()
    person = Resident.objects.filter(household__unit=u["B1"]).first()
    to = Household.objects.create(code="T1V-G1-M1", unit=u["G1"], address="测试村一社M1")
    move_residents([Move(person.pk, person.household_id, person.moved_on, to.pk, D - days(1))])
    path = write(tmp_path, "nat.csv", f"id_number,sampled_at,result\n{person.reveal_id_number()},2022-11-26 08:00,阳性\n")
    with at(D), collecting_rechecks() as outcomes:
        assert run_import(kind="nat-results", path=path).status == "succeeded"
    assert {u["B1"].pk, u["G1"].pk} <= {unit for o in outcomes for unit in o.units}
    assert PositiveCase.objects.get().unit_id == u["B1"].pk
    assert current_codes() == ALL - CHAIN_B1


def test_a_failed_inspection_import_opens_a_warning(tmp_path):
    u = named_street()
    path = write(tmp_path, "insp.csv", f"unit_code,inspected_on,item,passed\n{u['C1'].code},2022-11-28,visitors,不合格\n")
    with at(D):
        assert run_import(kind="inspections", path=path).status == "succeeded"
    assert list(Warning.objects.values_list("unit__code", "criterion")) == [("T1C-C1", "entrance_control")]
    assert current_codes() == ALL


def test_a_close_contact_posted_through_the_api_withdraws_in_the_request(client):
    u = named_street()
    _token, secret = do_create_api_token(actor=None, name="cdc", unit=u["T1"], kinds=["close-contacts"], days=30)
    body = {"batch_key": "k1", "records": [{"id_number": number_in(u["B2"]), "start_on": "2022-11-27",
                                             "end_on": "2022-12-04"}]}
    with at(D):
        resp = client.post("/api/v1/facts/close-contacts", data=json.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert resp.status_code == 200, resp.content
    assert current_codes() == ALL - {"T1C-C1-B2", "T1C-C1", "T1C", "T1"}
    assert set(TitleEvent.objects.values_list("source", flat=True)) == {"api:cdc:close-contacts"}


CHAIN_B1 = {"T1C-C1-B1", "T1C-C1", "T1C", "T1"}


@pytest.mark.parametrize(("kind", "header", "row", "withdrawn", "warned"), [
    ("home-quarantines", "id_number,start_on,end_on", "{B1},2022-11-26,2022-12-02", CHAIN_B1, set()),
    ("returnees", "id_number,origin,arrived_on,control_until", "{B1},上海,2022-11-25,2022-12-01", CHAIN_B1, set()),
    ("risk-zones", "unit_code,type,start_on,end_on", "T1C-C1,临时管控区,2022-11-27,", {"T1C-C1", "T1C", "T1"}, set()),
    ("incidents", "unit_code,occurred_on,type,description", "T1C-C1-B1,2022-11-27,fight,楼道争吵", CHAIN_B1, set()),
    # A warning for the street above comes with the daily run (a fact reads only its community).
    ("incidents", "unit_code,occurred_on,type,description", "T1C-C1-B1,2022-11-27,negative_opinion,网帖", set(),
     {("T1C-C1-B1", "no_negative_opinion"), ("T1C-C1", "no_negative_opinion"), ("T1C", "no_negative_opinion")}),
    ("surveys", "unit_code,surveyed_on,awareness,approval,participation", "T1V,2022-11-28,0.95,0.80,0.95", set(),
     {("T1V", "publicity_awareness")}),
])
def test_each_fact_kind_rechecks_the_units_it_bears_on(tmp_path, kind, header, row, withdrawn, warned):
    u = named_street()
    path = write(tmp_path, "facts.csv", f"{header}\n{row.format(B1=number_in(u['B1']))}\n")
    with at(D):
        job = run_import(kind=kind, path=path)
    assert job.status == "succeeded", (job.message, job.errors)
    assert current_codes() == ALL - withdrawn
    assert set(Warning.objects.values_list("unit__code", "criterion")) == warned


def test_the_street_above_gets_its_warning_from_the_daily_run(tmp_path):
    from wuyiqu.supervision.services import run_daily

    named_street()
    path = write(tmp_path, "incidents.csv", "unit_code,occurred_on,type,description\n"
                                            "T1C-C1-B1,2022-11-27,negative_opinion,网帖\n")
    with at(D):
        run_import(kind="incidents", path=path)
        assert not Warning.objects.filter(unit__code="T1").exists()
        run_daily(on=D)
    assert Warning.objects.filter(unit__code="T1", criterion="no_negative_opinion", status="open").count() == 1
    assert Warning.objects.count() == 4
