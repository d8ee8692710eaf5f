"""Generated text in English when English is chosen, Chinese by default: the criteria's reasons (built
from a table of catalogue texts resolved once per language), the self-assessment, supervision history
and dashboard pages, the dashboard's chart texts; `wuyiqu evaluate --json`, the API's evaluations and
stored records stay Chinese whatever the caller's language (stored reasons also keep a machine form,
which the pages render in the reader's language)."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from html.parser import HTMLParser
from io import StringIO

import pytest
from conftest import WENLONG_COMMUNITY, WENLONG_STREET
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.utils import translation

from wuyiqu.lib.dates import today
from wuyiqu.standards import criteria as C
from wuyiqu.standards.profiles import bundled_profile_content, parse_profile

CJK = re.compile(r"[\u4e00-\u9fff]")
D = dt.date(2022, 11, 28)
PROFILE = parse_profile(bundled_profile_content())


def chinese(text: str) -> bool:
    return bool(CJK.search(text))


# --- the criteria, without the database: every text of every criterion in both languages -------------------


def day(offset: int) -> dt.date:
    return D + dt.timedelta(days=offset)


def ref(kind: str, code: str, uid: int = 1) -> C.UnitRef:
    return C.UnitRef(uid, code, f"Unit {code}", kind, f"/{code}/", None)


def sampled(n: int, what: str) -> C.Sampled:
    s = C.Sampled()
    for i in range(n):
        s.add(f"{what} {i}", {"type": "household", "code": f"H{i}"})
    return s


def failing_facts(level: str) -> C.UnitFacts:
    """A unit of ``level`` that fails every criterion of its level, with more offenders than a reason
    lists (so that "等 N 户" and the like are built). All data (names, addresses) is ASCII: whatever
    CJK is left in an English reason comes from a text that was not translated."""
    person = C.PersonRef(7, "Li Lei", "5002**********123X")
    nameless = C.PersonRef(None, "", "5002**********999X")
    below = [C.Verdict(ref(kind, f"{kind}{i}", 100 + i), False, False, {})
             for i in range(7) for kind in ("building", "compound", "group", "village", "community")]
    return C.UnitFacts(
        unit=ref(level, "U"), level=level, on=D,
        cases=[C.CaseFact(day(-i), person if i % 2 else None, "Unit U") for i in range(7)],
        measures=[C.MeasureFact(kind, day(-2), day(i), person if i % 2 else nameless)
                  for i in range(7) for kind in ("close_contact", "home_quarantine", "returnee")],
        zones=[C.ZoneFact("high", day(-3), None, "Z1", "Zone one", "self"),
               C.ZoneFact("temporary", day(-3), day(2), "Z2", "Zone two", "below"),
               C.ZoneFact("high", day(-3), day(4), "Z3", "Zone three", "above")],
        households=30, unverified=sampled(7, "Road"), nat_required=100, nat_tested=50,
        ledger_incomplete=sampled(7, "Ledger"),
        incidents=[C.IncidentFact(day(-i), kind, "U", "Unit U") for i in range(7)
                   for kind in ("fight", "arson", "negative_opinion")],
        inspections={"masks": C.InspectionFact(day(-20), True), "entrance": C.InspectionFact(D, False)},
        survey=C.SurveyFact(D, Decimal("0.5"), Decimal("0.95"), Decimal("0.6")),
        application=C.ApplicationFact(1, "draft", None), unsigned=sampled(7, "Flat"), descendants=below,
    )


def judged(f: C.UnitFacts) -> list[C.CriterionResult]:
    return [C.REGISTRY[spec.id](f, spec) for spec in PROFILE.criteria_for(f.level)]


LEVELS = ("building", "compound", "group", "village", "community", "street")


@pytest.mark.parametrize("level", LEVELS)
def test_every_failing_reason_of_every_level_is_english_when_english_is_active(level):
    with translation.override("en"):
        results = judged(failing_facts(level))
    assert results and not any(r.passed for r in results)
    assert {r.id: r.detail for r in results if chinese(r.detail)} == {}


@pytest.mark.parametrize("level", LEVELS)
def test_every_failing_reason_is_chinese_by_default(level):
    results = judged(failing_facts(level))
    assert all(chinese(r.detail) for r in results), [r.detail for r in results if not chinese(r.detail)]


@pytest.mark.parametrize("level", LEVELS)
def test_passing_reasons_follow_the_language_too(level):
    def passing():
        f = C.UnitFacts(unit=ref(level, "U"), level=level, on=D, households=3, nat_required=3, nat_tested=3,
                        survey=C.SurveyFact(D, Decimal("0.95"), Decimal("0.95"), Decimal("0.95")))
        f.inspections = {i: C.InspectionFact(D, True) for i in C.INSPECTION_LABELS}
        return [r for r in judged(f) if r.passed]

    with translation.override("en"):
        english = passing()
    zh = passing()
    assert len(english) >= 5 and len(english) == len(zh)
    assert [r.detail for r in english if chinese(r.detail)] == []
    assert all(chinese(r.detail) for r in zh)


def test_the_english_reasons_read_as_sentences():
    with translation.override("en"):
        results = judged(failing_facts("compound"))
    by_id = {r.id: r.named or r.detail for r in results}  # as community staff read them
    anonymous = {r.id: r.detail for r in results}  # as everyone else does
    assert anonymous["no_case"].startswith("7 positive cases in the last 8 days; if there is no new one")
    assert anonymous["no_close_contact"].startswith("7 residents under control, until ")
    assert "L*****" not in " ".join(anonymous.values())
    assert by_id["no_case"].startswith("7 positive cases in the last 8 days: ")
    assert "and others, 7 cases in all" in by_id["no_case"]
    assert "Resident L***** (5002**********123X), reported 2022-11-23" in by_id["no_case"]
    assert "Resident L***** (5002**********123X) is a close contact, under control until" in by_id["no_close_contact"]
    assert "This unit Zone one: High-risk zone from 2022-11-25, not lifted" in by_id["no_risk_zone"]
    assert "Entrance guard: the inspection of 2022-11-28 failed" in by_id["entrance_control"]
    assert "Road 0, Road 1, Road 2, Road 3, Road 4 and others, 7 households in all" in by_id["registry_verified"]
    assert by_id["nat_participation"].endswith(", 45 more people needed")


def test_a_count_of_one_is_singular_in_english():
    with translation.override("en"):
        f = failing_facts("building")
        f.unverified, f.cases = sampled(1, "Road"), f.cases[:1]
        by_id = {r.id: r.named or r.detail for r in judged(f)}
    assert by_id["registry_verified"] == "1 household not verified in the last 30 days: Road 0"
    assert by_id["no_case"].startswith("1 positive case in the last 8 days: Unit U, reported 2022-11-28")


def test_every_text_of_the_table_has_an_english_translation():
    english = C.Messages("en")
    zh = C.Messages("zh-hans")
    untranslated = [k for k, v in english.t.items() if chinese(v) or (v == zh.t[k] and chinese(zh.t[k]))]
    for key in C._PLURALS:  # noqa: SLF001 — every text with a count, singular and plural
        for n in (1, 2):
            if chinese(english.count(key, n, list="x", days=8, clears="x", what="x", title="x", date="x")):
                untranslated.append((key, n))
    labels = [*english.inspection.values(), *english.incident.values(), *english.zone.values(), *english.title.values()]
    assert untranslated == [] and not any(chinese(v) for v in labels)


def test_the_texts_are_looked_up_once_per_language_not_per_unit(monkeypatch):
    """The evaluator judges 100,000s of criteria: the catalogue is asked when a language's table is
    made (and once per new count of a text with a count), never per unit."""
    calls = []
    for name in ("gettext", "ngettext", "pgettext"):
        real = getattr(C, name)
        monkeypatch.setattr(C, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    C._messages_for.cache_clear()  # noqa: SLF001
    try:
        with translation.override("en"):
            m = C.messages()
            assert C.messages() is m
            made = len(calls)
            assert made > 50  # the table was made here, with the catalogue
            judged(failing_facts("compound"))
            judged(failing_facts("street"))
            after_first = len(calls)
            for _ in range(50):
                judged(failing_facts("compound"))
                judged(failing_facts("street"))
            assert len(calls) == after_first  # texts with the same counts: nothing asked again
    finally:
        C._messages_for.cache_clear()  # noqa: SLF001


# --- pages -------------------------------------------------------------------------------------------------


class _Classes(HTMLParser):
    """The text inside elements of one class (e.g. the reasons: <p class="detail">)."""

    def __init__(self, cls: str, tag: str):
        super().__init__()
        self.cls, self.tag, self.depth, self.texts = cls, tag, 0, []

    def handle_starttag(self, tag, attrs):
        if self.depth:
            self.depth += tag == self.tag
        elif tag == self.tag and self.cls in (dict(attrs).get("class") or "").split():
            self.depth = 1
            self.texts.append("")

    def handle_endtag(self, tag):
        if self.depth and tag == self.tag:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.texts[-1] += data


def texts_in(html: str, tag: str, cls: str) -> list[str]:
    parser = _Classes(cls, tag)
    parser.feed(html)
    return [" ".join(t.split()) for t in parser.texts]


def without_data(text: str) -> str:
    """``text`` without what is data and stays Chinese: names of units, addresses of households,
    masked names of residents (张**)."""
    from wuyiqu.units.models import Household, Unit

    names = {*Unit.objects.values_list("name", flat=True), *Household.objects.values_list("address", flat=True)}
    for name in sorted((n for n in names if n), key=len, reverse=True):
        text = text.replace(name, "")
    return re.sub(r"[\u4e00-\u9fff]\*+", "", text)


def page(client, url: str, language: str | None) -> str:
    client.cookies.pop(settings.LANGUAGE_COOKIE_NAME, None)
    if language:
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    resp = client.get(url)
    assert resp.status_code == 200, url
    return resp.content.decode()


def test_the_self_assessment_shows_english_reasons_when_english_is_chosen(client, alice):
    client.force_login(alice)
    url = f"/units/{WENLONG_COMMUNITY}/assessment/"
    zh = texts_in(page(client, url, None), "p", "detail")
    en = texts_in(page(client, url, "en"), "p", "detail")
    assert len(en) == len(zh) >= 10
    assert all(chinese(t) for t in zh)
    assert [t for t in en if chinese(without_data(t))] == []
    assert any("last 8 days" in t for t in en)
    assert all(a != b for a, b in zip(en, zh, strict=True))
    # The title of the unit is shown through the catalogue too.
    assert "Epidemic-free community" in page(client, url, "en")


def test_the_accept_language_header_alone_does_not_switch_the_reasons(client, alice):
    client.force_login(alice)
    resp = client.get(f"/units/{WENLONG_COMMUNITY}/assessment/", HTTP_ACCEPT_LANGUAGE="en")
    assert all(chinese(t) for t in texts_in(resp.content.decode(), "p", "detail"))


@pytest.fixture
def supervised(dave, carol, erin):
    """dave's building named, then warned by carol; the day's evaluations stored while English was active."""
    from wuyiqu.applications.actions import do_open_application
    from wuyiqu.certification.models import Title
    from wuyiqu.standards.actions import do_store_evaluations
    from wuyiqu.supervision.actions import do_issue_warning

    unit = dave.unit
    do_open_application(actor=dave, unit=unit)
    Title.objects.create(unit=unit, title="无疫楼栋", named_on=today() - dt.timedelta(days=3),
                         certificate_number="WYQ-TEST-1")
    do_issue_warning(actor=carol, unit=unit, detail="楼道堆放杂物，请清理", days=5)
    with translation.override("en"):
        do_store_evaluations(on=today())
    return unit


def test_stored_evaluations_keep_chinese_when_english_was_active(supervised):
    from wuyiqu.standards.models import Evaluation

    row = Evaluation.objects.get(unit=supervised, on=today())
    assert row.details and all(chinese(v) for v in row.details.values())
    # Beside each, its machine form: the same text in zh-hans, the English one in English.
    assert set(row.detail_forms) == set(row.details)
    for cid, text in row.details.items():
        assert C.render(row.detail_forms[cid], "zh-hans") == text
        english = C.render(row.detail_forms[cid], "en")
        assert english != text and not chinese(re.sub(r"[\u4e00-\u9fff\d]+室", "", english)), english  # but rooms


def test_the_supervision_history_labels_are_english_when_english_is_chosen(client, supervised, carol):
    client.force_login(carol)
    url = f"/units/{supervised.code}/history/"
    zh_html, en_html = page(client, url, None), page(client, url, "en")
    labels = re.compile(r"<strong>([^<]*)</strong>")
    zh_labels, en_labels = labels.findall(zh_html.split('id="timeline"')[1]), labels.findall(en_html.split('id="timeline"')[1])
    assert {"发起申请", "命名", "警示提醒", "每日评估"} <= set(zh_labels)
    assert {"Application opened", "Naming", "Warning", "Daily evaluation"} <= set(en_labels)
    assert [x for x in en_labels if chinese(x)] == []
    assert "Named Epidemic-free building (certificate WYQ-TEST-1)" in en_html
    assert "获无疫楼栋称号（证书 WYQ-TEST-1）" in zh_html
    assert "(rectify by " in en_html and "Epidemic-free building" in en_html
    # What a person wrote stays as written; the reasons the system stored read in English.
    assert "楼道堆放杂物，请清理" in en_html
    reasons = re.search(r"Does not meet the standard: ([^<]*)<", en_html).group(1)
    assert reasons and not chinese(re.sub(r"[\u4e00-\u9fff\d]+室", "", reasons)), reasons  # but rooms
    assert "未达标：" in zh_html and "Does not meet the standard" not in zh_html


def test_a_stored_evaluation_without_its_machine_form_shows_its_stored_text(client, supervised, carol):
    """A row stored before the machine forms: its Chinese text, quoted in the English frame."""
    from wuyiqu.standards.models import Evaluation

    row = Evaluation.objects.get(unit=supervised, on=today())
    Evaluation.objects.filter(pk=row.pk).update(detail_forms={})
    client.force_login(carol)
    en_html = page(client, f"/units/{supervised.code}/history/", "en")
    assert next(iter(row.details.values())) in en_html
    assert re.search(r"Does not meet the standard: [^<：]+: [^<]*[\u4e00-\u9fff]", en_html)


def test_a_refused_supervision_action_says_why_in_english(client, supervised, carol):
    client.force_login(carol)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    resp = client.post(f"/units/{supervised.code}/history/warn/", {"reason": "x", "days": "90"}, follow=True)
    assert "The days to rectify must be between 1 and 60" in resp.content.decode()


def _data_block(html: str, element_id: str) -> dict:
    m = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert m, element_id
    return json.loads(m.group(1))


def test_the_dashboard_hands_its_chart_texts_to_the_script_in_the_chosen_language(client, carol):
    cache.clear()
    client.force_login(carol)
    url = f"/units/{WENLONG_STREET}/dashboard/"
    zh, en = _data_block(page(client, url, None), "dashboard-texts"), _data_block(page(client, url, "en"), "dashboard-texts")
    assert set(zh) == set(en) and zh["named"] == "已命名" and zh["no_trend"] == "近30天没有存储的评估"
    assert en["named"] == "Named" and en["no_trend"] == "No stored evaluation in the last 30 days"
    assert [v for v in en.values() if chinese(v)] == []
    # Only data blocks, no inline code: every <script> either loads a file or is application/json.
    html = page(client, url, "en")
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag


def test_the_drill_down_json_labels_follow_the_language(client, carol):
    cache.clear()
    client.force_login(carol)
    url = f"/units/{WENLONG_STREET}/dashboard/children.json"
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    en = client.get(url).json()
    client.cookies.pop(settings.LANGUAGE_COOKIE_NAME)
    zh = client.get(url).json()  # the same cached level, in Chinese
    assert en["unit"]["kind_label"] == "Street" and zh["unit"]["kind_label"] == "街道"
    assert [s["label"] for s in en["statuses"]][:2] == ["Named", "Under warning"]
    english_labels = [c[k] for c in en["children"] for k in ("kind_label", "status_label")]
    assert english_labels and [x for x in english_labels if chinese(x)] == []
    assert all(chinese(c["kind_label"]) for c in zh["children"])


def test_the_blockers_page_gives_english_reasons_after_a_chinese_visit(client, carol):
    cache.clear()
    client.force_login(carol)
    url = f"/units/{WENLONG_STREET}/blockers/"
    zh = texts_in(page(client, url, None), "p", "small-text")  # fills the cache of the live evaluation
    en = texts_in(page(client, url, "en"), "p", "small-text")
    assert zh and any(chinese(without_data(t)) for t in zh)
    reasons = [t for t in en if t and not t.startswith(("Earliest", "Must be fixed"))]
    assert reasons and [t for t in reasons if chinese(without_data(t))] == []


# --- Chinese whatever the caller's language -----------------------------------------------------------------


def _evaluate_json(*args: str) -> list[dict]:
    out = StringIO()
    call_command("evaluate", "--json", "--unit", WENLONG_COMMUNITY, *args, stdout=out)
    return json.loads(out.getvalue())


def test_evaluate_json_is_chinese_even_when_the_environment_and_active_language_say_english(world, monkeypatch):
    chinese_run = _evaluate_json()
    for name, value in (("LANGUAGE", "en"), ("LANG", "en_US.UTF-8"), ("LC_ALL", "en_US.UTF-8"),
                        ("HTTP_ACCEPT_LANGUAGE", "en")):
        monkeypatch.setenv(name, value)
    with translation.override("en"):
        english_run = _evaluate_json()
        from wuyiqu.standards.evaluator import evaluate
        from wuyiqu.units.models import Unit

        english_details = [c.detail for e in evaluate(today(), root=Unit.objects.get(code=WENLONG_COMMUNITY))
                           for c in e.criteria]
    assert english_run == chinese_run
    details = [c["detail"] for e in english_run for c in e["criteria"]]
    assert details and all(chinese(d) for d in details)
    assert {e["title"] for e in english_run} <= set(C.TITLE_KINDS.values())
    # The same evaluation made in English (as a page would) reads differently: the command chose Chinese.
    assert english_details != details and not chinese(english_details[0])


def test_the_api_evaluation_is_chinese_whatever_the_request_asks(client, alice):
    from wuyiqu.api.actions import do_create_api_token
    from wuyiqu.units.models import Unit

    _t, secret = do_create_api_token(actor=None, name="i18n", unit=Unit.objects.get(code=WENLONG_COMMUNITY),
                                     kinds=[], scopes=["evaluations:read"], acts_as=None, days=30)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    resp = client.get(f"/api/v1/units/{WENLONG_COMMUNITY}/evaluation", HTTP_AUTHORIZATION=f"Bearer {secret}",
                      HTTP_ACCEPT_LANGUAGE="en")
    assert resp.status_code == 200, resp.content
    entry = next(e for e in _evaluate_json() if e["unit"] == WENLONG_COMMUNITY)
    assert resp.json() == entry
    assert all(chinese(c["detail"]) for c in entry["criteria"])


def test_a_refused_inspection_says_why_in_english(client, alice, media_root):
    from wuyiqu.inspections.models import Inspection

    client.force_login(alice)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    url = f"/units/{WENLONG_COMMUNITY}/inspections/"
    future = (today() + dt.timedelta(days=1)).isoformat()
    html = client.post(url, {"inspected_on": future, "inspector": "Wang", "item_masks": "pass"}).content.decode()
    assert f"The inspection date {future} is after today" in html
    assert "Fill in the result of at least one inspection item" in client.post(
        url, {"inspected_on": today().isoformat(), "inspector": "Wang"}).content.decode()
    client.cookies.pop(settings.LANGUAGE_COOKIE_NAME)
    assert "晚于今天" in client.post(url, {"inspected_on": future, "inspector": "王五", "item_masks": "pass"}).content.decode()
    assert not Inspection.objects.exists()


@pytest.fixture
def media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path
