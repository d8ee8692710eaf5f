"""The dashboard under load: 20 logged-in users, 20 concurrent clients, a district-sized world on PostgreSQL.

    .venv/bin/python bench/dashboard_load.py                       # database wuyiqu_bench_dash
    .venv/bin/python bench/dashboard_load.py --seconds 30 --clients 20 --workers 2 --threads 4 --warmup 15

1. The world is ``bench/evaluate_world.py``'s (imported, not copied): 20 streets, 440 villages and
   communities, ~19,800 buildings, ~1,035,000 residents, titles on a fifth of the buildings and groups.
   Quickest start: a copy of the standards engineer's database (``CREATE DATABASE wuyiqu_bench_dash
   TEMPLATE wuyiqu_bench_eval``, tried first); else it is built. Then (once) a few warnings and
   withdrawals, and the stored evaluations of D-2 and D (the trend gets a gap on D-1).
2. Times in this process, on the same database: the dashboard's numbers of the district computed
   without any cache (the cold page), and with the cached numbers.
3. Starts gunicorn on 127.0.0.1 (loopback only), logs 20 users in through the login form (half
   scoped to the district, half to streets), and drives ``--clients`` threads with keep-alive
   http.client connections against ``/units/<code>/dashboard/?date=D``: ``--warmup`` seconds unmeasured
   (each worker computes each scope's numbers once), then ``--seconds`` measured; prints requests/s,
   p50/p95/p99/max, errors, the server's CPU per request, and the first (cold) load of each scope;
   then the same load from wrk when it is installed. Target: p95 < 300 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import evaluate_world as world  # noqa: E402  (bench/evaluate_world.py: the world builder)

ROOT = Path(__file__).resolve().parents[1]
PG_URL = "postgres://postgres@127.0.0.1:5432/wuyiqu_bench_dash"
TEMPLATE = "wuyiqu_bench_eval"
D = world.D
PASSWORD = "correct-horse-battery"


def setup() -> str:
    os.environ.setdefault("WUYIQU_ENV", "test")
    url = os.environ.get("BENCH_DATABASE_URL", PG_URL)
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            try:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
                print(f"copied {TEMPLATE} into {name}")
            except psycopg.Error as e:  # the template is in use (or missing): build the world instead
                print(f"no copy of {TEMPLATE} ({str(e).strip().splitlines()[0]}); building the world")
                conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wuyiqu.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    world.build()
    return url


def prepare() -> None:
    """Once: some warnings and withdrawals, the stored evaluations of D-2 and D, the 20 users."""
    from django.db import connection, transaction

    from wuyiqu.accounts.actions import do_create_user
    from wuyiqu.accounts.models import Role, User
    from wuyiqu.standards.actions import do_store_evaluations
    from wuyiqu.standards.models import Evaluation
    from wuyiqu.units.models import Unit

    if not Evaluation.objects.filter(on=D).exists():
        with transaction.atomic(), connection.cursor() as cur:
            # A warning open on D for every 7th current title; every 11th title withdrawn on D-3.
            cur.execute("""INSERT INTO supervision_warning (district_code, unit_id, title_id, criterion, detail,
                    opened_on, deadline, status, closed_note, created_at)
                SELECT t.district_code, t.unit_id, t.id, 'mask_compliance', '口罩检查过期', %s, %s, 'open', '', now()
                FROM certification_title t WHERE t.withdrawn_on IS NULL AND t.id %% 7 = 0""",
                        [D - dt.timedelta(days=1), D + dt.timedelta(days=2)])
            cur.execute("""UPDATE certification_title SET withdrawn_on = %s, withdrawn_reason = '基准摘牌'
                WHERE id %% 11 = 0 AND withdrawn_on IS NULL AND id %% 7 <> 0""", [D - dt.timedelta(days=3)])
        for day in (D - dt.timedelta(days=2), D):
            t = time.perf_counter()
            n = do_store_evaluations(on=day)
            print(f"stored the evaluation of {day}: {n} units in {time.perf_counter() - t:.1f} s")
    district = Unit.objects.get(code="BD")
    streets = list(Unit.objects.filter(kind="street").order_by("code")[:10])
    for i in range(20):
        username = f"dash{i:02d}"
        if not User.objects.filter(username=username).exists():
            unit = district if i % 2 == 0 else streets[i // 2]
            do_create_user(actor=None, username=username, password=PASSWORD,
                           role=Role.COMMAND if unit == district else Role.STREET_STAFF, unit=unit,
                           display_name=username)


def in_process() -> None:
    """The district's numbers computed cold (no cache) and then from the cache, in this process."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from wuyiqu.dashboard import selectors
    from wuyiqu.units.models import Unit

    district = Unit.objects.get(code="BD")
    cold = []
    for _ in range(2):
        cache.clear()
        t = time.perf_counter()
        with CaptureQueriesContext(connection) as q:
            fp = selectors.fingerprint()
            s = selectors.dashboard_summary(district, D, fp)
            selectors.children_status(district, D, fp)
            selectors.trend(district, D, fp=fp)
        cold.append(time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(20):
        fp = selectors.fingerprint()
        selectors.dashboard_summary(district, D, fp)
        selectors.children_status(district, D, fp)
        selectors.trend(district, D, fp=fp)
    warm = (time.perf_counter() - t) / 20
    cache.clear()
    t = time.perf_counter()
    selectors.residents_by_unit(district)
    residents = time.perf_counter() - t
    print(f"district numbers ({s['source']}): {s['total']} units, {s['named']} named, {s['residents_total']} residents "
          f"({s['resident_pct']} covered)")
    print(f"  cold (no cache, {len(q.captured_queries)} queries): {', '.join(f'{x * 1000:.0f}' for x in cold)} ms, "
          f"of which the residents-per-unit query {residents * 1000:.0f} ms (cached 10 min); "
          f"warm (cached numbers): {warm * 1000:.1f} ms")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, port: int, workers: int, threads: int) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=url, WUYIQU_ENV="test", DJANGO_SETTINGS_MODULE="wuyiqu.settings",
               WUYIQU_DEBUG="0", WUYIQU_DB_CONN_MAX_AGE="60")
    cmd = [str(ROOT / ".venv" / "bin" / "gunicorn"), "wuyiqu.wsgi:application", "--bind", f"127.0.0.1:{port}",
           "--workers", str(workers), "--threads", str(threads), "--keep-alive", "75", "--timeout", "120",
           "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("gunicorn did not start")


class Session:
    """A logged-in user over one keep-alive connection."""

    def __init__(self, port: int, username: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}
        self.username = username

    def request(self, method: str, path: str, body: str | None = None, headers: dict | None = None):
        h = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), **(headers or {})}
        try:
            self.conn.request(method, path, body=body, headers=h)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # The server closed an idle keep-alive connection: open a new one and send again.
            self.conn.close()
            self.conn.request(method, path, body=body, headers=h)
            resp = self.conn.getresponse()
        data = resp.read()
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie":
                k, v = value.split(";", 1)[0].split("=", 1)
                self.cookies[k] = v
        return resp.status, resp.getheader("Location"), data

    def log_in(self) -> str:
        self.request("GET", "/login/")
        body = urllib.parse.urlencode({"username": self.username, "password": PASSWORD,
                                       "csrfmiddlewaretoken": self.cookies["csrftoken"]})
        status, location, _ = self.request("POST", "/login/", body, {
            "Content-Type": "application/x-www-form-urlencoded", "Referer": "http://127.0.0.1/login/"})
        assert status == 302, (self.username, status)
        status, location, _ = self.request("GET", "/dashboard/")
        assert status == 302 and location, (self.username, status)
        return location + f"?date={D.isoformat()}"


def drive(sessions: list[tuple[Session, str]], seconds: float, expect: int = 200,
          marker: bytes = b"data-total-status") -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(session: Session, path: str):
        mine, bad = [], 0
        while time.perf_counter() < stop:
            t = time.perf_counter()
            try:
                status, _, body = session.request("GET", path)
                ok = status == expect and marker in body
            except (OSError, http.client.HTTPException):
                ok = False
                session.conn.close()
            mine.append(time.perf_counter() - t)
            bad += not ok
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client, args=s) for s in sessions]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return latencies, errors[0], time.perf_counter() - t0


def server_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the processes of the server's process group."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ..., utime (12), stime (13)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


WRK_SCRIPT = """
local users = {%s}
local i = 0
request = function()
  i = i %% #users + 1
  return wrk.format("GET", users[i][2], {["Cookie"] = users[i][1]})
end
response = function(status, headers, body)
  if status ~= 200 then wrk.thread:set("bad", (wrk.thread:get("bad") or 0) + 1) end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk: %%d requests in %%.1f s, %%.0f req/s; p50 %%.0f ms, p95 %%.0f ms, p99 %%.0f ms, max %%.0f ms; "
    .. "errors: connect %%d, read %%d, write %%d, status %%d, timeout %%d\\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def run_wrk(port: int, users: list[Session], paths: list[str], seconds: float, clients: int) -> None:
    """The same load from wrk (C, little CPU: the Python client's own GIL waits are not in its figures)."""
    import shutil

    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk not installed (apt-get install wrk): skipped")
        return
    entries = ", ".join('{"' + "; ".join(f"{k}={v}" for k, v in u.cookies.items()) + f'", "{p}"}}'
                        for u, p in zip(users, paths, strict=True))
    script = world.OUT / "dashboard_load.lua"
    world.OUT.mkdir(exist_ok=True)
    script.write_text(WRK_SCRIPT % entries)
    out = subprocess.run([wrk, "-t", "2", "-c", str(clients), "-d", f"{int(seconds)}s", "--timeout", "10s",
                          "-s", str(script), f"http://127.0.0.1:{port}/"], capture_output=True, text=True)
    print(next((line for line in out.stdout.splitlines() if line.startswith("wrk:")), out.stdout + out.stderr))


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--warmup", type=float, default=15)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    url = setup()
    prepare()
    print(f"world: {world.counts()}")
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (the machine is shared)")
    in_process()

    port = free_port()
    server = start_server(url, port, args.workers, args.threads)
    try:
        users = [Session(port, f"dash{i:02d}") for i in range(20)]
        paths = [u.log_in() for u in users]
        # The first load of each scope on this fresh server: its numbers are not cached yet.
        firsts = {}
        for user, path in zip(users, paths, strict=True):
            if path not in firsts:
                t = time.perf_counter()
                status, _, body = user.request("GET", path)
                firsts[path] = time.perf_counter() - t
                assert status == 200, (path, status)
                if "BD/" in path:
                    total = re.search(rb'data-total-status="named">(\d+)<', body).group(1).decode()
                    print(f"district page: {total} named units shown")
        cold = sorted(firsts.values())
        print(f"first load of each of {len(firsts)} scopes (cold in the worker that served it): "
              f"median {statistics.median(cold) * 1000:.0f} ms, max {max(cold) * 1000:.0f} ms "
              f"(district {firsts[next(p for p in firsts if '/BD/' in p)] * 1000:.0f} ms)")
        clients = [(users[i % len(users)], paths[i % len(users)]) for i in range(args.clients)]
        # Each gunicorn worker has its own cache (LocMemCache) and computes each scope's numbers once:
        # an unmeasured warm-up under the same load, so that the measured run is the steady state.
        lat, errors, wall = drive(clients, args.warmup)
        print(f"warm-up ({args.warmup:.0f} s, every worker computing each scope once, not counted): {len(lat)} requests, "
              f"p50 {pct(lat, 50) * 1000:.0f} ms, p95 {pct(lat, 95) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms, "
              f"errors {errors}")
        cpu0 = server_cpu(server.pid)
        lat, errors, wall = drive(clients, args.seconds)
        cpu = server_cpu(server.pid) - cpu0
        print(f"gunicorn {args.workers} workers x {args.threads} threads, {args.clients} concurrent clients, "
              f"{wall:.0f} s: {len(lat)} requests, {len(lat) / wall:.0f} req/s, errors {errors}; "
              f"p50 {pct(lat, 50) * 1000:.0f} ms, p95 {pct(lat, 95) * 1000:.0f} ms, "
              f"p99 {pct(lat, 99) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms (target p95 < 300 ms)")
        print(f"server CPU: {cpu:.1f} s in {wall:.0f} s = {cpu / wall:.2f} of {os.cpu_count()} cores, "
              f"{cpu / len(lat) * 1000:.1f} ms per request -> at most ~{os.cpu_count() * len(lat) / cpu:.0f} req/s "
              f"if the cores were free")
        # Baseline in the same run: the cheapest logged-in request (/dashboard/ answers 302 to the
        # user's page: session, user and unit read, nothing rendered): what Django itself costs here.
        cpu0 = server_cpu(server.pid)
        base, base_errors, base_wall = drive([(s, "/dashboard/") for s, _ in clients], 10, expect=302, marker=b"")
        base_cpu = server_cpu(server.pid) - cpu0
        print(f"baseline /dashboard/ (302): {len(base) / base_wall:.0f} req/s, server CPU {base_cpu / len(base) * 1000:.1f} ms "
              f"per request, errors {base_errors} -> the dashboard page costs "
              f"{(cpu / len(lat)) / (base_cpu / len(base)):.1f}x the cheapest logged-in request")
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        cpu0 = server_cpu(server.pid)
        t0 = time.perf_counter()
        run_wrk(port, users, paths, args.seconds, args.clients)
        cpu, wall = server_cpu(server.pid) - cpu0, time.perf_counter() - t0
        print(f"server CPU during wrk: {cpu / wall:.2f} of {os.cpu_count()} cores; "
              f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
