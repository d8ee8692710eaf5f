"""The review chain (SPEC §5): the state machine table, every step's decisions through the action,
opinions, roles and scope, one open application per title, the compound's buildings, freezing, naming."""

from __future__ import annotations

import itertools

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import Http404
from test_applications_world import NOW, PINS, build, name_through_chain, people, sign_all

from wuyiqu.applications import actions
from wuyiqu.applications.actions import (
    ApplicationRefused,
    ReviewConflict,
    do_open_application,
    do_record_unit_signature,
    do_review_application,
    do_submit_application,
)
from wuyiqu.applications.models import Application, ApplicationStatus, ReviewStep
from wuyiqu.applications.workflow import ROUTE, IllegalTransition, target_status, transitions
from wuyiqu.audit.models import AuditEvent
from wuyiqu.certification.models import Title
from wuyiqu.standards.evaluator import evaluate
from wuyiqu.units.models import Household

S = ApplicationStatus
ALL_DECISIONS = ["submit", "approve", "return", "reject", "send_back"]


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def w(db):
    u = build()
    return u, people(u)


def submitted(u, p, key="B1", applicant="hank"):
    app = do_open_application(actor=p[applicant], unit=u[key])
    sign_all(app)
    return do_submit_application(actor=p[applicant], application=app)


# --- the table, without the database -------------------------------------------------------------------


EXPECTED_ROUTES = {
    "building": ["community_review", "street_review", "health_review", "command_review"],
    "group": ["community_review", "street_review", "health_review", "command_review"],
    "compound": ["community_review", "street_review", "health_review", "command_review"],
    "village": ["street_review", "health_review", "command_review"],
    "community": ["street_review", "health_review", "command_review"],
    "street": ["health_review", "command_review"],
}


@pytest.mark.parametrize("kind", sorted(EXPECTED_ROUTES))
def test_every_legal_and_illegal_transition_of_the_table(kind):
    route = EXPECTED_ROUTES[kind]
    assert list(ROUTE[kind]) == route
    expected: dict[tuple[str, str], set[str]] = {("draft", "submit"): {route[0]}, ("returned", "submit"): {route[0]}}
    for i, step in enumerate(route):
        expected[(step, "approve")] = {route[i + 1] if i + 1 < len(route) else "named"}
        expected[(step, "return")] = {"returned"}
        expected[(step, "reject")] = {"rejected"}
        if i:
            expected[(step, "send_back")] = set(route[:i])
    assert {k: set(v) for k, v in transitions(kind).items()} == expected
    for status, decision in itertools.product(S.values, ALL_DECISIONS):
        legal = expected.get((status, decision), set())
        for to in sorted(legal) or [None]:
            if to is None:
                with pytest.raises(IllegalTransition):
                    target_status(kind, status, decision, send_back_to=None)
            else:
                assert target_status(kind, status, decision, send_back_to=to if decision == "send_back" else None) == to
        if decision == "send_back" and legal:
            for wrong in set(S.values) - legal:  # to itself, upwards, or outside the route
                with pytest.raises(IllegalTransition, match="只能发回到本环节之前的环节"):
                    target_status(kind, status, decision, send_back_to=wrong)


# --- through the action ---------------------------------------------------------------------------------


def test_a_building_goes_the_whole_chain_and_is_named(w):
    u, p = w
    app = submitted(u, p)
    assert app.status == S.COMMUNITY_REVIEW
    seen = []
    for actor in ("cora", "sam", "hugo", "cmd"):
        seen.append(app.status)
        app = do_review_application(app, actor=p[actor], decision="approve", opinion=f"{actor} 同意")
    assert seen == EXPECTED_ROUTES["building"]
    assert app.status == S.NAMED
    steps = list(ReviewStep.objects.filter(application=app))
    assert [(s.from_status, s.to_status, s.decision) for s in steps] == [
        ("draft", "community_review", "submit"), ("community_review", "street_review", "approve"),
        ("street_review", "health_review", "approve"), ("health_review", "command_review", "approve"),
        ("command_review", "named", "approve")]
    street = steps[2]
    assert (street.actor_name, street.opinion, street.decided_at) == ("sam", "sam 同意", NOW)
    assert all(s.evaluation["unit"] == u["B1"].code for s in steps[1:])  # what each reviewer saw
    title = Title.objects.get(unit=u["B1"], withdrawn_on__isnull=True)
    assert (title.title, title.named_on, title.application_id) == ("无疫楼栋", NOW.date(), app.pk)
    assert title.certificate_number.startswith("WYQ-2022-")
    ev = next(e for e in evaluate(NOW.date(), root=u["B1"]) if e.unit.code == u["B1"].code)
    assert ev.named is True
    actions_logged = list(AuditEvent.objects.filter(target_type="applications.application", target_id=str(app.pk))
                          .values_list("action", flat=True))
    assert actions_logged.count("applications.review") == 4 and "applications.submit" in actions_logged
    assert AuditEvent.objects.filter(action="certification.name", target_id=str(title.pk)).exists()


def test_submission_freezes_the_full_evaluation_with_attachments(w):
    u, p = w
    app = submitted(u, p)
    frozen = Application.objects.get(pk=app.pk).frozen_evaluation
    assert frozen["unit"] == u["B1"].code and frozen["eligible"] is True and frozen["on"] == "2022-11-28"
    ids = {c["id"] for c in frozen["criteria"]}
    assert {"no_case", "all_households_signed", "entrance_control", "cleaning"} <= ids
    assert all(c["passed"] and c["name"] for c in frozen["criteria"])
    assert frozen["signatures"] == {"signed": 2, "total": 2}
    assert frozen["attachments"] == []


def test_submission_is_refused_until_every_household_signed(w):
    u, p = w
    app = do_open_application(actor=p["hank"], unit=u["B1"])
    first, second = Household.objects.filter(unit=u["B1"]).order_by("code")
    actions.do_sign_application(application=app, household_id=first.pk, proof=PINS[first.code])
    with pytest.raises(ApplicationRefused, match=f"1 户未签名：{second.address}"):
        do_submit_application(actor=p["hank"], application=app)
    app.refresh_from_db()
    assert (app.status, app.frozen_evaluation, app.submitted_at) == (S.DRAFT, None, None)
    actions.do_sign_application(application=app, household_id=second.pk, proof=PINS[second.code])
    assert do_submit_application(actor=p["hank"], application=app).status == S.COMMUNITY_REVIEW


def test_submission_is_refused_when_another_criterion_fails(w):
    from test_applications_world import inspect

    u, p = w
    inspect(u["B1"], ["masks"], passed=False)
    app = do_open_application(actor=p["hank"], unit=u["B1"])
    sign_all(app)
    with pytest.raises(ApplicationRefused, match="口罩"):
        do_submit_application(actor=p["hank"], application=app)


def test_opinions_are_required_for_every_decision(w):
    u, p = w
    app = submitted(u, p)
    for decision in ("approve", "return", "reject"):
        with pytest.raises(ApplicationRefused, match="请填写意见"):
            do_review_application(app, actor=p["cora"], decision=decision, opinion="   ")
    assert Application.objects.get(pk=app.pk).status == S.COMMUNITY_REVIEW


def test_return_goes_to_the_applicant_who_resubmits(w):
    u, p = w
    app = submitted(u, p)
    app = do_review_application(app, actor=p["cora"], decision="approve", opinion="受理")
    app = do_review_application(app, actor=p["sam"], decision="return", opinion="请补充照片")
    assert app.status == S.RETURNED
    with pytest.raises(ApplicationRefused, match="不在审核环节"):
        do_review_application(app, actor=p["sam"], decision="approve", opinion="x")
    app = do_submit_application(actor=p["hank"], application=app)
    assert app.status == S.COMMUNITY_REVIEW  # again from the first step
    assert ReviewStep.objects.filter(application=app, decision="submit").count() == 2


def test_reject_ends_it_and_a_new_application_may_be_opened(w):
    u, p = w
    app = submitted(u, p)
    app = do_review_application(app, actor=p["cora"], decision="reject", opinion="不符合")
    assert app.status == S.REJECTED
    with pytest.raises(ApplicationRefused, match="不在审核环节"):
        do_review_application(app, actor=p["cora"], decision="approve", opinion="x")
    with pytest.raises(ApplicationRefused, match="不能提交"):
        do_submit_application(actor=p["hank"], application=app)
    again = do_open_application(actor=p["hank"], unit=u["B1"])
    assert again.pk != app.pk and again.status == S.DRAFT


def test_a_higher_step_sends_back_to_a_lower_one(w):
    u, p = w
    app = submitted(u, p)
    for actor in ("cora", "sam"):
        app = do_review_application(app, actor=p[actor], decision="approve", opinion="同意")
    assert app.status == S.HEALTH_REVIEW
    with pytest.raises(IllegalTransition, match="只能发回"):
        do_review_application(app, actor=p["hugo"], decision="send_back", opinion="重审",
                              send_back_to="command_review")
    app = do_review_application(app, actor=p["hugo"], decision="send_back", opinion="请街道重新初审",
                                send_back_to="street_review")
    assert app.status == S.STREET_REVIEW
    step = ReviewStep.objects.filter(application=app).last()
    assert (step.decision, step.from_status, step.to_status) == ("send_back", "health_review", "street_review")
    with pytest.raises(IllegalTransition):  # the first step has nothing below it
        app2 = submitted(u, p, "B9", "bella")
        do_review_application(app2, actor=p["cora"], decision="send_back", opinion="x", send_back_to="draft")


def test_the_wrong_role_is_refused_and_outside_the_scope_is_404(w):
    u, p = w
    app = submitted(u, p)
    for actor in ("sam", "hugo", "cmd", "hank"):
        with pytest.raises(PermissionDenied):
            do_review_application(app, actor=p[actor], decision="approve", opinion="同意")
    for actor in ("tom", "otto", "bella", "vera"):
        with pytest.raises(Http404):
            do_review_application(app, actor=p[actor], decision="approve", opinion="同意")
    assert Application.objects.get(pk=app.pk).status == S.COMMUNITY_REVIEW
    assert ReviewStep.objects.filter(application=app).count() == 1


def test_a_decision_on_a_status_that_moved_on_is_refused(w):
    u, p = w
    app = submitted(u, p)
    stale = Application.objects.get(pk=app.pk)
    do_review_application(app, actor=p["cora"], decision="approve", opinion="受理")
    with pytest.raises(ReviewConflict, match="申请已被他人处理，当前状态为“街道初审”"):
        do_review_application(stale, actor=p["cora"], decision="approve", opinion="受理")


def test_one_open_application_per_title(w):
    u, p = w
    app = do_open_application(actor=p["hank"], unit=u["B1"])
    with pytest.raises(ApplicationRefused, match="已有一份进行中的无疫楼栋申请"):
        do_open_application(actor=p["hank"], unit=u["B1"])
    with pytest.raises(IntegrityError), transaction.atomic():
        Application.objects.create(unit=u["B1"], title="无疫楼栋", status=S.STREET_REVIEW)
    assert Application.objects.filter(unit=u["B1"]).count() == 1
    assert app.token and len(app.token) >= 20


def test_the_applicant_role_must_match_the_unit(w):
    u, p = w
    with pytest.raises(PermissionDenied):
        do_open_application(actor=p["cora"], unit=u["B1"])  # a building head applies for a building
    with pytest.raises(Http404):
        do_open_application(actor=p["bella"], unit=u["B1"])  # not her building
    with pytest.raises(ApplicationRefused, match="没有称号"):
        do_open_application(actor=p["hank"], unit=u["T"])


def test_a_compound_is_refused_listing_every_unnamed_building(w):
    u, p = w
    app = do_open_application(actor=p["pam"], unit=u["C1"])
    sign_all(app)
    with pytest.raises(ApplicationRefused, match="2 栋楼未获无疫楼栋称号：龙湖花园1栋、龙湖花园2栋"):
        do_submit_application(actor=p["pam"], application=app)
    name_through_chain(submitted(u, p), p)  # B1 named
    with pytest.raises(ApplicationRefused, match="1 栋楼未获无疫楼栋称号：龙湖花园2栋$"):
        do_submit_application(actor=p["pam"], application=app)
    Title.objects.create(unit=u["B2"], title="无疫楼栋", named_on=NOW.date())
    app = do_submit_application(actor=p["pam"], application=app)
    assert app.status == S.COMMUNITY_REVIEW
    app = name_through_chain(app, p)
    assert app.status == S.NAMED


def test_a_community_signs_itself_and_goes_to_the_street_first(w):
    u, p = w
    # Everything below must be co-signed (or named) first: B9 and the compound with its buildings.
    name_through_chain(submitted(u, p), p)
    name_through_chain(submitted(u, p, "B9", "bella"), p)
    # B2: named before the system, its households' paper sheet on a draft (as the imports record them).
    Title.objects.create(unit=u["B2"], title="无疫楼栋", named_on=NOW.date())
    b2 = Application.objects.create(unit=u["B2"], title="无疫楼栋", status=S.DRAFT)
    sign_all(b2)
    compound = do_open_application(actor=p["pam"], unit=u["C1"])
    sign_all(compound)
    name_through_chain(do_submit_application(actor=p["pam"], application=compound), p)

    app = do_open_application(actor=p["cora"], unit=u["T1C"])
    with pytest.raises(ApplicationRefused, match="尚未由本单位签字"):
        do_submit_application(actor=p["cora"], application=app)
    do_record_unit_signature(actor=p["cora"], application=app, signed_on=NOW.date())
    app = do_submit_application(actor=p["cora"], application=app)
    assert app.status == S.STREET_REVIEW
    with pytest.raises(PermissionDenied):
        do_review_application(app, actor=p["cora"], decision="approve", opinion="x")
    assert name_through_chain(app, p).status == S.NAMED
    assert Title.objects.filter(unit=u["T1C"], title="无疫社区", withdrawn_on__isnull=True).exists()


def test_a_unit_holding_its_title_cannot_apply_again(w):
    u, p = w
    name_through_chain(submitted(u, p), p)
    with pytest.raises(ApplicationRefused, match="已持有无疫楼栋称号"):
        do_open_application(actor=p["hank"], unit=u["B1"])


def test_an_import_opened_draft_is_taken_over_by_the_applicant(w):
    u, p = w
    from wuyiqu.applications.actions import do_record_paper_signatures

    hh = Household.objects.filter(unit=u["B1"]).first()
    do_record_paper_signatures(actor=p["cora"], unit=u["B1"], households=[hh], signed_on=NOW.date())
    draft = Application.objects.get(unit=u["B1"])
    assert draft.applicant_id is None and draft.token is None
    app = do_open_application(actor=p["hank"], unit=u["B1"])
    assert app.pk == draft.pk and app.applicant == p["hank"] and app.token
