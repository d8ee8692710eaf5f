"""A unit is called by its real level: the kind `street` holds 街道, 镇 and 乡 (SPEC §2), and a town
(万东镇) is labelled 镇 wherever a level is shown — the unit page, its parent's list of children, the
search results and the dashboard — in Chinese, and "Town" in English."""

from __future__ import annotations

import csv
import re
from importlib import resources

import pytest

from wuyiqu.units.models import Unit, level_label, level_label_zh

TOWN = "500110100"  # 万东镇
STREET = "500110002"  # 文龙街道


def test_every_division_is_called_by_the_level_its_name_says():
    with (resources.files("wuyiqu") / "data" / "qijiang-divisions-2023.csv").open(encoding="utf-8") as f:
        streets = [r for r in csv.DictReader(f) if r["kind"] == "street"]
    assert any(r["name"].endswith("镇") for r in streets) and any(r["name"].endswith("街道") for r in streets)
    for r in streets:
        expected = "镇" if r["name"].endswith("镇") else "乡" if r["name"].endswith("乡") else "街道"
        assert level_label_zh("street", r["name"]) == expected, r["name"]
    assert level_label_zh("community", "文龙社区") == "社区" and level_label_zh("building", "某镇1栋") == "楼栋"


def kind_cells(html: str) -> list[str]:
    return re.findall(r'<span class="kind">([^<]*)</span>', html)


@pytest.mark.django_db
def test_the_pages_label_a_town_as_a_town(world, erin, client_for):
    client = client_for(erin)
    html = client.get(f"/units/{TOWN}/").content.decode()
    assert re.search(r"<dt>类型</dt><dd>镇</dd>", html), "the town's own page"
    html = client.get(f"/units/{STREET}/").content.decode()
    assert re.search(r"<dt>类型</dt><dd>街道</dd>", html), "a street stays a street"

    html = client.get("/units/500110/").content.decode()  # the district's children
    row = re.search(r"万东镇.*?</li>", html, re.S) or re.search(r"万东镇.{0,400}", html, re.S)
    assert row and 'class="kind">镇<' in row.group(0)
    assert kind_cells(html).count("镇") == sum(1 for u in Unit.objects.filter(parent__code="500110")
                                               if u.name.endswith("镇"))

    html = client.get("/units/search/", {"q": "万东"}).content.decode()
    assert "镇" in kind_cells(html) and "街道" not in kind_cells(html)

    html = client.get("/units/500110/dashboard/").content.decode()
    assert re.search(r"万东镇</a>\s*<span class=\"muted small-text\">镇</span>", html)
    assert re.search(r"文龙街道</a>\s*<span class=\"muted small-text\">街道</span>", html)


@pytest.mark.django_db
def test_in_english_a_town_is_a_town(world, erin, client_for):
    from django.utils import translation

    with translation.override("en"):
        assert level_label("street", "万东镇") == "Town" and level_label("street", "文龙街道") == "Street"
    client = client_for(erin)
    client.cookies["django_language"] = "en"
    html = client.get(f"/units/{TOWN}/").content.decode()
    assert "<dd>Town</dd>" in html
