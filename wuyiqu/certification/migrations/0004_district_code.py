"""Titles carry their unit's district (``district_code``): the distribution column when the deployment
runs on Citus (docs/scaling.md, "Running on Citus"), co-located with the stored evaluations and the
applications. The district joins the unique keys (one current title per unit, the certificate number)
and, on PostgreSQL, the primary key ``(district_code, id)`` (``id`` from a sequence); a title points at
its application by the composite key ``(district_code, application_id)`` (``DistrictForeignKey``;
SQLite keeps its single-column key). The warnings' and title events' single-column keys to the titles
go here (the title's primary key changes); supervision 0003 makes them composite."""

import django.db.models.deletion
from django.db import migrations, models

import wuyiqu.units.models
from wuyiqu.ops import district_keys as keys

TITLE, APPLICATION = "certification_title", "applications_application"
POINTING = ("supervision_warning", "supervision_titleevent")


def backfill(apps, schema_editor):
    keys.backfill_from_unit(apps, schema_editor, "certification", "Title")


def district_keys(apps, schema_editor):
    for table in POINTING:
        keys.drop_single_fks(schema_editor, table, TITLE)
    keys.composite_pk(schema_editor, TITLE)
    keys.composite_fk(schema_editor, TITLE, "application_id", APPLICATION)


def single_keys(apps, schema_editor):
    keys.drop_composite_fk(schema_editor, TITLE, "application_id")
    keys.single_pk(schema_editor, TITLE)
    for table in POINTING:
        keys.single_fk(schema_editor, table, "title_id", TITLE)


class Migration(migrations.Migration):

    dependencies = [
        ("certification", "0003_stored_reason_forms"),
        ("applications", "0004_district_code"),
        # The warnings' and events' keys to the titles are dropped here.
        ("supervision", "0002_stored_reason_forms"),
    ]

    operations = [
        migrations.AddField(
            model_name="title",
            name="district_code",
            field=wuyiqu.units.models.DistrictCodeField(default="", editable=False, max_length=40),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="title",
            name="certificate_number",
            field=models.CharField(blank=True, db_index=True, max_length=32, null=True, verbose_name="证书编号"),
        ),
        migrations.AddConstraint(
            model_name="title",
            constraint=models.UniqueConstraint(fields=("district_code", "certificate_number"),
                                               name="title_certificate_unique"),
        ),
        migrations.RemoveConstraint(model_name="title", name="one_current_title_per_unit"),
        migrations.AddConstraint(
            model_name="title",
            constraint=models.UniqueConstraint(condition=models.Q(("withdrawn_on__isnull", True)),
                                               fields=("district_code", "unit"), name="one_current_title_per_unit"),
        ),
        migrations.RunPython(district_keys, single_keys, elidable=False),
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AlterField(
                model_name="title",
                name="application",
                field=wuyiqu.units.models.DistrictForeignKey(blank=True, db_constraint=False, null=True,
                                                             on_delete=django.db.models.deletion.SET_NULL,
                                                             related_name="+", to="applications.application"),
            ),
        ]),
    ]
