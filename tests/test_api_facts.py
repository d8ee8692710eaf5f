"""POST /api/v1/facts/…: token auth, kinds, scope, per-record errors, idempotent batches, one error shape."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine

from wuyiqu.api.actions import do_create_api_token, do_revoke_api_token
from wuyiqu.api.models import ApiBatch
from wuyiqu.audit.models import AuditEvent
from wuyiqu.health.models import HeldFacts, Measure, NatResult, PositiveCase
from wuyiqu.lib import crypto
from wuyiqu.lib.idcard import check_digit
from wuyiqu.units.models import Resident, Unit

HONGQI_VILLAGE = "500110002208"
WENLONG_COMMUNITY = "500110002015"

NOW = dt.datetime(2022, 11, 25, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
NAT_URL = "/api/v1/facts/nat-results"


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def lab(world):
    """A laboratory's token for 文龙社区, allowed nat-results only."""
    token, secret = do_create_api_token(actor=None, name="lab", unit=Unit.objects.get(code=WENLONG_COMMUNITY),
                                        kinds=["nat-results"], days=90)
    return token, secret


def _post(client, url, body, secret=None, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    return client.post(url, data=json.dumps(body) if not isinstance(body, str) else body,
                       content_type="application/json", **headers, **extra)


def _insider_and_outsider():
    inside = Resident.objects.filter(household__unit__path__contains=f"/{WENLONG_COMMUNITY}/").order_by("id")
    outside = Resident.objects.filter(household__unit__path__contains=f"/{HONGQI_VILLAGE}/").order_by("id")
    return [r.reveal_id_number() for r in inside[:2]], outside.first().reveal_id_number()


def _assert_error_shape(resp, status, code):
    assert resp.status_code == status, resp.content
    body = resp.json()
    assert set(body) == {"code", "message", "fields"}
    assert body["code"] == code
    assert body["message"]
    return body


def test_it_writes_a_batch_of_results_and_audits_the_call(client, lab):
    _token, secret = lab
    (n1, n2), _out = _insider_and_outsider()
    resp = _post(client, NAT_URL, {"batch_key": "b1", "records": [
        {"id_number": n1, "sampled_at": "2022-11-24 08:30", "result": "negative"},
        {"id_number": n2, "sampled_at": "2022-11-24 08:31:00", "result": "阳性"},
    ]}, secret)
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert (body["received"], body["created"], body["rejected"], body["errors"]) == (2, 2, 0, [])
    assert NatResult.objects.count() == 2
    assert PositiveCase.objects.count() == 1
    event = AuditEvent.objects.get(action="api.facts")
    assert event.detail["token"] == "lab" and event.detail["created"] == 2 and event.detail["status"] == 200


def test_a_record_about_someone_registered_elsewhere_gets_the_answer_of_an_unknown_number(client, lab):
    # No existence oracle: registered in another community, or on no register at all, the answer is
    # the same "unmatched"; neither is attached to anybody (the first is held for the street).
    _token, secret = lab
    (n1, _n2), outsider = _insider_and_outsider()
    stranger = "11010119900101123" + check_digit("11010119900101123")
    resp = _post(client, NAT_URL, {"batch_key": "b2", "records": [
        {"id_number": outsider, "sampled_at": "2022-11-24 08:30", "result": "negative"},
        {"id_number": n1, "sampled_at": "2022-11-24 08:30", "result": "negative"},
        {"id_number": n1, "sampled_at": "2022-11-24 25:30", "result": "negative"},
        {"id_number": stranger, "sampled_at": "2022-11-24 08:30", "result": "negative"},
    ]}, secret)
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert (body["created"], body["unmatched"], body["rejected"]) == (3, 2, 1)
    (only,) = body["errors"]
    assert (only["index"], only["code"], list(only["fields"])) == (2, "invalid", ["sampled_at"])
    insider = Resident.objects.filter(household__unit__path__contains=f"/{WENLONG_COMMUNITY}/").order_by("id").first()
    assert sorted(NatResult.objects.values_list("resident_id", flat=True), key=lambda r: r or 0) == [None, None, insider.pk]
    assert HeldFacts.objects.get().resident_id == Resident.objects.get(
        id_hash=crypto.cipher().lookup_hash(outsider)).pk


def test_the_same_batch_or_the_same_records_add_nothing_twice(client, lab):
    _token, secret = lab
    (n1, n2), _out = _insider_and_outsider()
    body = {"batch_key": "b3", "records": [{"id_number": n1, "sampled_at": "2022-11-24 08:30", "result": "阴性"},
                                           {"id_number": n2, "sampled_at": "2022-11-24 08:30", "result": "阴性"}]}
    assert _post(client, NAT_URL, body, secret).json()["created"] == 2
    again = _post(client, NAT_URL, body, secret).json()
    assert again["replayed"] is True and again["created"] == 2  # the first answer, written once
    other_key = _post(client, NAT_URL, {**body, "batch_key": "b4"}, secret).json()
    assert (other_key["created"], other_key["unchanged"], other_key["replayed"]) == (0, 2, False)
    assert NatResult.objects.count() == 2
    assert ApiBatch.objects.count() == 2
    assert AuditEvent.objects.filter(action="api.facts").count() == 3


def test_a_duplicate_inside_one_batch_is_reported(client, lab):
    _token, secret = lab
    (n1, _n2), _out = _insider_and_outsider()
    rec = {"id_number": n1, "sampled_at": "2022-11-24 08:30", "result": "阴性"}
    body = _post(client, NAT_URL, {"batch_key": "d", "records": [rec, dict(rec, sampled_at="2022-11-24 08:30:00")]},
                 secret).json()
    assert body["created"] == 1 and [(e["index"], e["code"]) for e in body["errors"]] == [(1, "duplicate")]


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer wyq_not-a-token", "Basic abc"])
def test_a_missing_or_unknown_token_gets_401_in_the_error_shape(client, lab, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    resp = client.post(NAT_URL, data=json.dumps({"batch_key": "x", "records": []}), content_type="application/json",
                       **extra)
    _assert_error_shape(resp, 401, "invalid_token" if header == "Bearer wyq_not-a-token" else "unauthenticated")
    assert not AuditEvent.objects.filter(action="api.facts").exists()
    assert AuditEvent.objects.get(action="api.unauthenticated").detail["status"] == 401


def test_an_expired_or_revoked_token_gets_401(client, lab):
    token, secret = lab
    (n1, _n2), _out = _insider_and_outsider()
    body = {"batch_key": "e", "records": [{"id_number": n1, "sampled_at": "2022-11-24 08:30", "result": "阴性"}]}
    with time_machine.travel(NOW + dt.timedelta(days=91), tick=False):
        _assert_error_shape(_post(client, NAT_URL, body, secret), 401, "token_expired")
    do_revoke_api_token(actor=None, token=token)
    _assert_error_shape(_post(client, NAT_URL, body, secret), 401, "token_revoked")
    assert NatResult.objects.count() == 0


def test_a_kind_the_token_may_not_write_gets_403(client, lab):
    _token, secret = lab
    (n1, _n2), _out = _insider_and_outsider()
    body = {"batch_key": "k", "records": [{"id_number": n1, "start_on": "2022-11-20", "end_on": "2022-11-30"}]}
    err = _assert_error_shape(_post(client, "/api/v1/facts/close-contacts", body, secret), 403, "kind_not_allowed")
    assert err["fields"] == {"kind": "close-contacts"}
    _assert_error_shape(_post(client, "/api/v1/facts/bogus", body, secret), 404, "unknown_kind")
    assert Measure.objects.count() == 0


def test_other_kinds_go_through_their_import_kind(client, world):
    _token, secret = do_create_api_token(actor=None, name="cdc", unit=Unit.objects.get(code=WENLONG_COMMUNITY),
                                         kinds=["close-contacts"], days=30)
    (n1, _n2), outsider = _insider_and_outsider()
    resp = _post(client, "/api/v1/facts/close-contacts", {"batch_key": "c1", "records": [
        {"id_number": n1, "start_on": "2022-11-20", "end_on": "2022-11-30"},
        {"id_number": outsider, "start_on": "2022-11-20", "end_on": "2022-11-30"},
        {"id_number": n1, "start_on": "2022-11-20", "end_on": "2022-11-10"},
        {"id_number": n1, "start": "2022-11-20"},
    ]}, secret)
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert (body["created"], body["unmatched"]) == (2, 1)
    assert [(e["index"], e["code"]) for e in body["errors"]] == [(2, "invalid"), (3, "unknown_field")]
    assert sorted(Measure.objects.values_list("resident_id", flat=True), key=lambda r: r or 0)[0] is None


@pytest.mark.parametrize(("payload", "status", "code"), [
    ("{not json", 400, "invalid_json"),
    ({"records": []}, 422, "invalid"),
    ({"batch_key": "x", "records": "nope"}, 422, "invalid"),
    ({"batch_key": "x", "records": [{"id_number": 5}]}, 422, "invalid"),
    ({"batch_key": "x", "records": []}, 422, "invalid"),  # the document says 1 to 10,000 records
    ({"batch_key": "   ", "records": [{"id_number": "1"}]}, 422, "invalid"),  # and a batch key not blank
])
def test_bad_input_gets_4xx_in_the_error_shape_never_500(client, lab, payload, status, code):
    _token, secret = lab
    resp = _post(client, NAT_URL, payload, secret)
    _assert_error_shape(resp, status, code)
    assert NatResult.objects.count() == 0
    event = AuditEvent.objects.get(action="api.facts")
    assert (event.detail["token"], event.detail["status"]) == ("lab", status)


def test_a_body_not_sent_as_json_is_415(client, lab):
    _token, secret = lab
    resp = client.post(NAT_URL, data="batch_key=x", content_type="application/x-www-form-urlencoded",
                       HTTP_AUTHORIZATION=f"Bearer {secret}")
    _assert_error_shape(resp, 415, "unsupported_media_type")
    assert AuditEvent.objects.get(action="api.facts").detail["status"] == 415


def test_the_openapi_document_is_served_and_the_docs_page_loads_no_cdn(client):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert "/api/v1/facts/nat-results" in doc["paths"] and "/api/v1/facts/{kind}" in doc["paths"]
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html and "/static/api/swagger-init.js" in html
    assert "cdn" not in html.lower() and "http://" not in html and "https://" not in html
    assert "<script>" not in html  # no inline script
