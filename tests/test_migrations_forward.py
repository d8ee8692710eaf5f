"""Safe upgrades (docs/deploy.md, "Upgrading and rolling back").

- The models and the migrations agree (`makemigrations --check`).
- On a populated database (the fixture world, accounts, facts, nucleic-acid results, an import job,
  a notification) every app rolls back to its first migration and every migration applies forward
  again, and no row is lost on the way, except in the tables the docs name (the nucleic-acid results
  table, which 0003_nat_partitions recreates).
- Every migration is reversible, as the docs say (`migrate <app> <previous>` is the rollback).
- The guard on the partitioned nucleic-acid results table: a migration that touches it after
  0003_nat_partitions must set a lock timeout first and use only operations that do not rewrite or
  scan the table under an exclusive lock (docs/deploy.md, "Migrations and the results table").
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations.base import Operation
from django.utils import timezone

from wuyiqu.health.actions import do_record_case, do_record_measure
from wuyiqu.health.models import CaseType, MeasureKind, NatResult
from wuyiqu.imports.models import ImportJob
from wuyiqu.lib import crypto
from wuyiqu.notifications.models import Notification
from wuyiqu.units.models import Resident

# Rolling these back loses the rows of the named tables (documented in docs/deploy.md).
ROLLBACK_LOSES = {("health", "0003_nat_partitions"): "health_natresult"}
# The migrations that made the results table what it is, reviewed when they were written; anything
# after them that touches the table follows the rule checked by the guard below.
NAT_REVIEWED = {("health", "0001_initial"), ("health", "0002_fact_keys"), ("health", "0003_nat_partitions")}


def project_migrations() -> dict[tuple[str, str], object]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return {key: m for key, m in loader.disk_migrations.items() if m.__module__.startswith("wuyiqu.")}


def test_the_models_and_the_migrations_agree(db):
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    assert "No changes detected" in out.getvalue()


def test_every_migration_can_be_reversed():
    irreversible = []
    for (app, name), migration in project_migrations().items():
        for operation in migration.operations:
            if not operation.reversible:
                irreversible.append(f"{app}.{name}: {operation.describe()}")
    assert irreversible == [], "docs/deploy.md lists no irreversible migration; update it and this test"


def _populate(alice) -> None:
    residents = list(Resident.objects.order_by("pk")[:40])
    today = timezone.localdate()
    do_record_case(actor=alice, reported_on=today - dt.timedelta(days=3), case_type=CaseType.CONFIRMED,
                   unit=alice.unit)
    number = "500110199001011234"
    do_record_measure(actor=alice, kind=MeasureKind.HOME_QUARANTINE, id_number=_valid(number),
                      start_on=today - dt.timedelta(days=2), end_on=today + dt.timedelta(days=5))
    now = timezone.now()
    NatResult.objects.bulk_create([
        NatResult(id_hash=r.id_hash, resident_id=r.pk, unit_id=r.household.unit_id,
                  sampled_at=now - dt.timedelta(days=i % 5, hours=1), sampled_on=timezone.localdate(now) - dt.timedelta(days=i % 5),
                  result="negative")
        for i, r in enumerate(residents)
    ])
    ImportJob.objects.create(kind="households", filename="a.csv", created_by=alice, scope=alice.unit,
                             status="succeeded", rows_total=3, rows_done=3, created=3)
    Notification.objects.create(user=alice, text="升级前的通知", link="/")


def _valid(body17_or_18: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    body = body17_or_18[:17]
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


def _row_counts() -> dict[str, int]:
    counts = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            if table.startswith("health_natresult_"):
                continue  # partitions: counted through their parent
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            counts[table] = cursor.fetchone()[0]
    return counts


def _first_and_leaf_migrations():
    loader = MigrationLoader(connection)
    firsts, leaves = {}, {}
    for app, name in loader.graph.leaf_nodes():
        if not loader.get_migration(app, name).__module__.startswith("wuyiqu."):
            continue
        leaves[app] = name
        chain = [key for key in loader.graph.forwards_plan((app, name)) if key[0] == app]
        if len(chain) > 1:
            firsts[app] = chain[0][1]
    return firsts, leaves


@pytest.mark.django_db(transaction=True)
def test_rolling_back_to_the_first_release_and_upgrading_again_keeps_the_data(world, alice):
    # Start from what the migrations wrote, as an installation does, even after an earlier
    # transactional test flushed the database: the seeded policy profile.
    import importlib

    from django.apps import apps

    importlib.import_module("wuyiqu.standards.migrations.0002_seed_wenlong_2022").seed(apps, None)
    _populate(alice)
    before = _row_counts()
    assert before["health_natresult"] == 40 and before["health_positivecase"] >= 1
    firsts, leaves = _first_and_leaf_migrations()
    assert firsts, "no app has more than one migration: nothing to upgrade"
    try:
        for app, first in sorted(firsts.items()):
            call_command("migrate", app, first, verbosity=0, interactive=False)
        rolled_back = _row_counts()
        call_command("migrate", verbosity=0, interactive=False)  # the upgrade: everything forward
    finally:
        call_command("migrate", verbosity=0, interactive=False)  # never leave the test database behind
    after = _row_counts()
    assert set(after) == set(before)
    lost_on_purpose = set(ROLLBACK_LOSES.values())
    for table, count in before.items():
        if table in lost_on_purpose:
            assert after[table] == 0, f"{table}: the docs say its rows go on rollback"
        elif table in rolled_back:
            # Existed all the way through: every row is still there (standards' seed is not doubled).
            assert after[table] == count, f"{table}: {count} rows before, {after[table]} after the upgrade"
    # The encrypted columns came through the round trip byte for byte: they still decrypt.
    sample = Resident.objects.order_by("pk").first()
    assert crypto.cipher().lookup_hash(sample.reveal_id_number()) == sample.id_hash
    # The recreated results table takes rows again (on PostgreSQL: partitioned as before).
    resident = Resident.objects.order_by("pk").first()
    NatResult.objects.create(id_hash=resident.id_hash, resident_id=resident.pk, sampled_at=timezone.now(),
                             sampled_on=timezone.localdate(), result="negative")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'health_natresult'")
            assert cursor.fetchone()[0] == "p"  # partitioned


# --- the guard on the partitioned results table ---------------------------------------------------------

LOCK_SAFE_OPERATIONS = {
    # Catalog-only on PostgreSQL >= 11 for a nullable column or a constant default: fast, but they
    # take an ACCESS EXCLUSIVE lock, hence the lock timeout before them.
    "AddField", "RemoveField",
    # Hand-written SQL for what Django would do under a long lock (an index: ON ONLY + CONCURRENTLY
    # per partition + ATTACH; a constraint: NOT VALID + VALIDATE), with the state change beside it.
    "RunSQL", "SeparateDatabaseAndState",
    "LockTimeout",
}


def _touches_results_table(operation: Operation) -> bool:
    if getattr(operation, "model_name", None) == "natresult" or getattr(operation, "name", "").lower() == "natresult":
        return True
    if type(operation).__name__ == "RunSQL":
        return "health_natresult" in str(operation.sql)
    if type(operation).__name__ == "SeparateDatabaseAndState":
        return any(_touches_results_table(op) for op in [*operation.database_operations, *operation.state_operations])
    return False


def nat_rule_violations(migrations: dict) -> list[str]:
    """What breaks the rule in ``migrations`` ({(app, name): Migration}); empty: none."""
    problems = []
    for key, migration in sorted(migrations.items()):
        if key in NAT_REVIEWED:
            continue
        touching = [op for op in migration.operations if _touches_results_table(op)]
        if not touching:
            continue
        where = f"{key[0]}.{key[1]}"
        if not migration.operations or type(migration.operations[0]).__name__ != "LockTimeout":
            problems.append(f"{where}: touches health_natresult without wuyiqu.health.migration_ops.LockTimeout first")
        for op in touching:
            if type(op).__name__ not in LOCK_SAFE_OPERATIONS:
                problems.append(f"{where}: {type(op).__name__} on health_natresult rewrites, scans or indexes the "
                                "table under a long lock (docs/deploy.md: Migrations and the results table)")
    return problems


def test_migrations_after_the_partitioning_keep_the_results_table_unlocked():
    assert nat_rule_violations(project_migrations()) == []


def test_the_guard_refuses_what_would_lock_the_results_table():
    from django.db import migrations, models

    from wuyiqu.health.migration_ops import LockTimeout

    class Unsafe(migrations.Migration):
        operations = [migrations.AddIndex("natresult", models.Index(fields=["unit_id"], name="nat_unit_idx")),
                      migrations.AlterField("natresult", "result", models.CharField(max_length=16))]

    class Safe(migrations.Migration):
        operations = [LockTimeout("5s"),
                      migrations.AddField("natresult", "lab", models.CharField(max_length=40, null=True))]

    problems = nat_rule_violations({("health", "0099_unsafe"): Unsafe("0099_unsafe", "health"),
                                    ("health", "0100_safe"): Safe("0100_safe", "health")})
    assert len(problems) == 3 and all(p.startswith("health.0099_unsafe") for p in problems)
    assert any("LockTimeout first" in p for p in problems)
    assert any("AddIndex" in p for p in problems) and any("AlterField" in p for p in problems)


@pytest.mark.django_db(transaction=True)
def test_the_lock_timeout_makes_a_blocked_change_give_up_instead_of_queuing_everyone():
    """PostgreSQL: a reader holds the results table; the ALTER after LockTimeout fails in about a
    second instead of waiting (and making every later query wait behind it). SQLite: no SQL at all."""
    from wuyiqu.health.migration_ops import LockTimeout

    operation = LockTimeout("1s")
    if connection.vendor != "postgresql":
        with connection.schema_editor(collect_sql=True) as editor:
            operation.database_forwards("health", editor, None, None)
        assert editor.collected_sql == []
        return
    from django.db import OperationalError, connections, transaction

    default = connections["default"]
    reader = type(default)(dict(default.settings_dict), alias="lock_holder")
    try:
        reader.set_autocommit(False)
        with reader.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM health_natresult")  # ACCESS SHARE until the transaction ends
        started = timezone.now()
        with pytest.raises(OperationalError, match="lock timeout"):
            with transaction.atomic(), connection.schema_editor(atomic=False) as editor:
                operation.database_forwards("health", editor, None, None)
                editor.execute("ALTER TABLE health_natresult ADD COLUMN lab varchar(40) NULL")
        assert (timezone.now() - started).total_seconds() < 10
    finally:
        reader.rollback()
        reader.close()
    columns = [c.name for c in connection.introspection.get_table_description(connection.cursor(), "health_natresult")]
    assert "lab" not in columns  # nothing changed
