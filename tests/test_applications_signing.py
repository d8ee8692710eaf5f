"""Co-signing (联名申请): the public page behind the short link, the proof of membership and its rate
limit, signing twice, the applicant's live progress, paper sheets with their checked scans."""

from __future__ import annotations

import io
import re

import pytest
import time_machine
from test_applications_world import NOW, PINS, build, people, sign_all

from wuyiqu.applications import actions
from wuyiqu.applications.actions import (
    FAILURES_PER_HOUSEHOLD,
    FAILURES_PER_IP,
    ApplicationRefused,
    SigningLocked,
    do_open_application,
    do_record_paper_sheet,
    do_sign_application,
    do_submit_application,
)
from wuyiqu.applications.models import Attachment, CoSignature, SignatureAttempt
from wuyiqu.audit.models import AuditEvent
from wuyiqu.notifications.models import Notification
from wuyiqu.units.models import Household, Resident

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def w(db):
    u = build()
    p = people(u)
    app = do_open_application(actor=p["hank"], unit=u["B1"])
    return u, p, app


def households(app):
    return list(Household.objects.filter(unit__path__startswith=app.unit.path).order_by("code"))


def wrong(hh) -> str:
    """Six characters that are not the last six of any member's ID number."""
    taken = {r.reveal_id_number()[-6:] for r in Resident.objects.filter(household=hh)}
    return next(c for c in ("000000", "111111", "22222X") if c not in taken)


def upload(name, data, content_type="application/octet-stream"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=content_type)


# --- the action -------------------------------------------------------------------------------------


def test_the_last_six_of_a_members_id_number_prove_membership_and_nothing_shorter(w):
    u, p, app = w
    first, second = households(app)
    member = Resident.objects.get(household=second)
    for short in (PINS[second.code][-4:], member.phone_masked[-4:], member.reveal_phone()):
        with pytest.raises(ApplicationRefused, match="后6位"):  # the former proofs no longer prove anything
            do_sign_application(application=app, household_id=second.pk, proof=short)
    assert do_sign_application(application=app, household_id=first.pk, proof=PINS[first.code]).created
    assert do_sign_application(application=app, household_id=second.pk, proof=f" {PINS[second.code].lower()} ").created
    assert CoSignature.objects.filter(application=app, source="online").count() == 2
    assert AuditEvent.objects.filter(action="applications.sign").count() == 2


def test_a_proof_typed_in_full_width_digits_with_spaces_is_normalised_like_an_id_number(w):
    u, p, app = w
    hh = households(app)[0]
    # "０ １ ０ ０ ２ Ｘ" from a Chinese keyboard
    full_width = " ".join(chr(0xFF10 + int(c)) if c.isdigit() else "\uff38" for c in PINS[hh.code])
    assert do_sign_application(application=app, household_id=hh.pk, proof=full_width).created


def test_proof_matches_compares_the_last_six_characters_x_as_upper_case():
    numbers = ["50022219800501001X", "500222198005010029"]
    assert actions.proof_matches(numbers, "01001x") and actions.proof_matches(numbers, "010029")
    assert not actions.proof_matches(numbers, "1001X") and not actions.proof_matches(numbers, "010028")
    assert not actions.proof_matches([], "010029") and not actions.proof_matches(numbers, "")


def test_signing_twice_is_harmless(w):
    u, p, app = w
    hh = households(app)[0]
    assert do_sign_application(application=app, household_id=hh.pk, proof=PINS[hh.code]).created is True
    again = do_sign_application(application=app, household_id=hh.pk, proof=PINS[hh.code])
    assert again.created is False
    assert CoSignature.objects.filter(application=app, household=hh).count() == 1


def test_a_wrong_proof_is_refused_and_kept_for_the_rate_limit(w):
    u, p, app = w
    hh = households(app)[0]
    with pytest.raises(ApplicationRefused, match=f"验证未通过.*还可尝试 {FAILURES_PER_HOUSEHOLD - 1} 次"):
        do_sign_application(application=app, household_id=hh.pk, proof=wrong(hh), ip="10.1.1.1")
    assert not CoSignature.objects.filter(application=app).exists()
    assert SignatureAttempt.objects.filter(application=app, household=hh, ip="10.1.1.1").count() == 1


def test_five_wrong_proofs_lock_the_household_until_the_building_head_lifts_it(w, client_for):
    u, p, app = w
    hh, other = households(app)
    for i in range(FAILURES_PER_HOUSEHOLD):
        with pytest.raises(ApplicationRefused):
            do_sign_application(application=app, household_id=hh.pk, proof=wrong(hh), ip=f"10.2.0.{i}")
    with pytest.raises(SigningLocked, match="联系楼栋长"):
        do_sign_application(application=app, household_id=hh.pk, proof=PINS[hh.code], ip="10.9.9.9")
    assert not CoSignature.objects.filter(application=app, household=hh).exists()
    # The building head is told, once, and it is audited; another household is not locked.
    (note,) = Notification.objects.filter(user=p["hank"])
    assert "锁定" in note.text and hh.address in note.text and note.link == f"/applications/{app.pk}/"
    assert AuditEvent.objects.filter(action="applications.signing_locked", detail__household=hh.code).count() == 1
    assert do_sign_application(application=app, household_id=other.pk, proof=PINS[other.code]).created
    # Time does not lift the lock: a day later the right proof is still refused.
    with time_machine.travel(NOW.timestamp() + 24 * 3600, tick=False), pytest.raises(SigningLocked):
        do_sign_application(application=app, household_id=hh.pk, proof=PINS[hh.code])
    # The building head lifts it from the application page; then the household signs.
    page = client_for(p["hank"]).get(f"/applications/{app.pk}/").content.decode()
    assert 'id="signing-locks"' in page and hh.address in page
    response = client_for(p["hank"]).post(f"/applications/{app.pk}/unlock/", {"household": hh.pk})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="applications.signing_unlock")
    assert (event.actor, event.detail["household"], event.detail["failures"]) == (p["hank"], hh.code, FAILURES_PER_HOUSEHOLD)
    assert do_sign_application(application=app, household_id=hh.pk, proof=PINS[hh.code]).created


def test_a_lock_is_lifted_at_most_max_lifts_times_then_only_paper_signs(w):
    u, p, app = w
    hh = households(app)[0]
    for round_ in range(actions.MAX_LIFTS + 1):
        for _ in range(FAILURES_PER_HOUSEHOLD):
            with pytest.raises(ApplicationRefused):
                do_sign_application(application=app, household_id=hh.pk, proof=wrong(hh))
        if round_ < actions.MAX_LIFTS:
            assert actions.do_lift_signing_lock(actor=p["hank"], application=app, household_id=hh.pk).locked is False
    lock = actions.household_lock(app, hh.pk)
    assert (lock.lifetime, lock.locked, lock.liftable) == (actions.LIFETIME_TRIES, True, False)
    with pytest.raises(ApplicationRefused, match="不能再解除"):
        actions.do_lift_signing_lock(actor=p["hank"], application=app, household_id=hh.pk)
    with pytest.raises(SigningLocked):
        do_sign_application(application=app, household_id=hh.pk, proof=PINS[hh.code])


def test_only_the_building_head_or_community_staff_lift_a_lock(w):
    from django.core.exceptions import PermissionDenied
    from django.http import Http404

    u, p, app = w
    hh = households(app)[0]
    with pytest.raises(ApplicationRefused, match="未被锁定"):
        actions.do_lift_signing_lock(actor=p["hank"], application=app, household_id=hh.pk)
    for _ in range(FAILURES_PER_HOUSEHOLD):
        with pytest.raises(ApplicationRefused):
            do_sign_application(application=app, household_id=hh.pk, proof=wrong(hh))
    with pytest.raises(Http404):
        actions.do_lift_signing_lock(actor=p["bella"], application=app, household_id=hh.pk)  # another building
    with pytest.raises(PermissionDenied):
        actions.do_lift_signing_lock(actor=p["sam"], application=app, household_id=hh.pk)  # street staff
    assert actions.household_lock(app, hh.pk).locked
    assert not actions.do_lift_signing_lock(actor=p["cora"], application=app, household_id=hh.pk).locked


def test_an_address_that_keeps_failing_is_locked_on_every_household(w):
    u, p, app = w
    hh = households(app)
    extra = [actions.Household.objects.create(code=f"{u['B1'].code}-9{i:02d}", unit=u["B1"], address=f"9{i:02d}")
             for i in range(FAILURES_PER_IP)]
    for i in range(FAILURES_PER_IP):  # spread over households, so no household reaches its own limit
        with pytest.raises(ApplicationRefused):
            do_sign_application(application=app, household_id=extra[i].pk, proof="0000", ip="10.3.3.3")
    with pytest.raises(SigningLocked):
        do_sign_application(application=app, household_id=hh[0].pk, proof=PINS[hh[0].code], ip="10.3.3.3")
    assert do_sign_application(application=app, household_id=hh[0].pk, proof=PINS[hh[0].code], ip="10.4.4.4").created


def test_a_household_of_another_unit_cannot_sign(w):
    u, p, app = w
    stranger = Household.objects.get(code=f"{u['B2'].code}-101")
    with pytest.raises(ApplicationRefused, match="请从列表中选择本户的地址"):
        do_sign_application(application=app, household_id=stranger.pk, proof=PINS[stranger.code])


def test_signing_ends_with_the_submission(w):
    u, p, app = w
    sign_all(app)
    do_submit_application(actor=p["hank"], application=app)
    hh = households(app)[0]
    with pytest.raises(ApplicationRefused, match="联名已结束"):
        do_sign_application(application=app, household_id=hh.pk, proof=PINS[hh.code])


# --- the public page --------------------------------------------------------------------------------


def test_the_public_page_lists_addresses_and_no_names(w, client):
    u, p, app = w
    r = client.get(f"/s/{app.token}/")
    assert r.status_code == 200
    html = r.content.decode()
    for hh in households(app):
        assert hh.address in html
        resident = Resident.objects.get(household=hh)
        assert resident.name not in html
        assert resident.phone_masked not in html and resident.id_masked not in html
    assert "联名申请" in html or app.title in html
    assert client.get("/s/not-a-real-token/").status_code == 404


def test_the_public_page_signs_refuses_and_locks(w, client):
    u, p, app = w
    hh = households(app)[0]
    page = client.get(f"/s/{app.token}/")
    assert page.status_code == 200
    r = client.post(f"/s/{app.token}/", {"household": hh.pk, "proof": wrong(hh)})
    assert r.status_code == 400 and "验证未通过" in r.content.decode()
    r = client.post(f"/s/{app.token}/", {"household": hh.pk, "proof": PINS[hh.code]})
    assert r.status_code == 200 and 'data-result="signed"' in r.content.decode()
    r = client.post(f"/s/{app.token}/", {"household": hh.pk, "proof": PINS[hh.code]})
    assert r.status_code == 200 and "本户已签名" in r.content.decode()
    other = households(app)[1]
    codes = [client.post(f"/s/{app.token}/", {"household": other.pk, "proof": wrong(other)}).status_code
             for _ in range(FAILURES_PER_HOUSEHOLD)]
    assert codes == [400] * (FAILURES_PER_HOUSEHOLD - 1) + [429]  # the last wrong one locks
    r = client.post(f"/s/{app.token}/", {"household": other.pk, "proof": PINS[other.code]})
    assert r.status_code == 429 and "锁定" in r.content.decode()
    assert "身份证号的后6位" in page.content.decode()
    assert CoSignature.objects.filter(application=app).count() == 1


def test_the_public_page_needs_the_csrf_token(w):
    from django.test import Client

    u, p, app = w
    hh = households(app)[0]
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(f"/s/{app.token}/", {"household": hh.pk, "proof": PINS[hh.code]}).status_code == 403
    assert not CoSignature.objects.exists()


# --- the applicant's view ---------------------------------------------------------------------------


def test_progress_shows_signed_over_total_and_the_missing_addresses(w, client_for):
    u, p, app = w
    first, second = households(app)
    do_sign_application(application=app, household_id=first.pk, proof=PINS[first.code])
    r = client_for(p["hank"]).get(f"/applications/{app.pk}/progress/", HTTP_HX_REQUEST="true")
    html = r.content.decode()
    assert 'data-signed="1" data-total="2"' in html
    missing = re.findall(r'<li data-household="(\d+)">([^<]*)</li>', html)
    assert missing == [(str(second.pk), second.address)]
    assert 'hx-trigger="every 5s"' in html


def test_the_poster_has_a_qr_code_and_the_short_link(w, client_for):
    u, p, app = w
    c = client_for(p["hank"])
    html = c.get(f"/applications/{app.pk}/poster/").content.decode()
    assert "<svg" in html and f"/s/{app.token}/" in html
    png = c.get(f"/applications/{app.pk}/qr.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert client_for(p["tom"]).get(f"/applications/{app.pk}/poster/").status_code == 404


def test_a_paper_sheet_records_the_households_with_the_scan(w, client_for, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    u, p, app = w
    first, second = households(app)
    do_sign_application(application=app, household_id=first.pk, proof=PINS[first.code])
    created, existing, att = do_record_paper_sheet(actor=p["hank"], application=app,
                                                   household_ids=[first.pk, second.pk], signed_on=NOW.date(),
                                                   scan=upload("sheet.png", PNG))
    assert (created, existing) == (1, 1)
    assert CoSignature.objects.get(application=app, household=second).source == "paper"
    assert (att.content_type, att.kind, att.size) == ("image/png", "paper_sheet", len(PNG))
    stored = tmp_path / att.file.name
    assert "sheet" not in att.file.name  # a random name, not the upload's
    assert stored.read_bytes()[:8] == b"WYQSEAL1" and PNG not in stored.read_bytes()  # sealed at rest
    with att.file.open("rb") as f:
        assert f.read() == PNG
    # Read back only through the scoped view.
    r = client_for(p["hank"]).get(f"/applications/{app.pk}/attachments/{att.pk}/")
    assert r.status_code == 200 and b"".join(r.streaming_content) == PNG and r["Content-Type"] == "image/png"
    assert r["Content-Length"] == str(len(PNG))  # the content's size, not the sealed file's
    assert client_for(p["tom"]).get(f"/applications/{app.pk}/attachments/{att.pk}/").status_code == 404


@pytest.mark.parametrize("name,data", [
    ("sheet.png", b"GIF89a" + b"\x00" * 20),  # a GIF named .png
    ("sheet.pdf", b"<html><script>alert(1)</script>"),  # HTML named .pdf
    ("sheet.jpg", b""),
])
def test_a_scan_of_another_type_is_refused_and_nothing_recorded(w, settings, tmp_path, name, data):
    settings.MEDIA_ROOT = tmp_path
    u, p, app = w
    hh = households(app)[0]
    with pytest.raises(ApplicationRefused, match="不是 JPEG、PNG 或 PDF"):
        do_record_paper_sheet(actor=p["hank"], application=app, household_ids=[hh.pk], signed_on=NOW.date(),
                              scan=upload(name, data, "image/png"))
    assert not CoSignature.objects.exists() and not Attachment.objects.exists()
    assert not any(tmp_path.rglob("*.*"))


def test_a_scan_too_large_is_refused(w, settings, tmp_path, monkeypatch):
    settings.MEDIA_ROOT = tmp_path
    monkeypatch.setattr(actions, "SCAN_MAX_BYTES", 1024)
    u, p, app = w
    hh = households(app)[0]
    with pytest.raises(ApplicationRefused, match="超过"):
        do_record_paper_sheet(actor=p["hank"], application=app, household_ids=[hh.pk], signed_on=NOW.date(),
                              scan=upload("big.jpg", JPEG + b"\x00" * 2048))
    assert not CoSignature.objects.exists()


def test_the_paper_form_through_the_page(w, client_for, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    u, p, app = w
    first, second = households(app)
    c = client_for(p["cora"])  # community staff may record a building's sheet too
    r = c.post(f"/applications/{app.pk}/paper/", {"households": [first.pk, second.pk], "signed_on": "2022-11-28",
                                                   "scan": io.BytesIO(PDF)}, follow=True)
    assert "新增 2 户" in r.content.decode()
    r = c.post(f"/applications/{app.pk}/paper/", {"households": [first.pk], "signed_on": "2022-11-28",
                                                   "scan": upload("x.pdf", b"MZ\x90\x00")}, follow=True)
    assert "不是 JPEG、PNG 或 PDF" in r.content.decode()
    assert Attachment.objects.count() == 1
    # A building head of another building may not; outside the scope it is a 404.
    assert client_for(p["bella"]).post(f"/applications/{app.pk}/paper/", {"signed_on": "2022-11-28"}).status_code == 404


def test_the_paper_message_tells_new_signatures_from_earlier_ones(w, client_for, settings, tmp_path):
    """Not "已签 0 户" (read as "signed 0"): how many signed now, and only when some had signed before,
    how many those were (not recorded twice)."""
    settings.MEDIA_ROOT = tmp_path
    u, p, app = w
    first, second = households(app)
    c = client_for(p["cora"])
    r = c.post(f"/applications/{app.pk}/paper/", {"households": [first.pk], "signed_on": "2022-11-28",
                                                   "scan": io.BytesIO(PDF)}, follow=True)
    html = r.content.decode()
    assert "已登记纸质联名：新增 1 户签名<" in html and "已签 0 户" not in html and "此前" not in html
    r = c.post(f"/applications/{app.pk}/paper/", {"households": [first.pk, second.pk], "signed_on": "2022-11-28",
                                                   "scan": io.BytesIO(PDF)}, follow=True)
    assert "已登记纸质联名：新增 1 户签名；另有 1 户此前已签名，未重复登记" in r.content.decode()
    c.cookies["django_language"] = "en"
    r = c.post(f"/applications/{app.pk}/paper/", {"households": [first.pk, second.pk], "signed_on": "2022-11-28",
                                                   "scan": io.BytesIO(PDF)}, follow=True)
    assert "Paper co-signatures recorded: 0 new households; 2 had signed before and were not recorded twice" in r.content.decode()


def test_a_paper_household_outside_the_unit_is_refused(w, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    u, p, app = w
    stranger = Household.objects.get(code=f"{u['B2'].code}-101")
    with pytest.raises(ApplicationRefused, match="1 户不属于"):
        do_record_paper_sheet(actor=p["hank"], application=app, household_ids=[stranger.pk], signed_on=NOW.date(),
                              scan=upload("s.jpg", JPEG))
    assert not Attachment.objects.exists()


def test_a_resident_who_signed_sees_how_far_the_unit_is_and_nothing_of_other_households(w, client):
    """After signing: signed / total households and the unit's state (collecting, all signed and
    waiting for the applicant, under review, named) — counts only, no other household's address."""
    from wuyiqu.applications.actions import do_review_application, do_submit_application

    u, p, app = w
    first, second = households(app)
    html = client.post(f"/s/{app.token}/", {"household": first.pk, "proof": PINS[first.code]}).content.decode()
    state = html.split('id="sign-state"')[1].split("</div>")[0]
    assert 'data-signed="1" data-total="2" data-status="draft"' in state
    assert "本单位已有 <strong>1</strong> 户签名，共 2 户" in state and "征集联名中，还差 1 户。" in state
    assert second.address not in html and f'value="{second.pk}"' not in html
    # The second household signs: all signed, waiting for the building head to submit.
    html = client.post(f"/s/{app.token}/", {"household": second.pk, "proof": PINS[second.code]}).content.decode()
    assert "全部住户已签名，等待楼栋长提交申请。" in html and first.address not in html
    # Signing again later: 本户已签名 with the same state; once submitted, the page says it is under review.
    app = do_submit_application(actor=p["hank"], application=app)
    html = client.get(f"/s/{app.token}/").content.decode()
    assert 'id="sign-closed"' in html and "联名已完成，申请正在审核（村/社区受理）。" in html
    assert 'data-signed="2" data-total="2"' in html and 'name="household"' not in html
    for actor in ("cora", "sam", "hugo", "cmd"):
        app = do_review_application(app, actor=p[actor], decision="approve", opinion="同意")
    assert "本单位已获“无疫楼栋”称号。" in client.get(f"/s/{app.token}/").content.decode()
