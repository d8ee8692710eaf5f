"""No existence oracle (issue 14, item 5; wuyiqu/units/transfers.py, docs/imports.md "Scope").

The attack: a residents import refused a person registered elsewhere with "该居民现登记的户不在您的管辖
范围内"; one upload of guessed numbers (a county, a birth date, every sequence number) named exactly
the numbers registered in another community and wrote nothing. Now such a row becomes a transfer
request for a user above both households, the import names no such row among its errors, rows of this
kind are counted per user and day, and past the cap the import is refused whole — with a message that
names no row — and the street is alerted. Other kinds that need a registered person answer "elsewhere"
and "unknown" in the same words.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from conftest import TIANQIAO_COMMUNITY, WENLONG_COMMUNITY
from django.db.models import F

from wuyiqu.audit.models import AuditEvent
from wuyiqu.imports.models import ImportStatus
from wuyiqu.imports.services import run_import
from wuyiqu.lib.idcard import check_digit
from wuyiqu.notifications.models import Notification
from wuyiqu.units import transfers
from wuyiqu.units.models import (
    CrossScopeHits,
    Household,
    PastResidence,
    Resident,
    TransferRequest,
    TransferStatus,
)

pytestmark = pytest.mark.django_db


def guessed_numbers(n: int, start: int = 0) -> list[str]:
    """Numbers an attacker would try: one county, one birth date, consecutive sequence numbers."""
    out = []
    for seq in range(start, start + n):
        first17 = f"500222199001{seq // 1000 + 1:02d}{seq % 1000:03d}"
        out.append(first17 + check_digit(first17))
    return out


def theirs(n: int) -> list[Resident]:
    return list(Resident.objects.filter(household__unit__path__contains=f"/{TIANQIAO_COMMUNITY}/").order_by("id")[:n])


def alices_household() -> Household:
    return Household.objects.filter(unit__path__contains=f"/{WENLONG_COMMUNITY}/").order_by("code").first()


def residents_file(tmp_path, numbers: list[str], household: str, name: str = "r.csv"):
    path = tmp_path / name
    path.write_text("id_number,name,household_code\n" + "".join(f"{n},张三,{household}\n" for n in numbers),
                    encoding="utf-8")
    return path


def test_a_guessing_upload_names_no_row_and_moves_nobody(world, alice, tmp_path):
    home = alices_household()
    others = theirs(2)
    numbers = guessed_numbers(60)
    numbers[17:17] = [r.reveal_id_number() for r in others]  # hidden among the guesses
    job = run_import(kind="residents", path=residents_file(tmp_path, numbers, home.code), actor=alice,
                     scope=alice.unit)
    assert job.status == ImportStatus.SUCCEEDED, job.message
    # No row refused, none named, none told apart: the two count as created, as the 60 guesses do.
    assert (job.created, job.invalid, job.errors) == (62, 0, [])
    assert "待上级" not in job.message and "另有" not in job.message
    for r in others:  # not moved, not renamed
        before = r
        r.refresh_from_db()
        assert (r.household_id, r.name) == (before.household_id, before.name)
        req = TransferRequest.objects.get(resident=r)
        assert (req.to_household_id, req.requested_by, req.status) == (home.pk, alice, TransferStatus.PENDING)
    assert CrossScopeHits.objects.get(user=alice).hits == 2
    probe = AuditEvent.objects.get(action="units.cross_scope_probe")
    assert (probe.actor, probe.detail["rows"], probe.detail["today"], probe.detail["refused"]) == (alice, 2, 2, False)
    assert AuditEvent.objects.filter(action="units.transfer_request", actor=alice).count() == 1


def test_past_the_daily_cap_the_import_is_refused_whole_and_the_street_is_alerted(world, alice, carol, tmp_path,
                                                                                   client_for):
    home = alices_household()
    others = theirs(transfers.PER_DAY + 1)
    first = [r.reveal_id_number() for r in others[:transfers.PER_DAY]] + guessed_numbers(3)
    assert run_import(kind="residents", path=residents_file(tmp_path, first, home.code, "a.csv"), actor=alice,
                      scope=alice.unit).status == ImportStatus.SUCCEEDED  # exactly at the cap: still accepted
    assert not Notification.objects.filter(user=carol, text__startswith="警示").exists()  # only the requests
    count = Resident.objects.count()
    last = guessed_numbers(5, start=100) + [others[-1].reveal_id_number()]
    job = run_import(kind="residents", path=residents_file(tmp_path, last, home.code, "b.csv"), actor=alice,
                     scope=alice.unit)
    assert job.status == ImportStatus.FAILED
    assert "超过每日上限" in job.message and job.errors == []  # names no row: says nothing of any one number
    assert Resident.objects.count() == count and TransferRequest.objects.count() == transfers.PER_DAY
    (alert,) = Notification.objects.filter(user=carol, text__startswith="警示")
    assert "alice" in alert.text and "超过每日上限" in alert.text and alert.link == "/transfers/"
    cap = AuditEvent.objects.get(action="units.cross_scope_cap")
    assert (cap.actor, cap.detail["today"], cap.detail["told"]) == (alice, transfers.PER_DAY + 1, ["carol"])
    # The street sees the probes and the cap stand out in its audit viewer (the link of the alert's street).
    client = client_for(carol)
    html = client.get("/audit/", {"action": "units.cross_scope_probe"}).content.decode()
    assert html.count('class="fail stands-out" data-action="units.cross_scope_probe"') == 2
    html = client.get("/audit/", {"action": "units.cross_scope_cap"}).content.decode()
    assert 'class="fail stands-out" data-action="units.cross_scope_cap"' in html
    # Later the same day: still refused, the street is not told twice.
    again = run_import(kind="residents", path=residents_file(tmp_path, [others[-1].reveal_id_number()], home.code,
                                                             "c.csv"), actor=alice, scope=alice.unit)
    assert again.status == ImportStatus.FAILED
    assert Notification.objects.filter(user=carol, text__startswith="警示").count() == 1
    # For the rest of the day every residents import of hers is refused, whatever it names: refusing
    # only files that name someone registered elsewhere would answer the question for each file.
    fresh = run_import(kind="residents", path=residents_file(tmp_path, guessed_numbers(4, start=200), home.code,
                                                             "d.csv"), actor=alice, scope=alice.unit)
    assert fresh.status == ImportStatus.FAILED and "超过每日上限" in fresh.message
    assert Resident.objects.count() == count
    # Another user of the same community is not locked; nor is alice the next day.
    from wuyiqu.accounts.actions import do_create_user

    amy = do_create_user(actor=None, username="amy", password="x-correct-horse-9", role="community_staff",
                         unit=alice.unit)
    other = run_import(kind="residents", path=residents_file(tmp_path, guessed_numbers(2, start=300), home.code,
                                                             "e.csv"), actor=amy, scope=alice.unit)
    assert other.status == ImportStatus.SUCCEEDED and other.created == 2
    CrossScopeHits.objects.filter(user=alice).update(day=F("day") - dt.timedelta(days=1))
    assert not transfers.over_cap(alice)


def test_the_street_approves_a_transfer_and_the_person_moves(world, alice, bob, carol, tmp_path, client_for):
    home = alices_household()
    (person,) = theirs(1)
    old_household = person.household_id
    run_import(kind="residents", path=residents_file(tmp_path, [person.reveal_id_number()], home.code), actor=alice,
               scope=alice.unit)
    req = TransferRequest.objects.get()
    assert Notification.objects.filter(user=carol, link="/transfers/").exists()  # the street above both is told
    for other in (alice, bob):  # each covers one household only
        client = client_for(other)
        assert person.name not in client.get("/transfers/").content.decode()
        assert client.post(f"/transfers/{req.pk}/decide/", {"decision": "approve"}).status_code == 404
    client = client_for(carol)
    page = client.get("/transfers/").content.decode()
    assert person.name in page and home.address in page
    assert client.post(f"/transfers/{req.pk}/decide/", {"decision": "approve"}).status_code == 302
    person.refresh_from_db()
    assert person.household_id == home.pk
    assert PastResidence.objects.get(resident=person).household_id == old_household
    req.refresh_from_db()
    assert (req.status, req.decided_by) == (TransferStatus.APPROVED, carol)
    event = AuditEvent.objects.get(action="units.approve_transfer")
    assert (event.actor, event.detail["to_household"], event.detail["requested_by"]) == (carol, home.code, "alice")
    with pytest.raises(transfers.TransferRefused, match="已处理"):
        transfers.do_decide_transfer(req, actor=carol, approve=False, reason="重复")


def test_refusing_needs_a_reason_and_moves_nobody(world, alice, carol, tmp_path):
    (person,) = theirs(1)
    run_import(kind="residents", path=residents_file(tmp_path, [person.reveal_id_number()], alices_household().code),
               actor=alice, scope=alice.unit)
    req = TransferRequest.objects.get()
    with pytest.raises(transfers.TransferRefused, match="原因"):
        transfers.do_decide_transfer(req, actor=carol, approve=False, reason="")
    transfers.do_decide_transfer(req, actor=carol, approve=False, reason="本人未迁出")
    person.refresh_from_db()
    assert person.household.unit.path.find(f"/{TIANQIAO_COMMUNITY}/") > 0
    assert AuditEvent.objects.get(action="units.refuse_transfer").detail["reason"] == "本人未迁出"


def test_the_special_population_import_answers_elsewhere_and_unknown_alike(world, alice, tmp_path):
    (person,) = theirs(1)
    path = tmp_path / "sp.csv"
    path.write_text("id_number,tags\n" + f"{person.reveal_id_number()},独居老人\n{guessed_numbers(1)[0]},独居老人\n",
                    encoding="utf-8")
    job = run_import(kind="special-population", path=path, actor=alice, scope=alice.unit)
    assert job.status == ImportStatus.FAILED
    assert [e["message"] for e in job.errors] == ["本辖区未找到该身份证号的居民，请先导入居民"] * 2


def test_the_console_moves_as_before(world, tmp_path):
    (person,) = theirs(1)
    home = alices_household()
    job = run_import(kind="residents", path=residents_file(tmp_path, [person.reveal_id_number()], home.code))
    assert job.status == ImportStatus.SUCCEEDED and job.updated == 1
    person.refresh_from_db()
    assert person.household_id == home.pk and not TransferRequest.objects.exists()
    assert not CrossScopeHits.objects.exists()


def test_the_add_resident_form_answers_like_the_import_and_counts_too(world, alice, carol, client_for):
    home = alices_household()
    (person,) = theirs(1)
    client = client_for(alice)
    r = client.post(f"/households/{home.code}/residents/add/", {"id_number": person.reveal_id_number(),
                                                                 "name": "搬来"}, follow=True)
    assert r.status_code == 200
    assert " ".join(str(m) for m in r.context["messages"]).startswith("添加居民：已保存（身份证号已在其他辖区登记的居民")
    person.refresh_from_db()
    assert person.name != "搬来" and TransferRequest.objects.get().resident == person
    assert CrossScopeHits.objects.get(user=alice).hits == 1
    # Past the cap the form is refused too, for any number, and the count survives the refusal.
    CrossScopeHits.objects.filter(user=alice).update(hits=transfers.PER_DAY + 1)
    refused = client.post(f"/households/{home.code}/residents/add/", {"id_number": guessed_numbers(1)[0],
                                                                       "name": "新人"})
    assert refused.status_code == 400 and "超过每日上限" in refused.content.decode()
    assert not Resident.objects.filter(name="新人").exists()


# --- one answer for "registered elsewhere" and "unknown" (issue 14, "No existence oracle") --------------

JOB_FIELDS = ("status", "rows_total", "rows_done", "created", "updated", "unchanged", "invalid", "duplicate",
              "unmatched", "message", "errors")


def _answer(job) -> dict:
    return {f: getattr(job, f) for f in JOB_FIELDS}


def _page(client, job) -> str:
    """The job's page as the importer sees it, its own id and file name taken out."""
    html = client.get(f"/imports/{job.pk}/").content.decode()
    html = re.sub(r'(csrfmiddlewaretoken" value=|nonce=)"[^"]*"', r"\1", html)
    return html.replace(f"/{job.pk}/", "/N/").replace(job.filename, "F").replace(f"#{job.pk}", "#N")


def test_an_import_naming_someone_registered_elsewhere_answers_as_one_naming_a_new_number(
        world, alice, bob, carol, tmp_path, client_for):
    home = alices_household()
    (person,) = theirs(1)
    fresh = guessed_numbers(1, start=500)[0]
    client = client_for(alice)
    answers, pages = [], []
    for name, number in (("elsewhere.csv", person.reveal_id_number()), ("unknown.csv", fresh)):
        # The same file twice: the first time, and again while the request waits (the fresh number is
        # then a resident of hers: "unchanged"; the other must not answer differently).
        for round_ in (1, 2):
            job = run_import(kind="residents", path=residents_file(tmp_path, [number], home.code, f"{round_}{name}"),
                             actor=alice, scope=alice.unit)
            answers.append(_answer(job))
            pages.append(_page(client, job))
    assert answers[0] == answers[2] and answers[1] == answers[3]
    assert (answers[0]["created"], answers[1]["unchanged"]) == (1, 1)
    assert pages[0] == pages[2] and pages[1] == pages[3]
    assert "身份证号已在其他辖区登记的居民计入新增" in answers[0]["message"]
    # Behind the answer: the fresh number is registered, the other person waits for the street.
    assert Resident.objects.get(id_hash=_hash(fresh)).household_id == home.pk
    person.refresh_from_db()
    assert person.household_id != home.pk
    (req,) = TransferRequest.objects.all()  # one request, not one per import
    assert (req.resident_id, req.to_household_id, req.requested_by) == (person.pk, home.pk, alice)
    assert list(transfers.transfers_for(carol)) == [req] and not transfers.transfers_for(alice).exists()
    assert Notification.objects.filter(user=carol, link="/transfers/").count() == 1
    assert not Notification.objects.filter(user__in=[alice, bob], link="/transfers/").exists()
    # Counted once against her daily cap (the repeat asks nothing new).
    assert CrossScopeHits.objects.get(user=alice).hits == 1


def _hash(number: str) -> str:
    from wuyiqu.lib import crypto

    return crypto.cipher().lookup_hash(number)


def _form(html: str, number: str) -> str:
    """The refused form as the user sees it, the number they typed and the page's tokens taken out."""
    return re.sub(r'(csrfmiddlewaretoken" value=|nonce=)"[^"]*"', r"\1", html).replace(number, "X")


def test_the_add_resident_form_answers_elsewhere_and_unknown_alike(world, alice, carol, client_for):
    home = alices_household()
    (person,) = theirs(1)
    fresh = guessed_numbers(1, start=700)[0]
    client = client_for(alice)
    seen = []
    for number in (person.reveal_id_number(), fresh):
        for _round in (1, 2):
            r = client.post(f"/households/{home.code}/residents/add/", {"id_number": number, "name": "来人"})
            follow = client.get(r["Location"]) if r.status_code == 302 else r
            seen.append((r.status_code, r.get("Location"), [str(m) for m in follow.context["messages"]]
                         if follow.context and "messages" in follow.context else None,
                         _form(r.content.decode(), number) if r.status_code != 302 else ""))
    assert seen[0] == seen[2] and seen[1] == seen[3]
    assert seen[0][0] == 302 and seen[1][0] == 400  # the second time: "already registered", both
    assert seen[0][2][0].startswith("添加居民：已保存（身份证号已在其他辖区登记的居民计入新增")
    assert TransferRequest.objects.get().resident_id == person.pk
    assert list(transfers.transfers_for(carol)) == [TransferRequest.objects.get()]
    assert CrossScopeHits.objects.get(user=alice).hits == 1
