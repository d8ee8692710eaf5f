"""Stored evaluations carry their unit's district (``district_code``, the first segment of the unit's
path): the distribution column when the deployment runs on Citus (``wuyiqu citus distribute``,
docs/scaling.md). Citus wants the distribution column in every primary and unique key of a
distributed table, so the day's unique key becomes (district_code, unit, on) everywhere and, on
PostgreSQL, the primary key (district_code, id) — ``id`` stays the model's key and unique from its
identity sequence. SQLite keeps its ``id`` primary key (nothing is distributed there)."""

from django.db import migrations, models

import wuyiqu.units.models


def backfill(apps, schema_editor):
    table = "standards_evaluation"
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"UPDATE {table} e SET district_code = split_part(u.path, '/', 2) FROM units_unit u WHERE u.id = e.unit_id")
        return
    Unit = apps.get_model("units", "Unit")
    Evaluation = apps.get_model("standards", "Evaluation")
    for unit_id in Evaluation.objects.values_list("unit_id", flat=True).distinct():
        path = Unit.objects.filter(pk=unit_id).values_list("path", flat=True).first() or "/"
        Evaluation.objects.filter(unit_id=unit_id).update(district_code=path.strip("/").split("/", 1)[0])


def composite_pk(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("ALTER TABLE standards_evaluation DROP CONSTRAINT standards_evaluation_pkey, "
                          "ADD CONSTRAINT standards_evaluation_pkey PRIMARY KEY (district_code, id)")
    # Citus distributes no table with an identity column ("cannot complete operation on a table with
    # identity column"): the ids come from an ordinary sequence owned by the column, as a bigserial's.
    # On Citus the coordinator draws them for every insert it routes, so they stay unique city-wide.
    schema_editor.execute("ALTER TABLE standards_evaluation ALTER COLUMN id DROP IDENTITY IF EXISTS")
    # IF NOT EXISTS: after a rollback past this migration and forward again, the sequence is there.
    schema_editor.execute("CREATE SEQUENCE IF NOT EXISTS standards_evaluation_id_seq OWNED BY standards_evaluation.id")
    schema_editor.execute("SELECT setval('standards_evaluation_id_seq', "
                          "COALESCE((SELECT max(id) FROM standards_evaluation), 0) + 1, false)")
    schema_editor.execute("ALTER TABLE standards_evaluation ALTER COLUMN id SET DEFAULT "
                          "nextval('standards_evaluation_id_seq')")


def single_pk(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":  # the sequence stays: it numbers as the identity did
        schema_editor.execute("ALTER TABLE standards_evaluation DROP CONSTRAINT standards_evaluation_pkey, "
                              "ADD CONSTRAINT standards_evaluation_pkey PRIMARY KEY (id)")


class Migration(migrations.Migration):

    dependencies = [
        ("standards", "0003_evaluation_rollup"),
        ("units", "0007_remove_resident_birth_date"),
    ]

    operations = [
        migrations.AddField(
            model_name="evaluation",
            name="district_code",
            field=wuyiqu.units.models.DistrictCodeField(default="", editable=False, max_length=40),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
        migrations.RemoveConstraint(model_name="evaluation", name="evaluation_once_a_day"),
        migrations.AddConstraint(
            model_name="evaluation",
            constraint=models.UniqueConstraint(fields=["district_code", "unit", "on"], name="evaluation_once_a_day"),
        ),
        migrations.AddIndex(
            model_name="evaluation",
            index=models.Index(fields=["district_code", "on"], name="evaluation_district_on"),
        ),
        migrations.RunPython(composite_pk, single_pk, elidable=False),
    ]
