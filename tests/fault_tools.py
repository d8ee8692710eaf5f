"""File databases for the fault tests: commands run as real processes (`wuyiqu import`, `supervise`,
`backup`, `restore`) against a database on disk, killed with SIGKILL, and the database compared
before and after through a fingerprint.

The database is the one the test session runs on: a SQLite file, or (when DATABASE_URL is
PostgreSQL) a database of its own next to the test database, named ``<DATABASE_URL's name>_f…``.
A seeded world is built once per session (migrate, the divisions, a generated world of 600
residents, titles on every generated unit, a positive case) and copied for each test: a file copy
on SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.apps import apps
from django.db import models

from wuyiqu.lib.crypto import FieldCipher

WUYIQU = str(Path(sys.executable).with_name("wuyiqu"))
TEST_DATA_KEY = "dGVzdC1vbmx5LWRhdGEta2V5LTMyLWJ5dGVzLWxvbmc="  # settings.py's test key

SEED_SCRIPT = r"""
import datetime as dt, django
django.setup()
from django.db import transaction
from wuyiqu.lib import dates
from wuyiqu.units.actions import do_load_divisions, do_load_generated_world
from wuyiqu.units.generator import generate_world
from wuyiqu.units.models import Unit, Resident, TITLE_BY_KIND
from wuyiqu.certification.actions import write_existing_titles
from wuyiqu.health.actions import CaseRow, write_cases
from wuyiqu.health.models import CaseType
do_load_divisions()
committees = list(Unit.objects.filter(code__in=["500110002015", "500110002014", "500110002208"])
                  .order_by("code").values_list("code", "name", "kind"))
do_load_generated_world(world=generate_world(committees, residents=600, seed=7))
today = dates.today()
named = [(u.pk, u.kind, today - dt.timedelta(days=30)) for u in Unit.objects.filter(
    path__contains="/500110002/", kind__in=list(TITLE_BY_KIND)).exclude(code="500110002").order_by("code")]
with transaction.atomic():
    write_existing_titles(named)
someone = Resident.objects.filter(household__unit__path__contains="/500110002014/").order_by("id").first()
write_cases([CaseRow(reported_on=today - dt.timedelta(days=2), case_type=CaseType.CONFIRMED,
                     id_number=someone.reveal_id_number())])
print(len(named), Resident.objects.count())
"""


def session_database_url() -> str:
    return os.environ.get("DATABASE_URL", "")


def is_postgres() -> bool:
    return session_database_url().startswith(("postgres://", "postgresql://"))


def _pg_url(name: str) -> str:
    parts = urlsplit(session_database_url())
    return urlunsplit(parts._replace(path="/" + name))


def _pg_base_name() -> str:
    return urlsplit(session_database_url()).path.lstrip("/") or "wuyiqu"


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(_pg_url("postgres"), autocommit=True) as conn:
        conn.execute(sql)


_counter = itertools.count(1)


@dataclass
class FileDatabase:
    """One database on disk and the environment of a `wuyiqu` process that uses it."""

    url: str
    env: dict[str, str]
    path: Path | None = None  # SQLite
    name: str = ""  # PostgreSQL

    @property
    def vendor(self) -> str:
        return "sqlite" if self.path else "postgresql"

    def run(self, *args: str, timeout: float = 300, check: bool = True, **kw) -> subprocess.CompletedProcess:
        result = subprocess.run([WUYIQU, *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL, **kw)
        if check and result.returncode != 0:
            raise AssertionError(f"wuyiqu {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([WUYIQU, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, start_new_session=True)

    def python(self, script: str, timeout: float = 300) -> str:
        result = subprocess.run([sys.executable, "-c", script], env=self.env, capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise AssertionError(f"script failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def connect(self):
        """A DB-API connection of the test process itself (not Django's)."""
        if self.path:
            return sqlite3.connect(self.path)
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def copy(self, tmp_path: Path) -> FileDatabase:
        """A new database holding exactly what this one holds."""
        n = next(_counter)
        if self.path:
            target = tmp_path / f"copy{n}.sqlite3"
            with sqlite3.connect(self.path) as src, sqlite3.connect(target) as dst:
                src.backup(dst)
            return file_database(tmp_path, path=target)
        name = _new_pg_database(f"{_pg_base_name()}_f{os.getpid()}_{n}", template=self.name)
        return file_database(tmp_path, name=name)

    def empty_sibling(self, tmp_path: Path) -> FileDatabase:
        """A new, empty database of the same kind (nothing migrated)."""
        n = next(_counter)
        if self.path:
            return file_database(tmp_path, path=tmp_path / f"empty{n}.sqlite3")
        return file_database(tmp_path, name=_new_pg_database(f"{_pg_base_name()}_f{os.getpid()}_{n}"))

    def drop(self) -> None:
        """Remove a SQLite file at once. A PostgreSQL database goes at the end of the session with
        every other one the session made (``drop_all``): each DROP DATABASE waits for a checkpoint."""
        if self.path:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)


_created: list[str] = []


def _new_pg_database(name: str, template: str = "") -> str:
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}"')
    _pg_admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    _created.append(name)
    return name


def drop_all() -> None:
    """Drop every PostgreSQL database the session made (the seed last: the others copied it)."""
    while _created:
        _pg_admin(f'DROP DATABASE IF EXISTS "{_created.pop()}" WITH (FORCE)')


def file_database(tmp_path: Path, *, path: Path | None = None, name: str = "") -> FileDatabase:
    url = f"sqlite:///{path}" if path else _pg_url(name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WUYIQU_") and k != "DJANGO_SETTINGS_MODULE"}
    env |= {"DATABASE_URL": url, "WUYIQU_ENV": "test", "DJANGO_SETTINGS_MODULE": "wuyiqu.settings",
            "WUYIQU_DATA_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"}
    return FileDatabase(url=url, env=env, path=path, name=name)


def build_seed(tmp_path: Path) -> FileDatabase:
    """Migrate a new file database and load the seeded world into it."""
    if is_postgres():
        db = file_database(tmp_path, name=_new_pg_database(f"{_pg_base_name()}_fseed{os.getpid()}"))
    else:
        db = file_database(tmp_path, path=tmp_path / "seed.sqlite3")
    db.run("migrate", "--no-input", "-v", "0")
    db.python(SEED_SCRIPT)
    return db


# --- fingerprints ----------------------------------------------------------------------------------

def _volatile_columns() -> dict[str, set[str]]:
    """table -> columns whose value is the clock at the moment of writing (auto_now, auto_now_add,
    default=timezone.now): two runs of the same work differ there and nowhere else."""
    from django.utils import timezone

    out: dict[str, set[str]] = {}
    for model in apps.get_models():
        for f in model._meta.concrete_fields:
            if isinstance(f, models.DateTimeField) and (f.auto_now or f.auto_now_add or f.default is timezone.now):
                out.setdefault(model._meta.db_table, set()).add(f.column)
    return out


def tables(conn, vendor: str) -> list[str]:
    if vendor == "sqlite":
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    else:  # partitions are read through their parent
        rows = conn.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition")
    return sorted(r[0] for r in rows)


def _norm(value, cipher: FieldCipher):
    if isinstance(value, (bytes, memoryview)):
        return ("decrypted", cipher.decrypt(value))  # a new nonce each time: compare the plaintext
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return value


def fingerprint(db: FileDatabase, *, exclude: set[str] = frozenset(), keys: tuple[str, ...] = (TEST_DATA_KEY,),
                lookup_key: str = "") -> dict[str, tuple[int, str]]:
    """table -> (rows, sha256 of the sorted normalised rows) for every table but ``exclude``; the
    clock columns left out, encrypted values compared by their plaintext."""
    cipher = FieldCipher(keys[0], keys[1:], lookup_key)
    volatile = _volatile_columns()
    out = {}
    conn = db.connect()
    try:
        if db.vendor == "postgresql":
            # A killed client's server process may still be finishing what it was sent (its COMMIT
            # among it): wait until it has gone, then read every table in one snapshot, so that the
            # fingerprint is of one moment and not of tables read before and after that commit.
            deadline = time.monotonic() + 30
            while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND pid <> pg_backend_pid()").fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.05)
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        for table in tables(conn, db.vendor):
            if table in exclude:
                continue
            cur = conn.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cur.description]
            keep = [i for i, n in enumerate(names) if n not in volatile.get(table, ())]
            rows = sorted(repr(tuple(_norm(row[i], cipher) for i in keep)) for row in cur.fetchall())
            out[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    finally:
        conn.close()
    return out


def changed_tables(a: dict, b: dict) -> list[str]:
    return sorted(t for t in set(a) | set(b) if a.get(t) != b.get(t))


def kill_after(proc: subprocess.Popen, seconds: float) -> bool:
    """SIGKILL ``proc`` (and its process group) after ``seconds``; True when it was still running."""
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        return True


def timed(db: FileDatabase, *args: str) -> float:
    t = time.monotonic()
    db.run(*args)
    return time.monotonic() - t


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
