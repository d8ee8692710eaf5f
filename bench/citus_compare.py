"""The same generated districts on one PostgreSQL and on Citus (a coordinator + 2 workers on this
machine): build, full evaluation per district, the daily run, a million-result import, a district's
dashboard — with the ratios Citus / one PostgreSQL, in wall time and in CPU time.

    .venv/bin/python bench/citus_compare.py                          # 2 districts of a 3 M-resident city
    .venv/bin/python bench/citus_compare.py --rounds 3 --nat-rounds 5

How: scripts/citus_cluster.py starts a coordinator and two workers (Debian's PostgreSQL 15 with Citus,
temporary data directories, free ports, the same settings: fsync off, 128 MB shared buffers). "One
PostgreSQL" is a database of the coordinator's own server *without* the citus extension (same binaries,
same settings, same machine); "Citus" is a database with the extension on all three nodes. Each is
built by bench/city_world.py (``--districts N --residents R``: the first N districts of the city at R
residents for the whole city), then on Citus ``wuyiqu citus distribute``. Then each part of
bench/city_scale.py (evaluate, supervise, nat, dashboard) is run ``--rounds`` times on each database,
alternating which goes first (the machine is shared: a change of load falls on both sides), and each
side's best round is compared. The results import holds ``--nat-rounds`` days of the largest district's
residents (plus 1 % people not on the register): 5 days make ~1 M results at 3 M residents.

CPU: of the command's process tree (getrusage of the children) and of the three PostgreSQL servers
(each postmaster's reaped children: every backend of the command on every node, the workers' included).
Writes bench/out/citus_compare.json (and the city_scale reports beside it).

All nodes share this machine's 2 cores and disk: the Citus figures are the cost of the distribution
(planning on the coordinator, the network hop over loopback, two-phase commit), not its gain — a real
cluster (one worker per machine) adds the workers' cores, memory and disks (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "scripts"))

import citus_cluster  # noqa: E402

OUT = HERE / "out"


TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu(cluster) -> float:
    """CPU seconds used so far by the cluster's three PostgreSQL servers: each postmaster's own and its
    reaped children's (/proc/<pid>/stat utime, stime, cutime, cstime) — a backend's CPU is added to its
    postmaster's when the connection ends, so after a command has exited this holds all its queries'
    CPU on every node, the workers' included (the background processes still running are left out)."""
    total = 0
    for node in cluster.nodes:
        pid = (node.datadir / "postmaster.pid").read_text().split()[0]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(f) for f in fields[11:15])
    return total / TICKS


def timed(args: list[str], url: str, cluster=None, env: dict | None = None) -> dict:
    """Run a command against ``url``: its wall seconds, and the CPU seconds of the command (its process
    tree) and of the cluster's servers (``server_cpu``) while it ran."""
    env = dict(os.environ, BENCH_DATABASE_URL=url, DATABASE_URL=url, WUYIQU_ENV="test",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **(env or {}))
    env.setdefault("DJANGO_SETTINGS_MODULE", "wuyiqu.settings")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = server_cpu(cluster) if cluster else 0.0
    t = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, cwd=ROOT)
    wall = time.perf_counter() - t
    time.sleep(1)  # the backends' exit reaped by their postmasters
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    out = {"wall_s": round(wall, 1), "client_cpu_s": round(client, 1)}
    if cluster:
        out["server_cpu_s"] = round(server_cpu(cluster) - server, 1)
        out["cpu_s"] = round(out["client_cpu_s"] + out["server_cpu_s"], 1)
    return out


def load() -> float:
    return round(os.getloadavg()[0], 2)


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items() if isinstance(d, dict) else []:
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = v
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--districts", type=int, default=2)
    parser.add_argument("--residents", type=int, default=3_000_000)
    parser.add_argument("--shard-count", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="measurements of each part on each database, alternating")
    parser.add_argument("--nat-rounds", type=int, default=5,
                        help="days of the district's residents in the results import (5: ~1 M rows at 3 M residents)")
    parser.add_argument("--parts", default="evaluate,supervise,nat,dashboard")
    parser.add_argument("--out", type=Path, default=OUT / "citus_compare.json")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)  # city_world measures the free disk there
    citus_cluster.build()
    base = Path(tempfile.mkdtemp(prefix="wuyiqu-citus-bench-"))
    cluster = citus_cluster.Cluster(base, workers=2, shard_count=args.shard_count).start()
    report: dict = {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "districts": args.districts,
                    "residents_city": args.residents, "shard_count": args.shard_count, "rounds": args.rounds,
                    "nat_rounds": args.nat_rounds,
                    "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
                    "postgresql": {}, "citus": {}}
    try:
        cluster.sql(cluster.coordinator, "postgres", "CREATE DATABASE wuyiqu_cmp_plain")
        urls = {"postgresql": cluster.url("wuyiqu_cmp_plain"), "citus": cluster.create_database("wuyiqu_cmp_citus")}
        for name, url in urls.items():
            print(f"== {name}: build (load {load()})", flush=True)
            part = report[name]
            part["build"] = timed([str(HERE / "city_world.py"), "--districts", str(args.districts), "--residents",
                                   str(args.residents), "--min-free-gb", "5"], url, cluster)
            part["build"]["load"] = load()
            if name == "citus":
                part["distribute"] = timed(["-m", "wuyiqu", "citus", "distribute"], url, cluster)
        # Each part measured on both, alternating which goes first, so that a change of the machine's
        # load (other engineers' suites) falls on both sides.
        for round_ in range(args.rounds):
            order = list(urls) if round_ % 2 == 0 else list(reversed(urls))
            for part_name in args.parts.split(","):
                for name in order:
                    scale = OUT / f"citus_compare_{name}_{part_name}_{round_}.json"
                    scale.unlink(missing_ok=True)
                    lg = load()
                    print(f"== round {round_ + 1} {part_name} on {name} (load {lg})", flush=True)
                    run = timed([str(HERE / "city_scale.py"), "--parts", part_name, "--whole-city", "no",
                                 "--out", str(scale)], urls[name], cluster, {"BENCH_NAT_ROUNDS": str(args.nat_rounds)})
                    run.update(load_before=lg, load_after=load(), figures=figures_of(part_name,
                                                                                  json.loads(scale.read_text())))
                    report[name].setdefault(part_name, []).append(run)
        report["ratios"] = ratios(report, args.parts.split(","))
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
    report["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    OUT.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    print(f"{'':44} {'PostgreSQL':>12} {'Citus 1+2':>12} {'ratio':>7}")
    for key, (a, b, r) in report["ratios"].items():
        print(f"{key:44} {a:>12} {b:>12} {r:>6.2f}x")
    print(f"written {args.out}")


def figures_of(part: str, report: dict) -> dict:
    """The compared numbers of one city_scale part."""
    if part == "evaluate":
        return {"evaluate_s": report["evaluate"]["total"]["full_s"],
                "evaluate_cpu_s": report["evaluate"]["total"]["full_cpu_s"]}
    if part == "supervise":
        return {"supervise_first_s": report["supervise"]["first"]["wall_s"],
                "supervise_again_s": report["supervise"]["again"]["wall_s"]}
    if part == "nat":
        nat = report["nat"]
        return {"import_s": nat["import"]["wall_s"], "import_rows": nat["rows"], "reimport_s": nat["reimport"]["wall_s"],
                "raw_copy_s": nat["raw_s"]}
    return {f"dashboard.{k}": v for k, v in _flatten(report.get("dashboard", {})).items()
            if k.endswith(("cold_s", "warm_ms", "warm_s", "cold_ms"))}


def ratios(report: dict, parts: list[str]) -> dict:
    """{figure: (PostgreSQL, Citus, Citus / PostgreSQL)}, each side the best of its rounds (the least
    disturbed by the load): the figures of city_scale and each part's wall and total CPU."""
    out = {}
    for part in parts:
        runs = {name: report[name].get(part, []) for name in ("postgresql", "citus")}
        if not all(runs.values()):
            continue
        keys = ["wall_s", "cpu_s", "server_cpu_s", "client_cpu_s"]
        for key in keys:
            a, b = (min(r[key] for r in runs[n]) for n in ("postgresql", "citus"))
            out[f"{part}.{key}"] = (a, b, round(b / a, 2) if a else 0.0)
        for key in runs["postgresql"][0]["figures"]:
            if key.endswith("_rows"):
                continue
            vals = [[r["figures"].get(key) for r in runs[n]] for n in ("postgresql", "citus")]
            if any(v is None for side in vals for v in side):
                continue
            a, b = min(vals[0]), min(vals[1])
            out[key] = (a, b, round(b / a, 2) if a else 0.0)
    return out


if __name__ == "__main__":
    main()
