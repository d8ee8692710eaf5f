"""The dashboard's cached numbers live in the database cache in production, so every gunicorn worker
(and the task worker) shares them: what one process computed another reads instead of computing."""

from __future__ import annotations

from django.core.cache.backends.db import DatabaseCache
from django.core.management import call_command

from wuyiqu.dashboard.selectors import _cached, _key

CACHE_TABLE = "wuyiqu_cache_shared_test"


def test_a_value_one_process_computed_is_read_by_another(db, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache",
                                   "LOCATION": CACHE_TABLE}}
    call_command("createcachetable", verbosity=0)
    computed = []

    def compute():
        computed.append(1)
        return {"named": 12, "warned": 3}

    key = _key("summary", "500110", "2022-11-20")
    assert _cached(key, 600, compute) == {"named": 12, "warned": 3}
    # Another gunicorn worker holds its own cache object over the same table.
    other_worker = DatabaseCache(CACHE_TABLE, {})
    assert other_worker.get(key) == {"named": 12, "warned": 3}
    other_worker.set(key, {"named": 13, "warned": 2}, 600)  # e.g. it recomputed after a naming
    assert _cached(key, 600, compute) == {"named": 13, "warned": 2}
    assert computed == [1]


def test_production_settings_use_the_database_cache():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("WUYIQU_") and k != "DJANGO_SETTINGS_MODULE"}
    env |= {"WUYIQU_SECRET_KEY": "x" * 60, "WUYIQU_DATA_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "DATABASE_URL": "sqlite:////nonexistent/never-opened.sqlite3", "DJANGO_SETTINGS_MODULE": "wuyiqu.settings"}
    out = subprocess.run([sys.executable, "-c", "from django.conf import settings; print(settings.CACHES['default'])"],
                         env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    assert "django.core.cache.backends.db.DatabaseCache" in out and "wuyiqu_cache" in out
