"""Mixed load against a live server on PostgreSQL: residents co-signing from 500 phones, reviewers
working their queues and a laboratory posting nucleic-acid result batches, all at once; then a check
that every accepted write is in the database exactly once and nothing refused is.

    .venv/bin/python bench/load_mixed.py                                  # database wuyiqu_h_load, 180 s
    .venv/bin/python bench/load_mixed.py --seconds 60 --phones 200 --phone-think 1,3
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/other .venv/bin/python bench/load_mixed.py

1. The world is ``bench/nat_world.py``'s (imported): the real 綦江区 divisions and, below every village
   and community, buildings of 25 households of 4 (``--residents``, default 1,000,000, kept between
   runs). Each run adds its own fixtures: draft applications of fresh buildings whose households the
   phones sign (their short links), decoy buildings whose households only get wrong proofs,
   applications waiting at the street, health-commission and command steps (seeded directly: the
   bench world has no inspections or surveys, so a self-assessment would not pass; submission is not
   what is measured; the ones earlier runs left waiting at a review step are closed first, so that
   every run starts with the same queues), 2 street-staff reviewers for each of ``--streets``
   streets, 2 of the health commission and 2 of the command, and an API token of the district for
   the laboratory.
2. gunicorn on 127.0.0.1 (``bench/dashboard_load.start_server``, loopback only), then for ``--seconds``:
   - ``--phones`` phones (asyncio + aiohttp, one process), each from its own loopback address
     (127.0.x.y: the per-address failure lock of the signing page counts each phone apart, as it
     would count real phones): open ``/s/<token>/`` (the poster's QR code), think (``--phone-think``
     seconds, uniform), sign for a household with the last 6 characters of a member's ID number,
     think, next household. The phones move through the buildings together (about 25 phones on one
     building at a time, all waiting on that application's row lock, like a poster in a hallway).
     One sign in 10 is the same household again (must answer "already signed"), one in 40 a wrong
     proof on a decoy household (must be refused with 400). One more client, the guesser, sends
     wrong proofs from one address: the 20th and every later one must be 429 (locked).
   - the reviewers: list the queue (待办), open one of its first five applications, think, approve
     (85 %) or return it with an opinion. Two reviewers of one street may pick the same application:
     the second is refused (someone else handled it); that is counted as a conflict, not an error.
     The command's naming of a building that got a positive case since it applied is refused (read
     from the page); the reviewer then returns the application.
   - the laboratory: ``POST /api/v1/facts/nat-results`` batches of ``--lab-batch`` results of
     yesterday with a batch key, one after the other; each batch has 1.5 % people not on the
     register (kept, unmatched) and 1 % bad records (a wrong check digit, a time in the future:
     refused per record). One accepted batch in 20 is sent again with the same key (must be
     replayed, nothing written), one in 50 under a new key (must add nothing). A batch whose answer
     is lost (timeout, 5xx) is sent again with its key until answered. Each batch carries one
     positive result: alternately of a building named before the run (supervision must withdraw it
     in the batch's transaction) and of a building at the head of the command's queue.
3. Prints per kind of request: count, throughput, p50/p95/p99/max latency, expected refusals,
   conflicts and errors (5xx, timeouts, unexpected answers); the CPU of gunicorn, of this run's
   PostgreSQL backends and of this load generator; the machine's load average (it is shared).
4. Checks in the database: every signature the phones were told was recorded is there exactly once,
   no decoy household is signed, the guesser's failures stopped at the lock; every decision the
   reviewers were told was taken is there exactly once and no refused one; every result the
   laboratory was told was accepted is there exactly once and no refused record is; one case per
   positive, the buildings named before the run withdrawn after theirs, no unit named over a case.
   Writes all of it to ``bench/out/load_mixed_<time>.json``; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import random
import re
import resource
import secrets
import signal
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dashboard_load  # noqa: E402  (bench/dashboard_load.py: the live gunicorn server and its CPU)
import nat_world  # noqa: E402  (bench/nat_world.py: the world of residents)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
PG_URL = "postgres://postgres@127.0.0.1:5432/wuyiqu_h_load"
PASSWORD = "correct-horse-battery"
REVIEW_STEPS = ("community_review", "street_review", "health_review", "command_review")
DISTRICT = "500110"
GUESSER_IP = "127.0.250.1"
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


# --- the world and this run's fixtures -------------------------------------------------------------

def setup(residents: int) -> str:
    os.environ.setdefault("BENCH_DATABASE_URL", PG_URL)
    url = nat_world.setup_django("postgres")
    nat_world.ensure_residents(residents)
    # A world just built in one transaction has no planner statistics until autovacuum gets to it:
    # then households are scanned whole per signing request (2026-12-07: PostgreSQL 43 ms of CPU per
    # request instead of 6, p50 8x). Analyse before every run so the figures do not depend on it.
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return url


@dataclasses.dataclass
class Job:
    """One phone's errand: a household on an application, the proof to type and what must happen."""
    token: str
    application_id: int
    household_id: int
    proof: str
    expect: str  # signed | already | refused | locked


@dataclasses.dataclass
class Fixtures:
    run: str
    started_at: dt.datetime
    phone_jobs: list[list[Job]]
    guesser_jobs: list[Job]
    sign_app_ids: list[int]
    decoy_app_ids: list[int]
    decoy_household_ids: list[int]
    reviewers: list[str]
    review_app_ids: list[int]
    lab_secret: str
    lab_token_id: int
    lab_day: dt.date
    positives: list[int]  # residents (nat_world index) who get a positive result, one a batch
    named_before: dict[int, int]  # buildings named before the run: their positive resident -> unit id


def _unused_buildings(under: str = "/"):
    from wuyiqu.applications.models import Application
    from wuyiqu.units.models import Unit

    return (Unit.objects.filter(kind="building", code__contains="-NB", path__startswith=under)
            .exclude(pk__in=Application.objects.values("unit_id")))


def _fresh_buildings(n: int, under: str = "/") -> list:
    """``n`` bench buildings that never had an application (each run uses new ones): a street's
    from the lowest codes, the others from the highest, so that the streets keep theirs longer."""
    found = list(_unused_buildings(under).order_by("code" if under != "/" else "-code")[:n])
    if len(found) < n:
        raise SystemExit(f"only {len(found)} unused buildings under {under} (need {n}): a bigger --residents, "
                         "or a fresh database")
    return found


def _applications(buildings, status: str, *, token: bool, now: dt.datetime) -> list:
    from wuyiqu.applications.models import Application
    from wuyiqu.units.models import TITLE_BY_KIND

    apps = [Application(unit=b, title=TITLE_BY_KIND["building"], status=status,
                        token=secrets.token_urlsafe(16) if token else None,
                        submitted_at=None if status == "draft" else now - dt.timedelta(minutes=i))
            for i, b in enumerate(buildings)]
    return Application.objects.bulk_create(apps)


def _proofs(unit_ids: list[int]) -> dict[int, tuple[int, str, str]]:
    """household id -> (application's unit id, the proof of membership: the last 6 characters of its
    first member's ID number (decrypted here, as the phone's owner would type it), 6 characters that
    end no member's ID number)."""
    from wuyiqu.applications.actions import PROOF_LENGTH
    from wuyiqu.lib import crypto
    from wuyiqu.units.models import Resident

    c = crypto.cipher()
    first: dict[int, tuple[int, str]] = {}
    taken: dict[int, set[str]] = defaultdict(set)
    for hid, uid, id_enc in (
            Resident.objects.filter(household__unit_id__in=unit_ids).order_by("household_id", "id")
            .values_list("household_id", "household__unit_id", "id_enc")):
        tail = c.decrypt(id_enc)[-PROOF_LENGTH:].upper()
        first.setdefault(hid, (uid, tail))
        taken[hid].add(tail)
    return {hid: (uid, proof, next(f"{n:06d}" for n in range(0, 10**6, 111111) if f"{n:06d}" not in taken[hid]))
            for hid, (uid, proof) in first.items()}


def prepare(args) -> Fixtures:
    from django.db import connection, transaction
    from django.utils import timezone

    from wuyiqu.accounts.actions import do_create_user
    from wuyiqu.accounts.models import Role, User
    from wuyiqu.api.actions import do_create_api_token
    from wuyiqu.units.models import Unit

    rnd = random.Random(args.seed)
    think_lo = args.phone_think[0]
    per_phone = int(args.seconds / max(0.2, 2 * think_lo)) + 3
    per_building = nat_world.PER_BUILDING // nat_world.PER_HOUSEHOLD
    buildings_needed = (args.streets * args.street_queue + args.district_queue + 2 * (args.district_queue // 2)
                        + -(-args.phones * (per_phone + per_phone // 40 + 1) // per_building) + 40)
    if _unused_buildings().count() < buildings_needed:
        # Every building has had an application in earlier runs: start the applications, titles and
        # their supervision over (this database is the benchmark's own).
        with connection.cursor() as cur:
            cur.execute("TRUNCATE applications_application, certification_title, supervision_warning, "
                        "supervision_titleevent, health_positivecase CASCADE")
        print(f"fewer than {buildings_needed} buildings without an application: applications, titles, warnings "
              "and cases of earlier runs deleted")
    else:
        # The applications earlier runs left waiting at a review step would stay in this run's queues,
        # which list everything waiting (after 5 runs the health commission's held 1,043, 0.3-0.4 s
        # of CPU a view against 120 on a fresh world): closed, so that every run starts with the same
        # queues (their buildings stay used).
        from wuyiqu.applications.models import Application

        left = Application.objects.filter(status__in=REVIEW_STEPS).update(status="rejected")
        if left:
            print(f"{left} applications of earlier runs waiting at a review step closed (rejected)")
    now = timezone.now()
    run = timezone.localtime(now).strftime("%Y%m%d-%H%M%S")
    district = Unit.objects.get(code=DISTRICT)
    streets = [s for s in Unit.objects.filter(kind="street").order_by("code")
               if _unused_buildings(s.path).count() >= args.street_queue][: args.streets]

    # Reviewers (kept between runs).
    reviewers = []
    for street in streets:
        for k in (1, 2):
            reviewers.append((f"load-st-{street.code}-{k}", Role.STREET_STAFF, street))
    for k in (1, 2):
        reviewers.append((f"load-health-{k}", Role.HEALTH_COMMISSION, district))
        reviewers.append((f"load-command-{k}", Role.COMMAND, district))
    for username, role, unit in reviewers:
        if not User.objects.filter(username=username).exists():
            do_create_user(actor=None, username=username, password=PASSWORD, role=role, unit=unit, display_name=username)

    # Phones: one job list each. Enough errands for the whole run at the shortest think time.
    households_needed = args.phones * per_phone
    decoys_needed = args.phones * (per_phone // 40 + 1) + 40
    with transaction.atomic():
        review_apps = []  # first: the streets' queues need buildings of those streets
        for street in streets:
            review_apps += _applications(_fresh_buildings(args.street_queue, street.path), "street_review",
                                         token=False, now=now)
        review_apps += _applications(_fresh_buildings(args.district_queue), "health_review", token=False, now=now)
        review_apps += _applications(_fresh_buildings(args.district_queue // 2), "command_review", token=False, now=now)
        sign_apps = _applications(_fresh_buildings(-(-households_needed // per_building)), "draft", token=True, now=now)
        decoy_apps = _applications(_fresh_buildings(-(-decoys_needed // per_building)), "draft", token=True, now=now)
        _token, lab_secret = do_create_api_token(actor=None, name=f"load-lab-{run}", unit=district,
                                                 kinds=["nat-results"], days=1)
    token_of = {a.unit_id: (a.token, a.pk) for a in sign_apps + decoy_apps}
    proofs = _proofs(list(token_of))
    sign_units = {a.unit_id for a in sign_apps}
    signable = sorted((hid, uid, proof) for hid, (uid, proof, _wrong) in proofs.items() if uid in sign_units)
    # A decoy household only ever gets a wrong proof: 4 digits none of its members has.
    decoys = sorted((hid, uid, wrong) for hid, (uid, _proof, wrong) in proofs.items() if uid not in sign_units)

    # Errand k of phone p is household k * phones + p: at any moment the phones are on the same
    # ~phones/25 buildings, about 25 phones on each application.
    jobs: list[list[Job]] = [[] for _ in range(args.phones)]
    k = 0
    decoy_iter = iter(decoys)
    for step in range(per_phone):
        for p in range(args.phones):
            mine = jobs[p]
            if step % 10 == 9 and any(j.expect == "signed" for j in mine):
                prev = rnd.choice([j for j in mine if j.expect == "signed"])
                mine.append(dataclasses.replace(prev, expect="already"))
            elif step % 40 == 20 + p % 20:
                hid, uid, proof = next(decoy_iter)
                tok, aid = token_of[uid]
                mine.append(Job(tok, aid, hid, proof, "refused"))
            elif k < len(signable):
                hid, uid, proof = signable[k]
                k += 1
                tok, aid = token_of[uid]
                mine.append(Job(tok, aid, hid, proof, "signed"))
    guesser = []
    for i in range(args.guesses):
        hid, uid, proof = next(decoy_iter)
        tok, aid = token_of[uid]
        guesser.append(Job(tok, aid, hid, proof, "refused" if i < 19 else "locked"))

    # The laboratory's day: yesterday, emptied (this database is the benchmark's own).
    lab_day = timezone.localdate() - dt.timedelta(days=1)
    from wuyiqu.health.nat_import import ensure_nat_partitions

    ensure_nat_partitions(lab_day, lab_day)
    with connection.cursor() as cur:
        cur.execute("DELETE FROM health_natresult WHERE sampled_on = %s", [lab_day])
        cur.execute("DELETE FROM health_positivecase WHERE source = 'nat' AND reported_on = %s", [lab_day])
    # One positive result a batch, alternately of a resident of a building named before the run
    # (supervision must withdraw it at once, in the laboratory's transaction, while the command
    # names other buildings) and of one waiting at the command's step (named during the run, maybe
    # withdrawn again). Building NBxxxxx holds the residents xxxxx00 … xxxxx99 of nat_world.
    from wuyiqu.applications.models import Application
    from wuyiqu.certification.actions import do_record_existing_title

    # In the command's queue order (oldest submission first, earlier runs' leftovers too): the
    # positives reach the buildings the command is about to name.
    waiting = [a.unit for a in Application.objects.filter(status="command_review").select_related("unit")
               .order_by("submitted_at", "id")[: args.district_queue // 2]]
    named = _fresh_buildings(len(waiting))
    for b in named:
        do_record_existing_title(actor=None, unit=b, named_on=lab_day - dt.timedelta(days=30))
    def positive_resident(building) -> int:
        return int(building.code.rsplit("-NB", 1)[1]) * nat_world.PER_BUILDING + 7

    positives = [positive_resident(b) for pair in zip(named, waiting, strict=True) for b in pair]
    # Attempts of earlier runs would count against this run's addresses.
    from wuyiqu.applications.models import SignatureAttempt

    SignatureAttempt.objects.filter(ip__startswith="127.").delete()
    return Fixtures(run=run, started_at=now, phone_jobs=jobs, guesser_jobs=guesser,
                    sign_app_ids=[a.pk for a in sign_apps], decoy_app_ids=[a.pk for a in decoy_apps],
                    decoy_household_ids=[d[0] for d in decoys], reviewers=[r[0] for r in reviewers],
                    review_app_ids=[a.pk for a in review_apps], lab_secret=lab_secret, lab_token_id=_token.pk,
                    lab_day=lab_day, positives=positives, named_before={positive_resident(b): b.pk for b in named})


# --- the clients -------------------------------------------------------------------------------------

@dataclasses.dataclass
class Sample:
    kind: str
    at: float  # seconds since the start
    seconds: float
    status: int
    outcome: str  # ok | refused | conflict | moved | unexpected | 5xx | timeout | connection


class Recorder:
    def __init__(self):
        self.samples: list[Sample] = []
        self.t0 = time.perf_counter()
        self.signed: list[tuple[int, int]] = []  # (application, household) the phone was told "signed"
        self.already: list[tuple[int, int]] = []
        self.sign_unknown: list[tuple[int, int]] = []  # no answer: may or may not have been written
        self.refused_sign: list[tuple[int, int, str]] = []  # (application, household, client address)
        self.decided: list[tuple[int, str, str, str]] = []  # (application, from status, reviewer, decision)
        self.decide_refused: list[tuple[int, str, str, str]] = []
        self.decide_unknown: list[tuple[int, str, str]] = []
        self.refused_naming = 0  # namings refused because the unit fails a revoke criterion now
        self.lab_accepted: list[tuple[str, str]] = []  # (id number, local time) of accepted records
        self.lab_refused: list[tuple[str, str]] = []
        self.lab_batches: list[dict] = []  # per batch key: its first answer's counts
        self.lab_checks: list[str] = []  # replays that did not answer as expected
        self.lab_positives: list[int] = []  # residents whose positive result was accepted

    def add(self, kind: str, t: float, seconds: float, status: int, outcome: str) -> None:
        self.samples.append(Sample(kind, t - self.t0, seconds, status, outcome))


async def _request(session, rec: Recorder, kind: str, method: str, url: str, *, ok_status=(200,), timeout=60.0,
                   **kw) -> tuple[int, str, str | None] | None:
    """One timed request; returns (status, body text, Location) or None when no answer came."""
    import aiohttp

    t = time.perf_counter()
    try:
        async with session.request(method, url, allow_redirects=False,
                                   timeout=aiohttp.ClientTimeout(total=timeout), **kw) as resp:
            body = await resp.text()
            status, location = resp.status, resp.headers.get("Location")
    except TimeoutError:
        rec.add(kind, t, time.perf_counter() - t, 0, "timeout")
        return None
    except aiohttp.ClientError:
        rec.add(kind, t, time.perf_counter() - t, 0, "connection")
        return None
    seconds = time.perf_counter() - t
    outcome = "5xx" if status >= 500 else "ok" if status in ok_status else "unexpected"
    rec.add(kind, t, seconds, status, outcome)
    return status, body, location


def _session(address: str, base: str):
    import aiohttp

    connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=2)
    # unsafe=True: keep cookies of an IP-address host (127.0.0.1).
    return aiohttp.ClientSession(base, connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True))


def _phone_address(i: int) -> str:
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


async def phone(i: int, jobs: list[Job], base: str, stop: float, think: tuple[float, float], rec: Recorder,
                *, pause_first: bool = True) -> None:
    rnd = random.Random(i)
    address = _phone_address(i) if i >= 0 else GUESSER_IP
    async with _session(address, base) as s:
        if pause_first:  # people arrive over the first think time, not all in the same second
            await asyncio.sleep(rnd.uniform(0, think[1]))
        for job in jobs:
            if time.perf_counter() >= stop:
                return
            got = await _request(s, rec, "sign: page", "GET", f"/s/{job.token}/")
            if got is None or got[0] != 200:
                await asyncio.sleep(rnd.uniform(*think))
                continue
            m = CSRF_RE.search(got[1])
            if m is None or f'value="{job.household_id}"' not in got[1]:
                rec.samples[-1].outcome = "unexpected"
                continue
            await asyncio.sleep(rnd.uniform(*think))
            expect_status = {"signed": 200, "already": 200, "refused": 400, "locked": 429}[job.expect]
            got = await _request(s, rec, "sign: post", "POST", f"/s/{job.token}/", ok_status=(expect_status,),
                                 data={"csrfmiddlewaretoken": m.group(1), "household": str(job.household_id),
                                       "proof": job.proof})
            key = (job.application_id, job.household_id)
            if got is None or got[0] >= 500:
                rec.sign_unknown.append(key)
            else:
                status, body, _loc = got
                result = re.search(r'data-result="(\w+)"', body)
                said = result.group(1) if result else ("locked" if status == 429 else "refused" if status == 400
                                                       else "?")
                if said == "signed":
                    rec.signed.append(key)
                elif said == "already":
                    rec.already.append(key)
                elif said in ("refused", "locked"):
                    rec.refused_sign.append((*key, address))
                if said != job.expect:
                    rec.samples[-1].outcome = "unexpected"
                elif job.expect in ("refused", "locked"):
                    rec.samples[-1].outcome = "refused"
            await asyncio.sleep(rnd.uniform(*think))


async def _log_in(s, username: str, rec: Recorder) -> None:
    got = await _request(s, rec, "review: login", "GET", "/login/")
    token = CSRF_RE.search(got[1]).group(1)
    got = await _request(s, rec, "review: login", "POST", "/login/", ok_status=(302,),
                         data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token})
    if got is None or got[0] != 302:
        raise SystemExit(f"{username} could not log in: {got and got[0]}")


async def reviewer(i: int, username: str, base: str, stop: float, think: tuple[float, float], rec: Recorder) -> None:
    rnd = random.Random(1000 + i)
    async with _session(f"127.0.240.{1 + i}", base) as s:
        await _log_in(s, username, rec)
        await asyncio.sleep(rnd.uniform(0, think[1]))
        while time.perf_counter() < stop:
            got = await _request(s, rec, "review: queue", "GET", "/applications/queue/")
            ids = re.findall(r'data-application="(\d+)"', got[1]) if got and got[0] == 200 else []
            if not ids:
                await asyncio.sleep(rnd.uniform(*think))
                continue
            app_id = int(rnd.choice(ids[:5]))
            await asyncio.sleep(rnd.uniform(*think) / 2)
            got = await _request(s, rec, "review: detail", "GET", f"/applications/{app_id}/")
            if got is None or got[0] != 200:
                continue
            seen = re.search(r'name="seen_status" value="(\w+)"', got[1])
            if seen is None:  # moved on (decided by the other reviewer) before the page was drawn
                rec.samples[-1].outcome = "moved"
                continue
            token = CSRF_RE.search(got[1]).group(1)
            await asyncio.sleep(rnd.uniform(*think))
            decision = "approve" if rnd.random() < 0.85 else "return"
            key = (app_id, seen.group(1), username)
            while decision:
                got = await _request(s, rec, "review: decide", "POST", f"/applications/{app_id}/review/",
                                     ok_status=(302,), data={
                                         "csrfmiddlewaretoken": token, "seen_status": seen.group(1), "decision": decision,
                                         "opinion": f"{'同意' if decision == 'approve' else '请整改'}（压测 {username}）"})
                decided = rec.samples[-1]  # (no await since the request: still the last sample)
                if got is None or got[0] >= 500:
                    rec.decide_unknown.append(key)
                    break
                if got[0] == 302 and (got[2] or "").endswith("/applications/queue/"):
                    rec.decided.append((*key, decision))
                    break
                if got[0] != 302:
                    break
                # Back on the detail page with the reason: someone else decided first, or (the
                # command) the unit fails a revoke criterion now — a positive case since it
                # applied — and cannot be named: then the reviewer returns it to the applicant.
                reason = await _request(s, rec, "review: detail", "GET", f"/applications/{app_id}/")
                page = reason[1] if reason else ""
                rec.decide_refused.append((*key, decision))
                if "不能命名" in page and decision == "approve":
                    decided.outcome = "refused"
                    rec.refused_naming += 1
                    decision = "return"
                elif "已被他人处理" in page:
                    decided.outcome = "conflict"
                    break
                else:
                    decided.outcome = "unexpected"
                    break


def _lab_records(start: int, n: int, day: dt.date, rnd: random.Random,
                 positive: int | None = None) -> tuple[list[dict], list[int]]:
    """A batch of ``n`` records from resident ``start`` on (and a positive result of resident
    ``positive``, sampled in the evening, when no other sample of the round is); returns them and
    the indexes of the bad ones."""
    from wuyiqu.lib.idcard import check_digit

    records, bad = [], []
    if positive is not None:
        records.append({"id_number": nat_world.id_number(positive), "sampled_at": f"{day} 20:{positive % 60:02d}:00",
                        "result": "positive"})
        n -= 1
    tomorrow = day + dt.timedelta(days=2)
    for j in range(n):
        i = start + j
        secs = 7 * 3600 + (i * 7919) % (12 * 3600)
        when = f"{day} {secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        number = nat_world.stranger_id_number(i) if rnd.random() < 0.015 else nat_world.id_number(i)
        roll = rnd.random()
        if roll < 0.005:  # a wrong check digit
            number = number[:17] + next(c for c in "0123456789X" if c != check_digit(number[:17]))
            bad.append(len(records))
        elif roll < 0.01:  # a time in the future
            when = f"{tomorrow} {when[11:]}"
            bad.append(len(records))
        records.append({"id_number": number, "sampled_at": when, "result": "negative"})
    return records, bad


async def lab(base: str, secret: str, day: dt.date, batch: int, stop: float, pause: float, rec: Recorder,
              positives: list[int]) -> None:
    import aiohttp

    rnd = random.Random(7)
    headers = {"Authorization": f"Bearer {secret}"}
    start, n = 0, 0
    async with aiohttp.ClientSession(base, headers=headers) as s:

        async def post(key: str, records: list[dict]) -> tuple[dict, bool]:
            """The answer, and whether an earlier try's answer was lost (then a replay is right)."""
            lost = False
            while True:  # the answer lost: send again with the same key until one comes
                got = await _request(s, rec, "lab: batch", "POST", "/api/v1/facts/nat-results", timeout=300,
                                     json={"batch_key": key, "records": records})
                if got is not None and got[0] < 500:
                    return (json.loads(got[1]) if got[0] == 200 else {"status": got[0], "body": got[1][:300]}), lost
                lost = True
                await asyncio.sleep(1)

        while time.perf_counter() < stop:
            records, bad = _lab_records(start, batch, day, rnd, positives[n] if n < len(positives) else None)
            key = f"{day}/{n:05d}"
            body, lost = await post(key, records)
            if "received" not in body or (body["replayed"] and not lost) or sorted(
                    e["index"] for e in body["errors"]) != bad:
                rec.samples[-1].outcome = "unexpected"
                rec.lab_checks.append(f"{key}: {str(body)[:300]}")
            else:
                refused = set(bad)
                for j, r in enumerate(records):
                    (rec.lab_refused if j in refused else rec.lab_accepted).append((r["id_number"], r["sampled_at"]))
                rec.lab_batches.append({k: body[k] for k in ("received", "accepted", "created", "unmatched", "rejected")})
                if n < len(positives):
                    rec.lab_positives.append(positives[n])
                if rnd.random() < 0.05:  # the network lost the answer: the same key again
                    again, _lost = await post(key, records)
                    if not again.get("replayed") or again.get("created") != body["created"]:
                        rec.lab_checks.append(f"{key} again: {str(again)[:300]}")
                        rec.samples[-1].outcome = "unexpected"
                elif rnd.random() < 0.02:  # the same records under a new key: recognised as stored
                    again, _lost = await post(key + "-bis", records)
                    if again.get("created") != 0 or again.get("unchanged") != body["accepted"]:
                        rec.lab_checks.append(f"{key}-bis: {str(again)[:300]}")
                        rec.samples[-1].outcome = "unexpected"
            start += batch
            n += 1
            await asyncio.sleep(pause)


async def warm_up(fx: Fixtures, port: int, clients: int) -> None:
    """Not measured: each worker thread serves the pages once (templates, translations, URL
    resolvers, the first database connections), so that the run measures the steady state."""
    base = f"http://127.0.0.1:{port}"
    rec = Recorder()
    decoy = fx.guesser_jobs[0].token

    async def one(i: int) -> None:
        async with _session(f"127.0.230.{1 + i}", base) as s:
            for _ in range(3):
                await _request(s, rec, "warm-up", "GET", f"/s/{decoy}/")
                await _request(s, rec, "warm-up", "GET", "/login/")
                await _request(s, rec, "warm-up", "GET", "/api/v1/openapi.json")

    await asyncio.gather(*(one(i) for i in range(clients)))
    bad = [s for s in rec.samples if s.outcome != "ok"]
    if bad:
        raise SystemExit(f"warm-up: {len(bad)} requests failed, e.g. {bad[0]}")


async def drive(fx: Fixtures, args, port: int, rec: Recorder) -> float:
    base = f"http://127.0.0.1:{port}"
    stop = time.perf_counter() + args.seconds
    tasks = [phone(i, jobs, base, stop, args.phone_think, rec) for i, jobs in enumerate(fx.phone_jobs)]
    tasks.append(phone(-1, fx.guesser_jobs, base, stop, (1.0, 2.0), rec, pause_first=False))
    tasks += [reviewer(i, u, base, stop, args.review_think, rec) for i, u in enumerate(fx.reviewers)]
    tasks.append(lab(base, fx.lab_secret, fx.lab_day, args.lab_batch, stop, args.lab_pause, rec, fx.positives))
    t0 = time.perf_counter()
    await asyncio.gather(*tasks)
    return time.perf_counter() - t0


# --- watching the machine ---------------------------------------------------------------------------

class Watcher(threading.Thread):
    """Every second: the CPU used by this run's PostgreSQL backends (pg_stat_activity of the benchmark
    database, /proc/<pid>/stat), the machine's busy CPU (/proc/stat) and the load average."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.dbname = url.rsplit("/", 1)[1]
        self.admin_url = url.rsplit("/", 1)[0] + "/postgres"
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.loads: list[float] = []
        self.halt = threading.Event()
        self.busy0 = self._machine()

    @staticmethod
    def _machine() -> tuple[float, float]:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]
        return (sum(v) - idle) / os.sysconf("SC_CLK_TCK"), sum(v) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _cpu(pid: int) -> float | None:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            n = 0
            while not self.halt.wait(1.0):
                pids = [p for (p,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                                   [self.dbname]).fetchall()]
                for pid in pids:
                    cpu = self._cpu(pid)
                    if cpu is not None:
                        self.first.setdefault(pid, cpu)
                        self.last[pid] = cpu
                n += 1
                if n % 5 == 1:
                    self.loads.append(os.getloadavg()[0])

    def stop(self) -> dict:
        self.halt.set()
        self.join(timeout=5)
        busy1 = self._machine()
        return {"postgres_cpu_s": sum(self.last[p] - self.first[p] for p in self.last),
                "machine_busy_cpu_s": busy1[0] - self.busy0[0],
                "machine_cpu_s": busy1[1] - self.busy0[1],
                "load_avg_samples": self.loads}


# --- the check ---------------------------------------------------------------------------------------

def verify(fx: Fixtures, rec: Recorder) -> list[dict]:
    from django.db import connection
    from django.db.models import Count

    from wuyiqu.applications.models import CoSignature, ReviewStep, SignatureAttempt
    from wuyiqu.audit.models import AuditEvent
    from wuyiqu.certification.models import Title
    from wuyiqu.health.models import NatResult, PositiveCase
    from wuyiqu.health.nat_import import IdHasher

    checks: list[dict] = []

    def check(name: str, expected, found) -> None:
        checks.append({"check": name, "expected": expected, "found": found, "ok": expected == found})

    # Signatures.
    rows = list(CoSignature.objects.filter(application_id__in=fx.sign_app_ids + fx.decoy_app_ids)
                .values_list("application_id", "household_id"))
    stored = set(rows)
    told = set(rec.signed)
    check("signatures: each 'signed' answer was a new household", len(rec.signed), len(told))
    check("signatures: rows = 'signed' answers (+ lost answers that landed)",
          len(told) + len(stored & (set(rec.sign_unknown) - told)), len(rows))
    check("signatures: every 'signed' answer is stored", len(told), len(told & stored))
    check("signatures: stored twice", 0, len(rows) - len(stored))
    check("signatures: 'already signed' answers whose first signature is stored", len(rec.already),
          sum(1 for k in rec.already if k in stored))
    decoys = set(fx.decoy_household_ids)
    check("signatures: decoy households (wrong proofs only) signed", 0, sum(1 for _a, h in rows if h in decoys))
    check("signatures: refused answers stored", 0,
          sum(1 for a, h, _ip in rec.refused_sign if (a, h) in stored))
    audits = AuditEvent.objects.filter(action="applications.sign", at__gte=fx.started_at).count()
    check("signatures: one audit row per new signature", len(rows), audits)
    guessed = SignatureAttempt.objects.filter(ip=GUESSER_IP).count()
    check("signatures: the guesser's failures kept until the lock (20)", min(20, len(
        [1 for *_k, ip in rec.refused_sign if ip == GUESSER_IP])), guessed)

    # Review decisions.
    from wuyiqu.accounts.models import User

    ids = dict(User.objects.filter(username__in=fx.reviewers).values_list("pk", "username"))
    steps = list(ReviewStep.objects.filter(actor_id__in=ids, decided_at__gte=fx.started_at)
                 .values_list("application_id", "from_status", "actor_id", "decision"))
    stored_steps = {(a, s, ids[u], d) for a, s, u, d in steps}
    told = set(rec.decided)
    unknown = set(rec.decide_unknown)
    check("decisions: every accepted decision is stored", len(told), len(told & stored_steps))
    check("decisions: steps = accepted decisions (+ lost answers that landed)",
          len(told) + len({x for x in stored_steps - told if x[:3] in unknown}), len(steps))
    check("decisions: refused decisions stored", 0,
          sum(1 for x in rec.decide_refused if x in stored_steps))
    twice = (ReviewStep.objects.filter(decided_at__gte=fx.started_at).exclude(decision="submit")
             .values("application_id", "from_status").annotate(n=Count("id")).filter(n__gt=1).count())
    check("decisions: an application decided twice at one step", 0, twice)
    reviews = AuditEvent.objects.filter(action="applications.review", at__gte=fx.started_at,
                                        actor_id__in=ids).count()
    check("decisions: one audit row per decision", len(steps), reviews)

    # Laboratory results.
    hasher = IdHasher()
    with connection.cursor() as cur:
        cur.execute("SELECT id_hash, (sampled_at AT TIME ZONE 'Asia/Shanghai')::text FROM health_natresult "
                    "WHERE sampled_on = %s", [fx.lab_day])
        stored_results = [(h, t[:19]) for h, t in cur.fetchall()]
    accepted = {(hasher(n), t if len(t) == 19 else t + ":00") for n, t in rec.lab_accepted}
    stored_set = set(stored_results)
    check("results: accepted records (distinct)", len(rec.lab_accepted), len(accepted))
    check("results: rows of the day = accepted records", len(accepted), len(stored_results))
    check("results: every accepted record is stored", len(accepted), len(accepted & stored_set))
    check("results: stored twice", 0, len(stored_results) - len(stored_set))
    refused_numbers = {hasher(n) for n, _t in rec.lab_refused if n[-1] in "0123456789X"}
    later = NatResult.objects.filter(sampled_on__gt=fx.lab_day, id_hash__in=list(refused_numbers)[:50_000]).count()
    check("results: refused records stored (any day)", 0,
          later + sum(1 for n, t in rec.lab_refused if (hasher(n), t) in stored_set))
    check("results: laboratory answers not as expected", [], rec.lab_checks)
    positives = {hasher(n) for n, t in rec.lab_accepted if t[11:13] == "20"}
    cases = list(PositiveCase.objects.filter(source="nat", reported_on=fx.lab_day).values_list("id_hash", flat=True))
    check("results: one case per accepted positive (supervision ran in the same transaction)", len(positives),
          len(cases) if sorted(cases) == sorted(positives) else sorted(set(cases) ^ positives)[:5])
    hit = [fx.named_before[i] for i in rec.lab_positives if i in fx.named_before]
    withdrawn = Title.objects.filter(unit_id__in=hit, withdrawn_on__isnull=False).values_list("unit_id", flat=True)
    check("titles: buildings named before the run withdrawn after their positive", len(hit), len(set(withdrawn)))
    untouched = set(fx.named_before.values()) - set(hit)
    check("titles: the other buildings named before the run still named", len(untouched),
          Title.objects.filter(unit_id__in=untouched, withdrawn_on__isnull=True).count())
    named = Title.objects.filter(named_at__gte=fx.started_at)
    over_case = named.filter(withdrawn_on__isnull=True, unit_id__in=PositiveCase.objects.filter(
        source="nat", reported_on=fx.lab_day).values("unit_id"))
    check("titles: named during the run and current although a positive case of the unit is recorded", [],
          sorted(over_case.values_list("unit__code", flat=True)))
    check("titles: units with two current titles", 0, Title.objects.filter(withdrawn_on__isnull=True).values("unit_id")
          .annotate(n=Count("id")).filter(n__gt=1).count())
    checks.append({"check": "titles named during the run / withdrawn again after a positive (information)",
                   "expected": None, "found": [named.count(), named.filter(withdrawn_on__isnull=False).count()],
                   "ok": True})
    batches = AuditEvent.objects.filter(action="api.facts", at__gte=fx.started_at,
                                        detail__token=f"load-lab-{fx.run}", detail__status=200).count()
    check("results: one audit row per batch request answered", sum(1 for s in rec.samples if s.kind == "lab: batch"
                                                                    and s.status == 200), batches)
    return checks


# --- the report --------------------------------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    return dashboard_load.pct(values, p) if values else float("nan")


def summarise(rec: Recorder, wall: float) -> list[dict]:
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for s in rec.samples:
        by_kind[s.kind].append(s)
    rows = []
    for kind in sorted(by_kind):
        ss = by_kind[kind]
        lat = [s.seconds for s in ss]
        count = defaultdict(int)
        for s in ss:
            count[s.outcome] += 1
        rows.append({"kind": kind, "requests": len(ss), "per_s": len(ss) / wall,
                     "p50_ms": pct(lat, 50) * 1000, "p95_ms": pct(lat, 95) * 1000, "p99_ms": pct(lat, 99) * 1000,
                     "max_ms": max(lat) * 1000, "refused": count["refused"], "conflict": count["conflict"] + count["moved"],
                     "errors": count["5xx"] + count["timeout"] + count["connection"] + count["unexpected"],
                     "outcomes": dict(count)})
    return rows


def print_table(rows: list[dict]) -> None:
    head = f"{'kind':<16}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}" \
           f"{'refused':>9}{'conflict':>9}{'errors':>8}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['kind']:<16}{r['requests']:>9}{r['per_s']:>8.1f}{r['p50_ms']:>9.0f}{r['p95_ms']:>9.0f}"
              f"{r['p99_ms']:>9.0f}{r['max_ms']:>9.0f}{r['refused']:>9}{r['conflict']:>9}{r['errors']:>8}")


def _pair(text: str) -> tuple[float, float]:
    lo, hi = (float(x) for x in text.split(","))
    if not 0 <= lo <= hi:
        raise argparse.ArgumentTypeError("LOW,HIGH seconds with 0 <= LOW <= HIGH")
    return lo, hi


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--residents", type=int, default=1_000_000)
    ap.add_argument("--phones", type=int, default=500)
    ap.add_argument("--phone-think", type=_pair, default=(5.0, 15.0),
                    help="seconds a person takes between two requests, uniform LOW,HIGH (default 5,15)")
    ap.add_argument("--streets", type=int, default=10, help="streets with 2 reviewers each")
    ap.add_argument("--street-queue", type=int, default=40, help="applications waiting at each street")
    ap.add_argument("--district-queue", type=int, default=120,
                    help="applications waiting at the health commission (half as many at the command)")
    ap.add_argument("--review-think", type=_pair, default=(1.0, 4.0))
    ap.add_argument("--lab-batch", type=int, default=2000)
    ap.add_argument("--lab-pause", type=float, default=1.0)
    ap.add_argument("--guesses", type=int, default=30, help="wrong proofs sent by the guesser from one address")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seed", type=int, default=2022)
    args = ap.parse_args(argv)
    OUT.mkdir(exist_ok=True)

    load_before = os.getloadavg()
    url = setup(args.residents)
    t = time.perf_counter()
    fx = prepare(args)
    print(f"run {fx.run}: {len(fx.sign_app_ids)} applications to sign, {len(fx.review_app_ids)} waiting for review, "
          f"{sum(len(j) for j in fx.phone_jobs)} phone errands, {len(fx.reviewers)} reviewers "
          f"(fixtures in {time.perf_counter() - t:.0f} s)")
    from django.db import connections

    connections.close_all()

    log_path = OUT / f"load_mixed_{fx.run}_gunicorn.log"
    # --capture-output: the workers' stderr (Django's own error log, tracebacks) goes to the file too.
    os.environ["GUNICORN_CMD_ARGS"] = f"--error-logfile {log_path} --capture-output --backlog 2048"
    port = dashboard_load.free_port()
    server = dashboard_load.start_server(url, port, args.workers, args.threads)
    rec = Recorder()
    try:
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (the machine is shared)")
        asyncio.run(warm_up(fx, port, args.workers * args.threads))
        watcher = Watcher(url)
        watcher.start()
        server_cpu0 = dashboard_load.server_cpu(server.pid)
        me0 = resource.getrusage(resource.RUSAGE_SELF)
        rec.t0 = time.perf_counter()
        wall = asyncio.run(drive(fx, args, port, rec))
        me1 = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu = dashboard_load.server_cpu(server.pid) - server_cpu0
        machine = watcher.stop()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    generator_cpu = (me1.ru_utime - me0.ru_utime) + (me1.ru_stime - me0.ru_stime)

    rows = summarise(rec, wall)
    print()
    print(f"{wall:.0f} s: {args.phones} phones (think {args.phone_think[0]:g}-{args.phone_think[1]:g} s) + 1 guesser, "
          f"{len(fx.reviewers)} reviewers, 1 laboratory ({args.lab_batch} results a batch); "
          f"gunicorn {args.workers} workers x {args.threads} threads")
    print_table(rows)
    total = sum(r["requests"] for r in rows)
    results = len(rec.lab_accepted)
    ncpu = os.cpu_count()
    others = machine["machine_busy_cpu_s"] - server_cpu - machine["postgres_cpu_s"] - generator_cpu
    loads = machine["load_avg_samples"] or [os.getloadavg()[0]]
    print(f"all: {total} requests, {total / wall:.0f} req/s; signatures {len(rec.signed)} ({len(rec.signed) / wall:.1f}/s), "
          f"decisions {len(rec.decided)} (refused: {len(rec.decide_refused) - rec.refused_naming} someone else's first, "
          f"{rec.refused_naming} namings over a new case), results accepted {results} ({results / wall:.0f}/s)")
    print(f"CPU over {wall:.0f} s (cores busy on average, of {ncpu}): gunicorn {server_cpu / wall:.2f}, "
          f"PostgreSQL backends {machine['postgres_cpu_s'] / wall:.2f}, load generator {generator_cpu / wall:.2f} "
          f"(one process: {100 * generator_cpu / wall:.0f} % of its core), everything else on the machine "
          f"{max(0.0, others) / wall:.2f}")
    print(f"load average: before {load_before[0]:.2f}; during min {min(loads):.2f} / median "
          f"{statistics.median(loads):.2f} / max {max(loads):.2f}; after {os.getloadavg()[0]:.2f}")
    server_errors = 0
    if log_path.exists():
        server_errors = sum(1 for line in log_path.read_text(errors="replace").splitlines()
                            if "Traceback" in line or "[ERROR]" in line or "Internal Server Error" in line)
    print(f"server log ({log_path.name}): {server_errors} tracebacks / errors")

    checks = verify(fx, rec)
    print()
    for c in checks:
        print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['check']}: expected {c['expected']}, found {c['found']}")
    failed = [c for c in checks if not c["ok"]]
    out = OUT / f"load_mixed_{fx.run}.json"
    out.write_text(json.dumps({
        "run": fx.run, "database": url.split("@")[-1], "args": {k: v for k, v in vars(args).items()},
        "seconds": wall, "requests": rows,
        "writes": {"signatures": len(rec.signed), "already": len(rec.already), "sign_unknown": len(rec.sign_unknown),
                   "refused_signatures": len(rec.refused_sign), "decisions": len(rec.decided),
                   "decisions_refused": len(rec.decide_refused), "namings_refused": rec.refused_naming, "results_accepted": results,
                   "results_refused": len(rec.lab_refused), "lab_batches": len(rec.lab_batches)},
        "cpu": {"gunicorn_s": server_cpu, "postgres_s": machine["postgres_cpu_s"], "generator_s": generator_cpu,
                "machine_busy_s": machine["machine_busy_cpu_s"], "cores": ncpu},
        "load_avg": {"before": load_before[0], "during": loads, "after": os.getloadavg()[0]},
        "server_log_errors": server_errors, "checks": checks, "ok": not failed and server_errors == 0,
    }, ensure_ascii=False, indent=1, default=str))
    print(f"\n{len(checks) - len(failed)}/{len(checks)} checks passed; written {out.relative_to(ROOT)}")
    if failed or server_errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
