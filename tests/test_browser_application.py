"""The application journey in Debian's Chromium through Playwright: a building head opens the
application on a phone and prints the poster; the residents of every household sign on their phones
(one mistypes first); the head watches the progress and submits; the community, the street, the
health commission and the command each act on a desktop; the certificate is issued and the page
behind its QR code says the title is current. Screenshots go to bench/out/screens/."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from django.db import connections
from test_applications_world import (
    BUILDING_ITEMS,
    PASSWORD,
    PINS,
    build,
    inspect,
    make_household,
    make_unit,
    people,
    person,
)

from wuyiqu.accounts.models import Role
from wuyiqu.applications.models import Application, CoSignature
from wuyiqu.certification.models import Title
from wuyiqu.lib.dates import today
from wuyiqu.units.models import Household

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # see test_browser_household.py

SCREENS = Path(__file__).resolve().parent.parent / "bench" / "out" / "screens"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
         "locale": "zh-CN"}
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN"}

pytestmark = pytest.mark.browser


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()
        # The ORM calls made while Playwright's loop runs get their own connection (asgiref's
        # context-local connections); close it here, or PostgreSQL cannot drop the test database.
        connections.close_all()


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_load_state()


def shot(page, name: str, full: bool = False) -> None:
    page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=full)


def fits(page, width: int) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= width


def test_a_building_is_named_from_phones_to_certificate(live_server, transactional_db, browser):
    SCREENS.mkdir(parents=True, exist_ok=True)
    on = today()  # real dates: the browser keeps cookies by its own clock
    u = build(on)
    people(u)  # hank, cora, sam, hugo, cmd … (bao, the head of the 4-household building, below)
    building = make_unit("T1C-B4", "building", u["T1C"], "测试社区4号楼")
    for room in ("101", "102", "201", "202"):
        make_household(building, room, on)
    inspect(building, BUILDING_ITEMS, on)
    person("bao", Role.BUILDING_HEAD, building)
    base = live_server.url

    # 1. The building head opens the application on a phone and opens the poster.
    head_ctx = browser.new_context(**PHONE)
    head = head_ctx.new_page()
    log_in(head, base, "bao")
    head.goto(f"{base}/applications/")
    assert fits(head, 390)
    head.click("#open-application")
    head.wait_for_selector("#status[data-status='draft']")
    app = Application.objects.get(unit=building)
    assert head.url.endswith(f"/applications/{app.pk}/")
    assert head.locator("[data-signed='0'][data-total='4']").count() == 1
    shot(head, "application-phone-opened")
    head.click("#poster-link")
    head.wait_for_selector(".poster svg")
    short_link = head.locator("#short-link").inner_text().strip()
    assert short_link == f"{base}/s/{app.token}/"
    assert fits(head, 390)
    shot(head, "application-phone-poster", full=True)

    # 2. Every household signs on a phone; the first resident mistypes once.
    households = list(Household.objects.filter(unit=building).order_by("code"))
    for i, hh in enumerate(households):
        ctx = browser.new_context(**PHONE)
        phone = ctx.new_page()
        phone.goto(short_link)
        assert phone.locator("#household option").count() == 5  # 4 addresses and the prompt
        if i == 0:
            assert fits(phone, 390)
            shot(phone, "sign-phone-form")
            phone.select_option("#household", str(hh.pk))
            phone.fill("#proof", "000000" if PINS[hh.code] != "000000" else "111111")
            phone.click("#sign-button")
            phone.wait_for_selector("#sign-error")
            assert "验证未通过" in phone.locator("#sign-error").inner_text()
            shot(phone, "sign-phone-wrong-proof")
        phone.select_option("#household", str(hh.pk))
        phone.fill("#proof", PINS[hh.code])
        phone.click("#sign-button")
        phone.wait_for_selector("#sign-result[data-result='signed']")
        if i == 0:
            shot(phone, "sign-phone-signed")
        ctx.close()
    assert CoSignature.objects.filter(application=app).count() == 4

    # 3. The head sees the progress (htmx polling) reach 4 / 4, and submits.
    head.goto(f"{base}/applications/{app.pk}/")
    head.wait_for_selector("[data-signed='4'][data-total='4']", timeout=15000)
    shot(head, "application-phone-all-signed", full=True)
    head.click("#submit-application")
    head.wait_for_selector("#status[data-status='community_review']")
    shot(head, "application-phone-submitted")
    head_ctx.close()  # its page polls the progress; stop it before the reviewers act

    # 4. Community, street, health commission and command each act on a desktop.
    for username, status, opinion in (("cora", "community_review", "材料齐全，予以受理"),
                                      ("sam", "street_review", "经初审，符合无疫楼栋创建标准"),
                                      ("hugo", "health_review", "复核通过"),
                                      ("cmd", "command_review", "同意命名")):
        ctx = browser.new_context(**DESKTOP)
        page = ctx.new_page()
        log_in(page, base, username)
        assert page.locator("#unread-count").inner_text() == "1"  # told by the previous step
        page.goto(f"{base}/applications/queue/")
        page.click(f"a[data-application='{app.pk}']")
        page.wait_for_selector(f"#status[data-status='{status}']")
        if username == "sam":
            shot(page, "application-desktop-street-review", full=True)
        page.check("input[name='decision'][value='approve']")
        page.fill("#opinion", opinion)
        page.click("#review-button")
        page.wait_for_url("**/applications/queue/")
        assert "没有待办的申请" in page.content()
        ctx.close()

    # 5. Named: the certificate and the public page behind its QR code.
    title = Title.objects.get(unit=building, withdrawn_on__isnull=True)
    ctx = browser.new_context(**DESKTOP)
    page = ctx.new_page()
    log_in(page, base, "bao")
    page.goto(f"{base}/applications/{app.pk}/")
    page.wait_for_selector("#named")
    assert "经初审，符合无疫楼栋创建标准" in page.content() and "初审签注：sam" in page.content()
    shot(page, "application-desktop-named", full=True)
    pdf = page.request.get(f"{base}/certificates/{title.certificate_number}.pdf")
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF-")
    (SCREENS / "certificate.pdf").write_bytes(pdf.body())
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-singlefile", str(SCREENS / "certificate.pdf"),
                    str(SCREENS / "certificate")], check=True)
    text = subprocess.run(["pdftotext", str(SCREENS / "certificate.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    verify_url = re.search(r"http://\S+/verify/\S+/", text).group(0)
    assert verify_url == f"{base}/verify/{title.certificate_number}/"
    ctx.close()

    public_ctx = browser.new_context(**PHONE)
    public = public_ctx.new_page()
    public.goto(verify_url)
    assert public.locator("#verdict").get_attribute("data-current") == "true"
    assert "今天" in public.locator("#verdict").inner_text() and "称号有效" in public.locator("#verdict").inner_text()
    shot(public, "verify-phone-current")
    public_ctx.close()


def sign_on_phones(browser, link: str, households) -> None:
    for hh in households:
        ctx = browser.new_context(**PHONE)
        phone = ctx.new_page()
        phone.goto(link)
        phone.select_option("#household", str(hh.pk))
        phone.fill("#proof", PINS[hh.code])
        phone.click("#sign-button")
        phone.wait_for_selector("#sign-result[data-result='signed']")
        ctx.close()


def act_on_desktop(browser, base: str, app, steps, shots: dict[str, str] | None = None) -> None:
    """Each (username, status, opinion) approves from the queue on a desktop."""
    for username, status, opinion in steps:
        ctx = browser.new_context(**DESKTOP)
        page = ctx.new_page()
        log_in(page, base, username)
        page.goto(f"{base}/applications/queue/")
        page.click(f"a[data-application='{app.pk}']")
        page.wait_for_selector(f"#status[data-status='{status}']")
        if shots and username in shots:
            shot(page, shots[username], full=True)
        page.check("input[name='decision'][value='approve']")
        page.fill("#opinion", opinion)
        page.click("#review-button")
        page.wait_for_url("**/applications/queue/")
        ctx.close()


def test_a_compound_and_a_village_are_named(live_server, transactional_db, browser):
    """The compound after its buildings (named earlier): the property manager opens on a phone, the
    households of both buildings sign, the chain names it. The village after its group: the community
    worker opens it with the village's own signature, sees the group's co-signature below, and the
    street, the health commission and the command name it."""
    from test_applications_world import name_through_chain, sign_all

    from wuyiqu.applications.actions import do_open_application, do_submit_application
    from wuyiqu.applications.models import Application as App

    SCREENS.mkdir(parents=True, exist_ok=True)
    on = today()
    u = build(on)
    p = people(u)
    base = live_server.url
    for key in ("B1", "B2"):  # both buildings named through the chain, by the actions
        head = p["hank"] if key == "B1" else person("hong", Role.BUILDING_HEAD, u["B2"])
        app = do_open_application(actor=head, unit=u[key])
        sign_all(app)
        name_through_chain(do_submit_application(actor=head, application=app), p)

    # The compound, from the property manager's phone.
    pm = browser.new_context(**PHONE)
    page = pm.new_page()
    log_in(page, base, "pam")
    page.goto(f"{base}/applications/")
    page.click("#open-application")
    page.wait_for_selector("#status[data-status='draft']")
    compound = App.objects.get(unit=u["C1"])
    assert page.locator("[data-signed='0'][data-total='4']").count() == 1
    sign_on_phones(browser, f"{base}/s/{compound.token}/", Household.objects.filter(unit__path__startswith=u["C1"].path))
    page.reload()
    page.wait_for_selector("[data-signed='4'][data-total='4']")
    page.click("#submit-application")
    page.wait_for_selector("#status[data-status='community_review']")
    assert fits(page, 390)
    shot(page, "compound-phone-submitted")
    pm.close()
    act_on_desktop(browser, base, compound, (("cora", "community_review", "受理"), ("sam", "street_review", "初审同意"),
                                             ("hugo", "health_review", "复核通过"), ("cmd", "command_review", "同意命名")))
    assert Title.objects.filter(unit=u["C1"], title="无疫小区", withdrawn_on__isnull=True).exists()

    # The village, after its group was named (by the actions).
    group = do_open_application(actor=p["gina"], unit=u["G1"])
    sign_all(group)
    name_through_chain(do_submit_application(actor=p["gina"], application=group), p)
    ctx = browser.new_context(**DESKTOP)
    page = ctx.new_page()
    log_in(page, base, "vera")
    page.goto(f"{base}/applications/")
    page.fill("input[name='unit_signed_on']", on.isoformat())
    page.click("#open-application")
    page.wait_for_selector("#status[data-status='draft']")
    village = App.objects.get(unit=u["T1V"])
    assert f"已于 {on.isoformat()} 签字申请" in page.locator("#unit-signed").inner_text()
    assert page.locator(f"tr[data-unit='{u['G1'].code}'][data-signed='true']").count() == 1
    shot(page, "village-desktop-opened", full=True)
    page.click("#submit-application")
    page.wait_for_selector("#status[data-status='street_review']")
    ctx.close()
    act_on_desktop(browser, base, village, (("sam", "street_review", "经初审，符合无疫村标准"),
                                            ("hugo", "health_review", "复核通过"), ("cmd", "command_review", "同意命名")),
                   shots={"sam": "village-desktop-street-review"})
    title = Title.objects.get(unit=u["T1V"], withdrawn_on__isnull=True)
    assert title.title == "无疫村"
    public_ctx = browser.new_context(**PHONE)
    public = public_ctx.new_page()
    public.goto(f"{base}/verify/{title.certificate_number}/")
    assert public.locator("#verdict").get_attribute("data-current") == "true"
    public_ctx.close()
