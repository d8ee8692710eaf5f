"""The city of bench/city_world.py (重庆市's size, ~30 M residents, PostgreSQL): how long the full
evaluation, the daily supervision run, a million nucleic-acid results and a district's dashboard take.

    .venv/bin/python bench/city_world.py                   # first: build the city (database wuyiqu_city)
    .venv/bin/python bench/city_scale.py                   # every part; bench/out/city_scale.json
    .venv/bin/python bench/city_scale.py --parts evaluate,supervise
    .venv/bin/python bench/city_scale.py --whole-city no   # skip evaluate(D) of the whole city at once

Each part runs in a child process of its own (this script with ``--part``), so that its peak RSS
(VmHWM, reset before each measured step through /proc/self/clear_refs) is its own. CPU times are the
process's plus, where it says so, its PostgreSQL backend's (/proc/<pid>/stat: the server runs on this
machine). The machine is shared: the load average is printed before and after each part.

1. ``evaluate``: ``evaluate(D, root=district)`` for each of the 38 districts, alternating with the
   evaluator's raw aggregate queries alone for that district (``_Gather``: the same SQL, rows fetched,
   nothing rolled up or judged) -> per district and in total: wall, CPU, full/raw, peak RSS.
2. ``city``: ``evaluate(D)`` of the whole city at once and its raw queries, when the per-district peaks
   say it fits in memory (``--whole-city auto``: estimated peak under half of MemAvailable).
3. ``supervise``: ``wuyiqu supervise --date D`` as a user runs it (child process, Django start-up
   included; district by district): the first run of the day, then the same day again (changes
   nothing). What a first run wrote is taken back before it (titles withdrawn on D, the day's
   warnings, events and stored evaluations), so that runs repeat; the stored day is kept for the
   dashboard. ``one_pass``: the same first run as ONE pass over the whole city (how ``run_daily``
   worked before), in a transaction rolled back, for its time and peak RSS (when it fits, as 2.).
4. ``nat``: a mass-testing round of 1,000,000 results (990,000 residents of the largest district,
   their ID numbers decrypted from the registry, plus 1 % people not on the register) on D+7: the
   rows the import would store, COPY'd raw into health_natresult (the limit), against
   ``wuyiqu import nat-results FILE`` (child process) and its re-import; ratio import/raw. The week's
   partition is emptied before and after, so the world stays as built.
5. ``dashboard``: the district dashboard page and its children.json through Django's test client, in
   this process, for 綦江区 and for the largest district: cold (cache cleared) and warm (5 loads,
   median), on D (the day stored by the daily run) and on D-1 (not stored: one live evaluation). The
   30-day trend reads 28 earlier stored days (copies of D's rows, made once: ~14 million rows).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import city_world  # noqa: E402  (bench/city_world.py: the world and its constants)

OUT = city_world.OUT
D = city_world.D
PARTS = ("evaluate", "city", "supervise", "one_pass", "nat", "dashboard")
WHOLE_CITY_PARTS = ("city", "one_pass")  # hold the whole city in memory: run when it fits
NAT_DAY = D + dt.timedelta(days=7)  # a week of its own: its partition is emptied between runs
NAT_RESIDENTS = 990_000
# Rounds of the district's residents in the import file, on NAT_DAY and the days after it (same week):
# BENCH_NAT_ROUNDS=5 makes ~1 M results of a district of ~200,000 (bench/citus_compare.py).
NAT_ROUNDS = int(os.environ.get("BENCH_NAT_ROUNDS", "1"))
NAT_LAST = NAT_DAY + dt.timedelta(days=NAT_ROUNDS - 1)
QIJIANG = "500110"


def _url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", city_world.PG_URL)


def setup() -> None:
    if not os.environ.get("WUYIQU_DATA_KEY"):
        os.environ["WUYIQU_ENV"] = "test"
    os.environ["DATABASE_URL"] = _url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wuyiqu.settings")
    import django

    django.setup()
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass('bench_city_state') IS NOT NULL")
        ready = cur.fetchone()[0]
        if ready:
            cur.execute("SELECT value FROM bench_city_state WHERE key = 'finished'")
            row = cur.fetchone()
            cur.execute("SELECT count(*) FROM bench_city_index i WHERE NOT EXISTS "
                        "(SELECT 1 FROM pg_class c WHERE c.relname = i.name)")
            ready = row is not None and cur.fetchone()[0] == 0
    if not ready:
        sys.exit("the city is not built (or not finished): run bench/city_world.py first")


# --- measuring ------------------------------------------------------------------------------------------


def reset_peak() -> None:
    """Start the peak RSS (VmHWM) again from the current RSS (Linux ≥ 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def memory_mib() -> tuple[float, float]:
    """(current RSS, peak RSS since the last reset) of this process in MiB."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, kb = line.split()[:2]
                values[key] = int(kb) / 1024
    return values["VmRSS:"], values["VmHWM:"]


def mem_available_mib() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return 0.0


def backend_cpu():
    """A function giving the CPU seconds used so far by this connection's PostgreSQL backend."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    tick = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    return cpu


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class Clock:
    """Wall and CPU (this process + its database backend) of a block."""

    def __init__(self, backend):
        self.backend = backend

    def __enter__(self):
        self.t, self.c = time.perf_counter(), time.process_time() + self.backend()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t
        self.cpu = time.process_time() + self.backend() - self.c


# --- 1 and 2: evaluation --------------------------------------------------------------------------------


def raw_queries(root, profile) -> None:
    """The evaluator's aggregate queries for ``root``'s subtree alone (as bench/evaluate_world.py)."""
    from wuyiqu.standards.evaluator import _Gather

    g = _Gather(D, profile, root)
    for method in ("units", "households", "unverified_households", "nat", "cases", "measures", "zones", "ledger",
                   "inspections", "incidents", "surveys", "titles"):
        getattr(g, method)()
    g.unsigned_households([(a[0], a[1]) for a in g.applications()])


def part_evaluate(only: list[str] | None = None) -> dict:
    from wuyiqu.standards.evaluator import evaluate, parsed_profile, profile_row_in_force
    from wuyiqu.units.models import Unit

    profile = parsed_profile(profile_row_in_force(D))
    clock = Clock(backend_cpu())
    gc.collect()
    base_rss = memory_mib()[0]
    rows = []
    districts = Unit.objects.filter(parent__isnull=True).order_by("code")
    for district in districts.filter(code__in=only) if only else districts:
        gc.collect()
        reset_peak()
        with clock:
            results = evaluate(D, root=district, profile=profile)
        full_wall, full_cpu = clock.wall, clock.cpu
        rss, peak = memory_mib()
        units, eligible = len(results), sum(r.eligible for r in results)
        del results
        gc.collect()
        with clock:
            raw_queries(district, profile)
        row = {"code": district.code, "name": district.name, "units": units, "eligible": eligible,
               "full_s": round(full_wall, 2), "full_cpu_s": round(full_cpu, 2), "raw_s": round(clock.wall, 2),
               "raw_cpu_s": round(clock.cpu, 2), "full_over_raw": round(full_wall / clock.wall, 2),
               "peak_rss_mib": round(peak), "peak_over_base_mib": round(peak - base_rss), "load": load()[0]}
        rows.append(row)
        print(f"  {district.code} {district.name}: {units:,} units ({eligible:,} eligible) {full_wall:.1f} s "
              f"(CPU {full_cpu:.1f} s), raw queries {clock.wall:.1f} s -> {row['full_over_raw']:.2f}x; "
              f"peak RSS {peak:.0f} MiB (+{peak - base_rss:.0f}) [load {row['load']:.1f}]", flush=True)
    total = {k: round(sum(r[k] for r in rows), 1) for k in ("full_s", "full_cpu_s", "raw_s", "raw_cpu_s")}
    total.update(units=sum(r["units"] for r in rows), eligible=sum(r["eligible"] for r in rows),
                 full_over_raw=round(total["full_s"] / total["raw_s"], 2),
                 max_peak_rss_mib=max(r["peak_rss_mib"] for r in rows),
                 max_peak_over_base_mib=max(r["peak_over_base_mib"] for r in rows), base_rss_mib=round(base_rss))
    print(f"  all {len(rows)} districts one by one: {total['units']:,} units, {total['full_s']:.0f} s wall "
          f"(CPU {total['full_cpu_s']:.0f} s) vs raw queries {total['raw_s']:.0f} s -> {total['full_over_raw']:.2f}x; "
          f"peak RSS at most {total['max_peak_rss_mib']:,} MiB", flush=True)
    return {"districts": rows, "total": total}


def part_city() -> dict:
    from wuyiqu.standards.evaluator import evaluate, parsed_profile, profile_row_in_force

    profile = parsed_profile(profile_row_in_force(D))
    clock = Clock(backend_cpu())
    gc.collect()
    base = memory_mib()[0]
    reset_peak()
    with clock:
        results = evaluate(D, profile=profile)
    rss, peak = memory_mib()
    full = {"units": len(results), "eligible": sum(r.eligible for r in results), "full_s": round(clock.wall, 1),
            "full_cpu_s": round(clock.cpu, 1), "peak_rss_mib": round(peak), "base_rss_mib": round(base)}
    del results
    gc.collect()
    with clock:
        raw_queries(None, profile)
    full.update(raw_s=round(clock.wall, 1), raw_cpu_s=round(clock.cpu, 1),
                full_over_raw=round(full["full_s"] / clock.wall, 2), load=load())
    print(f"  the whole city at once: {full['units']:,} units ({full['eligible']:,} eligible) in {full['full_s']:.0f} s "
          f"(CPU {full['full_cpu_s']:.0f} s), raw queries {full['raw_s']:.0f} s -> {full['full_over_raw']:.2f}x; "
          f"peak RSS {peak:,.0f} MiB", flush=True)
    return full


# --- 3: the daily supervision run -----------------------------------------------------------------------

_TIMED = ("import resource, sys, time\n"
          "from wuyiqu.cli import main\n"
          "t = time.perf_counter()\n"
          "try:\n"
          "    main(sys.argv[1:])\n"
          "finally:\n"
          "    print(f'@@ {time.perf_counter() - t:.3f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}',"
          " flush=True)\n")


def run_command(*argv: str) -> dict:
    """``wuyiqu ARGV`` in a child process: wall seconds (from before Django starts), peak RSS, output."""
    env = dict(os.environ, DATABASE_URL=_url())
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _TIMED, *argv], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        sys.exit(f"wuyiqu {' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    lines = done.stdout.strip().splitlines()
    inner, maxrss = next(line for line in reversed(lines) if line.startswith("@@ ")).split()[1:]
    return {"wall_s": round(wall, 2), "command_s": float(inner), "peak_rss_mib": round(int(maxrss) / 1024),
            "output": [line for line in lines if not line.startswith("@@ ")][:3]}


def reset_day(on: dt.date) -> dict:
    """Take back what a daily run of ``on`` wrote, so that the next run is the first of the day again."""
    from django.db import connection, transaction

    out = {}
    with transaction.atomic(), connection.cursor() as cur:
        for name, sql in (
            ("titles", "UPDATE certification_title SET withdrawn_on = NULL, withdrawn_reason = '' WHERE withdrawn_on = %s"),
            ("events", 'DELETE FROM supervision_titleevent WHERE "on" = %s'),
            ("warnings", "DELETE FROM supervision_warning WHERE opened_on = %s"),
            ("reopened", "UPDATE supervision_warning SET status = 'open', closed_on = NULL WHERE closed_on = %s"),
            ("evaluations", 'DELETE FROM standards_evaluation WHERE "on" = %s'),
        ):
            cur.execute(sql, [on])
            out[name] = cur.rowcount
    return out


def part_supervise() -> dict:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM certification_title WHERE withdrawn_on IS NULL OR withdrawn_on >= %s", [D])
        named = cur.fetchone()[0]
    undone = reset_day(D)
    print(f"  {named:,} titles current before the run; taken back from an earlier run of {D}: {undone}", flush=True)
    out = {"named_before": named, "reset": undone}
    for key in ("first", "again"):
        lg = load()[0]
        out[key] = run_command("supervise", "--date", D.isoformat())
        out[key]["load"] = lg
        print(f"  wuyiqu supervise --date {D} ({key} run of the day): {out[key]['wall_s']:.0f} s wall, "
              f"peak RSS {out[key]['peak_rss_mib']:,} MiB [load {lg:.1f}]\n    {' / '.join(out[key]['output'])}",
              flush=True)
    with connection.cursor() as cur:
        cur.execute('SELECT count(*) FROM standards_evaluation WHERE "on" = %s', [D])
        out["stored"] = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM certification_title WHERE withdrawn_on = %s", [D])
        out["withdrawn"] = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM supervision_warning WHERE opened_on = %s", [D])
        out["warnings"] = cur.fetchone()[0]
    return out


def part_one_pass() -> dict:
    """The daily run as it was before it went district by district: ONE pass over the whole city in one
    transaction (``_supervise`` over "/"), from the same first-of-the-day state, rolled back."""
    from django.db import transaction

    from wuyiqu.supervision.services import Outcome, _supervise
    from wuyiqu.units.models import Unit

    with transaction.atomic():
        reset_day(D)
        out = Outcome(on=D)
        gc.collect()
        base = memory_mib()[0]
        reset_peak()
        paused = gc.isenabled()
        gc.disable()  # as run_daily does
        t = time.perf_counter()
        _supervise(D, roots=["/"], targets=None, actor=None, source="daily", out=out, store=True,
                   districts=list(Unit.objects.filter(parent__isnull=True).values_list("code", flat=True)))
        wall = time.perf_counter() - t
        if paused:
            gc.enable()
        peak = memory_mib()[1]
        transaction.set_rollback(True)
    res = {"wall_s": round(wall, 1), "evaluate_s": round(out.evaluate_seconds, 1), "write_s": round(out.write_seconds, 1),
           "store_s": round(out.store_seconds, 1), "evaluated": out.evaluated, "withdrawn": len(out.withdrawn),
           "opened": out.opened, "stored": out.stored, "peak_rss_mib": round(peak), "base_rss_mib": round(base),
           "load": load()[0]}
    print(f"  one pass over the whole city (rolled back): {wall:.0f} s = evaluation {out.evaluate_seconds:.0f} s + writes "
          f"{out.write_seconds:.0f} s + storing the day {out.store_seconds:.0f} s; {out.evaluated:,} units, "
          f"{len(out.withdrawn):,} withdrawn, {out.opened:,} warnings; peak RSS {peak:,.0f} MiB", flush=True)
    return res


# --- 4: a million nucleic-acid results ------------------------------------------------------------------


def _empty_nat_day() -> None:
    from django.db import connection

    from wuyiqu.health.nat_import import partition_name, week_start

    with connection.cursor() as cur:
        # Emptied between runs, and never analysed by autovacuum meanwhile: analysed empty (after a
        # TRUNCATE, before the import fills it) the week's partition made the import's per-row
        # existence probe plan a scan of the day's rows by the (resident_id, sampled_on) index instead
        # of the primary key — quadratic: a second run of 1 M rows did not finish in 5 min (25 s the
        # first time, the partition new). A freshly made week, as an import meets it, is never analysed.
        cur.execute(f"ALTER TABLE {partition_name(week_start(NAT_DAY))} SET (autovacuum_enabled = false)")
        cur.execute(f"TRUNCATE {partition_name(week_start(NAT_DAY))}")
        cur.execute("DELETE FROM health_positivecase WHERE source = 'nat' AND reported_on BETWEEN %s AND %s",
                    [NAT_DAY, NAT_LAST])


def _nat_count() -> int:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM health_natresult WHERE sampled_on BETWEEN %s AND %s", [NAT_DAY, NAT_LAST])
        return cur.fetchone()[0]


def part_nat() -> dict:
    import nat_world
    from django.db import connection, transaction

    from wuyiqu.health.nat_import import ensure_nat_partitions, week_start
    from wuyiqu.lib import crypto

    assert 1 <= NAT_ROUNDS and week_start(NAT_LAST) == week_start(NAT_DAY), "rounds within NAT_DAY's week"
    ensure_nat_partitions(NAT_DAY, NAT_LAST)
    _empty_nat_day()
    c = crypto.cipher()
    t = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SELECT code FROM units_unit WHERE parent_id IS NULL ORDER BY (SELECT count(*) FROM units_unit s "
                    "WHERE s.parent_id = units_unit.id) DESC, code LIMIT 1")
        district = cur.fetchone()[0]
        cur.execute("SELECT r.id, r.id_enc, r.id_hash, h.unit_id FROM units_resident r "
                    "JOIN units_household h ON h.district_code = r.district_code AND h.id = r.household_id "
                    "JOIN units_unit u ON u.id = h.unit_id "
                    "WHERE r.district_code = %s AND u.path LIKE %s ORDER BY r.id LIMIT %s",
                    [district, f"/{district}/%", NAT_RESIDENTS])
        people = cur.fetchall()
    # The registry's ciphertext, decrypted: the file holds the numbers a laboratory would send.
    numbers = [c.decrypt(enc) for _rid, enc, _h, _u in people]
    assert all(c.lookup_hash(n) == h for n, (_r, _e, h, _u) in zip(numbers[:20_000], people, strict=False))
    decrypt_s = time.perf_counter() - t
    path = OUT / f"city_nat_{NAT_DAY:%Y%m%d}.csv"
    raw: list[str] = []  # the rows as the import stores them (COPY text)
    stage: list[str] = []  # hash, local time, date and result: the import's own staging rows
    lines = ["身份证号,采样时间,检测结果\n"]
    strangers = [(nat_world.stranger_id_number(i), c.lookup_hash(nat_world.stranger_id_number(i)))
                 for i in range(0, len(people), 99)]
    for k in range(NAT_ROUNDS):
        day = NAT_DAY + dt.timedelta(days=k)
        for i, (number, (rid, _enc, h, uid)) in enumerate(zip(numbers, people, strict=True)):
            secs = 7 * 3600 + (i * 7919) % (12 * 3600)
            at = f"{day} {secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
            positive = i % 20_000 == 17 and k == 0
            lines.append(f"{number},{at},{'阳性' if positive else '阴性'}\n")
            value = "positive" if positive else "negative"
            raw.append(f"{district}\t{h}\t{rid}\t{uid}\t{at}+08\t{day}\t{value}\n")
            stage.append(f"{h}\t{at}\t{day}\t{value}\n")
            if i % 99 == 0:  # 1 % people not on the register (kept unmatched)
                stranger, sh = strangers[i // 99]
                lines.append(f"{stranger},{at},阴性\n")
                raw.append(f"\t{sh}\t\\N\t\\N\t{at}+08\t{day}\tnegative\n")  # unscoped: district ""
                stage.append(f"{sh}\t{at}\t{day}\tnegative\n")
    path.write_text("".join(lines), encoding="utf-8")
    n = len(raw)
    print(f"  {n:,} results: {NAT_ROUNDS} day(s) of {len(people):,} residents of district {district}, numbers "
          f"decrypted from the registry in {decrypt_s:.0f} s, and of {len(strangers):,} people not on the register; file "
          f"{path.stat().st_size / 1e6:.0f} MB", flush=True)
    del people, numbers, lines

    # The raw limit: exactly the rows the import stores, COPY'd in one transaction.
    lg = load()[0]
    t = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        buf = "".join(raw)
        with cur.cursor.copy("COPY health_natresult (district_code, id_hash, resident_id, unit_id, sampled_at, "
                             "sampled_on, result) FROM STDIN") as copy:
            for i in range(0, len(buf), 1 << 22):
                copy.write(buf[i:i + (1 << 22)])
    raw_s = time.perf_counter() - t
    assert _nat_count() == n
    del raw, buf
    _empty_nat_day()
    # A second limit, with the matching done by the database: the hashes, times and results COPY'd into
    # a temporary table and stored with ONE INSERT … SELECT joining the registry (what the import's
    # SQL must do at least; the first limit leaves the matching out).
    t = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("CREATE TEMP TABLE bench_nat (id_hash text, sampled_local timestamp, sampled_on date, result text) "
                    "ON COMMIT DROP")
        with cur.cursor.copy("COPY bench_nat FROM STDIN") as copy:
            copy.write("".join(stage))
        cur.execute("INSERT INTO health_natresult (district_code, id_hash, resident_id, unit_id, sampled_at, "
                    "sampled_on, result) "
                    "SELECT COALESCE(split_part(u.path, '/', 2), ''), s.id_hash, r.id, h.unit_id, "
                    "s.sampled_local AT TIME ZONE 'Asia/Shanghai', s.sampled_on, "
                    "s.result FROM bench_nat s LEFT JOIN units_resident r ON r.id_hash = s.id_hash "
                    "LEFT JOIN units_household h ON h.district_code = r.district_code AND h.id = r.household_id "
                    "LEFT JOIN units_unit u ON u.id = h.unit_id")
    matched_s = time.perf_counter() - t
    assert _nat_count() == n
    del stage
    _empty_nat_day()
    out = {"rows": n, "district": district, "raw_s": round(raw_s, 2), "raw_matched_s": round(matched_s, 2),
           "load_before": lg}
    out["import"] = run_command("import", "nat-results", str(path))
    assert _nat_count() == n, (_nat_count(), n)
    out["reimport"] = run_command("import", "nat-results", str(path))
    assert _nat_count() == n
    out["import_over_raw"] = round(out["import"]["wall_s"] / raw_s, 2)
    out["import_over_raw_matched"] = round(out["import"]["wall_s"] / matched_s, 2)
    print(f"  raw COPY {raw_s:.1f} s ({n / raw_s:,.0f} rows/s); raw COPY + matching in one INSERT … SELECT "
          f"{matched_s:.1f} s; wuyiqu import nat-results {out['import']['wall_s']:.1f} s "
          f"({n / out['import']['wall_s']:,.0f} rows/s, peak RSS {out['import']['peak_rss_mib']} MiB) -> "
          f"{out['import_over_raw']:.2f}x raw, {out['import_over_raw_matched']:.2f}x raw with matching; "
          f"re-import (adds nothing) {out['reimport']['wall_s']:.1f} s\n"
          f"    {' / '.join(out['import']['output'])}", flush=True)
    out["match_plan"] = _match_plan(path)
    _empty_nat_day()
    return out


def _match_plan(path: Path) -> list[str]:
    """EXPLAIN of the import's resident match for a batch of 500,000 staged results (as the import plans
    it: the stage analysed, random_page_cost 1.1), to show whether it reads the city's registry."""
    from django.db import connection, transaction

    from wuyiqu.health.nat_import import IdHasher

    hasher = IdHasher()
    with open(path, encoding="utf-8") as f:
        next(f)
        rows = [line.split(",", 2) for _, line in zip(range(500_000), f, strict=False)]
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("CREATE TEMP TABLE bench_stage (id_hash text, sampled_local timestamp, sampled_on date, "
                    "result text) ON COMMIT DROP")
        with cur.cursor.copy("COPY bench_stage FROM STDIN") as copy:
            copy.write("".join(f"{hasher(n)}\t{at}\t{at[:10]}\tnegative\n" for n, at, _r in rows))
        cur.execute("ANALYZE bench_stage")
        cur.execute("SET LOCAL random_page_cost = 1.1")
        cur.execute("SET LOCAL work_mem = '256MB'")
        cur.execute("EXPLAIN SELECT s.id_hash, r.id, h.unit_id FROM bench_stage s LEFT JOIN units_resident r "
                    "ON r.id_hash = s.id_hash LEFT JOIN units_household h ON h.district_code = r.district_code "
                    "AND h.id = r.household_id")
        return [r[0] for r in cur.fetchall()]


# --- 5: the dashboard of a district ---------------------------------------------------------------------


HISTORY_DAYS = 28  # stored days before D-1 (D-1 itself stays a gap: the live case)


def ensure_history() -> int:
    """Once: the daily run's stored evaluations for the 28 days D-29 … D-2, copies of D's rows, so
    that the 30-day trend reads what a month of daily runs leaves. Returns the rows added."""
    from django.db import connection, transaction

    added = 0
    with transaction.atomic(), connection.cursor() as cur:
        for k in range(2, 2 + HISTORY_DAYS):
            day = D - dt.timedelta(days=k)
            cur.execute('SELECT EXISTS (SELECT 1 FROM standards_evaluation WHERE "on" = %s)', [day])
            if cur.fetchone()[0]:
                continue
            cur.execute('INSERT INTO standards_evaluation (unit_id, district_code, "on", eligible, named, failed, details, '
                        'profile_id, profile_version, rollup, created_at) SELECT unit_id, district_code, %s, eligible, '
                        'named, failed, details, profile_id, profile_version, rollup, created_at '
                        'FROM standards_evaluation WHERE "on" = %s',
                        [day, D])
            added += cur.rowcount
    if added:
        with connection.cursor() as cur:
            cur.execute("VACUUM (ANALYZE) standards_evaluation")  # autovacuum is off on this server
    return added


def part_dashboard() -> dict:
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from wuyiqu.accounts.actions import do_create_user
    from wuyiqu.accounts.models import Role, User
    from wuyiqu.units.models import Unit

    setup_test_environment()  # responses keep their context (the numbers' source)
    t = time.perf_counter()
    added = ensure_history()
    print(f"  stored evaluations of {HISTORY_DAYS} earlier days: {added:,} rows added ({time.perf_counter() - t:.0f} s)",
          flush=True)
    with connection.cursor() as cur:
        cur.execute("SELECT code FROM units_unit WHERE parent_id IS NULL ORDER BY (SELECT count(*) FROM units_unit s "
                    "WHERE s.parent_id = units_unit.id) DESC, code LIMIT 1")
        largest = Unit.objects.get(code=cur.fetchone()[0])
    out = {}
    for district in (Unit.objects.get(code=QIJIANG), largest):
        username = f"city_command_{district.code}"
        user = User.objects.filter(username=username).first() or do_create_user(
            actor=None, username=username, password="correct-horse-battery", role=Role.COMMAND, unit=district,
            display_name=username)
        client = Client()
        client.force_login(user)
        res = {}
        for label, day in (("stored", D), ("live", D - dt.timedelta(days=1))):
            for name, url in (("page", f"/units/{district.code}/dashboard/?date={day}"),
                              ("children", f"/units/{district.code}/dashboard/children.json?date={day}")):
                cache.clear()
                t = time.perf_counter()
                with CaptureQueriesContext(connection) as cold_q:
                    response = client.get(url)
                cold = time.perf_counter() - t
                assert response.status_code == 200, (url, response.status_code)
                source = (response.json()["source"] if name == "children"
                          else response.context["summary"]["source"])
                warm = []
                for _ in range(5):
                    t = time.perf_counter()
                    with CaptureQueriesContext(connection) as warm_q:
                        assert client.get(url).status_code == 200
                    warm.append(time.perf_counter() - t)
                res[f"{name}_{label}"] = {"source": source, "cold_ms": round(cold * 1000),
                                          "cold_queries": len(cold_q.captured_queries),
                                          "warm_ms": round(statistics.median(warm) * 1000, 1),
                                          "warm_queries": len(warm_q.captured_queries), "load": load()[0]}
                r = res[f"{name}_{label}"]
                print(f"  {district.code} {district.name} {name} on {day} ({source}): cold {r['cold_ms']:,} ms "
                      f"({r['cold_queries']} queries), warm {r['warm_ms']} ms ({r['warm_queries']} queries) "
                      f"[load {r['load']:.1f}]", flush=True)
        out[district.code] = res
    return out


# --- driver ---------------------------------------------------------------------------------------------


def run_part(part: str, districts: list[str] | None) -> None:
    """In the child: one part, its result as JSON on the last line."""
    setup()
    started = load()
    result = part_evaluate(districts) if part == "evaluate" else globals()[f"part_{part}"]()
    print("@@JSON " + json.dumps({"result": result, "load_before": started, "load_after": load()}, default=str),
          flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--whole-city", choices=("auto", "yes", "no"), default="auto")
    parser.add_argument("--districts", help="evaluate: only these district codes (comma-separated)")
    parser.add_argument("--out", type=Path, default=OUT / "city_scale.json")
    parser.add_argument("--part", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    only = [c for c in (args.districts or "").split(",") if c] or None
    if args.part:
        run_part(args.part, only)
        return
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        sys.exit(f"unknown parts: {', '.join(sorted(unknown))}")
    path = args.out
    report = json.loads(path.read_text()) if path.exists() else {}
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"uptime: {uptime}", flush=True)
    report.setdefault("runs", []).append({"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                                          "uptime": uptime, "parts": parts})
    for part in parts:
        if part in WHOLE_CITY_PARTS and args.whole_city != "yes":
            per = report.get("evaluate", {}).get("total")
            if args.whole_city == "no" or per is None:
                print("city: skipped (--whole-city no, or no per-district figures yet)")
                continue
            # Memory grows with the units held at once: the largest district's growth, scaled.
            largest = max(report["evaluate"]["districts"], key=lambda r: r["units"])
            estimate = per["base_rss_mib"] + largest["peak_over_base_mib"] * per["units"] / largest["units"]
            if estimate > mem_available_mib() / 2:
                print(f"city: skipped, estimated peak RSS {estimate:,.0f} MiB is over half of the "
                      f"{mem_available_mib():,.0f} MiB available")
                report["city"] = {"skipped": True, "estimated_peak_rss_mib": round(estimate)}
                continue
            print(f"city: estimated peak RSS {estimate:,.0f} MiB, {mem_available_mib():,.0f} MiB available")
        print(f"== {part} (load {' '.join(str(x) for x in load())})", flush=True)
        t = time.perf_counter()
        child = subprocess.Popen([sys.executable, __file__, "--part", part,
                                  *(["--districts", args.districts] if args.districts else [])],
                                 stdout=subprocess.PIPE, text=True)
        payload = None
        for line in child.stdout:
            if line.startswith("@@JSON "):
                payload = json.loads(line[7:])
            else:
                print(line, end="", flush=True)
        if child.wait() != 0 or payload is None:
            sys.exit(f"part {part} failed ({child.returncode})")
        payload["seconds"] = round(time.perf_counter() - t, 1)
        report[part] = payload["result"] | {"load_before": payload["load_before"], "load_after": payload["load_after"],
                                            "part_seconds": payload["seconds"]}
        OUT.mkdir(exist_ok=True)
        path.write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str))
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    report["runs"][-1]["uptime_after"] = uptime
    path.write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str))
    print(f"uptime: {uptime}\nwritten {path}")


if __name__ == "__main__":
    main()
