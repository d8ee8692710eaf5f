"""Concurrency through a live server: 500 households of one building sign at once (plus repeats), and
two reviewers approve the same application at once.

On PostgreSQL each request thread of the live server has its own connection and the requests really
overlap in the database. The SQLite test database is in memory, and Django hands the live server's
threads one shared connection, which cannot hold two transactions at once; there the requests still
arrive concurrently over HTTP, from fewer clients, but the application handles them one at a time
(as SQLite itself would with transaction_mode=IMMEDIATE on the file database)."""

from __future__ import annotations

import contextlib
import re
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait

import time_machine
from django.db import close_old_connections, connection
from test_applications_world import NOW, build, people, sign_all

from wuyiqu.applications.actions import (
    ReviewConflict,
    do_open_application,
    do_review_application,
    do_submit_application,
)
from wuyiqu.applications.models import Application, CoSignature, ReviewStep
from wuyiqu.lib import crypto
from wuyiqu.lib.idcard import check_digit, mask_id_number, mask_phone
from wuyiqu.units.models import Household, Resident, Unit, path_for

HOUSEHOLDS = 500
REPEATS = 100  # households that sign a second time, mixed in: harmless, never a second row


def workers() -> int:
    return 50 if connection.vendor == "postgresql" else 8


def big_building(n: int) -> tuple[Unit, dict[int, str]]:
    """A generated building of ``n`` households, one resident each; returns it and household id -> pin."""
    district = Unit.objects.create(code="Z", name="并发区", kind="district", path=path_for("", "Z"))
    street = Unit.objects.create(code="Z1", name="并发街道", kind="street", parent=district, path=path_for(district.path, "Z1"), depth=1)
    community = Unit.objects.create(code="Z1C", name="并发社区", kind="community", parent=street,
                                    path=path_for(street.path, "Z1C"), depth=2)
    building = Unit.objects.create(code="Z1C-B1", name="并发1栋", kind="building", parent=community,
                                   path=path_for(community.path, "Z1C-B1"), depth=3)
    households = Household.objects.bulk_create([
        Household(code=f"Z1C-B1-{i:04d}", unit=building, address=f"并发1栋{i // 20 + 1}-{i % 20 + 1:02d}")
        for i in range(n)])
    c = crypto.cipher()
    residents, pins = [], {}
    for i, hh in enumerate(households):
        first17 = f"500222198001{i % 28 + 1:02d}{i:03d}"[:17]
        number = first17 + check_digit(first17)
        phone = f"139{i:08d}"
        pins[hh.pk] = number[-6:]  # the proof of membership: the last 6 of the ID number
        residents.append(Resident(household=hh, name=f"居民{i}", sex="F",
                                  id_enc=c.encrypt(number), id_hash=c.lookup_hash(number),
                                  id_masked=mask_id_number(number), phone_enc=c.encrypt(phone),
                                  phone_hash=c.lookup_hash(phone), phone_masked=mask_phone(phone)))
    Resident.objects.bulk_create(residents)
    return building, pins


def post_form(url: str, fields: dict, cookie: str, timeout: float = 120) -> tuple[int, str]:
    body = urllib.parse.urlencode(fields).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded", "Referer": url})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def deep_backlog(live_server) -> None:
    """Let the live server's socket queue every client that connects at once. Django's test server
    listens with a backlog of 10: 50 phones connecting together overflow it and, on a busy machine
    whose server thread accepts slowly, the kernel resets some connections (ConnectionResetError) —
    the test harness's limit, not the product's (gunicorn listens with a backlog of 2048)."""
    live_server.thread.httpd.socket.listen(1024)


def serialise_on_sqlite(live_server) -> None:
    """Wrap the live server's application in a lock when the test database is SQLite in memory."""
    if connection.vendor != "sqlite":
        return
    httpd = live_server.thread.httpd
    app, lock = httpd.get_app(), threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            return app(environ, start_response)

    httpd.set_app(one_at_a_time)


def test_500_households_sign_at_once(transactional_db, live_server):
    from wuyiqu.accounts.actions import do_create_user
    from wuyiqu.accounts.models import Role

    serialise_on_sqlite(live_server)
    deep_backlog(live_server)
    building, pins = big_building(HOUSEHOLDS)
    head = do_create_user(actor=None, username="head", password="correct-horse-battery", role=Role.BUILDING_HEAD,
                          unit=building)
    app = do_open_application(actor=head, unit=building)
    url = f"{live_server.url}/s/{app.token}/"
    with urllib.request.urlopen(url, timeout=60) as r:
        html = r.read().decode()
        cookie = "; ".join(h.split(";")[0] for h in r.headers.get_all("Set-Cookie"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    assert html.count("<option value=") == HOUSEHOLDS + 1

    ids = list(pins)
    jobs = ids + ids[:REPEATS]
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def sign(hid: int) -> None:
        status, page = post_form(url, {"csrfmiddlewaretoken": token, "household": hid, "proof": pins[hid]}, cookie)
        outcome = "signed" if 'data-result="signed"' in page else "already" if 'data-result="already"' in page else page[:300]
        with lock:
            results.append((status, outcome))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        done, pending = wait([pool.submit(sign, hid) for hid in jobs], timeout=300)
        for f in done:
            f.result()
    elapsed = time.monotonic() - started
    assert not pending, f"{len(pending)} requests still running after 300 s"
    print(f"\n{len(jobs)} signing requests, {workers()} clients, {connection.vendor}: {elapsed:.1f} s "
          f"({len(jobs) / elapsed:.0f}/s)")
    assert [s for s, _ in results] == [200] * len(jobs), sorted({r for r in results if r[0] != 200})[:3]
    outcomes = [o for _, o in results]
    assert outcomes.count("signed") == HOUSEHOLDS and outcomes.count("already") == REPEATS
    rows = list(CoSignature.objects.filter(application=app).values_list("household_id", flat=True))
    assert len(rows) == HOUSEHOLDS and set(rows) == set(ids)  # none duplicated, none lost


def test_two_reviewers_approve_at_once_and_one_wins(transactional_db):
    with time_machine.travel(NOW, tick=True):
        two_reviewers()


def two_reviewers():
    u = build()
    p = people(u)
    other = people_second_community_staff(u)
    app = do_open_application(actor=p["hank"], unit=u["B1"])
    sign_all(app)
    app = do_submit_application(actor=p["hank"], application=app)
    seen = Application.objects.get(pk=app.pk)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    # SQLite in memory: each thread's own connection shares one cache, which refuses (rather than
    # waits for) a second writer; there the two decisions are made one after the other, both from the
    # same stale page. On PostgreSQL they really run at once and select_for_update decides.
    guard = threading.Lock() if connection.vendor == "sqlite" else contextlib.nullcontext()

    def approve(actor) -> None:
        try:
            barrier.wait(timeout=10)
            with guard:
                do_review_application(seen_copy(seen), actor=actor,
                                      decision="approve", opinion=f"{actor.username} 同意")
            outcomes.append("won")
        except ReviewConflict as e:
            outcomes.append(str(e))
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=approve, args=(actor,)) for actor in (p["cora"], other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["won", "申请已被他人处理，当前状态为“街道初审”"]
    assert Application.objects.get(pk=app.pk).status == "street_review"
    assert ReviewStep.objects.filter(application=app, decision="approve").count() == 1


def seen_copy(app: Application) -> Application:
    """The application as a reviewer's page saw it (each thread its own instance)."""
    return Application(pk=app.pk, unit_id=app.unit_id, title=app.title, status=app.status)


def people_second_community_staff(u):
    from test_applications_world import person

    from wuyiqu.accounts.models import Role

    return person("cora2", Role.COMMUNITY_STAFF, u["T1C"])
