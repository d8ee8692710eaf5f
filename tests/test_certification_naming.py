"""Naming by the command: the Title, the certificate PDF (Chinese, with its number and QR link) and
the public verification page (current today, or withdrawn with the date), without personal data."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess

import pytest
import time_machine
from pdf_tools import assert_fonts_embedded_subsets
from test_applications_world import NOW, build, name_through_chain, people, sign_all

from wuyiqu.applications.actions import do_open_application, do_submit_application
from wuyiqu.certification.certificate import certificate_pdf
from wuyiqu.certification.models import Title
from wuyiqu.units.models import Resident


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def named(db):
    u = build()
    p = people(u)
    app = do_open_application(actor=p["hank"], unit=u["B1"])
    sign_all(app)
    app = name_through_chain(do_submit_application(actor=p["hank"], application=app), p)
    return u, p, Title.objects.get(application=app)


def pdf_text(data: bytes, tmp_path) -> str:
    """The PDF's text through poppler's pdftotext (poppler-utils must be installed)."""
    assert shutil.which("pdftotext"), "pdftotext (apt-get install poppler-utils) is needed to read the PDF"
    path = tmp_path / "c.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True,
                          text=True).stdout


def test_the_certificate_pdf_says_it_in_chinese(named, client_for, tmp_path):
    u, p, title = named
    r = client_for(p["hank"]).get(f"/certificates/{title.certificate_number}.pdf")
    assert r.status_code == 200 and r["Content-Type"] == "application/pdf" and r.content.startswith(b"%PDF-")
    text = pdf_text(r.content, tmp_path)
    # The unit by its full path from the district, the compound's name not said twice.
    assert "测试区 测试街道 测试社区 龙湖花园 1栋" in text
    for expected in ("无疫楼栋", "2022年11月28日", title.certificate_number, "荣", "綦江区疫情防控指挥部",
                     f"/verify/{title.certificate_number}/"):
        assert expected in text, expected


def test_the_certificate_embeds_a_subset_of_its_cjk_font(named, client_for, tmp_path):
    """pdffonts: every font embedded (emb yes) as a subset (sub yes), so a viewer without a CJK font
    of its own shows the text; a subset keeps the file small."""
    u, p, title = named
    r = client_for(p["hank"]).get(f"/certificates/{title.certificate_number}.pdf")
    fonts = assert_fonts_embedded_subsets(r.content, tmp_path)
    assert any("WenQuanYi" in f["name"] for f in fonts), fonts
    assert len(r.content) < 200_000, len(r.content)  # a subset, not the 5 MB collection


def test_the_certificate_is_scoped(named, client_for):
    u, p, title = named
    assert client_for(p["tom"]).get(f"/certificates/{title.certificate_number}.pdf").status_code == 404
    assert client_for(p["cmd"]).get(f"/certificates/{title.certificate_number}.pdf").status_code == 200


def test_the_pdf_renders_a_page(tmp_path):
    data = certificate_pdf(unit_name="测试楼栋", title="无疫楼栋", named_on=dt.date(2022, 11, 28),
                           number="WYQ-2022-000009", verify_url="http://example.test/verify/WYQ-2022-000009/")
    (tmp_path / "c.pdf").write_bytes(data)
    assert shutil.which("pdftoppm"), "pdftoppm (apt-get install poppler-utils) renders the PDF"
    subprocess.run(["pdftoppm", "-r", "20", "-png", str(tmp_path / "c.pdf"), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) == 1 and pages[0].read_bytes().startswith(b"\x89PNG")


def test_a_long_path_fits_the_frame(tmp_path):
    """A long full path is set smaller rather than run past the frame: pdftotext with its bounding
    boxes finds every word of it inside the inner frame (19 mm from the page's edges)."""
    import re

    name = "綦江区 文龙街道 文龙社区 江畔小区二期北区 12栋3单元"
    data = certificate_pdf(unit_name=name, title="无疫楼栋", named_on=dt.date(2022, 11, 28),
                           number="WYQ-2022-000010", verify_url="http://example.test/verify/WYQ-2022-000010/")
    (tmp_path / "c.pdf").write_bytes(data)
    html = subprocess.run(["pdftotext", "-bbox", str(tmp_path / "c.pdf"), "-"], capture_output=True, check=True,
                          text=True).stdout
    words = {w: (float(a), float(b)) for a, b, w in
             re.findall(r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>', html)}
    frame = (19 / 25.4 * 72, 595.27 - 19 / 25.4 * 72)
    for part in name.split():
        assert part in words, (part, list(words))
        assert frame[0] < words[part][0] and words[part][1] < frame[1], (part, words[part])


def test_the_public_page_says_current_today(named, client):
    u, p, title = named
    r = client.get(f"/verify/{title.certificate_number}/")
    html = r.content.decode()
    assert r.status_code == 200 and 'data-current="true"' in html
    assert "龙湖花园1栋" in html and "无疫楼栋" in html and "2022-11-28" in html
    for resident in Resident.objects.filter(household__unit=u["B1"]):
        phone = resident.reveal_phone()
        assert resident.name not in html and (not phone or phone[-4:] not in html.replace(title.certificate_number, ""))
    assert "hank" not in html
    assert client.get("/verify/WYQ-2022-999999/").status_code == 404


def test_the_public_page_says_withdrawn_with_the_date(named, client):
    u, p, title = named
    title.withdrawn_on = dt.date(2022, 12, 3)
    title.withdrawn_reason = "阳性感染者"
    title.save()
    with time_machine.travel(dt.datetime(2022, 12, 2, 12, 0, tzinfo=NOW.tzinfo), tick=False):
        assert 'data-current="true"' in client.get(f"/verify/{title.certificate_number}/").content.decode()
    with time_machine.travel(dt.datetime(2022, 12, 5, 12, 0, tzinfo=NOW.tzinfo), tick=False):
        html = client.get(f"/verify/{title.certificate_number}/").content.decode()
    assert 'data-current="false"' in html and "已摘牌（2022-12-03）" in html
    assert "阳性感染者" not in html  # the reason may concern residents; the public page does not show it


def test_wuyiqu_evaluate_shows_the_unit_named(named):
    import io
    import json

    from django.core.management import call_command

    u, p, title = named
    out = io.StringIO()
    call_command("evaluate", "--unit", u["C1"].code, "--date", "2022-11-28", "--json", stdout=out)
    by_code = {row["unit"]: row for row in json.loads(out.getvalue())}
    assert by_code[u["B1"].code]["named"] is True
    assert by_code[u["B2"].code]["named"] is False
    children = next(c for c in by_code[u["C1"].code]["criteria"] if c["id"] == "children_named")
    assert children["passed"] is False and "龙湖花园2栋" in children["detail"] and "龙湖花园1栋" not in children["detail"]
