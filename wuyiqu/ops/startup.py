"""What `wuyiqu serve` checks before it starts serving: each check returns the problems it found as
sentences for the operator (empty: fine). See docs/deploy.md."""

from __future__ import annotations

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


def problems() -> list[str]:
    found = []
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
