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
