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
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE standards_evaluation DROP CONSTRAINT standards_evaluation_pkey, "
                              "ADD CONSTRAINT standards_evaluation_pkey PRIMARY KEY (district_code, id)")


def single_pk(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
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
