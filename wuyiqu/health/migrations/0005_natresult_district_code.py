"""Nucleic-acid results carry the district they are kept in (``district_code``, NatResult's docstring):
the distribution column when the deployment runs on Citus (``wuyiqu citus distribute`` distributes the
partitioned table by it, co-located with the stored evaluations; docs/scaling.md). Citus wants the
distribution column in every primary and unique key, PostgreSQL the partition key (``sampled_on``):
the primary key becomes (id_hash, sampled_on, sampled_at, district_code) on every database.

The backfill gives a matched result the district of its resident's household, a result whose person
was taken off the register the district of the unit it was recorded on, an unmatched one its
submitter's scope's district, and "" to the rest (unscoped submitters). On PostgreSQL it is one
UPDATE (a rewrite of every row: at the city's 78 M results, a maintenance window; the primary key is
rebuilt on every partition after it). SQLite rebuilds the table with the new key.
"""

from django.db import migrations, models

import wuyiqu.units.models
from wuyiqu.health.migration_ops import LockTimeout

TABLE = "health_natresult"
NEW_KEY = "id_hash, sampled_on, sampled_at, district_code"
OLD_KEY = "id_hash, sampled_on, sampled_at"


def backfill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"""
            UPDATE {TABLE} n SET district_code = COALESCE(
                (SELECT split_part(u.path, '/', 2) FROM units_resident r JOIN units_household h ON h.id = r.household_id
                 JOIN units_unit u ON u.id = h.unit_id WHERE r.id = n.resident_id),
                (SELECT split_part(u.path, '/', 2) FROM units_unit u WHERE u.id = n.unit_id),
                (SELECT split_part(u.path, '/', 2) FROM units_unit u WHERE u.id = n.scope_unit_id),
                '')
            WHERE n.resident_id IS NOT NULL OR n.unit_id IS NOT NULL OR n.scope_unit_id IS NOT NULL
            """)
        return
    Unit = apps.get_model("units", "Unit")
    Resident = apps.get_model("units", "Resident")
    NatResult = apps.get_model("health", "NatResult")
    paths = dict(Unit.objects.values_list("pk", "path"))
    homes = dict(Resident.objects.values_list("pk", "household__unit_id"))

    def district(unit_id):
        path = paths.get(unit_id)
        return path.strip("/").split("/", 1)[0] if path else None

    with schema_editor.connection.cursor() as cur:
        cur.execute(f"SELECT DISTINCT resident_id, unit_id, scope_unit_id FROM {TABLE} "
                    "WHERE resident_id IS NOT NULL OR unit_id IS NOT NULL OR scope_unit_id IS NOT NULL")
        for resident_id, unit_id, scope_id in cur.fetchall():
            code = district(homes.get(resident_id)) or district(unit_id) or district(scope_id) or ""
            NatResult.objects.filter(resident_id=resident_id, unit_id=unit_id, scope_unit_id=scope_id).update(
                district_code=code)


def district_key(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT {TABLE}_pkey, "
                              f"ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY ({NEW_KEY})")
        return
    # SQLite cannot change a primary key in place: the table is made again with the model's new key
    # (the state operation before this one) and the rows copied over.
    schema_editor._remake_table(apps.get_model("health", "NatResult"))


def natural_key(apps, schema_editor):
    # Back to the natural key first, so that removing the column afterwards leaves a primary key
    # (PostgreSQL drops a multi-column constraint with one of its columns) and SQLite can drop it (it
    # refuses to drop a primary-key column). A sample kept in two districts is kept once.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DELETE FROM {TABLE} a USING {TABLE} b WHERE a.id_hash = b.id_hash "
                              "AND a.sampled_on = b.sampled_on AND a.sampled_at = b.sampled_at "
                              "AND a.district_code > b.district_code")
        schema_editor.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT {TABLE}_pkey, "
                              f"ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY ({OLD_KEY})")
        return
    # SQLite: the table made again from its own definition with the earlier key, the rows copied.
    with schema_editor.connection.cursor() as cur:
        cur.execute("SELECT type, sql FROM sqlite_master WHERE tbl_name = %s AND sql IS NOT NULL", [TABLE])
        definitions = cur.fetchall()
    table_sql = next(sql for kind, sql in definitions if kind == "table")
    new_key = 'PRIMARY KEY ("id_hash", "sampled_on", "sampled_at", "district_code")'
    assert new_key in table_sql, table_sql
    schema_editor.execute(table_sql.replace(f'"{TABLE}"', f'"{TABLE}__old_key"', 1)
                          .replace(new_key, 'PRIMARY KEY ("id_hash", "sampled_on", "sampled_at")'))
    schema_editor.execute(f'INSERT OR IGNORE INTO "{TABLE}__old_key" SELECT * FROM "{TABLE}" ORDER BY district_code')
    schema_editor.execute(f'DROP TABLE "{TABLE}"')
    schema_editor.execute(f'ALTER TABLE "{TABLE}__old_key" RENAME TO "{TABLE}"')
    for kind, sql in definitions:
        if kind == "index":
            schema_editor.execute(sql)


class Migration(migrations.Migration):

    dependencies = [
        ("health", "0004_held_facts"),
        ("units", "0007_remove_resident_birth_date"),
    ]

    operations = [
        # Changes the partitioned results table: give up rather than queue (migration_ops).
        LockTimeout("5s"),
        migrations.AddField(
            model_name="natresult",
            name="district_code",
            field=wuyiqu.units.models.DistrictCodeField(db_default="", default="", editable=False, max_length=40,
                                                        unit_field="unit_id,scope_unit_id"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AlterField(
                model_name="natresult",
                name="pk",
                field=models.CompositePrimaryKey("id_hash", "sampled_on", "sampled_at", "district_code", blank=True,
                                                 editable=False, primary_key=True, serialize=False),
            ),
        ]),
        migrations.RunPython(district_key, natural_key, elidable=False),
    ]
