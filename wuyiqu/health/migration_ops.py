"""Migration operations for the partitioned nucleic-acid results table (docs/deploy.md, "Migrations
and the results table"). A migration that touches ``health_natresult`` after 0003_nat_partitions
starts with ``LockTimeout`` (tests/test_migrations_forward.py checks it).

Why: even a catalog-only change (a nullable column) needs an ACCESS EXCLUSIVE lock on the table and
all its partitions. If a long query holds the table (the daily supervision reads weeks of results),
ALTER TABLE waits for it, and every query that comes after waits behind the ALTER: the dashboard
and the imports stop. With a lock timeout the ALTER gives up after a few seconds instead, the
migration rolls back whole, and the upgrade is run again at a quieter moment.
"""

from __future__ import annotations

import re

from django.db.migrations.operations.base import Operation

_TIMEOUT = re.compile(r"^\d+(ms|s|min)?$")


class LockTimeout(Operation):
    """``SET LOCAL lock_timeout`` for the rest of the migration's transaction, on PostgreSQL; nothing
    on SQLite (one writer at a time, and the busy timeout of the settings)."""

    reversible = True
    reduces_to_sql = True

    def __init__(self, timeout: str = "5s"):
        if not _TIMEOUT.match(timeout):
            raise ValueError(f"lock timeout {timeout!r}: expected e.g. 500ms, 5s or 1min")
        self.timeout = timeout

    def deconstruct(self):
        return (self.__class__.__qualname__, [self.timeout], {})

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            # SET LOCAL lasts until the migration's transaction ends; a non-atomic migration keeps
            # the setting for its connection's session, which ends with the `migrate` command.
            scope = "LOCAL " if schema_editor.connection.in_atomic_block else ""
            schema_editor.execute(f"SET {scope}lock_timeout = '{self.timeout}'")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self.database_forwards(app_label, schema_editor, from_state, to_state)

    def describe(self):
        return f"Set lock_timeout to {self.timeout} (PostgreSQL)"
