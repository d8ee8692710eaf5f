"""Facts about unregistered people stay in the submitter's scope (docs/facts.md, "Facts from another
scope"; issue 14, item 4).

The attack: one community's account or API token sends a positive result for an ID number nobody has
registered (accepted as unmatched); when another community later registers that person, the result
used to attach to them and that community's named building was withdrawn. Now such a fact attaches
only to a person registered inside the submitter's scope; otherwise it waits for a user whose scope
covers both, who confirms (then it counts, and the title falls) or discards it, each audited.

The street below is tests/test_standards_world.py's: 测试社区 (T1C, cora) and 测试村 (T1V, vera) under
测试街道 (T1, sam), every building named.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from import_flow import confirm
from test_standards_world import D, days, id_number
from test_supervision_world import ALL, at, current_codes, named_street

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.api.actions import do_create_api_token
from wuyiqu.audit.models import AuditEvent
from wuyiqu.health import actions
from wuyiqu.health.models import HeldFacts, HeldStatus, Measure, NatResult, PositiveCase
from wuyiqu.imports.models import ImportStatus
from wuyiqu.imports.services import run_import
from wuyiqu.lib import crypto
from wuyiqu.notifications.models import Notification
from wuyiqu.units.models import Household, Resident, Unit

pytestmark = pytest.mark.django_db

NEWCOMER = id_number(dt.date(1991, 4, 2))  # registered by 测试社区 after 测试村 sent a positive result
HOME = "T1C-C1-B1-101"  # a household of the named building T1C-C1-B1
VILLAGE_HOME = "T1V-G1-H1"
B1_CHAIN = {"T1C-C1-B1", "T1C-C1", "T1C", "T1"}  # what a case in B1 withdraws


@pytest.fixture
def street(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    u = named_street()
    people = {
        "cora": do_create_user(actor=None, username="cora", password="x-correct-horse", role=Role.COMMUNITY_STAFF,
                               unit=u["T1C"], display_name="cora"),
        "vera": do_create_user(actor=None, username="vera", password="x-correct-horse", role=Role.COMMUNITY_STAFF,
                               unit=u["T1V"], display_name="vera"),
        "sam": do_create_user(actor=None, username="sam", password="x-correct-horse", role=Role.STREET_STAFF,
                              unit=u["T1"], display_name="sam"),
    }
    return u, people


def facts_of(number: str) -> list[tuple]:
    h = crypto.cipher().lookup_hash(number)
    return sorted(
        [("case", *r) for r in PositiveCase.objects.filter(id_hash=h).values_list("resident_id", "unit_id")]
        + [("measure", *r) for r in Measure.objects.filter(id_hash=h).values_list("resident_id", "unit_id")]
        + [("result", *r) for r in NatResult.objects.filter(id_hash=h).values_list("resident_id", "unit_id")])


def residents_file(tmp_path, *rows: tuple[str, str]):
    path = tmp_path / "residents.csv"
    path.write_text("id_number,name,household_code\n" + "".join(f"{n},新居民,{hh}\n" for n, hh in rows),
                    encoding="utf-8")
    return path


def post_positive(client, secret: str, number: str, key: str = "k1"):
    body = {"batch_key": key, "records": [{"id_number": number, "sampled_at": f"{D} 08:30", "result": "positive"}]}
    return client.post("/api/v1/facts/nat-results", data=json.dumps(body), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {secret}")


# --- the two reproductions of the issue --------------------------------------------------------------

def test_api_a_villages_positive_result_does_not_withdraw_the_community_building_that_registers_the_person(
        street, client, tmp_path):
    u, people = street
    _token, secret = do_create_api_token(actor=None, name="village-lab", unit=u["T1V"], kinds=["nat-results"],
                                         days=30)
    with at(D):
        body = post_positive(client, secret, NEWCOMER).json()
        assert (body["created"], body["unmatched"], body["rejected"]) == (1, 1, 0)
        job = run_import(kind="residents", path=residents_file(tmp_path, (NEWCOMER, HOME)),
                         actor=people["cora"], scope=u["T1C"])
    assert job.status == ImportStatus.SUCCEEDED and job.created == 1, job.message
    assert current_codes() == ALL  # nothing withdrawn
    assert {(rid, uid) for _t, rid, uid in facts_of(NEWCOMER)} == {(None, None)}  # the result and its case
    newcomer = Resident.objects.get(id_hash=crypto.cipher().lookup_hash(NEWCOMER))
    held = HeldFacts.objects.get()
    assert (held.resident_id, held.scope_unit_id, held.results, held.cases, held.status) == (
        newcomer.pk, u["T1V"].pk, 1, 1, HeldStatus.PENDING)
    run = AuditEvent.objects.get(action="imports.run", target_id=str(job.pk))
    assert run.detail["facts_linked"] == {"results": 0, "cases": 0, "measures": 0} and run.detail["facts_held"] == 1
    # The street (sam covers both) is told; the two communities are not.
    assert list(Notification.objects.values_list("user__username", flat=True)) == ["sam"]


def test_web_import_a_villages_positive_result_does_not_withdraw_the_community_building(street, client):
    u, people = street
    client.force_login(people["vera"])
    nat = SimpleUploadedFile("核酸.csv", f"身份证号,采样时间,检测结果\n{NEWCOMER},{D} 08:30,阳性\n".encode(),
                             content_type="text/csv")
    with at(D):  # each upload is previewed, then confirmed, as a person does it (tests/import_flow.py)
        first = confirm(client, client.post("/units/T1V/import/", {"kind": "nat-results", "file": nat}))
        assert (first.status, first.created, first.unmatched) == (ImportStatus.SUCCEEDED, 1, 1), first.message
        client.force_login(people["cora"])
        residents = SimpleUploadedFile("居民.csv", f"身份证号,姓名,户编码\n{NEWCOMER},新居民,{HOME}\n".encode(),
                                       content_type="text/csv")
        second = confirm(client, client.post("/units/T1C/import/", {"kind": "residents", "file": residents}))
    assert (second.status, second.created) == (ImportStatus.SUCCEEDED, 1), second.message
    assert current_codes() == ALL
    assert {(rid, uid) for _t, rid, uid in facts_of(NEWCOMER)} == {(None, None)}
    assert HeldFacts.objects.filter(status=HeldStatus.PENDING).count() == 1


# --- inside the scope nothing changes -------------------------------------------------------------------

def test_a_fact_from_a_scope_attaches_to_a_person_registered_inside_it(street, client, tmp_path):
    u, people = street
    _token, secret = do_create_api_token(actor=None, name="community-lab", unit=u["T1C"], kinds=["nat-results"],
                                         days=30)
    with at(D):
        post_positive(client, secret, NEWCOMER)
        job = run_import(kind="residents", path=residents_file(tmp_path, (NEWCOMER, HOME)),
                         actor=people["cora"], scope=u["T1C"])
    assert job.status == ImportStatus.SUCCEEDED, job.message
    newcomer = Resident.objects.get(id_hash=crypto.cipher().lookup_hash(NEWCOMER))
    assert {(rid, uid) for _t, rid, uid in facts_of(NEWCOMER)} == {(newcomer.pk, u["B1"].pk)}
    assert current_codes() == ALL - B1_CHAIN  # the community's own positive result counts at once
    assert not HeldFacts.objects.exists()


def test_relink_facts_links_only_inside_the_scope_and_holds_the_rest(street, tmp_path):
    u, _people = street
    other = id_number(dt.date(1992, 8, 9))
    lines = f"id_number,reported_on,type\n{NEWCOMER},{D - days(1)},confirmed\n{other},{D - days(1)},confirmed\n"
    path = tmp_path / "cases.csv"
    path.write_text(lines, encoding="utf-8")
    with at(D):
        assert run_import(kind="cases", path=path, scope=u["T1V"]).unmatched == 2
    # Registered by a path that does not link (stored before linking existed): the command's case.
    for number, code in ((NEWCOMER, HOME), (other, VILLAGE_HOME)):
        r = Resident(household=Household.objects.get(code=code), name="老居民", sex="M")
        r.set_id_number(number)
        r.set_phone("")
        r.save()
    with at(D):
        call_command("relink-facts")
    village_person = Resident.objects.get(id_hash=crypto.cipher().lookup_hash(other))
    assert facts_of(other) == [("case", village_person.pk, u["G1"].pk)]  # inside 测试村: linked
    assert facts_of(NEWCOMER) == [("case", None, None)]  # in 测试社区: held
    assert current_codes() == ALL - {"T1V-G1", "T1V", "T1"}
    assert HeldFacts.objects.get().cases == 1
    assert AuditEvent.objects.get(action="health.relink_facts").detail["held"] == 1


# --- the queue: who decides, and what a decision does ------------------------------------------------------

@pytest.fixture
def held(street, client, tmp_path):
    u, people = street
    _token, secret = do_create_api_token(actor=None, name="village-lab", unit=u["T1V"], kinds=["nat-results"],
                                         days=30)
    with at(D):
        post_positive(client, secret, NEWCOMER)
        run_import(kind="residents", path=residents_file(tmp_path, (NEWCOMER, HOME)), actor=people["cora"],
                   scope=u["T1C"])
    return HeldFacts.objects.get()


def test_only_a_user_covering_both_sees_and_decides_the_held_facts(street, held, client):
    _u, people = street
    for name in ("cora", "vera"):  # each covers only one side
        client.force_login(people[name])
        page = client.get("/held-facts/")
        assert page.status_code == 200 and "新居民" not in page.content.decode()
        assert client.post(f"/held-facts/{held.pk}/decide/", {"decision": "confirm"}).status_code == 404
    assert current_codes() == ALL
    client.force_login(people["sam"])
    page = client.get("/held-facts/").content.decode()
    assert "新居民" in page and "测试村" in page and "阳性感染者" in page
    assert AuditEvent.objects.filter(action="health.view_held_facts", actor=people["sam"]).count() == 1


def test_confirming_attaches_the_facts_and_the_title_falls(street, held, client):
    u, people = street
    client.force_login(people["sam"])
    with at(D):
        response = client.post(f"/held-facts/{held.pk}/decide/", {"decision": "confirm", "reason": "已电话核实"})
    assert response.status_code == 302
    newcomer = Resident.objects.get(id_hash=crypto.cipher().lookup_hash(NEWCOMER))
    assert {(rid, uid) for _t, rid, uid in facts_of(NEWCOMER)} == {(newcomer.pk, u["B1"].pk)}
    assert current_codes() == ALL - B1_CHAIN
    held.refresh_from_db()
    assert (held.status, held.decided_by, held.reason) == (HeldStatus.CONFIRMED, people["sam"], "已电话核实")
    event = AuditEvent.objects.get(action="health.confirm_held_facts")
    assert (event.actor, event.detail["results"], event.detail["cases"], event.detail["submitted_from"]) == (
        people["sam"], 1, 1, "T1V")
    # Decided once: a second decision is refused and changes nothing.
    with pytest.raises(actions.FactRefused):
        actions.do_decide_held_facts(held, actor=people["sam"], confirm=False, reason="重复")


def test_discarding_needs_a_reason_and_deletes_the_facts(street, held, client):
    _u, people = street
    with pytest.raises(actions.FactRefused, match="作废原因"):
        actions.do_decide_held_facts(held, actor=people["sam"], confirm=False, reason=" ")
    assert HeldFacts.objects.get().status == HeldStatus.PENDING
    client.force_login(people["sam"])
    with at(D):
        client.post(f"/held-facts/{held.pk}/decide/", {"decision": "discard", "reason": "号码录错"})
    assert facts_of(NEWCOMER) == []
    assert current_codes() == ALL
    assert HeldFacts.objects.get().status == HeldStatus.DISCARDED
    event = AuditEvent.objects.get(action="health.discard_held_facts")
    assert (event.detail["results"], event.detail["cases"], event.detail["reason"]) == (1, 1, "号码录错")


def test_a_scoped_form_case_about_someone_registered_elsewhere_is_held_not_attached(street):
    u, people = street
    outsider = Resident.objects.filter(household__code=HOME).first()
    number = outsider.reveal_id_number()
    with at(D):
        case = actions.do_record_case(actor=people["vera"], reported_on=D, case_type="confirmed", id_number=number,
                                      scope=Unit.objects.get(code="T1V"))
    assert (case.resident_id, case.unit_id, case.scope_unit_id) == (None, None, u["T1V"].pk)
    assert current_codes() == ALL
    assert HeldFacts.objects.get().resident_id == outsider.pk
