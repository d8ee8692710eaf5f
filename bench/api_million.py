"""A laboratory posting a mass-testing round of a million results through the API, in chunks,
against a live server on PostgreSQL; compared with the raw limit (COPY of the same rows) in one run.

    .venv/bin/python bench/api_million.py                         # database wuyiqu_h_load
    .venv/bin/python bench/api_million.py --chunk 5000 --clients 1
    .venv/bin/python bench/api_million.py --residents 100000      # a quick look

1. The world is ``bench/nat_world.py``'s (imported): 1,000,000 residents (``--residents``). The
   round is the file of ``bench/nat_import.py`` (the same ``nat_world.write_results_file``): every
   resident once, sampled between 07:00 and 19:00 on one day, plus 1 % people not on the register
   and a few positives — 1,010,000 results for a million residents. The day is 14 days ago, whose
   week partition holds nothing else; it is emptied first.
2. Raw limit: the rows the API stores (hash, resident, unit, time, date, result), computed before
   the clock starts (``bench/nat_import._raw_rows``), loaded with ``COPY … FROM STDIN`` into
   ``health_natresult`` in one transaction (``_raw_load``); then emptied again.
3. gunicorn on 127.0.0.1 (``bench/dashboard_load.start_server``); an API token of the district;
   the chunks (``--chunk`` results each, JSON encoded before the clock starts) posted to
   ``/api/v1/facts/nat-results`` with the batch keys ``<day>/<n>`` by ``--clients`` keep-alive
   connections. Retries on purpose: ``--resend`` chunks are sent again after their answer (must be
   ``replayed``, nothing written), and ``--lost`` chunks are first sent with a client timeout so
   short that the answer is lost, then sent again with the same key (must be answered once and
   written once).
4. Prints the total time, results/s, the ratio API / raw, the chunk latencies and the server's CPU
   and the load average (the machine is shared); checks that the day holds exactly the round
   (each result once), that the answers add up and that one batch row exists per chunk. Writes
   ``bench/out/api_million_<time>.json``; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dashboard_load  # noqa: E402  (bench/dashboard_load.py: the live gunicorn server and its CPU)
import nat_import as nat_bench  # noqa: E402  (bench/nat_import.py: the raw COPY of the same rows)
import nat_world  # noqa: E402  (bench/nat_world.py: the world of residents and the results file)
from load_mixed import Watcher  # noqa: E402  (the CPU of this database's PostgreSQL backends)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
PG_URL = "postgres://postgres@127.0.0.1:5432/wuyiqu_h_load"
DISTRICT = "500110"
PATH = "/api/v1/facts/nat-results"


def setup(residents: int) -> str:
    os.environ.setdefault("BENCH_DATABASE_URL", PG_URL)
    url = nat_world.setup_django("postgres")
    nat_world.ensure_residents(residents)
    return url


def empty_day(day: dt.date) -> None:
    """Empty ``day``'s week partition (made if missing): it holds nothing but this benchmark's round."""
    from django.db import connection

    from wuyiqu.health.nat_import import ensure_nat_partitions, partition_name, week_start

    ensure_nat_partitions(day, day)
    with connection.cursor() as cur:
        cur.execute(f"TRUNCATE {partition_name(week_start(day))}")
        cur.execute("DELETE FROM health_positivecase WHERE source = 'nat' AND reported_on = %s", [day])


def day_rows(day: dt.date) -> tuple[int, int, int]:
    """(rows, distinct (hash, time), rows without a resident) of ``day``."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT (id_hash, sampled_at)), count(*) FILTER (WHERE resident_id IS NULL) "
                    "FROM health_natresult WHERE sampled_on = %s", [day])
        return cur.fetchone()


def chunk_bodies(path: Path, day: dt.date, size: int) -> list[bytes]:
    """The file's rows as API records, ``size`` a chunk, each chunk's JSON body with its batch key."""
    bodies, records = [], []

    def flush():
        bodies.append(json.dumps({"batch_key": f"{day}/{len(bodies):05d}", "records": records},
                                 ensure_ascii=False, separators=(",", ":")).encode())
        records.clear()

    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            number, at, result = line.rstrip("\n").split(",")
            records.append({"id_number": number, "sampled_at": at, "result": "positive" if result == "阳性" else "negative"})
            if len(records) == size:
                flush()
    if records:
        flush()
    return bodies


class Lab:
    """Posts chunks over keep-alive connections; keeps every answer."""

    def __init__(self, port: int, secret: str):
        self.port = port
        self.headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        self.answers: dict[int, list[dict]] = {}
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def post(self, conn: http.client.HTTPConnection, n: int, body: bytes) -> dict | None:
        t = time.perf_counter()
        try:
            conn.request("POST", PATH, body=body, headers=self.headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            with self.lock:
                self.errors.append(f"chunk {n}: {type(e).__name__}")
            return None
        seconds = time.perf_counter() - t
        answer = json.loads(data) if resp.status == 200 else {"status": resp.status, "body": data[:300].decode()}
        with self.lock:
            self.latencies.append(seconds)
            self.answers.setdefault(n, []).append(answer)
            if resp.status != 200:
                self.errors.append(f"chunk {n}: HTTP {resp.status} {data[:200]!r}")
        return answer

    def lose_answer(self, n: int, body: bytes) -> None:
        """Send the chunk and hang up before the answer comes: the server goes on and writes it."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=0.05)
        try:
            conn.request("POST", PATH, body=body, headers=self.headers)
            conn.getresponse().read()
            with self.lock:  # answered within 50 ms after all: not lost, but the resend still must replay
                self.answers.setdefault(n, []).append({"early": True})
        except (OSError, http.client.HTTPException):  # TimeoutError is an OSError
            pass
        finally:
            conn.close()

    def run(self, bodies: list[bytes], clients: int, resend: set[int], lost: set[int]) -> float:
        work: queue.Queue[int] = queue.Queue()
        for n in range(len(bodies)):
            work.put(n)

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            while True:
                try:
                    n = work.get_nowait()
                except queue.Empty:
                    break
                if n in lost:
                    self.lose_answer(n, bodies[n])
                while self.post(conn, n, bodies[n]) is None:  # no answer: the same key again
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
                    time.sleep(1)
                if n in resend:
                    self.post(conn, n, bodies[n])
            conn.close()

        threads = [threading.Thread(target=client) for _ in range(clients)]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--residents", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=2, help="connections posting chunks at once")
    ap.add_argument("--resend", type=int, default=3, help="chunks sent again after their answer")
    ap.add_argument("--lost", type=int, default=2, help="chunks whose first answer is lost")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    OUT.mkdir(exist_ok=True)

    load_before = os.getloadavg()[0]
    url = setup(args.residents)
    from django.db import connection, connections
    from django.utils import timezone

    from wuyiqu.api.actions import do_create_api_token
    from wuyiqu.api.models import ApiBatch
    from wuyiqu.audit.models import AuditEvent
    from wuyiqu.units.models import Unit

    with connection.cursor() as cur:
        cur.execute("ANALYZE units_resident")  # a freshly made world: fresh statistics, as in production
        cur.execute("ANALYZE units_household")
    day = timezone.localdate() - dt.timedelta(days=14)
    run = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    path = OUT / f"nat_{args.residents}_{day:%Y%m%d}.csv"
    if not path.exists():
        nat_world.write_results_file(path, args.residents, day)
    bodies = chunk_bodies(path, day, args.chunk)
    total = sum(1 for _ in open(path, encoding="utf-8")) - 1
    strangers = len(range(0, args.residents, 100))

    # The raw limit, in this run.
    empty_day(day)
    rows = nat_bench._raw_rows(path, "postgres")
    print(f"load average before: {load_before:.2f}; raw COPY of {len(rows):,} rows ...", flush=True)
    load_raw = os.getloadavg()[0]
    raw_s = nat_bench._raw_load(rows)
    raw_count = day_rows(day)[0]
    del rows
    empty_day(day)

    _token, secret = do_create_api_token(actor=None, name=f"million-{run}", unit=Unit.objects.get(code=DISTRICT),
                                         kinds=["nat-results"], days=1)
    connections.close_all()
    resend = set(range(5, len(bodies), max(1, len(bodies) // max(1, args.resend))))
    resend = set(sorted(resend)[: args.resend])
    lost = set(sorted(set(range(len(bodies) // 3, len(bodies), max(1, len(bodies) // max(1, args.lost)))) - resend)
               [: args.lost])

    log_path = OUT / f"api_million_{run}_gunicorn.log"
    os.environ["GUNICORN_CMD_ARGS"] = f"--error-logfile {log_path} --capture-output"
    port = dashboard_load.free_port()
    server = dashboard_load.start_server(url, port, args.workers, args.threads)
    lab = Lab(port, secret)
    try:
        for _ in range(args.workers * args.threads * 2):  # each worker thread loads the API once
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/api/v1/openapi.json")
            conn.getresponse().read()
            conn.close()
        print(f"posting {total:,} results in {len(bodies)} chunks of {args.chunk:,} over {args.clients} connections "
              f"(resent: {sorted(resend)}, answer lost: {sorted(lost)}) ...", flush=True)
        loads = [os.getloadavg()[0]]
        sampler_stop = threading.Event()

        def sample():
            while not sampler_stop.wait(5):
                loads.append(os.getloadavg()[0])

        threading.Thread(target=sample, daemon=True).start()
        watcher = Watcher(url)
        watcher.start()
        cpu0 = dashboard_load.server_cpu(server.pid)
        api_s = lab.run(bodies, args.clients, resend, lost)
        server_cpu = dashboard_load.server_cpu(server.pid) - cpu0
        postgres_cpu = watcher.stop()["postgres_cpu_s"]
        sampler_stop.set()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    rows_n, distinct_n, unmatched_n = day_rows(day)
    firsts = [a[0] if "early" not in a[0] else a[1] for _n, a in sorted(lab.answers.items())]
    sums = {k: sum(a.get(k, 0) for a in firsts) for k in ("received", "accepted", "created", "unchanged",
                                                            "unmatched", "rejected")}
    batches = ApiBatch.objects.filter(token__name=f"million-{run}").count()
    checks = []

    def check(name, expected, found):
        checks.append({"check": name, "expected": expected, "found": found, "ok": expected == found})

    check("raw COPY stored the round", total, raw_count)
    check("HTTP errors / lost answers not recovered", [], lab.errors)
    check("chunks answered", len(bodies), len(lab.answers))
    check("rows of the day = results of the round", total, rows_n)
    check("each result once (distinct hash and time)", rows_n, distinct_n)
    check("rows without a resident = people not on the register", strangers, unmatched_n)
    check("answers: received / accepted / created", [total] * 3, [sums["received"], sums["accepted"], sums["created"]])
    check("answers: unmatched", strangers, sums["unmatched"])
    check("one batch row per chunk", len(bodies), batches)
    resent = [lab.answers[n][-1] for n in sorted(resend)]
    check("chunks resent after their answer: replayed", [True] * len(resent), [a.get("replayed") for a in resent])
    # A lost answer's resend is either the replay of the first try or, when it overtook the first
    # try (both were running; the first then waited on the batch row and replayed), the write
    # itself: either way each key is written by exactly one request, as the audit rows show.
    check("lost answers: the resend's counts are the write's", [args.chunk] * len(lost),
          [lab.answers[n][-1].get("created") for n in sorted(lost)])
    writes = AuditEvent.objects.filter(action="api.facts", detail__token=f"million-{run}", detail__status=200)
    check("each chunk written by one request (audit: not replayed)", len(bodies),
          writes.filter(detail__replayed=False).count())
    check("replays (audit)", len(resend) + len(lost), writes.filter(detail__replayed=True).count())
    ratio = api_s / raw_s
    lat = lab.latencies
    print()
    print(f"database        {url.split('@')[-1]}  ({args.residents:,} residents)")
    print(f"results         {total:,} ({strangers:,} not on the register), {len(bodies)} chunks of {args.chunk:,}, "
          f"{sum(len(b) for b in bodies) / 1e6:.0f} MB of JSON")
    print(f"raw COPY        {raw_s:7.2f} s  {total / raw_s:>10,.0f} rows/s   (load average {load_raw:.2f})")
    print(f"API             {api_s:7.2f} s  {total / api_s:>10,.0f} results/s   ratio API / raw {ratio:.2f}x")
    print(f"chunks          {len(lat)} requests (with {len(resend)} resent, {len(lost)} after a lost answer): "
          f"p50 {dashboard_load.pct(lat, 50):.2f} s, p95 {dashboard_load.pct(lat, 95):.2f} s, max {max(lat):.2f} s")
    print(f"server CPU      gunicorn {server_cpu:.1f} s ({args.workers} workers x {args.threads} threads), PostgreSQL "
          f"backends {postgres_cpu:.1f} s: {(server_cpu + postgres_cpu) / api_s:.2f} of {os.cpu_count()} cores, "
          f"{(server_cpu + postgres_cpu) / total * 1e6:.0f} µs per result")
    print(f"load average    during {min(loads):.2f}-{max(loads):.2f}, after {os.getloadavg()[0]:.2f} (the machine is shared)")
    failed = [c for c in checks if not c["ok"]]
    for c in checks:
        print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['check']}: expected {c['expected']}, found {c['found']}")
    out = OUT / f"api_million_{run}.json"
    out.write_text(json.dumps({
        "run": run, "database": url.split("@")[-1], "args": vars(args), "results": total, "chunks": len(bodies),
        "raw_s": raw_s, "api_s": api_s, "ratio": ratio, "results_per_s": total / api_s,
        "chunk_p50_s": dashboard_load.pct(lat, 50), "chunk_p95_s": dashboard_load.pct(lat, 95), "chunk_max_s": max(lat),
        "server_cpu_s": server_cpu, "postgres_cpu_s": postgres_cpu, "load_avg": {"before": load_before, "raw": load_raw, "during": loads},
        "checks": checks, "ok": not failed,
    }, ensure_ascii=False, indent=1, default=str))
    print(f"{len(checks) - len(failed)}/{len(checks)} checks passed; written {out.relative_to(ROOT)}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
