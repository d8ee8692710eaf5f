"""/api/v1/ reads and review decisions: token scopes, the unit subtree (404 outside, generated over every
registered operation), expired/revoked tokens, a reviewer token through the chain, one error shape."""

from __future__ import annotations

import datetime as dt
import json
import re
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from test_applications_world import NOW, build, people, person, sign_all

from wuyiqu.api.actions import do_create_api_token, do_revoke_api_token
from wuyiqu.api.api import api
from wuyiqu.api.models import READ_SCOPES
from wuyiqu.applications.actions import do_open_application, do_review_application, do_submit_application
from wuyiqu.applications.models import ApplicationStatus, ReviewStep
from wuyiqu.audit.models import AuditEvent
from wuyiqu.certification.models import Title
from wuyiqu.standards.evaluator import evaluate

S = ApplicationStatus
ALL_READ = list(READ_SCOPES)


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def w(db):
    u = build()
    return u, people(u)


def token(unit, *, scopes=ALL_READ, kinds=(), acts_as=None, name="t", days=30):
    return do_create_api_token(actor=None, name=name, unit=unit, kinds=list(kinds), scopes=list(scopes),
                               acts_as=acts_as, days=days)


def get(client, url, secret=None, **params):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    return client.get(url, params, **headers)


def post(client, url, body, secret=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    return client.post(url, data=json.dumps(body), content_type="application/json", **headers)


def error(resp, status, code=None):
    assert resp.status_code == status, resp.content
    assert resp["Content-Type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"code", "message", "fields"} and body["message"] and isinstance(body["fields"], dict)
    if code:
        assert body["code"] == code, body
    return body


def submitted(u, p, key="B1", applicant="hank"):
    app = do_open_application(actor=p[applicant], unit=u[key])
    sign_all(app)
    return do_submit_application(actor=p[applicant], application=app)


# --- units and evaluations ---------------------------------------------------------------------------


def test_unit_overview_has_path_counts_title_and_todays_eligibility(client, w):
    u, p = w
    _t, secret = token(u["T1"])
    resp = get(client, "/api/v1/units/T1C-C1-B1", secret)
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert [x["code"] for x in body["path"]] == ["T", "T1", "T1C", "T1C-C1", "T1C-C1-B1"]
    assert body["counts"] == {"children": 0, "households": 2, "residents": 2, "special": 0}
    assert body["title"] is None
    ev = next(e for e in evaluate(NOW.date(), root=u["B1"]) if e.unit.code == "T1C-C1-B1")
    assert body["eligibility"]["eligible"] == ev.eligible
    assert [(c["id"], c["passed"], c["detail"]) for c in body["eligibility"]["criteria"]] == [
        (c.id, c.passed, c.detail) for c in ev.criteria]
    event = AuditEvent.objects.get(action="api.read")
    assert (event.detail["op"], event.detail["target"], event.detail["status"]) == ("unit", "T1C-C1-B1", 200)


def test_children_are_paginated(client, w):
    u, _p = w
    _t, secret = token(u["T"])
    body = get(client, "/api/v1/units/T/children", secret, limit=1, offset=1).json()
    assert body["count"] == 2 and [x["code"] for x in body["items"]] == ["T2"]


def test_the_evaluation_is_the_evaluate_command_entry(client, w):
    u, _p = w
    _t, secret = token(u["T1"])
    out = StringIO()
    call_command("evaluate", "--json", "--unit", "T1C", "--date", "2022-11-20", stdout=out)
    expected = next(e for e in json.loads(out.getvalue()) if e["unit"] == "T1C")
    resp = get(client, "/api/v1/units/T1C/evaluation", secret, date="2022-11-20")
    assert resp.status_code == 200, resp.content
    assert resp.json() == expected
    listing = get(client, "/api/v1/evaluations", secret, date="2022-11-20", root="T1C").json()
    assert listing["on"] == "2022-11-20" and listing["items"] == json.loads(out.getvalue())
    assert listing["count"] == len(listing["items"])
    error(get(client, "/api/v1/units/T1C/evaluation", secret, date="2022-13-01"), 422, "invalid")
    error(get(client, "/api/v1/units/T1C/evaluation", secret, date="1900-01-01"), 422, "invalid")


def test_history_lists_applications_reviews_and_titles(client, w):
    u, p = w
    app = submitted(u, p)
    for actor in ("cora", "sam", "hugo", "cmd"):
        app = do_review_application(app, actor=p[actor], decision="approve", opinion=f"{actor} 同意")
    _t, secret = token(u["T1"])
    kinds = [e["kind"] for e in get(client, "/api/v1/units/T1C-C1-B1/history", secret).json()]
    assert kinds.count("review") == 5 and "application" in kinds and "named" in kinds
    title = Title.objects.get(unit=u["B1"])
    body = get(client, "/api/v1/units/T1C-C1-B1", secret).json()
    assert body["title"] == {"title": "无疫楼栋", "named_on": "2022-11-28", "certificate_number": title.certificate_number}


def test_a_missing_scope_is_403_and_audited(client, w):
    u, _p = w
    _t, secret = token(u["T1"], scopes=["units:read"])
    error(get(client, "/api/v1/evaluations", secret), 403, "scope_missing")
    error(get(client, "/api/v1/applications", secret), 403, "scope_missing")
    assert get(client, "/api/v1/units/T1", secret).status_code == 200
    assert list(AuditEvent.objects.filter(action="api.read").order_by("id").values_list("detail__status", flat=True)) \
        == [403, 403, 200]


# --- tokens --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["expired", "revoked", "wrong", "missing"])
def test_expired_revoked_wrong_or_missing_tokens_are_401_everywhere(client, w, state):
    u, _p = w
    tok, secret = token(u["T1"], days=1)
    if state == "revoked":
        do_revoke_api_token(actor=None, token=tok)
    secret = {"wrong": "wyq_nope", "missing": None}.get(state, secret)
    with time_machine.travel(NOW + dt.timedelta(days=2 if state == "expired" else 0), tick=False):
        for url in ("/api/v1/units/T1", "/api/v1/evaluations", "/api/v1/applications"):
            error(get(client, url, secret), 401)
    codes = {"expired": "token_expired", "revoked": "token_revoked", "wrong": "invalid_token", "missing": "unauthenticated"}
    assert not AuditEvent.objects.filter(action="api.read").exists()  # refused at the token: counted, not audited each
    event = AuditEvent.objects.get(action="api.unauthenticated")  # the hour's first
    assert (event.detail["code"], event.detail["status"], event.detail["count_this_hour"]) == (codes[state], 401, 1)


def test_acting_needs_a_reviewer_account_covering_the_unit(w):
    u, p = w
    with pytest.raises(ValueError, match="经办人"):
        token(u["T1"], scopes=["applications:act"])
    with pytest.raises(ValueError, match="审核人员"):
        token(u["B1"], scopes=["applications:act"], acts_as=p["hank"])
    with pytest.raises(ValueError, match="管辖范围"):
        token(u["T2"], scopes=["applications:act"], acts_as=p["sam"])
    with pytest.raises(ValueError, match="权限无效"):
        token(u["T1"], scopes=["units:write"])
    tok, _s = token(u["T1"], scopes=["applications:act"], acts_as=p["sam"])
    assert tok.role == "street_staff"


# --- the review chain through the API ----------------------------------------------------------------


def test_reviewer_tokens_take_an_application_through_the_chain(client, w):
    u, p = w
    app = submitted(u, p)
    secrets_by = {}
    for i, (who, unit) in enumerate((("cora", "T1C"), ("sam", "T1"), ("hugo", "T"), ("cmd", "T"))):
        _t, secrets_by[who] = token(u[unit], scopes=["applications:read", "applications:act"], acts_as=p[who],
                                    name=f"oa{i}")
    # sam's queue is empty while the community has it; cora's holds it
    assert get(client, "/api/v1/applications", secrets_by["sam"], step="mine").json()["count"] == 0
    assert [a["id"] for a in get(client, "/api/v1/applications", secrets_by["cora"], step="mine").json()["items"]] \
        == [app.pk]
    # the street cannot act yet: same refusal as the web (wrong role for the step)
    error(post(client, f"/api/v1/applications/{app.pk}/decisions", {
        "status": "community_review", "decision": "approve", "opinion": "同意"}, secrets_by["sam"]), 403, "forbidden")
    status = "community_review"
    for who in ("cora", "sam", "hugo", "cmd"):
        mine = get(client, "/api/v1/applications", secrets_by[who], step="mine").json()
        assert [a["id"] for a in mine["items"]] == [app.pk] and mine["items"][0]["status"] == status
        resp = post(client, f"/api/v1/applications/{app.pk}/decisions",
                    {"status": status, "decision": "approve", "opinion": f"{who} 同意"}, secrets_by[who])
        assert resp.status_code == 200, resp.content
        status = resp.json()["status"]
    assert status == "named"
    detail = get(client, f"/api/v1/applications/{app.pk}", secrets_by["cora"]).json()
    assert [(s["actor_name"], s["decision"]) for s in detail["steps"]][1:] == [
        ("cora", "approve"), ("sam", "approve"), ("hugo", "approve"), ("cmd", "approve")]
    assert ReviewStep.objects.filter(application=app, actor=p["sam"]).count() == 1
    assert AuditEvent.objects.filter(action="applications.review").count() == 4
    assert AuditEvent.objects.filter(action="api.act", detail__status=200).count() == 4
    title = Title.objects.get(unit=u["B1"])
    public = client.get(f"/api/v1/public/certificates/{title.certificate_number}")
    assert public.status_code == 200 and public.json()["current"] is True
    assert public.json()["unit_name"] == "龙湖花园1栋" and "hank" not in public.content.decode()
    error(client.get("/api/v1/public/certificates/WYQ-0000-000"), 404, "not_found")


def test_a_decision_on_an_application_that_moved_on_is_409_and_changes_nothing(client, w):
    u, p = w
    app = submitted(u, p)
    _t, secret = token(u["T1C"], scopes=["applications:act"], acts_as=p["cora"])
    do_review_application(app, actor=p["cora"], decision="return", opinion="材料不全")
    n = ReviewStep.objects.count()
    body = error(post(client, f"/api/v1/applications/{app.pk}/decisions",
                      {"status": "community_review", "decision": "approve", "opinion": "同意"}, secret), 409, "conflict")
    assert "已被他人处理" in body["message"]
    assert ReviewStep.objects.count() == n
    error(post(client, f"/api/v1/applications/{app.pk}/decisions",
               {"status": "returned", "decision": "approve", "opinion": "同意"}, secret), 409, "refused")
    error(post(client, f"/api/v1/applications/{app.pk}/decisions",
               {"status": "returned", "decision": "approve", "opinion": ""}, secret), 422, "invalid")
    error(post(client, f"/api/v1/applications/{app.pk}/decisions",
               {"status": "returned", "decision": "bless", "opinion": "x"}, secret), 422, "invalid")


def test_a_token_whose_reviewer_left_cannot_act(client, w):
    u, p = w
    app = submitted(u, p)
    _t, secret = token(u["T1C"], scopes=["applications:act"], acts_as=p["cora"])
    p["cora"].is_active = False
    p["cora"].save(update_fields=["is_active"])
    error(post(client, f"/api/v1/applications/{app.pk}/decisions",
               {"status": "community_review", "decision": "approve", "opinion": "同意"}, secret), 403, "actor_unavailable")
    app.refresh_from_db()
    assert app.status == S.COMMUNITY_REVIEW


# --- scoping, generated over every registered operation ----------------------------------------------


def _operations():
    for prefix, router in api._routers:
        for path, view in router.path_operations.items():
            for op in view.operations:
                for method in op.methods:
                    yield method, "/api/v1" + prefix + path, op


# (token's unit, its reviewer, the other unit, a building-like unit below it, who applies for that one, role)
PAIRS = {
    "street": ("T1", "sam", "T2C", "T2B", "building_head"),
    "community": ("T1C", "cora", "T1V", "G1", "group_leader"),
}


@pytest.mark.parametrize("level", sorted(PAIRS))
def test_every_operation_of_a_token_is_404_or_403_on_objects_of_another_street_or_community(client, w, level):
    """A token of one street (or community) with every scope, acting as its reviewer, against the
    objects of another street (or of a sibling village) — for every path the API registers: a new path
    whose parameters this test does not know fails it."""
    u, p = w
    mine, reviewer, other_unit, other_leaf, applicant_role = PAIRS[level]
    applicant = person("outsider", applicant_role, u[other_leaf])
    other_app = do_open_application(actor=applicant, unit=u[other_leaf])
    sign_all(other_app)
    other_app = do_submit_application(actor=applicant, application=other_app)
    other_id = u[other_leaf].households.first().residents.first().reveal_id_number()
    _t, secret = token(u[mine], scopes=[*ALL_READ, "applications:act"], acts_as=p[reviewer],
                       kinds=["nat-results", "close-contacts"])
    _t2, no_kinds = token(u[mine], scopes=ALL_READ, name="reader")
    other = {"code": u[other_unit].code, "application_id": str(other_app.pk), "kind": "close-contacts"}
    bodies = {
        "/api/v1/applications/{application_id}/decisions": {"status": other_app.status, "decision": "approve",
                                                             "opinion": "越权"},
        "/api/v1/facts/{kind}": {"batch_key": "x", "records": [{"id_number": other_id, "start_on": "2022-11-27",
                                                                 "end_on": "2022-12-03"}]},
        "/api/v1/facts/nat-results": {"batch_key": "y", "records": [{"id_number": other_id,
                                                                     "sampled_at": "2022-11-27 08:00",
                                                                     "result": "negative"}]},
    }
    queries = {"/api/v1/evaluations": {"root": u[other_unit].code}}
    checked = []
    for method, path, op in _operations():
        params = re.findall(r"{(\w+)}", path)
        if not op.auth_callbacks:  # public: nothing scoped, no personal data (tested above)
            assert path == "/api/v1/public/certificates/{number}"
            continue
        for name in params:
            assert name in other, f"{path}: no object of another street for {{{name}}}"
        url = path.format(**{n: other[n] for n in params})
        if method == "GET":
            if not params and path not in queries:
                # a listing: the other street's objects are simply not in it
                body = get(client, url, secret).json()
                assert other_app.pk not in [i.get("id") for i in body["items"]], path
                assert u[other_unit].code not in json.dumps(body), path
            else:
                error(get(client, url, secret, **queries.get(path, {})), 404, "not_found")
        else:
            assert path in bodies, f"{path}: no body to try"
            if path.startswith("/api/v1/facts/"):
                # a kind the token may not write: 403; a record about the other unit's resident: the
                # answer of an unknown number (unmatched), attached to nobody (no existence oracle)
                error(post(client, url, bodies[path], no_kinds), 403, "kind_not_allowed")
                resp = post(client, url, bodies[path], secret)
                assert resp.status_code == 200, resp.content
                assert (resp.json()["errors"], resp.json()["unmatched"]) == ([], 1), resp.content
            else:
                error(post(client, url, bodies[path], secret), 404, "not_found")
        checked.append(path)
    assert len(checked) == len({p for _m, p, op in _operations() if op.auth_callbacks}) >= 10
    status = other_app.status
    other_app.refresh_from_db()
    assert other_app.status == status == S.COMMUNITY_REVIEW


# --- the one error shape -----------------------------------------------------------------------------


def test_every_error_has_the_one_shape_and_is_json(client, w):
    u, _p = w
    _t, secret = token(u["T1"], kinds=["nat-results"])
    error(get(client, "/api/v1/no/such/path", secret), 404, "not_found")
    error(get(client, "/api/v1/", secret), 404, "not_found")
    error(client.delete("/api/v1/units/T1", HTTP_AUTHORIZATION=f"Bearer {secret}"), 405, "method_not_allowed")
    error(get(client, "/api/v1/units/T1/children", secret, limit=0), 422, "invalid")
    assert AuditEvent.objects.filter(action="api.read", detail__status=422, detail__op="/api/v1/units/T1/children",
                                     detail__token="t").count() == 1
    error(get(client, "/api/v1/units/bad%20code", secret), 422, "invalid")
    error(get(client, "/api/v1/applications/0", secret), 422, "invalid")
    error(get(client, "/api/v1/applications/99999", secret), 404, "not_found")
    error(get(client, "/api/v1/applications", secret, step="theirs"), 422, "invalid")
    resp = client.post("/api/v1/facts/nat-results", data=b"\xff\xfe", content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {secret}")
    error(resp, 400, "invalid_json")
    # a NUL character (no database text column holds one): refused as bad input, never a 500
    error(post(client, "/api/v1/facts/nat-results", {"batch_key": "a\x00b", "records": [
        {"id_number": "1", "sampled_at": "2022-11-27 08:00", "result": "negative"}]}, secret), 400, "invalid_batch_key")
    resp = post(client, "/api/v1/facts/nat-results", {"batch_key": "nul", "records": [
        {"id_number": "1\x00", "sampled_at": "2022-11-27 08:00", "result": "negative"}]}, secret)
    assert resp.status_code == 200 and [e["code"] for e in resp.json()["errors"]] == ["invalid_record"]
    error(post(client, "/api/v1/applications/1/decisions", {"status": "x", "decision": "approve", "opinion": "a\x00"},
               secret), 422, "invalid")


def test_an_oversized_body_is_413(client, w, settings):
    u, _p = w
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    _t, secret = token(u["T1"], kinds=["nat-results"])
    body = {"batch_key": "big", "records": [{"id_number": "x" * 18, "sampled_at": "2022-11-27 08:00",
                                             "result": "negative"}] * 50}
    error(post(client, "/api/v1/facts/nat-results", body, secret), 413, "too_large")


def test_the_openapi_document_is_valid_and_declares_every_error_on_every_operation(client):
    from openapi_spec_validator import validate

    doc = client.get("/api/v1/openapi.json").json()
    validate(doc)  # OpenAPI 3.1 (raises on an invalid document)
    assert doc["components"]["schemas"]["ErrorOut"]["required"] == ["code", "message"]
    n = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status in ("400", "401", "403", "404", "405", "409", "413", "415", "422", "500"):
                ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorOut"), (path, method, status)
            n += 1
    assert n == len(list(_operations()))
