"""Units without a registered household below them (the streets, towns, villages and communities whose
registers were never imported) take no part yet: on the dashboard they are neither 未达标 nor in the
denominator of 单位命名覆盖率, and the page says how many they are ("1/691" was the demo's figure)."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache

from wuyiqu.dashboard import selectors
from wuyiqu.standards.evaluator import EVALUATED_KINDS
from wuyiqu.units.models import Household, Unit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def expected_split(root: Unit) -> tuple[int, int]:
    """(taking part, without data): the titled units of the subtree with / without a household below."""
    household_paths = set(Household.objects.filter(unit__path__startswith=root.path)
                          .values_list("unit__path", flat=True))
    titled = Unit.objects.filter(path__startswith=root.path, kind__in=list(EVALUATED_KINDS))
    part = sum(1 for u in titled if any(p.startswith(u.path) for p in household_paths))
    return part, titled.count() - part


def test_units_without_households_are_counted_apart(world, erin, client_for, today):
    district = Unit.objects.get(code="500110")
    part, no_data = expected_split(district)
    assert part > 0 and no_data > 400  # three committees have registers; the other 460-odd do not

    summary = selectors.dashboard_summary(district, today)
    assert summary["total"] == part and summary["no_data"] == no_data
    assert sum(level["total"] for level in summary["levels"]) == part
    assert summary["by_status"].get("not_eligible", 0) <= part

    html = client_for(erin).get("/units/500110/dashboard/").content.decode()
    assert f'<strong id="taking-part">{part}</strong>' in html
    assert f"{summary['named']}/{part}" in html  # the coverage over the units taking part
    assert re.search(rf'id="no-data" data-no-data="{no_data}">另有 {no_data} 个单位尚无登记住户', html)

    # 万东镇 has no register: its row says so instead of 未达标, and counts nothing.
    row = re.search(r'<tr data-code="500110100">.*?</tr>', html, re.S).group(0)
    assert "st-no_data" in row and "暂无住户数据" in row and "未达标" not in row
    assert re.findall(r"<td>(\d+)</td>", row) == ["0"] * 5
    # 文龙街道 has registers below it: it takes part.
    row = re.search(r'<tr data-code="500110002">.*?</tr>', html, re.S).group(0)
    assert "st-no_data" not in row


def test_the_weekly_report_counts_them_apart_too(world, erin, client_for, today):
    import io

    import openpyxl

    district = Unit.objects.get(code="500110")
    part, no_data = expected_split(district)
    resp = client_for(erin).get("/units/500110/dashboard/weekly.xlsx")
    assert resp.status_code == 200
    rows = [[c.value for c in row] for ws in openpyxl.load_workbook(io.BytesIO(resp.content)).worksheets
            for row in ws.iter_rows()]
    assert ["尚无登记住户、暂不参评的单位", no_data] in [r[:2] for r in rows]
    coverage = next(r[1] for r in rows if r[0] == "单位命名覆盖率")
    assert coverage.startswith(f"{selectors.dashboard_summary(district, today)['named']}/{part}（")
    assert any(r[0] == "合计" and part in r for r in rows)  # the counts by level: the units taking part


def test_the_trend_counts_the_units_taking_part(world, today):
    """The 30-day trend's 参评 is the same set as 参评单位: stored rows of units without data left out."""
    from wuyiqu.standards.actions import do_store_evaluations
    from wuyiqu.standards.models import Evaluation

    district = Unit.objects.get(code="500110")
    do_store_evaluations(on=today)
    part, no_data = expected_split(district)
    assert Evaluation.objects.filter(on=today, unit__kind__in=list(EVALUATED_KINDS)).count() == part + no_data
    day = selectors.trend(district, today)[-1]
    assert day["total"] == part == selectors.dashboard_summary(district, today)["total"]


def test_a_household_brings_its_units_into_the_count(world, erin, today):
    """Registering a first household in a village brings the village, its street and the building in."""
    village = Unit.objects.filter(kind="village", parent__code="500110100").order_by("code").first()
    assert village is not None
    district = Unit.objects.get(code="500110")
    before = selectors.dashboard_summary(district, today)
    building = Unit.objects.create(code=f"{village.code}-B01", name="新1栋", kind="building", parent=village,
                                   path=f"{village.path}{village.code}-B01/", depth=village.depth + 1)
    Household.objects.create(code=f"{village.code}-B01-0101", unit=building, address="新1栋101")
    cache.clear()
    after = selectors.dashboard_summary(district, today)
    # The building, the village and 万东镇 now take part (the building and the village are new to the
    # count, 万东镇 leaves the units without data).
    assert after["total"] == before["total"] + 3
    assert after["no_data"] == before["no_data"] - 2


def test_english_says_it_too(world, erin, client_for):
    from django.conf import settings

    client = client_for(erin)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get("/units/500110/dashboard/").content.decode()
    assert re.search(r'id="no-data" data-no-data="\d+">\d+ more units have no registered household yet', html)
    row = re.search(r'<tr data-code="500110100">.*?</tr>', html, re.S).group(0)
    assert "No household data" in row
