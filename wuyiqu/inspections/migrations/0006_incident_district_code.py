"""Incidents and the street's returns of an opinion's handling carry their district (``district_code``):
the distribution column when the deployment runs on Citus (docs/scaling.md, "Running on Citus"),
co-located with the stored evaluations and the inspections (0005). An incident's is its unit's, a
return's its incident's. The district joins the incident's unique key everywhere and, on PostgreSQL,
both primary keys ``(district_code, id)`` (``id`` from a sequence), and the return points at its
incident by the composite key ``(district_code, incident_id)`` (``DistrictForeignKey`` in the model;
SQLite keeps its single-column key)."""

from django.db import migrations, models

import wuyiqu.units.models
from wuyiqu.ops import district_keys as keys

INCIDENT, RETURN = "inspections_incident", "inspections_opinionreturn"


def backfill(apps, schema_editor):
    keys.backfill_from_unit(apps, schema_editor, "inspections", "Incident")
    keys.backfill_from_parent(apps, schema_editor, "inspections", "OpinionReturn", "incident")


def district_keys(apps, schema_editor):
    keys.drop_single_fks(schema_editor, RETURN, INCIDENT)
    keys.composite_pk(schema_editor, INCIDENT)
    keys.composite_pk(schema_editor, RETURN)
    keys.composite_fk(schema_editor, RETURN, "incident_id", INCIDENT, cascade=True)


def single_keys(apps, schema_editor):
    keys.drop_composite_fk(schema_editor, RETURN, "incident_id")
    keys.single_pk(schema_editor, RETURN)
    keys.single_pk(schema_editor, INCIDENT)
    keys.single_fk(schema_editor, RETURN, "incident_id", INCIDENT)


class Migration(migrations.Migration):

    dependencies = [
        ("inspections", "0005_district_code"),
    ]

    operations = [
        migrations.AddField(
            model_name="incident",
            name="district_code",
            field=wuyiqu.units.models.DistrictCodeField(default="", editable=False, max_length=40),
        ),
        migrations.AddField(
            model_name="opinionreturn",
            name="district_code",
            field=wuyiqu.units.models.DistrictCodeField(default="", editable=False, max_length=40,
                                                        unit_field="incident"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
        migrations.RemoveConstraint(model_name="incident", name="incident_once"),
        migrations.AddConstraint(
            model_name="incident",
            constraint=models.UniqueConstraint(fields=["district_code", "unit", "occurred_on", "incident_type",
                                                       "description"], name="incident_once"),
        ),
        migrations.RunPython(district_keys, single_keys, elidable=False),
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AlterField(
                model_name="opinionreturn",
                name="incident",
                field=wuyiqu.units.models.DistrictForeignKey(db_constraint=False,
                                                             on_delete=models.deletion.CASCADE,
                                                             related_name="returns", to="inspections.incident"),
            ),
        ]),
    ]
