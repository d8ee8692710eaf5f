"""The criteria as pure functions over UnitFacts: table-driven boundaries, no database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from wuyiqu.standards import criteria as C
from wuyiqu.standards.profiles import bundled_profile_content, parse_profile

D = dt.date(2022, 11, 28)
PROFILE = parse_profile(bundled_profile_content())


def day(offset: int) -> dt.date:
    return D + dt.timedelta(days=offset)


def unit(kind="building", code="B1", name="1栋", uid=1):
    return C.UnitRef(uid, code, name, kind, f"/{code}/", None)


def facts(kind="building", **kw) -> C.UnitFacts:
    return C.UnitFacts(unit=unit(kind), level=kind, on=D, **kw)


def run(criterion_id: str, f: C.UnitFacts) -> C.CriterionResult:
    return C.REGISTRY[criterion_id](f, PROFILE.get(criterion_id))


PERSON = C.PersonRef(7, "张三丰", "5002**********123X")


@pytest.mark.parametrize(("reported", "passed"), [
    (0, False),  # on D
    (-7, False),  # D−7: the 8th day of the window
    (-8, True),  # D−8: outside
    (1, True),  # after D: not yet
])
def test_it_counts_cases_within_eight_days(reported, passed):
    r = run("no_case", facts(cases=[C.CaseFact(day(reported), PERSON, "1栋")]))
    assert r.passed is passed
    if not passed:
        # Who, for the roles that may see it; how many and until when, for everyone (SPEC §1).
        assert "张**" in r.named and "5002**********123X" in r.named
        assert "张" not in r.detail and "123X" not in r.detail and r.detail.startswith("近8天有 1 例阳性感染者")
        assert r.clears_on == day(reported + 8)
        assert r.items == [{"type": "resident", "id": 7}]


@pytest.mark.parametrize(("criterion_id", "kind"), [
    ("no_close_contact", "close_contact"), ("no_home_quarantine", "home_quarantine"),
    ("no_returnee_under_control", "returnee"),
])
@pytest.mark.parametrize(("start", "end", "passed"), [
    (-10, -1, True),  # ended the day before D
    (-10, 0, False),  # ends on D: still covers D
    (0, 5, False),  # starts on D
    (1, 5, True),  # starts the day after D
])
def test_it_judges_measures_covering_the_day(criterion_id, kind, start, end, passed):
    r = run(criterion_id, facts(measures=[C.MeasureFact(kind, day(start), day(end), PERSON)]))
    assert r.passed is passed
    if not passed:
        assert f"管控至 {day(end):%Y-%m-%d}" in r.named and "张**" in r.named
        assert r.detail == f"1 名居民处于管控中，至 {day(end):%Y-%m-%d}"
        assert r.clears_on == day(end + 1)


def test_it_reads_a_measure_of_another_kind_as_not_this_one():
    r = run("no_close_contact", facts(measures=[C.MeasureFact("returnee", day(-1), day(3), PERSON)]))
    assert r.passed


@pytest.mark.parametrize(("relation", "end", "passed", "clears"), [
    ("self", None, False, None),
    ("above", 2, False, day(3)),
    ("below", -1, True, None),
    ("below", 0, False, day(1)),
])
def test_it_judges_risk_zones_on_the_unit_above_and_below(relation, end, passed, clears):
    zone = C.ZoneFact("high", day(-3), day(end) if end is not None else None, "Z", "某小区", relation)
    r = run("no_risk_zone", facts("compound", zones=[zone]))
    assert r.passed is passed
    assert r.clears_on == clears
    if not passed:
        assert "某小区" in r.detail and "高风险区" in r.detail


@pytest.mark.parametrize(("inspected", "ok", "passed"), [
    (0, True, True), (-6, True, True),  # within the 7 days D−6 … D
    (-7, True, False),  # 8 days old
    (0, False, False),  # latest failed
])
def test_it_needs_the_latest_mask_inspection_recent_and_passed(inspected, ok, passed):
    r = run("mask_compliance", facts(inspections={"masks": C.InspectionFact(day(inspected), ok)}))
    assert r.passed is passed
    if not passed:
        assert "口罩佩戴" in r.detail


def test_it_names_each_missing_entrance_item():
    f = facts(inspections={"entrance": C.InspectionFact(D, True), "vehicles": C.InspectionFact(D, False)})
    r = run("entrance_control", f)
    assert not r.passed
    assert "车辆出入管理 2022-11-28 检查不合格" in r.detail and "近7天无外来人员管理检查" in r.detail
    assert "出入口值守" not in r.detail


@pytest.mark.parametrize(("kind", "items"), [
    ("building", {"disinfection", "garbage", "environment"}),
    ("group", {"environment", "garbage", "weekly_cleaning"}),
    ("village", {"environment", "garbage", "weekly_cleaning"}),
])
def test_it_checks_the_cleaning_items_of_the_level(kind, items):
    ok = {i: C.InspectionFact(D, True) for i in items}
    assert run("cleaning", facts(kind, inspections=ok)).passed
    missing_one = dict(ok)
    missing_one.pop(sorted(items)[0])
    assert not run("cleaning", facts(kind, inspections=missing_one)).passed


@pytest.mark.parametrize(("required", "tested", "passed"), [
    (20, 19, True),  # exactly 95 %
    (20, 18, False),
    (0, 0, True),  # nobody to test
    (100, 94, False),
])
def test_it_needs_95_percent_of_non_exempt_residents(required, tested, passed):
    r = run("nat_participation", facts(nat_required=required, nat_tested=tested))
    assert r.passed is passed


@pytest.mark.parametrize(("rate", "passed"), [("0.90", True), ("0.89", False), ("0.95", True)])
def test_it_needs_each_survey_rate_at_least_090(rate, passed):
    s = C.SurveyFact(D, Decimal("0.95"), Decimal(rate), Decimal("0.95"))
    r = run("publicity_awareness", facts("community", survey=s))
    assert r.passed is passed
    if not passed:
        assert "认可度 0.89" in r.detail


@pytest.mark.parametrize(("surveyed", "passed"), [(-29, True), (-30, False)])
def test_it_needs_a_survey_within_30_days(surveyed, passed):
    s = C.SurveyFact(day(surveyed), Decimal("0.95"), Decimal("0.95"), Decimal("0.95"))
    assert run("publicity_awareness", facts("village", survey=s)).passed is passed


def _verdict(code, kind, named, eligible, passed=None):
    return C.Verdict(C.UnitRef(hash(code) % 1000, code, f"名{code}", kind, f"/{code}/", None), named, eligible,
                     passed or {})


@pytest.mark.parametrize(("named", "eligible", "passed"), [
    (True, False, True), (False, True, False),  # a compound needs its buildings NAMED
])
def test_a_compound_needs_every_building_named(named, eligible, passed):
    f = facts("compound", descendants=[_verdict("B1", "building", True, True),
                                       _verdict("B2", "building", named, eligible)])
    r = run("children_named", f)
    assert r.passed is passed
    if not passed:
        assert "名B2" in r.detail


@pytest.mark.parametrize(("named", "eligible", "passed"), [
    (True, False, True), (False, True, True), (False, False, False),
])
def test_a_village_accepts_named_or_eligible_children(named, eligible, passed):
    f = facts("village", descendants=[_verdict("G1", "group", named, eligible),
                                      _verdict("B1", "building", True, False)])
    assert run("children_free", f).passed is passed


def test_it_lists_five_unsigned_households_then_the_count():
    unsigned = C.Sampled()
    for n in range(7):
        unsigned.add(f"2-1-30{n}", {"type": "household", "code": f"H{n}"})
    f = facts(households=9, signed=2, unsigned=unsigned,
              application=C.ApplicationFact(1, "draft", None))
    r = run("all_households_signed", f)
    assert not r.passed
    assert r.detail == "7 户未签名：2-1-300、2-1-301、2-1-302、2-1-303、2-1-304 等 7 户"
    assert len(r.items) == 5


def test_it_wants_an_application_before_signatures_count():
    r = run("all_households_signed", facts(households=3))
    assert not r.passed and "尚未发起" in r.detail


@pytest.mark.parametrize(("signed_on", "children_ok", "passed"), [
    (D, True, True), (None, True, False), (day(1), True, False), (D, False, False),
])
def test_a_community_signs_itself_and_needs_every_unit_below_signed(signed_on, children_ok, passed):
    f = facts("community", application=C.ApplicationFact(1, "draft", signed_on),
              descendants=[_verdict("C1", "compound", False, False, {"all_households_signed": children_ok}),
                           _verdict("B1", "building", False, False, {"all_households_signed": True})])
    assert run("all_households_signed", f).passed is passed


@pytest.mark.parametrize(("itype", "criterion_id"), [
    ("fight", "no_secondary_incident"), ("arson", "no_secondary_incident"),
    ("negative_opinion", "no_negative_opinion"),
])
@pytest.mark.parametrize(("occurred", "passed"), [(-7, False), (-8, True)])
def test_it_counts_incidents_within_eight_days(itype, criterion_id, occurred, passed):
    f = facts(incidents=[C.IncidentFact(day(occurred), itype, "B1", "1栋")])
    r = run(criterion_id, f)
    assert r.passed is passed
    other = "no_negative_opinion" if criterion_id == "no_secondary_incident" else "no_secondary_incident"
    assert run(other, f).passed


def test_a_ledger_entry_names_what_is_missing():
    s = C.Sampled()
    s.add(C.ledger_label(C.messages(), PERSON, "送药", "", D), {"type": "resident", "id": 3})
    r = run("special_population_ledger", facts(ledger_incomplete=s))
    assert not r.passed and r.items == [{"type": "resident", "id": 3}]
    assert r.named == "1 人台账不完整或未按期复核：居民 张** (5002**********123X)（帮扶人）"
    assert r.detail == "1 人台账不完整或未按期复核"


def test_a_person_in_any_reason_is_named_only_in_the_named_form():
    """Whatever criterion writes a person through PersonRef.label, its detail (stored, notified, shown to
    volunteer roles) says "一名居民" and its named form says who."""
    text = f"还差：{PERSON.label(C.messages())}"
    r = C.CriterionResult("nat_participation", False, text)
    assert r.detail == "还差：一名居民" and r.named == "还差：居民 张** (5002**********123X)"
    assert C.CriterionResult("x", True, "无人").named == ""


def test_every_registered_criterion_is_in_the_default_profile_and_back():
    assert {c.id for c in PROFILE.criteria} == set(C.REGISTRY)
