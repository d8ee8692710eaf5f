"""The reports of a scope: the ledger (台账) and the weekly summary as Excel and PDF. Excel carries no
formula from user data (a unit named "=1+1" stays text); the PDF holds the Chinese text."""

from __future__ import annotations

import io
import shutil
import subprocess

import openpyxl
import pytest
from django.core.cache import cache
from pdf_tools import assert_fonts_embedded_subsets
from test_dashboard_pages import build_world, staff
from test_standards_world import D, days

from wuyiqu.certification.models import Title
from wuyiqu.supervision.models import TitleEvent, Warning
from wuyiqu.units.models import Unit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def workbook(resp):
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("application/vnd.openxmlformats")
    return openpyxl.load_workbook(io.BytesIO(resp.content))


def cells(wb):
    return [c for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]


def pdf_text(body: bytes, tmp_path) -> str:
    assert body.startswith(b"%PDF-")
    path = tmp_path / "out.pdf"
    path.write_bytes(body)
    return subprocess.run([shutil.which("pdftotext"), "-layout", str(path), "-"], capture_output=True,
                          check=True).stdout.decode()


def test_the_ledger_lists_every_title_and_keeps_formulas_as_text(client):
    u = build_world()
    Unit.objects.filter(pk=u["B2"].pk).update(name="@SUM(A1:A9)")
    client.force_login(staff(u["T1"]))
    wb = workbook(client.get("/units/T1/dashboard/ledger.xlsx", {"date": D.isoformat()}))
    everything = cells(wb)
    assert all(c.data_type != "f" for c in everything)
    values = [c.value for c in everything]
    assert "'=1+1" in values and "'@SUM(A1:A9)" in values
    ws = wb.worksheets[0]
    header = [c.value for c in ws[2]]
    assert header[:5] == ["单位编码", "单位名称", "层级", "称号", "命名日期"]
    rows = {r[0]: r for r in ws.iter_rows(min_row=3, values_only=True)}
    assert set(rows) == set(Title.objects.filter(named_on__lte=D).values_list("unit__code", flat=True))
    assert rows["T1C-B9"][5] == (D - days(2)).isoformat() and rows["T1C-B9"][7] == "已摘牌"
    assert rows["T1C-C1-B2"][7] == "警示中" and "规范佩戴口罩" in rows["T1C-C1-B2"][8]
    assert rows["T1C-C1-B1"][7] == "已命名" and rows["T1C-C1-B1"][4] == (D - days(30)).isoformat()


def test_the_weekly_summary_counts_the_changes_of_the_week(client):
    u = build_world()
    t9 = Title.objects.get(unit=u["B9"])
    TitleEvent.objects.create(title=t9, unit=u["B9"], kind="withdrawn", on=D - days(2), reason="测试摘牌",
                              source="manual")
    w = Warning.objects.create(unit=u["B1"], title=Title.objects.get(unit=u["B1"]), criterion="cleaning",
                               detail="=HYPERLINK(\"x\")", opened_on=D - days(20), deadline=D - days(17),
                               status="rectified", closed_on=D - days(1))
    client.force_login(staff(u["T1"]))
    wb = workbook(client.get("/units/T1/dashboard/weekly.xlsx", {"date": D.isoformat()}))
    assert all(c.data_type != "f" for c in cells(wb))
    rows = [r for r in wb.worksheets[0].iter_rows(values_only=True)]
    changes = {r[0]: r[1] for r in rows if r and r[0] in ("新命名", "摘牌", "新发警示", "关闭警示", "恢复称号")
               and isinstance(r[1], int | float)}
    # B6 named D-3 (in the week); B9 withdrawn D-2 (title + event: once); B2's warning opened D-1;
    # B1's warning closed D-1.
    assert changes == {"新命名": 1, "摘牌": 1, "新发警示": 1, "关闭警示": 1, "恢复称号": 0}
    flat = [v for r in rows for v in r if v is not None]
    assert "T1C-C1-B6" in flat and "T1C-B9" in flat and w.unit.code in flat


def test_the_pdfs_hold_the_chinese_text(client, tmp_path):
    u = build_world()
    client.force_login(staff(u["T1"]))
    resp = client.get("/units/T1/dashboard/ledger.pdf", {"date": D.isoformat()})
    assert resp.status_code == 200 and resp["Content-Type"] == "application/pdf"
    text = pdf_text(resp.content, tmp_path)
    for words in ("无疫区台账", "测试街道", "龙湖花园6栋", "无疫楼栋", "已摘牌", "警示中", "=1+1"):
        assert words in text, words
    text = pdf_text(client.get("/units/T1/dashboard/weekly.pdf", {"date": D.isoformat()}).content, tmp_path)
    for words in ("无疫区创建周报", "各层级状态", "本周变化", "新命名", "龙湖花园6栋"):
        assert words in text, words


def test_the_pdfs_embed_a_subset_of_their_cjk_font(client, tmp_path):
    """pdffonts: every font of the ledger and the weekly report is embedded (emb yes) as a subset."""
    u = build_world()
    client.force_login(staff(u["T1"]))
    for name in ("ledger.pdf", "weekly.pdf"):
        resp = client.get(f"/units/T1/dashboard/{name}", {"date": D.isoformat()})
        assert resp.status_code == 200, name
        fonts = assert_fonts_embedded_subsets(resp.content, tmp_path)
        assert all("WenQuanYi" in f["name"] for f in fonts), fonts


def test_a_report_before_any_policy_is_refused_in_chinese(client):
    u = build_world()
    client.force_login(staff(u["T1"]))
    resp = client.get("/units/T1/dashboard/weekly.pdf", {"date": "2020-01-01"})
    assert resp.status_code == 400 and "没有生效的政策配置" in resp.content.decode()
