"""Notifications: who is told at each transition (the next step's role within scope; the applicant on
return, reject and naming), by inbox and e-mail sent on commit, and the unread count in the header."""

from __future__ import annotations

import pytest
import time_machine
from django.db import transaction
from test_applications_world import NOW, build, people, sign_all

from wuyiqu.applications.actions import do_open_application, do_review_application, do_submit_application
from wuyiqu.notifications.actions import notify
from wuyiqu.notifications.models import Notification


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def w(db):
    u = build()
    return u, people(u)


def submitted(u, p, django_capture_on_commit_callbacks):
    app = do_open_application(actor=p["hank"], unit=u["B1"])
    sign_all(app)
    with django_capture_on_commit_callbacks(execute=True):
        return do_submit_application(actor=p["hank"], application=app)


def inbox(user) -> list[str]:
    return list(Notification.objects.filter(user=user).order_by("id").values_list("text", flat=True))


def test_each_step_tells_the_next_reviewers_in_scope_only(w, mailoutbox, django_capture_on_commit_callbacks):
    u, p = w
    app = submitted(u, p, django_capture_on_commit_callbacks)
    assert inbox(p["cora"]) == ["待办：“龙湖花园1栋”的无疫楼栋申请待村/社区受理"]
    assert [m.to for m in mailoutbox] == [["cora@example.test"]]
    for actor in ("cora", "sam", "hugo"):
        with django_capture_on_commit_callbacks(execute=True):
            app = do_review_application(app, actor=p[actor], decision="approve", opinion="同意")
    assert len(inbox(p["sam"])) == 1 and len(inbox(p["hugo"])) == 1 and len(inbox(p["cmd"])) == 1
    for other in ("tom", "otto", "vera", "bella", "pam", "gina"):
        assert inbox(p[other]) == [], other
    assert sorted(m.to[0] for m in mailoutbox) == sorted(f"{x}@example.test" for x in ("cora", "sam", "hugo", "cmd"))
    assert f"/applications/{app.pk}/" in mailoutbox[-1].body


def test_the_applicant_is_told_of_return_reject_and_naming(w, mailoutbox, django_capture_on_commit_callbacks):
    u, p = w
    app = submitted(u, p, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        app = do_review_application(app, actor=p["cora"], decision="return", opinion="请补充照片")
    assert inbox(p["hank"]) == ["您的“龙湖花园1栋”无疫楼栋申请被村/社区受理退回：请补充照片"]
    with django_capture_on_commit_callbacks(execute=True):
        app = do_submit_application(actor=p["hank"], application=app)
        app = do_review_application(app, actor=p["cora"], decision="reject", opinion="不符合")
    assert inbox(p["hank"])[-1] == "您的“龙湖花园1栋”无疫楼栋申请未通过（村/社区受理）：不符合"
    app = do_open_application(actor=p["hank"], unit=u["B1"])
    sign_all(app)
    with django_capture_on_commit_callbacks(execute=True):
        app = do_submit_application(actor=p["hank"], application=app)
        for actor in ("cora", "sam", "hugo", "cmd"):
            app = do_review_application(app, actor=p[actor], decision="approve", opinion="同意")
    assert inbox(p["hank"])[-1].startswith("“龙湖花园1栋”已被命名为无疫楼栋，证书编号 WYQ-2022-")
    assert "hank@example.test" in [m.to[0] for m in mailoutbox]


def test_mail_goes_only_after_commit(w, mailoutbox, django_capture_on_commit_callbacks):
    u, p = w
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notify([p["cora"]], text="测试", link="/")
    assert mailoutbox == [] and len(callbacks) == 1
    callbacks[0]()
    assert [m.subject for m in mailoutbox] == ["[无疫区] 测试"]


def test_a_rolled_back_review_tells_nobody(w, mailoutbox, django_capture_on_commit_callbacks):
    u, p = w
    app = submitted(u, p, django_capture_on_commit_callbacks)
    mailoutbox.clear()
    before = Notification.objects.count()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            do_review_application(app, actor=p["cora"], decision="approve", opinion="受理")
            assert Notification.objects.count() == before + 1  # sam's row, inside the transaction
            raise RuntimeError("something later in the same request fails")
    assert callbacks == [] and mailoutbox == [] and Notification.objects.count() == before
    app.refresh_from_db()
    assert app.status == "community_review"


def test_the_header_counts_unread_and_the_inbox_marks_read(w, client_for, django_capture_on_commit_callbacks):
    u, p = w
    app = submitted(u, p, django_capture_on_commit_callbacks)
    c = client_for(p["cora"])
    html = c.get("/notifications/").content.decode()
    assert '<span class="badge" id="unread-count">1</span>' in html
    n = Notification.objects.get(user=p["cora"])
    r = c.post(f"/notifications/{n.pk}/open/")
    assert r.status_code == 302 and r["Location"] == f"/applications/{app.pk}/"
    assert 'id="unread-count"' not in c.get("/notifications/").content.decode()
    # Someone else's notification is a 404.
    assert client_for(p["sam"]).post(f"/notifications/{n.pk}/open/").status_code == 404


def shown_inbox(client) -> str:
    return client.get("/notifications/").content.decode()


def test_a_to_do_leaves_every_inbox_once_its_step_is_done(w, client_for, django_capture_on_commit_callbacks):
    """待办 is about a step: when anyone decides it, the to-do leaves the inboxes of all who were told
    (and the unread count), and the next step's people get theirs."""
    from test_applications_world import person

    from wuyiqu.accounts.models import Role

    u, p = w
    cora2 = person("cora2", Role.COMMUNITY_STAFF, u["T1C"])  # two people act at the community's step
    app = submitted(u, p, django_capture_on_commit_callbacks)
    for who in (p["cora"], cora2):
        html = shown_inbox(client_for(who))
        assert "待办：“龙湖花园1栋”的无疫楼栋申请待村/社区受理" in html and 'id="unread-count">1<' in html
    with django_capture_on_commit_callbacks(execute=True):
        app = do_review_application(app, actor=p["cora"], decision="approve", opinion="受理")
    for who in (p["cora"], cora2):
        html = shown_inbox(client_for(who))
        assert "待办：“龙湖花园1栋”" not in html and 'id="unread-count"' not in html, who
    assert "待办：“龙湖花园1栋”的无疫楼栋申请待街道初审" in shown_inbox(client_for(p["sam"]))
    # Returned to the applicant: the street's to-do goes too; the applicant is told why.
    with django_capture_on_commit_callbacks(execute=True):
        app = do_review_application(app, actor=p["sam"], decision="return", opinion="请补充照片")
    assert "待办：“龙湖花园1栋”" not in shown_inbox(client_for(p["sam"]))
    assert "请补充照片" in shown_inbox(client_for(p["hank"]))
    # Submitted again: a new to-do at the first step, the closed ones stay closed.
    with django_capture_on_commit_callbacks(execute=True):
        do_submit_application(actor=p["hank"], application=app)
    assert shown_inbox(client_for(p["cora"])).count("待办：“龙湖花园1栋”") == 1
    assert Notification.objects.filter(user=p["cora"], done_at__isnull=False).count() == 1


def test_the_inbox_reads_in_the_readers_language(w, client_for, django_capture_on_commit_callbacks):
    """The row keeps the zh-hans text as sent; the inbox renders its template in English for a
    reader who chose English (the unit's name and the reviewer's words as written)."""
    from django.conf import settings

    u, p = w
    app = submitted(u, p, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        do_review_application(app, actor=p["cora"], decision="return", opinion="photos missing")
    assert inbox(p["hank"]) == ["您的“龙湖花园1栋”无疫楼栋申请被村/社区受理退回：photos missing"]
    c = client_for(p["hank"])
    c.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = c.get("/notifications/").content.decode()
    assert "Your application for Epidemic-free building of “龙湖花园1栋” was returned" in html
    assert "photos missing" in html and "退回" not in html


def test_the_command_is_told_when_a_title_it_named_is_withdrawn(w, django_capture_on_commit_callbacks):
    """A case in a named building withdraws its title the same day: the responsible people and the
    command that named it are told (also when another commander withdraws a title by hand)."""
    from test_applications_world import name_through_chain, person

    from wuyiqu.accounts.models import Role
    from wuyiqu.certification.models import Title
    from wuyiqu.health.actions import do_record_case
    from wuyiqu.supervision.actions import do_withdraw_title

    u, p = w
    app = submitted(u, p, django_capture_on_commit_callbacks)
    name_through_chain(app, p)
    assert Title.objects.get(unit=u["B1"], withdrawn_on__isnull=True)
    do_record_case(actor=None, reported_on=NOW.date(), case_type="confirmed", unit=u["B1"])
    assert Title.objects.get(unit=u["B1"]).withdrawn_on == NOW.date()
    told = [t for t in inbox(p["cmd"]) if t.startswith("【摘牌】龙湖花园1栋的无疫楼栋称号已于2022-11-28摘牌：")]
    assert len(told) == 1, inbox(p["cmd"])
    assert any(t.startswith("【摘牌】龙湖花园1栋") for t in inbox(p["hank"]))
    assert not any("摘牌" in t for t in inbox(p["hugo"]))  # the health commission did not name it

    # A title withdrawn by another commander's hand: the command is told too.
    b9 = do_open_application(actor=p["bella"], unit=u["B9"])
    sign_all(b9)
    name_through_chain(do_submit_application(actor=p["bella"], application=b9), p)
    cmd2 = person("cmd2", Role.COMMAND, u["T"])
    do_withdraw_title(actor=cmd2, unit=u["B9"], reason="材料不实")
    assert any(t.startswith("【摘牌】") and "材料不实" in t for t in inbox(p["cmd"]))
