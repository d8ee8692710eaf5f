"""Times `wuyiqu rotate-keys`, `wuyiqu backup` and `wuyiqu restore` on a generated world, as processes
on a database on disk, and checks what they promise (docs/reliability.md, Personal data and Faults).

    .venv/bin/python bench/reliability_ops.py --residents 50000            # a SQLite file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/NAME .venv/bin/python bench/reliability_ops.py --residents 50000

On PostgreSQL it makes databases NAME_ops1 and NAME_ops2 (dropped at the end). Steps: migrate and
load the world (10 % of the residents with a nucleic-acid result); back it up; restore it into a
fresh database and compare `evaluate --json`; rotate the data key on the restored copy (stopped
with SIGKILL half-way, then run again) and check every value decrypts to what it was.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

WUYIQU = str(Path(sys.executable).with_name("wuyiqu"))
TEST_KEY = "dGVzdC1vbmx5LWRhdGEta2V5LTMyLWJ5dGVzLWxvbmc="
NEW_KEY = base64.b64encode(bytes(range(50, 82))).decode()

LOAD = r"""
import datetime as dt, sys, django
django.setup()
from django.db import connection
from wuyiqu.units.actions import do_load_divisions, do_load_generated_world
from wuyiqu.units.generator import generate_world
from wuyiqu.units.models import Unit
do_load_divisions()
committees = list(Unit.objects.filter(parent__code="500110002").order_by("code").values_list("code", "name", "kind"))
print(do_load_generated_world(world=generate_world(committees, residents=int(sys.argv[1]), seed=11)))
"""

DECRYPT_ALL = r"""
import django, hashlib
django.setup()
from wuyiqu.lib import crypto
from wuyiqu.units.models import Resident
c = crypto.cipher()
h = hashlib.sha256()
for pk, i, p in Resident.objects.order_by("pk").values_list("pk", "id_enc", "phone_enc").iterator(chunk_size=5000):
    h.update(f"{pk}|{c.decrypt(i)}|{c.decrypt(p) if p else ''}\n".encode())
print(h.hexdigest())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=50000)
    args = parser.parse_args()
    base_url = os.environ.get("DATABASE_URL", "")
    tmp = Path(tempfile.mkdtemp(prefix="wuyiqu-ops-"))
    pg = base_url.startswith("postgres")

    def url_for(n: int) -> str:
        if not pg:
            return f"sqlite:///{tmp / f'ops{n}.sqlite3'}"
        parts = urlsplit(base_url)
        return urlunsplit(parts._replace(path=f"{parts.path}_ops{n}"))

    def admin(sql: str) -> None:
        import psycopg

        with psycopg.connect(urlunsplit(urlsplit(base_url)._replace(path="/postgres")), autocommit=True) as c:
            c.execute(sql)

    def env(n: int, **extra) -> dict[str, str]:
        e = {k: v for k, v in os.environ.items() if not k.startswith("WUYIQU_")}
        return e | {"DATABASE_URL": url_for(n), "WUYIQU_ENV": "test", "DJANGO_SETTINGS_MODULE": "wuyiqu.settings",
                    "WUYIQU_DATA_DIR": str(tmp / "var")} | extra

    def run(n: int, *cmd: str, extra: dict | None = None, python: bool = False) -> tuple[float, str]:
        t = time.monotonic()
        argv = [sys.executable, "-c", *cmd] if python else [WUYIQU, *cmd]
        r = subprocess.run(argv, env=env(n, **(extra or {})), capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)[:80]} failed:\n{r.stdout}\n{r.stderr}")
        return time.monotonic() - t, r.stdout

    if pg:
        for n in (1, 2):
            admin(f'DROP DATABASE IF EXISTS "{urlsplit(url_for(n)).path[1:]}" WITH (FORCE)')
        admin(f'CREATE DATABASE "{urlsplit(url_for(1)).path[1:]}"')
        admin(f'CREATE DATABASE "{urlsplit(url_for(2)).path[1:]}"')
    try:
        with os.popen("uptime") as u:
            print(f"load before: {u.read().strip()}")
        run(1, "migrate", "--no-input", "-v", "0")
        seconds, out = run(1, LOAD, str(args.residents), python=True)
        print(f"world: {out.strip()} in {seconds:.1f} s")
        # Its nucleic-acid results: a tenth of the residents tested yesterday, through the import.
        _, numbers = run(1, "import django; django.setup()\nfrom wuyiqu.units.models import Resident\n"
                            "print('\\n'.join(r.reveal_id_number() for r in Resident.objects.order_by('pk')[::10]))",
                         python=True)
        nat = tmp / "nat.csv"
        yesterday = time.strftime("%Y-%m-%d", time.localtime(time.time() - 86400))
        nat.write_text("id_number,sampled_at,result\n" + "".join(f"{n},{yesterday} 09:00,阴性\n" for n in numbers.split()))
        seconds, _ = run(1, "import", "nat-results", str(nat), "--no-progress")
        print(f"nat-results: {len(numbers.split())} rows imported in {seconds:.1f} s")
        _, plain_before = run(1, DECRYPT_ALL, python=True)

        seconds, out = run(1, "backup", str(tmp / "backup"))
        print(f"backup: {seconds:.1f} s — {out.strip()}")
        manifest = json.loads((tmp / "backup" / "manifest.json").read_text())
        print(f"  data file {manifest['data_file']['bytes'] / 1e6:.1f} MB, {len(manifest['tables'])} tables")
        seconds, out = run(2, "restore", str(tmp / "backup"))
        print(f"restore on a fresh database: {seconds:.1f} s — {out.strip()}")
        day = time.strftime("%Y-%m-%d")
        _, a = run(1, "evaluate", "--json", "--date", day)
        _, b = run(2, "evaluate", "--json", "--date", day)
        print(f"evaluate --json identical on source and restored copy: {json.loads(a) == json.loads(b)} "
              f"({len(json.loads(a))} units)")

        rotated = {"WUYIQU_DATA_KEY": NEW_KEY, "WUYIQU_OLD_DATA_KEYS": TEST_KEY, "WUYIQU_LOOKUP_KEY": TEST_KEY}
        t = time.monotonic()
        proc = subprocess.Popen([WUYIQU, "rotate-keys", "--batch-size", "1000"], env=env(2, **rotated),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        time.sleep(4.0)
        alive = proc.poll() is None
        if alive:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        left = subprocess.run([WUYIQU, "rotate-keys", "--check"], env=env(2, **rotated), capture_output=True,
                              text=True).stdout.strip().splitlines()[0]
        print(f"rotate-keys killed after {time.monotonic() - t:.1f} s (still running: {alive}): {left}")
        seconds, out = run(2, "rotate-keys", "--batch-size", "1000", extra=rotated)
        print(f"rotate-keys rerun: {seconds:.1f} s — {out.strip()}")
        seconds, out = run(1, "rotate-keys", "--batch-size", "2000", extra=rotated)
        print(f"rotate-keys uninterrupted on the source: {seconds:.1f} s — {out.strip()}")
        only_new = {"WUYIQU_DATA_KEY": NEW_KEY, "WUYIQU_LOOKUP_KEY": TEST_KEY}
        _, plain_after = run(2, DECRYPT_ALL, extra=only_new, python=True)
        print(f"every value decrypts under the new key alone to what it was: {plain_after == plain_before}")
        with os.popen("uptime") as u:
            print(f"load after: {u.read().strip()}")
    finally:
        if pg:
            for n in (1, 2):
                admin(f'DROP DATABASE IF EXISTS "{urlsplit(url_for(n)).path[1:]}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
