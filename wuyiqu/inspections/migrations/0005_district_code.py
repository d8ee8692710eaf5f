"""Inspections and surveys carry their unit's district (``district_code``): the distribution column when
the deployment runs on Citus (``wuyiqu citus distribute`` distributes both by it, co-located with the
stored evaluations and the results; docs/scaling.md). As for the stored evaluations (standards 0004):
the district joins the unique keys everywhere and, on PostgreSQL, the primary key (district_code, id) —
``id`` stays the model's key, drawn from an ordinary sequence (Citus distributes no table with an
identity column). SQLite keeps its ``id`` primary key."""

from django.db import migrations, models

import wuyiqu.units.models

TABLES = ("inspections_inspection", "inspections_survey")


def backfill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"UPDATE {table} t SET district_code = split_part(u.path, '/', 2) "
                                  "FROM units_unit u WHERE u.id = t.unit_id")
        return
    Unit = apps.get_model("units", "Unit")
    for name in ("Inspection", "Survey"):
        model = apps.get_model("inspections", name)
        for unit_id in model.objects.values_list("unit_id", flat=True).distinct():
            path = Unit.objects.filter(pk=unit_id).values_list("path", flat=True).first() or "/"
            model.objects.filter(unit_id=unit_id).update(district_code=path.strip("/").split("/", 1)[0])


def composite_pk(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, "
                              f"ADD CONSTRAINT {table}_pkey PRIMARY KEY (district_code, id)")
        schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN id DROP IDENTITY IF EXISTS")
        schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {table}_id_seq OWNED BY {table}.id")
        schema_editor.execute(f"SELECT setval('{table}_id_seq', COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)")
        schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq')")


def single_pk(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":  # the sequences stay: they number as the identity did
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, "
                                  f"ADD CONSTRAINT {table}_pkey PRIMARY KEY (id)")


class Migration(migrations.Migration):

    dependencies = [
        ("inspections", "0004_opinion_return"),
        ("units", "0007_remove_resident_birth_date"),
    ]

    operations = [
        migrations.AddField(
            model_name="inspection",
            name="district_code",
            field=wuyiqu.units.models.DistrictCodeField(default="", editable=False, max_length=40),
        ),
        migrations.AddField(
            model_name="survey",
            name="district_code",
            field=wuyiqu.units.models.DistrictCodeField(default="", editable=False, max_length=40),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
        migrations.RemoveConstraint(model_name="inspection", name="inspection_once_a_day"),
        migrations.AddConstraint(
            model_name="inspection",
            constraint=models.UniqueConstraint(fields=["district_code", "unit", "item", "inspected_on"],
                                               name="inspection_once_a_day"),
        ),
        migrations.RemoveConstraint(model_name="survey", name="survey_once_a_day"),
        migrations.AddConstraint(
            model_name="survey",
            constraint=models.UniqueConstraint(fields=["district_code", "unit", "surveyed_on"],
                                               name="survey_once_a_day"),
        ),
        migrations.RunPython(composite_pk, single_pk, elidable=False),
    ]
