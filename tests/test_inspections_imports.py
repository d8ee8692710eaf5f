"""Imports of this area (SPEC §7): inspections, incidents, surveys, signatures, titles."""

from __future__ import annotations

import datetime as dt

import pytest
from test_standards_world import make_unit

from wuyiqu.applications.models import Application, CoSignature
from wuyiqu.certification.models import Title
from wuyiqu.imports.services import run_import
from wuyiqu.inspections.models import Incident, Inspection, Survey
from wuyiqu.units.models import Household

pytestmark = pytest.mark.django_db


@pytest.fixture
def tree():
    t = make_unit("T", "district")
    street = make_unit("T1", "street", t)
    comm = make_unit("T1C", "community", street, "测试社区")
    b1 = make_unit("T1C-B1", "building", comm, "1栋")
    b2 = make_unit("T1C-B2", "building", comm, "2栋")
    for b in (b1, b2):
        for room in ("101", "102"):
            Household.objects.create(code=f"{b.code}-{room}", unit=b, address=f"{b.name}{room}")
    return {"comm": comm, "b1": b1, "b2": b2}


def imp(tmp_path, kind, text, **kw):
    path = tmp_path / f"{kind}.csv"
    path.write_text(text, encoding="utf-8")
    return run_import(kind=kind, path=path, **kw)


def test_inspections_with_chinese_headers_and_words(tree, tmp_path):
    csv = "单位编码,检查日期,检查项,是否合格,检查人\nT1C-B1,2022-11-27,口罩佩戴,合格,王五\nT1C-B1,2022-11-27,entrance,不合格,\n"
    job = imp(tmp_path, "inspections", csv)
    assert job.status == "succeeded", job.errors
    assert Inspection.objects.get(item="masks").passed is True
    assert Inspection.objects.get(item="entrance").passed is False
    again = imp(tmp_path, "inspections", csv)
    assert (again.created, again.unchanged) == (0, 2)
    changed = imp(tmp_path, "inspections", "unit_code,inspected_on,item,passed,inspector\nT1C-B1,2022-11-27,entrance,yes,李四\n")
    assert changed.updated == 1 and Inspection.objects.get(item="entrance").passed is True


def test_incidents_carry_the_handling_of_a_negative_opinion(tree, tmp_path):
    """处置完毕 (date + note) in the incidents import: stored as on the page, awaiting the street;
    a later file may correct it until the street accepts it; a file without it undoes nothing."""
    csv = ("单位编码,发生日期,类型,描述,处置完毕日期,处置情况\n"
           "T1C-B1,2022-11-26,负面舆情,群内抱怨,2022-11-27,已上门解释\nT1C-B2,2022-11-26,负面舆情,网帖,,\n")
    job = imp(tmp_path, "incidents", csv)
    assert job.status == "succeeded", job.errors
    handled = Incident.objects.get(unit=tree["b1"])
    assert (handled.handled_on, handled.handled_note, handled.accepted_on) == (dt.date(2022, 11, 27), "已上门解释", None)
    assert Incident.objects.get(unit=tree["b2"]).handled_on is None
    later = imp(tmp_path, "incidents", "unit_code,occurred_on,type,description,handled_on,handled_note\n"
                                       "T1C-B2,2022-11-26,negative_opinion,网帖,2022-11-28,已删帖并回访\n"
                                       "T1C-B1,2022-11-26,negative_opinion,群内抱怨,,\n")
    assert (later.status, later.updated, later.unchanged) == ("succeeded", 1, 1)
    assert Incident.objects.get(unit=tree["b2"]).handled_note == "已删帖并回访"
    assert Incident.objects.get(unit=tree["b1"]).handled_on == dt.date(2022, 11, 27)
    Incident.objects.filter(unit=tree["b1"]).update(accepted_on=dt.date(2022, 11, 28))
    accepted = imp(tmp_path, "incidents", "unit_code,occurred_on,type,description,handled_on,handled_note\n"
                                          "T1C-B1,2022-11-26,negative_opinion,群内抱怨,2022-11-28,改一下\n")
    assert accepted.status == "failed"
    assert [(e["line"], e["field"]) for e in accepted.errors] == [(2, "handled_on")]
    assert "街道已于2022-11-28认可处置结果，不能再修改" in accepted.errors[0]["message"]
    assert Incident.objects.get(unit=tree["b1"]).handled_note == "已上门解释"


@pytest.mark.parametrize("row, field, message", [
    ("T1C-B1,2022-11-26,负面舆情,网帖,2022-11-27,", "handled_note", "处置情况说明不能为空"),
    ("T1C-B1,2022-11-26,负面舆情,网帖,,已处置", "handled_on", "须同时填写处置完毕日期"),
    ("T1C-B1,2022-11-26,负面舆情,网帖,2022-11-25,已处置", "handled_on", "早于舆情发生日期2022-11-26"),
    ("T1C-B1,2022-11-26,斗殴,争执,2022-11-27,已处置", "handled_on", "只有负面舆情需要处置和认可"),
])
def test_a_bad_handling_in_the_incidents_import_names_the_row_and_imports_nothing(tree, tmp_path, row, field, message):
    job = imp(tmp_path, "incidents", "unit_code,occurred_on,type,description,handled_on,handled_note\n"
                                     f"T1C-B2,2022-11-26,negative_opinion,好的一行,2022-11-27,已处置\n{row}\n")
    assert job.status == "failed" and not Incident.objects.exists()
    assert [(e["line"], e["field"]) for e in job.errors] == [(3, field)]
    assert message in job.errors[0]["message"]


def test_a_bad_inspection_row_imports_nothing(tree, tmp_path):
    csv = ("unit_code,inspected_on,item,passed\nT1C-B1,2022-11-27,masks,yes\nT1C-B1,2022-11-27,moat,yes\n"
           "NOPE,2022-11-27,masks,yes\nT1C-B2,2022-11-27,masks,maybe\n")
    job = imp(tmp_path, "inspections", csv)
    assert job.status == "failed" and Inspection.objects.count() == 0
    by_line = {e["line"]: e for e in job.errors}
    assert "检查项“moat”无法识别" in by_line[3]["message"]
    assert "单位编码“NOPE”不存在" in by_line[4]["message"]
    assert by_line[5]["field"] == "passed"


def test_incidents_and_surveys(tree, tmp_path):
    job = imp(tmp_path, "incidents", "unit_code,occurred_on,type,description\nT1C-B1,2022-11-26,斗殴,两户争执\n"
                                     "T1C,2022-11-26,negative_opinion,\n")
    assert job.status == "succeeded", job.errors
    assert sorted(Incident.objects.values_list("incident_type", flat=True)) == ["fight", "negative_opinion"]
    assert imp(tmp_path, "incidents", "unit_code,occurred_on,type\nT1C,2022-11-26,负面舆情\n").unchanged == 1
    job = imp(tmp_path, "surveys", "单位编码,调查日期,知晓度,认可度,参与度\nT1C,2022-11-20,0.95,92%,0.9\n")
    assert job.status == "succeeded", job.errors
    s = Survey.objects.get()
    assert (float(s.awareness), float(s.approval), float(s.participation)) == (0.95, 0.92, 0.9)
    bad = imp(tmp_path, "surveys", "unit_code,surveyed_on,awareness,approval,participation\nT1C-B1,2022-11-20,1.2,0.9,0.9\n")
    assert bad.status == "failed"
    messages = " ".join(e["message"] for e in bad.errors)
    assert "知晓度应在0到1之间" in messages


def test_paper_signatures_open_a_draft_and_never_double(tree, tmp_path):
    csv = "申请单位编码,户编码,签名日期\nT1C-B1,T1C-B1-101,2022-11-25\nT1C-B1,T1C-B1-102,2022-11-25\n"
    job = imp(tmp_path, "signatures", csv)
    assert job.status == "succeeded", job.errors
    app = Application.objects.get()
    assert (app.unit, app.title, app.status) == (tree["b1"], "无疫楼栋", "draft")
    assert set(CoSignature.objects.values_list("source", flat=True)) == {"paper"}
    again = imp(tmp_path, "signatures", csv)
    assert (again.created, again.unchanged) == (0, 2)
    assert Application.objects.count() == 1 and CoSignature.objects.count() == 2


def test_a_household_outside_the_applying_unit_is_refused(tree, tmp_path):
    job = imp(tmp_path, "signatures", "unit_code,household_code,signed_on\nT1C-B1,T1C-B2-101,2022-11-25\n"
                                      "T1C,T1C-B1-101,2022-11-25\n")
    assert job.status == "failed"
    assert "户“T1C-B2-101”不在单位“T1C-B1”下" in job.errors[0]["message"]
    assert "不收集住户联名" in job.errors[1]["message"]
    assert not Application.objects.exists()


def test_titles_follow_the_unit_kind(tree, tmp_path, today):
    job = imp(tmp_path, "titles", "单位编码,命名日期\nT1C-B1,2022-11-01\nT1C,2022-11-02\n")
    assert job.status == "succeeded", job.errors
    assert dict(Title.objects.values_list("unit__code", "title")) == {"T1C-B1": "无疫楼栋", "T1C": "无疫社区"}
    assert imp(tmp_path, "titles", "unit_code,named_on\nT1C-B1,2022-11-01\n").unchanged == 1
    future = (today + dt.timedelta(days=3)).isoformat()
    bad = imp(tmp_path, "titles", f"unit_code,named_on\nT1C-B2,{future}\nT,2022-11-01\n")
    assert bad.status == "failed" and Title.objects.count() == 2
    assert "没有称号" in bad.errors[1]["message"]


def test_the_actions_audit(tree):
    from wuyiqu.applications.actions import SignatureRefused, do_record_paper_signatures
    from wuyiqu.audit.models import AuditEvent
    from wuyiqu.certification.actions import do_record_existing_title

    hh = list(Household.objects.filter(unit=tree["b2"]))
    written = do_record_paper_signatures(actor=None, unit=tree["b2"], households=hh, signed_on=dt.date(2022, 11, 20))
    assert written.created == 2 and written.drafts_opened == 1
    with pytest.raises(SignatureRefused, match="不属于"):
        do_record_paper_signatures(actor=None, unit=tree["b1"], households=hh, signed_on=dt.date(2022, 11, 20))
    title = do_record_existing_title(actor=None, unit=tree["b2"], named_on=dt.date(2022, 11, 21))
    assert title.title == "无疫楼栋"
    assert set(AuditEvent.objects.values_list("action", flat=True)) >= {
        "applications.paper_signatures", "certification.record_existing_title"}
