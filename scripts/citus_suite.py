"""The ordinary test suite against a Citus coordinator: the product's own tests, unchanged, on a
deployment distributed by district (docs/scaling.md, "Running on Citus").

    python3 scripts/citus_suite.py [pytest options] [tests…]     # no tests named: the modules of CITUS_MODULES
    python3 scripts/citus_suite.py -q tests/                       # the whole suite

It starts a coordinator and two workers in a temporary folder (scripts/citus_cluster.py; Citus is
built by ../shared/vendor/citus/build.sh when not installed), makes the test database on every node
with the citus extension, migrates it and runs `wuyiqu citus distribute` — so that every district-keyed
table is distributed and the shared ones are reference tables *before* the first test — then runs
pytest against the coordinator with pytest-django's ``--reuse-db`` (it keeps that database instead of
creating a plain one). Each test then runs in its transaction on the cluster, as on PostgreSQL.

Left out, with the reason each: the browser tests (layout, no query the other tests do not make), the
Citus tests (they start their own cluster), and the few tests that are about one PostgreSQL server
itself (EXCLUDED below). Exit status: pytest's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import citus_cluster  # noqa: E402

# What runs when no test is named: the modules whose writes and reads cross the distributed tables —
# the registry and its imports, facts, the evaluator, supervision, the review chain, the pages and the API.
CITUS_MODULES = [
    "tests/test_units_moves.py", "tests/test_units_relocation.py", "tests/test_import_engine.py", "tests/test_import_kinds.py",
    "tests/test_health_actions.py", "tests/test_health_nat_import.py", "tests/test_health_selectors.py",
    "tests/test_facts_relink.py", "tests/test_standards_evaluator.py", "tests/test_standards_chain.py",
    "tests/test_standards_time.py", "tests/test_supervision_daily.py", "tests/test_supervision_cascade.py",
    "tests/test_applications_workflow.py", "tests/test_applications_signing.py", "tests/test_certification_naming.py",
    "tests/test_negative_opinions.py", "tests/test_inspections_pages.py", "tests/test_dashboard_pages.py",
    "tests/test_web_pages.py", "tests/test_web_records.py", "tests/test_api_facts.py", "tests/test_api_reads.py",
    "tests/test_rotate_keys.py", "tests/test_resident_directory.py",
]
# Tests about one PostgreSQL server rather than the product's statements: a dump restored with
# pg_restore into a plain database, a client killed mid-import and the server's tables fingerprinted.
EXCLUDED = ["tests/test_backup_restore.py", "tests/test_faults_kill.py"]


def main(argv: list[str]) -> int:
    # Stopped (SIGTERM, a CI timeout), it still stops its servers and removes its folders.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    citus_cluster.build(timeout=float(os.environ.get("WUYIQU_CITUS_BUILD_TIMEOUT", "1800")))
    base = Path(tempfile.mkdtemp(prefix="wuyiqu-citus-suite-"))
    data_dir = Path(tempfile.mkdtemp(prefix="wuyiqu-citus-data-"))
    cluster = citus_cluster.Cluster(base, workers=2, shard_count=8)
    try:
        cluster.start()
        test_url = cluster.create_database("test_wuyiqu")
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "wuyiqu.settings_test", "WUYIQU_DATA_DIR": str(data_dir),
               "WUYIQU_CITUS_SUITE": "1",
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        for args in (["-m", "django", "migrate", "-v0"], ["-m", "wuyiqu", "citus", "distribute"]):
            subprocess.run([sys.executable, *args], env={**env, "DATABASE_URL": test_url}, cwd=ROOT, check=True)
        # Options alone (-q, -x, -k …) run the default modules; naming a test or folder runs that instead.
        tests = argv if any((ROOT / a.split("::")[0]).exists() for a in argv) else [*argv, *CITUS_MODULES]
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--reuse-db",
                   "-m", "not browser and not citus", *[f"--ignore={e}" for e in EXCLUDED], *tests]
        print("citus suite:", " ".join(command), flush=True)
        return subprocess.run(command, env={**env, "DATABASE_URL": cluster.url("wuyiqu")}, cwd=ROOT).returncode
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
