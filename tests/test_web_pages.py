"""The unit, household, search and ledger pages: what they show, and that they stay set-based."""

from __future__ import annotations

import pytest
from conftest import PASSWORD, TIANQIAO_COMMUNITY, WENLONG_COMMUNITY, WENLONG_STREET

from wuyiqu.audit.models import AuditEvent
from wuyiqu.units import selectors
from wuyiqu.units.models import Household, Resident, SpecialPopulationEntry, Unit, UnitKind


def brute_counts(unit: Unit) -> dict[str, int]:
    """The same counts the slow way, one query each, as the reference."""
    return {
        "households": Household.objects.filter(unit__path__startswith=unit.path).count(),
        "residents": Resident.objects.filter(household__unit__path__startswith=unit.path).count(),
        "special": SpecialPopulationEntry.objects.filter(resident__household__unit__path__startswith=unit.path).count(),
    }


@pytest.fixture
def ledger(world):
    """Three tagged residents of 文龙社区 in two different compounds/buildings, one of 天桥社区."""
    community = Unit.objects.get(code=WENLONG_COMMUNITY)
    ours = list(Resident.objects.filter(household__unit__path__startswith=community.path).order_by("id"))
    picks = [ours[0], ours[1], ours[-1]]
    for r in picks:
        SpecialPopulationEntry.objects.create(resident=r, tags="elderly_alone,chronic", needs="定期送药",
                                              helper="李四")
    theirs = Resident.objects.filter(household__unit__code__startswith=TIANQIAO_COMMUNITY).first()
    SpecialPopulationEntry.objects.create(resident=theirs, tags="pregnant", needs="产检", helper="王五")
    return picks


def test_it_counts_the_subtree_and_each_child_like_the_slow_way(world, ledger):
    # A household nobody lives in yet still counts as a household.
    building = Unit.objects.filter(path__contains=f"/{WENLONG_COMMUNITY}/", kind=UnitKind.BUILDING,
                                   children__isnull=True).first()
    Household.objects.create(code=f"{building.code}-EMPTY", unit=building, address="空置房")
    for code in (WENLONG_STREET, WENLONG_COMMUNITY):
        unit = Unit.objects.get(code=code)
        counts = selectors.subtree_counts(unit)
        assert counts["total"] == brute_counts(unit)
        for child in Unit.objects.filter(parent=unit):
            got = counts.get(child.path, {"households": 0, "residents": 0, "special": 0})
            assert got == brute_counts(child), child.code
    street = selectors.subtree_counts(Unit.objects.get(code=WENLONG_STREET))
    assert street["total"]["special"] == 4
    assert street["total"]["residents"] == Resident.objects.count()


def test_it_counts_a_building_with_entrances(world):
    building = Unit.objects.filter(kind=UnitKind.BUILDING, children__kind=UnitKind.ENTRANCE).first()
    assert building is not None, "the generated world has buildings split into 单元"
    counts = selectors.subtree_counts(building)
    assert counts["total"] == brute_counts(building)
    assert counts["total"]["households"] > 0


def queries_of(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_it_renders_the_unit_page_in_a_few_queries(world, ledger, carol, client_for,
                                                  django_assert_max_num_queries):
    client = client_for(carol)
    client.get(f"/units/{WENLONG_STREET}/")  # warm the session and the content types
    # The same number of queries for a street of 20 communities as for a community of one compound:
    # session, user, user's unit, the unit, breadcrumb, ONE aggregate, children (+ whatever context
    # processors of other apps add to every page). Never one per child.
    assert queries_of(client, f"/units/{WENLONG_STREET}/") == queries_of(client, f"/units/{WENLONG_COMMUNITY}/")
    with django_assert_max_num_queries(9):
        response = client.get(f"/units/{WENLONG_STREET}/")
    assert response.status_code == 200
    html = response.content.decode()
    children = Unit.objects.filter(parent__code=WENLONG_STREET)
    assert children.count() == 20
    for child in children:
        assert child.display_name in html
    total = brute_counts(Unit.objects.get(code=WENLONG_STREET))
    assert f"<strong>{total['residents']}</strong>" in html
    assert f"<strong>{total['households']}</strong>" in html
    assert "<strong>4</strong>" in html  # special population of the street
    wenlong = brute_counts(Unit.objects.get(code=WENLONG_COMMUNITY))
    assert f"{wenlong['households']} 户 · {wenlong['residents']} 人 · 特殊人群 3" in html
    assert "无疫街道" in html


def test_it_lists_a_buildings_households_in_a_few_queries(world, alice, client_for,
                                                          django_assert_max_num_queries):
    building = Unit.objects.filter(path__startswith=f"/500110/{WENLONG_STREET}/{WENLONG_COMMUNITY}/",
                                   kind=UnitKind.BUILDING, households__isnull=False).distinct().first()
    client = client_for(alice)
    client.get(f"/units/{building.code}/")
    # ... plus the households page: count, households, their residents (prefetched); the same for a
    # building of a few households as for a whole village group.
    group = Unit.objects.filter(kind=UnitKind.GROUP).first()
    client_for(carol_like(group)).get(f"/units/{group.code}/")
    assert queries_of(client, f"/units/{group.code}/") == queries_of(client, f"/units/{building.code}/")
    client = client_for(alice)
    with django_assert_max_num_queries(12):
        response = client.get(f"/units/{building.code}/")
    html = response.content.decode()
    households = Household.objects.filter(unit=building).order_by("code")[:30]
    for h in households:
        assert h.code in html
        for r in h.residents.all():
            assert r.name in html
            assert r.id_masked in html
    assert "无疫楼栋" in html


def test_it_makes_only_the_scoped_part_of_the_breadcrumb_clickable(world, alice, client_for):
    building = Unit.objects.filter(path__startswith=f"/500110/{WENLONG_STREET}/{WENLONG_COMMUNITY}/",
                                   kind=UnitKind.BUILDING, parent__kind=UnitKind.COMPOUND).first()
    html = client_for(alice).get(f"/units/{building.code}/").content.decode()
    crumbs = html.split('class="crumbs"')[1].split("</nav>")[0]
    assert f'href="/units/{WENLONG_COMMUNITY}/"' in crumbs
    assert f'href="/units/{building.parent.code}/"' in crumbs
    assert f'href="/units/{WENLONG_STREET}/"' not in crumbs
    assert 'href="/units/500110/"' not in crumbs
    assert "文龙街道" in crumbs  # shown, just not a link


def test_it_sends_home_to_the_users_own_unit(world, alice, client_for):
    response = client_for(alice).get("/")
    assert response.status_code == 302
    assert response["Location"] == f"/units/{WENLONG_COMMUNITY}/"


def test_it_sends_an_unscoped_administrator_to_the_root(world, client_for):
    from wuyiqu.accounts.models import Role, User

    admin = User.objects.create(username="admin", role=Role.ADMIN, unit=None, is_staff=True)
    response = client_for(admin).get("/")
    assert response["Location"] == "/units/500110/"


def test_it_searches_by_name_and_code_only_in_scope(world, alice, client_for):
    client = client_for(alice)
    compound = Unit.objects.filter(parent__code=WENLONG_COMMUNITY, kind=UnitKind.COMPOUND).first()
    html = client.get("/units/search/", {"q": compound.name}).content.decode()
    assert f"/units/{compound.code}/" in html
    assert "<html" in html  # a full page without htmx
    partial = client.get("/units/search/", {"q": f"{WENLONG_COMMUNITY}-C"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial
    assert f"/units/{compound.code}/" in partial
    # 天桥社区 is bob's: alice finds nothing of it, by name or by code.
    tianqiao = Unit.objects.get(code=TIANQIAO_COMMUNITY)
    for q in ("天桥", TIANQIAO_COMMUNITY):
        html = client.get("/units/search/", {"q": q}, HTTP_HX_REQUEST="true").content.decode()
        assert f"/units/{tianqiao.code}/" not in html
        assert "没有找到" in html


def test_it_shows_a_household_with_its_residents_masked(world, alice, client_for):
    household = Household.objects.filter(unit__path__startswith=f"/500110/{WENLONG_STREET}/{WENLONG_COMMUNITY}/") \
        .order_by("code").first()
    html = client_for(alice).get(f"/households/{household.code}/").content.decode()
    for r in household.residents.all():
        assert r.name in html
        assert r.id_masked in html
        assert r.reveal_id_number() not in html
        assert "显示" in html


def test_it_audits_every_look_at_the_ledger(world, ledger, alice, client_for):
    client = client_for(alice)
    response = client.get(f"/units/{WENLONG_COMMUNITY}/ledger/")
    html = response.content.decode()
    assert response.status_code == 200
    for r in ledger:
        assert r.name in html
        assert r.id_masked in html
        assert r.reveal_id_number() not in html
    assert "独居老人" in html and "慢性病患者" in html and "定期送药" in html and "李四" in html
    assert "王五" not in html  # 天桥社区's entry is not alice's
    client.get(f"/units/{WENLONG_COMMUNITY}/ledger/")
    events = AuditEvent.objects.filter(action="special_population.view", actor=alice)
    assert events.count() == 2
    assert events.first().unit.code == WENLONG_COMMUNITY


def test_it_logs_in_and_out_in_chinese(world, alice, client):
    page = client.get("/login/").content.decode()
    assert "登录" in page and "用户名" in page
    bad = client.post("/login/", {"username": "alice", "password": "wrong-password"})
    assert bad.status_code == 200
    assert "请输入一个正确的" in bad.content.decode()  # Django's own Chinese message
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/", follow=True).status_code == 200
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/")["Location"].startswith("/login/")


def test_it_switches_to_english_and_back(world, alice, client_for):
    client = client_for(alice)
    url = f"/units/{WENLONG_COMMUNITY}/"
    assert "下级单位" in client.get(url).content.decode()
    client.post("/i18n/setlang/", {"language": "en", "next": url})
    html = client.get(url).content.decode()
    assert "Sub-units" in html and "Households" in html and "Community" in html
    assert "下级单位" not in html
    assert 'lang="en"' in html
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": url})
    assert "下级单位" in client.get(url).content.decode()


def test_pages_load_no_inline_script_and_only_local_assets(world, alice, client_for):
    html = client_for(alice).get(f"/units/{WENLONG_COMMUNITY}/").content.decode()
    assert '<script src="/static/vendor/htmx.min.js"' in html
    assert "<script>" not in html and "style=" not in html
    assert "http://" not in html and "https://" not in html


def test_the_unit_page_links_to_the_other_apps_pages_of_the_unit(world, alice, client_for):
    client = client_for(alice)
    html = client.get(f"/units/{WENLONG_COMMUNITY}/").content.decode()
    for page in ("assessment", "inspections", "measures", "testing"):
        assert f'href="/units/{WENLONG_COMMUNITY}/{page}/"' in html
        assert client.get(f"/units/{WENLONG_COMMUNITY}/{page}/").status_code == 200, page
    entrance = Unit.objects.filter(kind=UnitKind.ENTRANCE).first()  # no title: no assessment or inspections
    html = client_for(carol_like(entrance)).get(f"/units/{entrance.code}/").content.decode()
    assert "/assessment/" not in html and "/inspections/" not in html
    assert f'href="/units/{entrance.code}/measures/"' in html


def carol_like(unit):
    """A street officer above ``unit``."""
    from wuyiqu.accounts.actions import do_create_user
    from wuyiqu.accounts.models import Role

    street = Unit.objects.get(code=unit.path.strip("/").split("/")[1])
    return do_create_user(actor=None, username="street-officer", password=PASSWORD, role=Role.STREET_STAFF,
                          unit=street)


def test_chinese_is_the_default_even_for_an_english_browser(world, alice, client_for):
    client = client_for(alice)
    url = f"/units/{WENLONG_COMMUNITY}/"
    html = client.get(url, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert "下级单位" in html and 'lang="zh-hans"' in html
    client.post("/i18n/setlang/", {"language": "en", "next": url})
    assert "Sub-units" in client.get(url, HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
