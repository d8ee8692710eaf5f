"""A community worker records facts by hand on her phone (390 px), in Debian's Chromium through
Playwright: a close contact refused for a wrong check digit (the field named, nothing stored), then
recorded (the page says which units it re-checked), and a household verified in one tap (htmx) —
no page wider than the phone. Screenshots go to bench/out/screens/ for a person to look at."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from conftest import PASSWORD, WENLONG_COMMUNITY
from test_browser_household import ARGS, CHROMIUM, SCREENS

from wuyiqu.certification.models import Title
from wuyiqu.health.models import Measure
from wuyiqu.lib import dates
from wuyiqu.units.models import Household, HouseholdVerification, Resident, Unit, UnitKind

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # as in test_browser_household.py

pytestmark = pytest.mark.browser


@pytest.fixture
def phone():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                      is_mobile=True, has_touch=True, locale="zh-CN")
        yield context.new_page()
        browser.close()


def fits_the_phone(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= 390


def test_a_worker_records_a_close_contact_and_verifies_a_household_on_her_phone(live_server, world, alice, phone):
    # The policy profile the migrations seed, which an earlier transactional test may have flushed: the
    # re-check after the new fact needs it.
    import importlib

    from django.apps import apps

    importlib.import_module("wuyiqu.standards.migrations.0002_seed_wenlong_2022").seed(apps, None)
    SCREENS.mkdir(parents=True, exist_ok=True)
    building = Unit.objects.filter(path__startswith=f"/500110/500110002/{WENLONG_COMMUNITY}/", kind=UnitKind.BUILDING,
                                   households__isnull=False).order_by("code").first()
    Title.objects.create(unit=building, title=building.title, named_on=dates.today() - dt.timedelta(days=20))
    person = Resident.objects.filter(household__unit=building).order_by("pk").first()
    number = person.reveal_id_number()
    household = Household.objects.filter(unit=building).order_by("code").first()
    HouseholdVerification.objects.filter(household=household).delete()

    page = phone
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_load_state()
    page.goto(f"{live_server.url}/units/{building.code}/")
    page.screenshot(path=str(SCREENS / "phone-building-record.png"), full_page=True)
    assert fits_the_phone(page)

    # The form, from the unit page's 登记 buttons.
    page.click(f"a[href='/units/{building.code}/record/close-contacts/']")
    page.wait_for_url(f"**/units/{building.code}/record/close-contacts/")
    assert page.locator("#f-start_on").input_value() == dates.today().isoformat()
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    page.fill("#f-id_number", wrong)
    page.fill("#f-end_on", (dates.today() + dt.timedelta(days=6)).isoformat())
    page.click("form.stack button.primary")
    page.wait_for_load_state()
    assert "身份证号：" in page.locator("#refusal").inner_text()
    assert page.locator("#err-id_number").is_visible()
    assert page.locator("#f-end_on").input_value() != ""  # what was typed is kept
    page.screenshot(path=str(SCREENS / "phone-record-refused.png"), full_page=True)
    assert fits_the_phone(page)
    assert not Measure.objects.exists()

    page.fill("#f-id_number", number)
    page.click("form.stack button.primary")
    page.wait_for_url(f"**/units/{building.code}/")
    message = page.locator("ul.messages li").first.inner_text()
    assert "已保存" in message and "已复核" in message and "摘牌" in message and building.name in message
    page.screenshot(path=str(SCREENS / "phone-record-saved.png"), full_page=False)
    assert Measure.objects.get().resident_id == person.pk
    assert Title.objects.get(unit=building).withdrawn_on == dates.today()

    # One tap verifies a household; htmx swaps its status line in place.
    box = page.locator(f"#verify-{household.pk}")
    box.locator("button").click()
    page.locator(f"#verify-{household.pk} .tag.ok").wait_for()
    assert "今日已核实" in page.locator(f"#verify-{household.pk}").inner_text()
    assert page.url.endswith(f"/units/{building.code}/")  # no page change
    assert HouseholdVerification.objects.get(household=household).verified_on == dates.today()
    page.locator(f"#verify-{household.pk}").screenshot(path=str(SCREENS / "phone-verified.png"))
    assert fits_the_phone(page)

    # The household page: add a resident, and per person the ledger, the timeline, the removal.
    page.goto(f"{live_server.url}/households/{household.code}/")
    assert page.locator(f"a[href='/households/{household.code}/residents/add/']").is_visible()
    assert page.locator("ul.people li").count() == household.residents.count()
    page.screenshot(path=str(SCREENS / "phone-household-record.png"), full_page=True)
    assert fits_the_phone(page)

    # The other forms and the ledger with its buttons fit the phone too.
    community = building.parent.parent
    for url in (f"/units/{community.code}/record/risk-zones/", f"/units/{building.code}/record/special-population/",
                f"/units/{building.code}/record/households/", f"/households/{household.code}/residents/add/",
                f"/units/{community.code}/ledger/"):
        page.goto(f"{live_server.url}{url}")
        assert fits_the_phone(page), url
    page.goto(f"{live_server.url}/units/{building.code}/record/special-population/")
    page.screenshot(path=str(SCREENS / "phone-record-ledger.png"), full_page=True)


def test_the_one_tap_verification_works_without_javascript(live_server, world, alice):
    from playwright.sync_api import sync_playwright

    household = Household.objects.filter(unit__path__startswith=f"/500110/500110002/{WENLONG_COMMUNITY}/",
                                         unit__kind=UnitKind.BUILDING).order_by("code").first()
    HouseholdVerification.objects.filter(household=household).delete()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844}).new_page()
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", PASSWORD)
        page.click("button.primary")
        page.wait_for_load_state()
        page.goto(f"{live_server.url}/units/{household.unit.code}/")
        page.locator(f"#verify-{household.pk} button").click()
        page.wait_for_load_state()
        assert page.url.endswith(f"/units/{household.unit.code}/")
        assert "已保存" in page.locator("ul.messages").inner_text()
        assert "今日已核实" in page.locator(f"#verify-{household.pk}").inner_text()
        browser.close()
    assert HouseholdVerification.objects.filter(household=household).count() == 1


def test_the_inspection_form_sets_each_items_answers_in_one_row_on_a_phone(live_server, world, alice, phone):
    """Issue 18: the radios sat above their words and ran very long on a phone. Each item's answers
    (未检查 / 合格 / 不合格) now share one row, every radio left of its own word, and the form fits."""
    building = Unit.objects.filter(path__startswith=f"/500110/500110002/{WENLONG_COMMUNITY}/",
                                   kind=UnitKind.BUILDING).order_by("code").first()
    page = phone
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_load_state()
    page.goto(f"{live_server.url}/units/{building.code}/inspections/")
    items = page.locator("fieldset.item")
    assert items.count() >= 2
    for i in range(items.count()):
        radios = items.nth(i).locator("input[type=radio]")
        assert radios.count() == 3
        boxes = [radios.nth(k).bounding_box() for k in range(3)]
        tops = {round(b["y"]) for b in boxes}
        assert max(tops) - min(tops) <= 4, f"item {i}: the answers are not in one row: {boxes}"
        for k in range(3):
            label = radios.nth(k).locator("xpath=ancestor::label[1]").bounding_box()
            box = boxes[k]
            # the word is to the right of its radio, on the same line (not below it)
            assert label["x"] + label["width"] > box["x"] + box["width"] + 8
            assert label["y"] <= box["y"] and box["y"] + box["height"] <= label["y"] + label["height"]
        assert items.nth(i).bounding_box()["height"] < 110
    assert fits_the_phone(page)
    page.screenshot(path=str(SCREENS / "phone-inspection-form.png"), full_page=True)
