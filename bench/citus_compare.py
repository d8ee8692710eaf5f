"""The same generated districts on one PostgreSQL and on Citus (a coordinator + 2 workers on this
machine): build, full evaluation per district, the daily run, a results import, a district's dashboard
— with the ratios Citus / one PostgreSQL.

    .venv/bin/python bench/citus_compare.py                          # 2 districts, 3 M-resident city's share
    .venv/bin/python bench/citus_compare.py --districts 3 --residents 6000000

How: scripts/citus_cluster.py starts a coordinator and two workers (Debian's PostgreSQL 15 with Citus,
temporary data directories, free ports, the same settings: fsync off, 128 MB shared buffers). "One
PostgreSQL" is a database of the coordinator's own server *without* the citus extension (same binaries,
same settings, same machine); "Citus" is a database with the extension on all three nodes. Each is
built by bench/city_world.py (``--districts N --residents R``: the first N districts of the city at R
residents for the whole city) and measured by bench/city_scale.py (``--parts evaluate,supervise,nat,
dashboard``), both pointed at it with BENCH_DATABASE_URL; on Citus the build is followed by
``wuyiqu citus distribute`` (counted in the build). The results import is the largest district's
residents (all of them, plus 1 % people not on the register), not a million, at these sizes.
Writes bench/out/citus_compare.json (and the two city_scale reports beside it).

All nodes share this machine's 2 cores and disk: the Citus figures are the cost of the distribution
(planning on the coordinator, the network hop over loopback, two-phase commit), not its gain — a real
cluster (one worker per machine) adds the workers' cores, memory and disks (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
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


def timed(args: list[str], url: str) -> float:
    env = dict(os.environ, BENCH_DATABASE_URL=url, DATABASE_URL=url, WUYIQU_ENV="test",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.setdefault("DJANGO_SETTINGS_MODULE", "wuyiqu.settings")
    t = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, cwd=ROOT)
    return time.perf_counter() - t


def load() -> float:
    return round(os.getloadavg()[0], 2)


def figures(report: dict) -> dict:
    """The compared numbers of one city_scale report."""
    out = {"evaluate_s": report["evaluate"]["total"]["full_s"],
           "supervise_first_s": report["supervise"]["first"]["wall_s"],
           "supervise_again_s": report["supervise"]["again"]["wall_s"],
           "import_s": report["nat"]["import"]["wall_s"], "import_rows": report["nat"]["rows"],
           "reimport_s": report["nat"]["reimport"]["wall_s"]}
    dash = report.get("dashboard", {})
    for name, value in _flatten(dash).items():
        if name.endswith(("cold_s", "warm_ms", "warm_s", "cold_ms")):
            out[f"dashboard.{name}"] = value
    return out


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
    parser.add_argument("--out", type=Path, default=OUT / "citus_compare.json")
    args = parser.parse_args(argv)
    citus_cluster.build()
    base = Path(tempfile.mkdtemp(prefix="wuyiqu-citus-bench-"))
    cluster = citus_cluster.Cluster(base, workers=2, shard_count=args.shard_count).start()
    report: dict = {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "districts": args.districts,
                    "residents_city": args.residents, "shard_count": args.shard_count,
                    "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}
    try:
        cluster.sql(cluster.coordinator, "postgres", "CREATE DATABASE wuyiqu_cmp_plain")
        urls = {"postgresql": cluster.url("wuyiqu_cmp_plain"), "citus": cluster.create_database("wuyiqu_cmp_citus")}
        for name, url in urls.items():
            print(f"== {name}: build (load {load()})", flush=True)
            part = {"load_before": load()}
            part["build_s"] = round(timed([str(HERE / "city_world.py"), "--districts", str(args.districts),
                                           "--residents", str(args.residents), "--min-free-gb", "5"], url), 1)
            if name == "citus":
                part["distribute_s"] = round(timed(["-m", "wuyiqu", "citus", "distribute"], url), 1)
                part["build_s"] = round(part["build_s"] + part["distribute_s"], 1)
            scale = OUT / f"citus_compare_{name}.json"
            scale.unlink(missing_ok=True)
            print(f"== {name}: city_scale (load {load()})", flush=True)
            timed([str(HERE / "city_scale.py"), "--parts", "evaluate,supervise,nat,dashboard", "--whole-city", "no",
                   "--out", str(scale)], url)
            part.update(figures(json.loads(scale.read_text())), load_after=load())
            report[name] = part
        plain, citus = report["postgresql"], report["citus"]
        report["ratios"] = {k: round(citus[k] / plain[k], 2) for k in plain
                            if k in citus and isinstance(plain[k], (int, float)) and plain[k] and not k.startswith("load")}
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
    report["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    OUT.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    print(f"{'':34} {'PostgreSQL':>12} {'Citus 1+2':>12} {'ratio':>7}")
    for key, ratio in report["ratios"].items():
        print(f"{key:34} {report['postgresql'][key]:>12} {report['citus'][key]:>12} {ratio:>6.2f}x")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
