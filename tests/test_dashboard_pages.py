"""The dashboard (态势总览): its counts, the drill-down JSON and the blockers page agree with
`wuyiqu evaluate` on the same day; stored and live evaluations give the same numbers; the trend has
gaps; scoping is 404; the number of queries does not grow with the world."""

from __future__ import annotations

import io
import json
import re
from collections import Counter

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from test_standards_world import BUILDING_ITEMS, D, build_street, days, inspect, make_resident, make_unit, nat

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.applications.models import Application, ApplicationStatus, CoSignature
from wuyiqu.certification.models import Title
from wuyiqu.health.models import Measure
from wuyiqu.standards.actions import do_store_evaluations
from wuyiqu.standards.models import Evaluation
from wuyiqu.supervision.models import Warning
from wuyiqu.units.models import TITLE_BY_KIND, Household, HouseholdVerification, Resident, Unit

pytestmark = pytest.mark.django_db

LEVEL = {"building": "building", "compound": "compound", "group": "group", "village": "committee",
         "community": "committee", "street": "street"}


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def staff(unit, name="amy", role=Role.STREET_STAFF):
    return do_create_user(actor=None, username=name, password="correct-horse-battery", role=role, unit=unit,
                          display_name=name)


def building(code: str, parent: Unit, name: str, *, signed: bool = True, homes: int = 2) -> Unit:
    """A building that passes everything on D (when ``signed``), not named."""
    b = make_unit(code, "building", parent, name)
    app = Application.objects.create(unit=b, title=TITLE_BY_KIND["building"], status=ApplicationStatus.DRAFT)
    for i in range(homes):
        hh = Household.objects.create(code=f"{code}-{i}", unit=b, address=f"{name}{i}室")
        HouseholdVerification.objects.create(household=hh, verified_on=D)
        nat(make_resident(hh), D)
        if signed:
            CoSignature.objects.create(application=app, household=hh, signed_on=D)
    inspect(b, BUILDING_ITEMS, D)
    return b


def build_world() -> dict[str, Unit]:
    """The standards' tiny street, then: B1 named "=1+1"; B2 named and warned; B9 withdrawn; in C1,
    B3 eligible but unsigned (one criterion), B4 a close contact until D+3 (one, clears D+4),
    B5 eligible and not named; B6 named, no warning."""
    u = build_street()
    Unit.objects.filter(pk=u["B1"].pk).update(name="=1+1")
    t2 = Title.objects.get(unit=u["B2"])
    Warning.objects.create(unit=u["B2"], title=t2, criterion="mask_compliance", detail="口罩检查过期",
                           opened_on=D - days(1), deadline=D + days(2))
    Title.objects.filter(unit=u["B9"]).update(withdrawn_on=D - days(2), withdrawn_reason="测试摘牌")
    u["B3"] = building("T1C-C1-B3", u["C1"], "龙湖花园3栋", signed=False)
    u["B4"] = building("T1C-C1-B4", u["C1"], "龙湖花园4栋")
    r = make_resident(Household.objects.filter(unit=u["B4"]).first())
    nat(r, D)
    Measure.objects.create(resident=r, unit=u["B4"], id_hash=r.id_hash, id_masked=r.id_masked,
                           kind="close_contact", start_on=D - days(2), end_on=D + days(3))
    u["B5"] = building("T1C-C1-B5", u["C1"], "龙湖花园5栋")
    u["B6"] = building("T1C-C1-B6", u["C1"], "龙湖花园6栋")
    Title.objects.create(unit=u["B6"], title="无疫楼栋", named_on=D - days(3))
    return u


def evaluate_json(unit_code: str = "T1") -> list[dict]:
    out = io.StringIO()
    call_command("evaluate", "--json", "--date", D.isoformat(), "--unit", unit_code, stdout=out)
    return json.loads(out.getvalue())


def expected_statuses(results: list[dict]) -> dict[str, str]:
    """Each unit's status, from evaluate's eligible and the titles and warnings — written apart from
    the dashboard's code, one unit at a time."""
    out = {}
    for r in results:
        unit = Unit.objects.get(code=r["unit"])
        titles = list(Title.objects.filter(unit=unit, named_on__lte=D))
        current = [t for t in titles if t.withdrawn_on is None or t.withdrawn_on > D]
        assert bool(current) == r["named"], r["unit"]
        if current:
            warned = Warning.objects.filter(unit=unit, status="open", opened_on__lte=D).exists()
            out[r["unit"]] = "warned" if warned else "named"
        elif titles:
            out[r["unit"]] = "withdrawn"
        else:
            out[r["unit"]] = "eligible" if r["eligible"] else "not_eligible"
    return out


def page_counts(html: str) -> dict[tuple[str, str], int]:
    counts = {}
    for level, row in re.findall(r'<tr data-level="(\w+)">(.*?)</tr>', html, re.S):
        for status, n in re.findall(r'<td data-status="(\w+)">(\d+)</td>', row):
            counts[(level, status)] = int(n)
    return counts


def expected_counts(statuses: dict[str, str], results: list[dict]) -> dict[tuple[str, str], int]:
    kinds = {r["unit"]: r["kind"] for r in results}
    c = Counter((LEVEL[kinds[code]], s) for code, s in statuses.items())
    return c


def check_page(client, statuses, results):
    resp = client.get("/units/T1/dashboard/", {"date": D.isoformat()})
    assert resp.status_code == 200
    html = resp.content.decode()
    got = page_counts(html)
    want = expected_counts(statuses, results)
    for (level, status), n in got.items():
        if status == "total":
            assert n == sum(v for (lv, _), v in want.items() if lv == level), level
        else:
            assert n == want.get((level, status), 0), (level, status)
    return html


def test_the_dashboard_counts_what_evaluate_says(client):
    build_world()
    client.force_login(staff(Unit.objects.get(code="T1")))
    results = evaluate_json()
    statuses = expected_statuses(results)
    # The world has each status at least once, or the comparison would prove little.
    assert set(statuses.values()) == {"named", "warned", "withdrawn", "eligible", "not_eligible"}, statuses
    assert statuses["T1C-C1-B1"] == "named" and statuses["T1C-C1-B2"] == "warned"
    assert statuses["T1C-B9"] == "withdrawn" and statuses["T1C-C1-B5"] == "eligible"

    html = check_page(client, statuses, results)  # no stored rows: one live evaluation
    assert 'data-source="live"' in html
    named = sum(1 for s in statuses.values() if s in ("named", "warned"))
    assert f"{named}/{len(statuses)}" in html
    assert f'data-total-status="eligible">{Counter(statuses.values())["eligible"]}<' in html

    # Stored on D: the same numbers, now read from the stored rows.
    do_store_evaluations(on=D)
    cache.clear()
    html = check_page(client, statuses, results)
    assert 'data-source="stored"' in html


def test_resident_coverage_counts_residents_of_named_units(client):
    u = build_world()
    client.force_login(staff(u["T1"]))
    html = client.get("/units/T1/dashboard/", {"date": D.isoformat()}).content.decode()
    covered, total = map(int, re.search(r'data-covered="(\d+)" data-total="(\d+)"', html).groups())
    from wuyiqu.units.models import Resident

    assert total == Resident.objects.filter(household__unit__path__startswith="/T/T1/").count()
    named_units = ["T1C-C1-B1", "T1C-C1-B2", "T1C-C1-B6"]  # B9 is withdrawn; B2's entrance U1 counts
    want = Resident.objects.filter(
        household__unit__path__regex=r"^/T/T1/T1C/T1C-C1/(T1C-C1-B1|T1C-C1-B2|T1C-C1-B6)/").count()
    assert want == sum(Resident.objects.filter(household__unit__path__startswith=Unit.objects.get(code=c).path).count()
                       for c in named_units)
    assert covered == want and 0 < covered < total


def test_the_drill_down_json_agrees_with_evaluate(client):
    build_world()
    client.force_login(staff(Unit.objects.get(code="T1")))
    results = evaluate_json()
    statuses = expected_statuses(results)
    data = client.get("/units/T1/dashboard/children.json", {"date": D.isoformat()}).json()
    assert data["unit"]["code"] == "T1" and data["unit"]["status"] == statuses["T1"]
    assert [c["code"] for c in data["children"]] == ["T1C", "T1V"]
    for child in data["children"]:
        path = Unit.objects.get(code=child["code"]).path
        below = [Unit.objects.get(code=code).path.startswith(path) for code in statuses]
        want = Counter(s for (code, s), inside in zip(statuses.items(), below, strict=True) if inside)
        assert child["counts"] == {s: want.get(s, 0) for s in child["counts"]}, child["code"]
        assert child["status"] == statuses[child["code"]]
        assert child["url"] == f"/units/{child['code']}/dashboard/children.json?date={D.isoformat()}"
    # Down to the buildings of the compound: one entry each, with its own status.
    c1 = client.get(next(c["url"] for c in client.get("/units/T1C/dashboard/children.json",
                                                         {"date": D.isoformat()}).json()["children"]
                         if c["code"] == "T1C-C1")).json()
    assert {c["code"]: c["status"] for c in c1["children"]} == {
        code: s for code, s in statuses.items() if code.startswith("T1C-C1-")}
    assert all(c["total"] == 1 and c["below"] == 0 for c in c1["children"])
    assert c1["parent_url"].startswith("/units/T1C/dashboard/children.json")


def test_blockers_are_the_units_failing_one_or_two_criteria(client):
    u = build_world()
    client.force_login(staff(u["T1"]))
    results = evaluate_json()
    want: dict[str, set[str]] = {}
    for r in results:
        failed = [c["id"] for c in r["criteria"] if not c["passed"]]
        if 1 <= len(failed) <= 2:
            for cid in failed:
                want.setdefault(cid, set()).add(r["unit"])
    assert want["all_households_signed"] >= {"T1C-C1-B3"}
    assert "T1C-C1-B4" in want["no_close_contact"]
    html = client.get("/units/T1/blockers/", {"date": D.isoformat()}).content.decode()
    got: dict[str, set[str]] = {}
    for cid, body in re.findall(r'data-criterion="(\w+)".*?<ul class="blocker-units">(.*?)</ul>', html, re.S):
        got[cid] = set(re.findall(r'<li data-code="([^"]+)"', body))
    assert got == want
    assert "以户为单位100%联名申请" in html  # the Chinese criterion name
    # The close contact ends D+3: the building could pass on D+4 if nothing new happens.
    b4 = re.search(r'<li data-code="T1C-C1-B4">(.*?)</li>', html, re.S).group(1)
    # The dashboard's reasons say how many and until when, not who (they are cached per unit, not per role).
    assert (D + days(4)).isoformat() in b4 and "1 名居民处于管控中，至" in b4 and "为密接" not in b4
    b3 = re.search(r'<li data-code="T1C-C1-B3">(.*?)</li>', html, re.S).group(1)
    assert "户未签名" in b3 and "须整改" in b3


def test_the_trend_reads_stored_days_and_leaves_gaps(client):
    u = build_world()
    do_store_evaluations(on=D - days(2))
    do_store_evaluations(on=D)
    client.force_login(staff(u["T1"]))
    html = client.get("/units/T1/dashboard/", {"date": D.isoformat()}).content.decode()
    rows = dict(re.findall(r'<tr data-day="([\d-]+)">(.*?)</tr>', html, re.S))
    assert len(rows) == 30
    assert "无存储的评估" in rows[(D - days(1)).isoformat()]
    assert "无存储的评估" in rows[(D - days(29)).isoformat()]
    from wuyiqu.standards.models import Evaluation

    stored = Evaluation.objects.filter(on=D)
    named = stored.filter(named=True).count()
    cells = re.findall(r"<td>(\d+)</td>", rows[D.isoformat()])
    assert cells == [str(named), str(stored.filter(named=False, eligible=True).count()), str(stored.count())]
    trend = json.loads(re.search(r'data-trend="([^"]+)"', html).group(1).replace("&quot;", '"'))
    assert trend["named"][-1] == named and trend["named"][-2] is None and trend["named"][-3] is not None
    assert "2 天有存储的评估" in html


def test_the_trend_and_the_residents_of_a_scope_count_nothing_outside_it():
    """A city of two districts: a district's trend and residents per unit (read unit by unit on
    PostgreSQL) count its own units only, as the street's and the whole tree's queries agree."""
    from wuyiqu.dashboard import selectors

    u = build_world()
    other = make_unit("S", "district", name="另一区")
    street = make_unit("S1", "street", other, "另一街道")
    b = building("S1C-B1", make_unit("S1C", "community", street, "另一社区"), "另一楼", homes=4)
    do_store_evaluations(on=D)
    fp = selectors.fingerprint()
    for scope in (u["T"], other):
        day = selectors.trend(scope, D, fp=fp)[-1]
        stored = Evaluation.objects.filter(on=D, unit__path__startswith=scope.path)
        assert (day["total"], day["named"]) == (stored.count(), stored.filter(named=True).count())
    assert selectors.trend(other, D, fp=fp)[-1]["total"] == 3  # the street, the community, the building
    residents = dict(selectors.residents_by_unit(other))
    assert residents == {b.path: Resident.objects.filter(household__unit=b).count()}
    assert dict(selectors.residents_by_unit(u["T1"])) == dict(selectors.residents_by_unit(u["T"]))


def test_outside_the_scope_is_404(client):
    u = build_world()
    client.force_login(staff(u["T1V"], "vic", Role.COMMUNITY_STAFF))
    for url in ("/units/T1C/dashboard/", "/units/T1C/dashboard/children.json", "/units/T1C/blockers/",
                "/units/T1C/dashboard/ledger.xlsx", "/units/T1C/dashboard/ledger.pdf",
                "/units/T1C/dashboard/weekly.xlsx", "/units/T1C/dashboard/weekly.pdf",
                "/units/NOPE/dashboard/", "/units/T1/dashboard/"):
        assert client.get(url, {"date": D.isoformat()}).status_code == 404, url
    assert client.get("/units/T1V/dashboard/", {"date": D.isoformat()}).status_code == 200
    # The village's JSON offers no way up to the street it may not see.
    assert client.get("/units/T1V/dashboard/children.json", {"date": D.isoformat()}).json()["parent_url"] is None
    # /dashboard/ is the user's own unit.
    resp = client.get("/dashboard/")
    assert resp.status_code == 302 and resp["Location"] == "/units/T1V/dashboard/"


def test_anonymous_is_sent_to_login(client):
    build_world()
    for url in ("/dashboard/", "/units/T1/dashboard/", "/units/T1/dashboard/children.json"):
        resp = client.get(url)
        assert resp.status_code == 302 and "login" in resp["Location"]


def test_health_lists_are_linked_for_those_who_may_see_them(client):
    u = build_world()
    client.force_login(staff(u["T1C"], "cat", Role.COMMUNITY_STAFF))
    html = client.get("/units/T1C/dashboard/", {"date": D.isoformat()}).content.decode()
    assert 'href="/units/T1C/measures/"' in html and 'href="/units/T1C/testing/"' in html
    client.force_login(staff(u["C1"], "pam", Role.PROPERTY_MANAGER))
    html = client.get("/units/T1C-C1/dashboard/", {"date": D.isoformat()}).content.decode()
    assert "/measures/" not in html and "/testing/" not in html
    assert client.get("/units/T1C-C1/measures/").status_code == 404  # and the lists agree


def test_a_bad_or_future_date_is_said_and_today_used(client):
    u = build_world()
    client.force_login(staff(u["T1"]))
    assert "不存在" in client.get("/units/T1/dashboard/", {"date": "2022-13-40"}).content.decode()
    assert "晚于今天" in client.get("/units/T1/dashboard/", {"date": "2999-01-01"}).content.decode()
    resp = client.get("/units/T1/dashboard/children.json", {"date": "2022-13-40"})
    assert resp.status_code == 400 and "不存在" in resp.json()["error"]


def _count_queries(client) -> tuple[int, int]:
    cache.clear()
    with CaptureQueriesContext(connection) as page:
        assert client.get("/units/T1/dashboard/", {"date": D.isoformat()}).status_code == 200
    with CaptureQueriesContext(connection) as again:  # the cached numbers
        assert client.get("/units/T1/dashboard/", {"date": D.isoformat()}).status_code == 200
    return len(page.captured_queries), len(again.captured_queries)


@pytest.mark.parametrize("stored", [False, True])
def test_queries_do_not_grow_with_the_world(client, stored):
    u = build_world()
    # A compound never inspected, in the small world as in the big one: its reason reads the date of the
    # last inspection before the window (one query after the walk, made only when some unit needs it).
    building("T1C-C3-B0", make_unit("T1C-C3", "compound", u["T1C"], "旧城小区"), "旧城0栋")
    client.force_login(staff(u["T1"]))
    if stored:
        do_store_evaluations(on=D)
    small = _count_queries(client)
    c2 = make_unit("T1C-C2", "compound", u["T1C"], "新城小区")
    for i in range(12):
        b = building(f"T1C-C2-B{i}", c2, f"新城{i}栋", homes=3)
        if i % 3 == 0:
            Title.objects.create(unit=b, title="无疫楼栋", named_on=D - days(5))
    if stored:
        do_store_evaluations(on=D)
    big = _count_queries(client)
    assert Unit.objects.filter(path__startswith="/T/").count() > 20
    assert small == big, (small, big)
    assert big[1] < big[0]  # the second load reads the cache


def test_an_administrator_lands_on_the_top_of_the_tree(world, root, erin, client_for):
    """The shared generated world (real division codes, entrances, groups): the unscoped administrator's
    /dashboard/ is the root of the tree; the command's is its own district; both pages render today."""
    top = Unit.objects.filter(parent__isnull=True).order_by("code").first()
    client = client_for(root)
    resp = client.get("/dashboard/")
    assert resp.status_code == 302 and resp["Location"] == f"/units/{top.code}/dashboard/"
    html = client.get(resp["Location"]).content.decode()
    assert 'data-source="live"' in html and "data-total-status" in html
    client = client_for(erin)
    assert client.get("/dashboard/")["Location"] == f"/units/{erin.unit.code}/dashboard/"


def test_a_long_blocker_list_is_cut_and_counted(client, monkeypatch):
    u = build_world()
    client.force_login(staff(u["T1"]))
    from wuyiqu.dashboard import selectors

    monkeypatch.setattr(selectors, "BLOCKER_LIMIT", 1)
    c2 = make_unit("T1C-C2", "compound", u["T1C"], "新城小区")
    for i in range(3):
        building(f"T1C-C2-B{i}", c2, f"新城{i}栋", signed=False)
    html = client.get("/units/T1/blockers/", {"date": D.isoformat()}).content.decode()
    body = re.search(r'data-criterion="all_households_signed" data-units="(\d+)">(.*?)</section>', html, re.S)
    assert int(body.group(1)) == 4  # B3 and the three new buildings
    assert len(re.findall(r"<li data-code=", body.group(2))) == 1 and "另有 3 个单位未列出" in body.group(2)


def test_every_dashboard_table_scrolls_in_its_own_box_with_a_hint(client):
    """On a phone the tables are wider than the screen: each sits in a .table-scroll box (it scrolls
    sideways, the page does not) after a "左右滑动查看" hint that scroll.js shows while it overflows
    (tests/test_browser_screens.py looks at it in a browser)."""
    build_world()
    client.force_login(staff(Unit.objects.get(code="T1")))
    html = client.get("/units/T1/dashboard/", {"date": D.isoformat()}).content.decode()
    assert "wuyiqu/scroll.js" in html
    for table_id in ("levels", "children", "trend-table"):
        before = html[:html.index(f'id="{table_id}"')]
        box = before.rindex('class="dash-scroll table-scroll"' if table_id != "trend-table" else 'class="table-scroll"')
        hint = before.rindex('<p class="scroll-hint" hidden>左右滑动查看</p>')
        assert hint < box and before[box:].count("</div>") == 0, table_id
