"""What `wuyiqu serve` checks before it starts serving: each check returns the problems it found as
sentences for the operator (empty: fine). See docs/deploy.md."""

from __future__ import annotations

import base64
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.core.files.storage import storages
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor


def unapplied_migrations() -> list[str]:
    """Migrations in the code that the database has not had: serving new code on an old schema fails."""
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


def missing_static_manifest() -> str | None:
    """The manifest `collectstatic` writes, when the storage needs one (production) and it is absent."""
    if not isinstance(storages["staticfiles"], ManifestFilesMixin):
        return None
    manifest = Path(settings.STATIC_ROOT or "") / "staticfiles.json"
    return None if manifest.is_file() else str(manifest)


def missing_cache_tables() -> list[str]:
    """Tables of database caches that `createcachetable` has not made."""
    tables = set(connections[DEFAULT_DB_ALIAS].introspection.table_names())
    missing = []
    for alias in settings.CACHES:
        cache = caches[alias]
        if isinstance(cache, DatabaseCache) and cache._table not in tables:
            missing.append(cache._table)
    return missing


def key_weakness(key: bytes) -> str | None:
    """Why ``key`` (32 bytes) is not a random key, or None. A key of 32 random bytes fails none of
    these but with a chance below 10⁻¹³: at least 16 distinct byte values (≈ 27 on average), not an
    arithmetic sequence, not all printable characters (≈ (95/256)³²)."""
    if len(set(key)) < 16:
        return f"只有 {len(set(key))} 种不同的字节（例如全零或重复的字节）"
    if len({(b - a) % 256 for a, b in zip(key, key[1:], strict=False)}) == 1:
        return "是等差的字节序列"
    if all(32 <= b < 127 for b in key):
        return "全是可打印字符（像口令或示例文字），不是随机字节"
    return None


def weak_data_key() -> str | None:
    """A sentence when WUYIQU_DATA_KEY is not a random key (it encrypts every number, phone and file)."""
    why = key_weakness(base64.b64decode(settings.DATA_KEY))
    if why is None:
        return None
    return (f"WUYIQU_DATA_KEY 不是随机密钥（{why}）：请用 python3 -c \"import base64, os; "
            f"print(base64.b64encode(os.urandom(32)).decode())\" 生成新密钥；已有数据时按 wuyiqu rotate-keys --help 轮换")


def wildcard_hosts() -> str | None:
    """A sentence when ALLOWED_HOSTS accepts any host name ('*'): a forged Host header then reaches the
    application (links in mails, absolute URLs)."""
    wild = [h for h in settings.ALLOWED_HOSTS if "*" in h]
    if not wild:
        return None
    return (f"WUYIQU_ALLOWED_HOSTS 含有“{wild[0]}”：任何主机名都会被接受（伪造的 Host 头会进入邮件中的链接）；"
            "请只列出本站的域名，例如 wuyiqu.example.gov.cn")


def problems() -> list[str]:
    found = [p for p in (weak_data_key(), wildcard_hosts()) if p]
    pending = unapplied_migrations()
    if pending:
        shown = ", ".join(pending[:5]) + ("…" if len(pending) > 5 else "")
        found.append(f"{len(pending)} 个数据库迁移尚未执行（{shown}）：请先运行 wuyiqu migrate")
    manifest = missing_static_manifest()
    if manifest:
        found.append(f"静态文件清单 {manifest} 不存在：请先运行 wuyiqu collectstatic --noinput")
    missing = missing_cache_tables()
    if missing:
        found.append(f"缓存表 {', '.join(missing)} 不存在：请先运行 wuyiqu createcachetable")
    return found
