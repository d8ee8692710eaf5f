"""The machine form of the reasons the system stores (``criteria.machine_reasons`` / ``render``): made
by the same criteria, it writes out to exactly the text the criteria write in each language — so a
stored reason read in English is the English reason, and read in Chinese the stored text."""

from __future__ import annotations

import pytest
from django.utils import translation
from test_i18n_reasons import LEVELS, chinese, failing_facts, judged

from wuyiqu.standards import criteria as C


def machine_judged(level: str) -> list[C.CriterionResult]:
    with C.machine_reasons():
        f = failing_facts(level)
        assert f.msgs is C.machine_messages()
        return judged(f)


@pytest.mark.parametrize("level", LEVELS)
def test_the_machine_form_writes_out_to_the_criteria_own_text_in_each_language(level):
    zh = judged(failing_facts(level))
    with translation.override("en"):
        en = judged(failing_facts(level))
    machine = machine_judged(level)
    assert [r.id for r in machine] == [r.id for r in zh]
    for m, z, e in zip(machine, zh, en, strict=True):
        assert C.M_START in m.detail
        assert C.render(m.detail, "zh-hans") == z.detail
        assert C.render(m.detail, "en") == e.detail
        assert C.render(m.named, "zh-hans") == z.named
        with translation.override("en"):
            assert C.render(m.detail) == e.detail  # the active language by default


def test_localise_keeps_the_form_and_writes_zh_hans_once():
    zh = {r.id: r for r in judged(failing_facts("compound"))}
    machine = machine_judged("compound")
    ev = type("Ev", (), {"criteria": machine})()
    with translation.override("zh-hans"):
        C.localise([ev, ev])  # twice: a result shared between units is written out once
    for r in machine:
        assert r.detail == zh[r.id].detail and r.named == zh[r.id].named
        assert C.M_START in r.machine
        with translation.override("en"):
            assert not chinese(C.shown(r.detail, r.machine)), r.id


def test_passing_results_in_machine_form_are_shared_and_render_in_both_languages():
    import datetime as dt
    from decimal import Decimal

    on = dt.date(2022, 11, 28)
    with C.machine_reasons():
        f = C.UnitFacts(unit=C.UnitRef(1, "U", "U", "building", "/U/", None), level="building", on=on,
                        households=3, nat_required=3, nat_tested=3,
                        survey=C.SurveyFact(on, Decimal("0.95"), Decimal("0.95"), Decimal("0.95")))
        f.inspections = {i: C.InspectionFact(on, True) for i in C.INSPECTION_LABELS}
        passed = [r for r in judged(f) if r.passed]
    assert len(passed) >= 5
    # (a shared result may have been written out already by an earlier evaluation: its form is kept)
    forms = [r.machine or r.detail for r in passed]
    assert all(C.M_START in f and chinese(C.render(f, "zh-hans")) and not chinese(C.render(f, "en")) for f in forms)


def test_a_persons_words_and_an_old_row_show_as_written():
    assert C.shown("指挥部摘牌：门岗无人", None) == "指挥部摘牌：门岗无人"
    assert C.render("门岗无人值守") == "门岗无人值守"
    # Words that carry the marks cannot forge a form: they are taken out of a person's words.
    forged = C.M_START + "t:no_zone" + C.M_END
    form = C.machine_messages().text("command_withdrawal", reason=C.plain("门岗" + forged))
    assert C.render(form, "en") == "Withdrawn by the command: 门岗t:no_zone"
    # A broken form (a text changed since) falls back to the stored text.
    assert C.shown("存储的原因", C.M_START + "t:no_such_text" + C.M_END) == "存储的原因"
    assert C.shown("存储的原因", C.M_START + "t:nat" + C.M_ARG + "days") == "存储的原因"


def test_a_command_withdrawal_and_the_composed_reasons_render_in_english():
    m = C.machine_messages()
    form = m.text("semicolon").join([
        m.text("criterion_reason", criterion=C.label("近8天无疫情"),
               detail=m.text("unit_reason", unit="江畔社区", detail=m.text("no_case", days=8))),
        m.text("warning_expired", criterion=C.label("口罩佩戴"), opened="2022-11-01", deadline="2022-11-08",
               detail="门岗无人"),
        m.text("below_neither", list=m.text("and").join(["甲", "乙"]))])
    zh = C.render(form, "zh-hans")
    assert zh == ("近8天无疫情：江畔社区：近8天无阳性感染者；警示逾期未整改：口罩佩戴，2022-11-01 警示，"
                  "整改期限 2022-11-08：门岗无人；甲、乙 既未获称号也未达标")
    en = C.render(form, "en")
    for name in ("江畔社区", "门岗无人", "甲", "乙"):
        en = en.replace(name, "")
    assert not chinese(en), en
