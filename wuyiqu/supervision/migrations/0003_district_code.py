"""Warnings and title events carry their unit's district (``district_code``): the distribution column
when the deployment runs on Citus (docs/scaling.md, "Running on Citus"), co-located with the titles.
The district joins the unique key (one open warning per unit and criterion) and, on PostgreSQL, both
primary keys ``(district_code, id)`` (``id`` from a sequence); a warning points at its title, an event
at its title and warning, by composite keys ``(district_code, …_id)`` (``DistrictForeignKey``; SQLite
keeps its single-column keys)."""

import django.db.models.deletion
from django.db import migrations, models

import wuyiqu.units.models
from wuyiqu.ops import district_keys as keys

TITLE, WARNING, EVENT = "certification_title", "supervision_warning", "supervision_titleevent"


def backfill(apps, schema_editor):
    keys.backfill_from_unit(apps, schema_editor, "supervision", "Warning")
    keys.backfill_from_unit(apps, schema_editor, "supervision", "TitleEvent")


def district_keys(apps, schema_editor):
    keys.drop_single_fks(schema_editor, EVENT, WARNING)
    keys.composite_pk(schema_editor, WARNING)
    keys.composite_pk(schema_editor, EVENT)
    keys.composite_fk(schema_editor, WARNING, "title_id", TITLE)
    keys.composite_fk(schema_editor, EVENT, "title_id", TITLE)
    keys.composite_fk(schema_editor, EVENT, "warning_id", WARNING)


def single_keys(apps, schema_editor):
    for table, column in ((WARNING, "title_id"), (EVENT, "title_id"), (EVENT, "warning_id")):
        keys.drop_composite_fk(schema_editor, table, column)
    keys.single_pk(schema_editor, EVENT)
    keys.single_pk(schema_editor, WARNING)
    keys.single_fk(schema_editor, EVENT, "warning_id", WARNING)


class Migration(migrations.Migration):

    dependencies = [
        ("supervision", "0002_stored_reason_forms"),
        ("certification", "0004_district_code"),
    ]

    operations = [
        migrations.AddField(
            model_name="warning",
            name="district_code",
            field=wuyiqu.units.models.DistrictCodeField(default="", editable=False, max_length=40),
        ),
        migrations.AddField(
            model_name="titleevent",
            name="district_code",
            field=wuyiqu.units.models.DistrictCodeField(default="", editable=False, max_length=40),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
        migrations.RemoveConstraint(model_name="warning", name="one_open_warning_per_criterion"),
        migrations.AddConstraint(
            model_name="warning",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "open"), models.Q(("criterion", "manual"), _negated=True)),
                fields=("district_code", "unit", "criterion"), name="one_open_warning_per_criterion"),
        ),
        migrations.RunPython(district_keys, single_keys, elidable=False),
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AlterField(
                model_name="warning",
                name="title",
                field=wuyiqu.units.models.DistrictForeignKey(blank=True, db_constraint=False, null=True,
                                                             on_delete=django.db.models.deletion.PROTECT,
                                                             related_name="warnings", to="certification.title"),
            ),
            migrations.AlterField(
                model_name="titleevent",
                name="title",
                field=wuyiqu.units.models.DistrictForeignKey(db_constraint=False,
                                                             on_delete=django.db.models.deletion.PROTECT,
                                                             related_name="events", to="certification.title"),
            ),
            migrations.AlterField(
                model_name="titleevent",
                name="warning",
                field=wuyiqu.units.models.DistrictForeignKey(blank=True, db_constraint=False, null=True,
                                                             on_delete=django.db.models.deletion.SET_NULL,
                                                             related_name="+", to="supervision.warning"),
            ),
        ]),
    ]
