"""`wuyiqu backup DIR` and `wuyiqu restore DIR`: a whole database, checked on the way back.

A backup is a directory of two files:

- the data, in the database's own format: PostgreSQL ``pg_dump --format=custom`` (``data.dump``,
  restored with ``pg_restore`` into an empty database), SQLite a copy made with SQLite's online
  backup API (``data.sqlite3``). Both are consistent snapshots taken while the application runs.
- ``manifest.json``: the format, the application's version, the database kind, the applied
  migrations, every table's row count and checksum (taken in the same snapshot as the data), the
  data file's SHA-256, and the fingerprints of the keys the personal data needs: the ids of the
  data keys its ciphertexts were made with and the lookup-hash key's fingerprint (never the keys).

``restore`` refuses, before touching the target: a data file that does not match the manifest; a
backup of the other database kind; migrations this code does not know (a backup of a newer
version); keys the process does not have (the personal data would be unreadable, the lookup hashes
would find no one); and a target that holds any table, unless ``force`` (which empties it first).
After restoring it recomputes every table's count and checksum and fails loudly on a difference.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext as _

from wuyiqu.audit import actions as audit

FORMAT = "wuyiqu-backup/1"
MANIFEST = "manifest.json"
DATA_FILES = {"postgresql": "data.dump", "sqlite": "data.sqlite3"}


class BackupError(Exception):
    """The backup or restore was refused or failed; the message says why (Chinese)."""


# --- what a database holds ---------------------------------------------------------------------

def _tables(cursor, vendor: str) -> list[str]:
    if vendor == "sqlite":
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    else:  # a partitioned table is read through its parent
        cursor.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                       "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition")
    return sorted(r[0] for r in cursor.fetchall())


def _order_by(cursor, vendor: str, table: str) -> str:
    """The table's primary key columns, or all columns (a stable order for the checksum)."""
    q = connection.ops.quote_name
    if vendor == "sqlite":
        cursor.execute(f"PRAGMA table_info({q(table)})")
        cols = cursor.fetchall()
        pk = [c[1] for c in sorted(cols, key=lambda c: c[5]) if c[5]]
        return ", ".join(q(c) for c in (pk or [c[1] for c in cols]))
    cursor.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)", [table])
    pk = [r[0] for r in cursor.fetchall()]
    if pk:
        return ", ".join(q(c) for c in pk)
    cursor.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
                   "ORDER BY attnum", [table])
    return ", ".join(q(r[0]) for r in cursor.fetchall())


def table_checksums(cursor, vendor: str) -> dict[str, dict[str, object]]:
    """table -> {"rows": n, "sha256": hex} of every table, rows in primary key order. ``cursor``: a
    DB-API cursor (plain ``sqlite3`` for SQLite files, Django's for PostgreSQL); both sides of a
    comparison must use the same kind, since drivers render values differently."""
    out = {}
    for table in _tables(cursor, vendor):
        order = _order_by(cursor, vendor, table)
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)} ORDER BY {order}")
        digest = hashlib.sha256()
        n = 0
        while rows := cursor.fetchmany(5000):
            for row in rows:
                digest.update(repr(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)).encode())
                digest.update(b"\n")
            n += len(rows)
        out[table] = {"rows": n, "sha256": digest.hexdigest()}
    return out


def _applied_migrations(cursor) -> dict[str, list[str]]:
    cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
    out: dict[str, list[str]] = {}
    for app, name in cursor.fetchall():
        out.setdefault(app, []).append(name)
    return out


def _key_ids_in_use(cursor, vendor: str) -> list[str]:
    """Hex ids of the data keys the stored ciphertexts were made with (their first 4 bytes)."""
    from wuyiqu.units.keys import ENCRYPTED_FIELDS

    prefix = "substr({}, 1, 4)" if vendor == "sqlite" else "substring({} from 1 for 4)"
    ids = set()
    for model, fields in ENCRYPTED_FIELDS.items():
        for f in fields:
            col = connection.ops.quote_name(model._meta.get_field(f).column)
            cursor.execute(f"SELECT DISTINCT {prefix.format(col)} FROM {connection.ops.quote_name(model._meta.db_table)} "
                           f"WHERE {col} IS NOT NULL")
            ids.update(bytes(r[0]).hex() for r in cursor.fetchall())
    return sorted(ids)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _vendor() -> str:
    return connection.vendor


def _pg_env() -> dict[str, str]:
    """libpq's environment for pg_dump/pg_restore (the password stays out of the command line)."""
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    for var, key in (("PGHOST", "HOST"), ("PGPORT", "PORT"), ("PGUSER", "USER"), ("PGPASSWORD", "PASSWORD"),
                     ("PGDATABASE", "NAME")):
        if db.get(key):
            env[var] = str(db[key])
    return env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(_("找不到 %(tool)s：请安装 PostgreSQL 客户端（Debian: apt-get install postgresql-client）")
                          % {"tool": name})
    return path


# --- backup ----------------------------------------------------------------------------------------

@dataclass
class BackupOutcome:
    directory: Path
    tables: int
    rows: int
    bytes: int


def backup(directory: Path) -> BackupOutcome:
    """Write a backup of the database into ``directory`` (created; refused if it holds anything)."""
    from wuyiqu.lib import crypto

    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(_("目录 %(d)s 不是空的：请指定一个新目录") % {"d": directory})
    directory.mkdir(parents=True, exist_ok=True)
    vendor = _vendor()
    data = directory / DATA_FILES[vendor]
    if vendor == "sqlite":
        connection.ensure_connection()
        with sqlite3.connect(data) as target:
            connection.connection.backup(target)  # a consistent snapshot, writers go on
        target.close()
        with sqlite3.connect(data) as snap:
            cur = snap.cursor()
            checksums, migrations, key_ids = (table_checksums(cur, vendor), _applied_migrations(cur),
                                              _key_ids_in_use(cur, vendor))
        snap.close()
    else:
        # pg_dump reads the snapshot this transaction exports, so the checksums below and the dump
        # see the same data even while the application writes.
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cur.execute("SELECT pg_export_snapshot()")
            (snapshot,) = cur.fetchone()
            dump = subprocess.run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-acl",
                                   f"--snapshot={snapshot}", f"--file={data}"],
                                  env=_pg_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if dump.returncode != 0:
                raise BackupError(_("pg_dump 失败：%(e)s") % {"e": dump.stderr.strip()[-2000:]})
            checksums, migrations, key_ids = (table_checksums(cur, vendor), _applied_migrations(cur),
                                              _key_ids_in_use(cur, vendor))
    c = crypto.cipher()
    manifest = {
        "format": FORMAT,
        "app_version": metadata.version("wuyiqu"),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "vendor": vendor,
        "migrations": migrations,
        "tables": checksums,
        "data_file": {"name": data.name, "bytes": data.stat().st_size, "sha256": _sha256_file(data)},
        "keys": {"data_key_ids": key_ids, "lookup_fingerprint": c.lookup_fingerprint},
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    audit.record(actor=None, action="backup.create",
                 detail={"directory": str(directory), "tables": len(checksums), "data_sha256": manifest["data_file"]["sha256"]})
    return BackupOutcome(directory, len(checksums), sum(t["rows"] for t in checksums.values()), data.stat().st_size)


# --- restore ---------------------------------------------------------------------------------------

def read_manifest(directory: Path) -> dict:
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(_("%(p)s 不存在：这不是 wuyiqu backup 生成的备份目录") % {"p": path}) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupError(_("%(p)s 不是有效的 JSON：%(e)s") % {"p": path, "e": exc}) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(_("不认识的备份格式“%(f)s”（应为 %(want)s）")
                          % {"f": manifest.get("format") if isinstance(manifest, dict) else "?", "want": FORMAT})
    return manifest


def check_backup(directory: Path) -> dict:
    """The manifest, once the data file, the database kind, the migrations and the keys all fit
    this process and its database; BackupError naming the first thing that does not."""
    from django.db.migrations.loader import MigrationLoader

    from wuyiqu.lib import crypto

    manifest = read_manifest(directory)
    try:
        data = Path(directory) / manifest["data_file"]["name"]
        want_sha, want_vendor = manifest["data_file"]["sha256"], manifest["vendor"]
        key_ids, lookup = manifest["keys"]["data_key_ids"], manifest["keys"]["lookup_fingerprint"]
        migrations, tables = manifest["migrations"], manifest["tables"]
    except (KeyError, TypeError):
        raise BackupError(_("备份清单缺少必要的项目，已拒绝")) from None
    if want_vendor != _vendor():
        raise BackupError(_("这是 %(b)s 数据库的备份，不能恢复到 %(t)s 数据库") % {"b": want_vendor, "t": _vendor()})
    if not data.is_file():
        raise BackupError(_("备份数据文件 %(p)s 不存在") % {"p": data})
    if _sha256_file(data) != want_sha:
        raise BackupError(_("备份数据文件 %(p)s 与清单不符（SHA-256 不同）：文件已损坏或被改动") % {"p": data})
    known = MigrationLoader(None, ignore_no_migrations=True).disk_migrations
    unknown = sorted(f"{app}.{name}" for app, names in migrations.items() for name in names
                     if (app, name) not in known)
    if unknown:
        raise BackupError(_("备份包含本程序不认识的数据库迁移（%(m)s）：它来自更新的版本 %(v)s，请用该版本恢复")
                          % {"m": "、".join(unknown[:5]), "v": manifest.get("app_version", "?")})
    if not isinstance(tables, dict) or not tables:
        raise BackupError(_("备份清单没有数据表的行数和校验和，已拒绝"))
    c = crypto.cipher()
    have = {k.hex() for k in c.key_ids}
    missing = [k for k in key_ids if k not in have]
    if missing:
        raise BackupError(_(
            "备份中的身份证号和电话是用密钥 %(ids)s 加密的，本进程的 WUYIQU_DATA_KEY 和 WUYIQU_OLD_DATA_KEYS "
            "中没有它：请使用备份时的密钥（可放在 WUYIQU_OLD_DATA_KEYS 中），否则恢复出的个人信息无法解密")
            % {"ids": "、".join(missing)})
    if lookup != c.lookup_fingerprint:
        raise BackupError(_(
            "备份的查找哈希密钥（指纹 %(b)s）与本进程的（%(t)s）不同：请设置备份时的 WUYIQU_LOOKUP_KEY"
            "（未设置时即当时的 WUYIQU_DATA_KEY），否则按身份证号将找不到任何人") % {"b": lookup, "t": c.lookup_fingerprint})
    return manifest


def _target_tables() -> list[str]:
    with connection.cursor() as cur:
        return _tables(cur, _vendor())


@dataclass
class RestoreOutcome:
    tables: int
    rows: int
    app_version: str


def restore(directory: Path, *, force: bool = False) -> RestoreOutcome:
    """Restore the backup in ``directory`` into the configured database. Refuses (BackupError,
    nothing touched) what ``check_backup`` refuses, and a database that holds tables unless
    ``force``. After restoring, every table's count and checksum must equal the manifest's."""
    manifest = check_backup(directory)
    present = _target_tables()
    if present and not force:
        raise BackupError(_("目标数据库不是空的（已有 %(n)d 张表，如 %(t)s）：请恢复到新建的空数据库，"
                            "或加 --force 先清空它（其中的数据将全部丢失）") % {"n": len(present), "t": present[0]})
    data = Path(directory) / manifest["data_file"]["name"]
    vendor = _vendor()
    want = manifest["tables"]
    if vendor == "sqlite":
        # The copy can be checked against the manifest before the target is touched.
        with sqlite3.connect(f"file:{data}?mode=ro", uri=True) as src:
            _compare(want, table_checksums(src.cursor(), vendor))
        src.close()
        target = Path(settings.DATABASES["default"]["NAME"])
        connection.close()
        with sqlite3.connect(data) as src, sqlite3.connect(target) as dst:
            src.backup(dst)  # replaces every page of the target
        src.close()
        dst.close()
        with sqlite3.connect(target) as check:
            got = table_checksums(check.cursor(), vendor)
        check.close()
    else:
        if present:
            with connection.cursor() as cur:
                cur.execute("DROP SCHEMA public CASCADE")
                cur.execute("CREATE SCHEMA public")
        result = subprocess.run([_tool("pg_restore"), "--no-owner", "--no-acl", "--exit-on-error",
                                 "--single-transaction", f"--dbname={_pg_env()['PGDATABASE']}", str(data)],
                                env=_pg_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise BackupError(_("pg_restore 失败，目标数据库未改变：%(e)s") % {"e": result.stderr.strip()[-2000:]})
        with connection.cursor() as cur:
            # A dump carries no planner statistics: without them the evaluator's set queries would
            # be planned blind (slow, and in another row order) until autovacuum came by.
            cur.execute("ANALYZE")
            got = table_checksums(cur, vendor)
        try:
            _compare(want, got)
        except BackupError:
            # A dump can only be checked once restored: leave the target empty rather than wrong.
            with connection.cursor() as cur:
                cur.execute("DROP SCHEMA public CASCADE")
                cur.execute("CREATE SCHEMA public")
            raise
    _compare(want, got)
    audit.record(actor=None, action="backup.restore",
                 detail={"app_version": manifest.get("app_version", ""), "created_at": manifest.get("created_at", ""),
                         "tables": len(got), "rows": sum(t["rows"] for t in got.values())})
    return RestoreOutcome(len(got), sum(t["rows"] for t in got.values()), manifest.get("app_version", "?"))


def _compare(want: dict, got: dict) -> None:
    differing = sorted(t for t in set(want) | set(got) if want.get(t) != got.get(t))
    if differing:
        raise BackupError(_("备份数据与清单不符（表 %(t)s 的行数或校验和不同），已拒绝：备份已损坏或清单被改动")
                          % {"t": "、".join(differing[:10])})
