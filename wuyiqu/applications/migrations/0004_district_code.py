"""Applications and what hangs on them (review steps, attachments, co-signatures, signing attempts)
carry their district (``district_code``): the distribution column when the deployment runs on Citus
(docs/scaling.md, "Running on Citus"), co-located with the stored evaluations. An application's is its
unit's, the others' their application's. The district joins every unique key (the signing link's
token, the one open application per unit and title, one co-signature per household) and, on
PostgreSQL, every primary key ``(district_code, id)`` (``id`` from a sequence); the rows point at
their application, and co-signatures and attempts at their household (units 0008), by composite keys
``(district_code, …_id)`` (``DistrictForeignKey`` in the models; SQLite keeps its single-column keys).
The titles' single-column key to the applications goes here (the application's primary key changes);
certification 0004 makes it composite."""

import django.db.models.deletion
from django.db import migrations, models

import wuyiqu.units.models
from wuyiqu.ops import district_keys as keys

APPLICATION, HOUSEHOLD, TITLE = "applications_application", "units_household", "certification_title"
CHILDREN = ("applications_reviewstep", "applications_attachment", "applications_cosignature",
            "applications_signatureattempt")
HOUSEHOLD_KEYS = (("applications_cosignature", False), ("applications_signatureattempt", True))


def backfill(apps, schema_editor):
    keys.backfill_from_unit(apps, schema_editor, "applications", "Application")
    for model in ("ReviewStep", "Attachment", "CoSignature", "SignatureAttempt"):
        keys.backfill_from_parent(apps, schema_editor, "applications", model, "application")


def district_keys(apps, schema_editor):
    for table in (*CHILDREN, TITLE):
        keys.drop_single_fks(schema_editor, table, APPLICATION)
    for table in (APPLICATION, *CHILDREN):
        keys.composite_pk(schema_editor, table)
    for table in CHILDREN:
        keys.composite_fk(schema_editor, table, "application_id", APPLICATION, cascade=True)
    for table, cascade in HOUSEHOLD_KEYS:  # their single-column keys went in units 0008
        keys.composite_fk(schema_editor, table, "household_id", HOUSEHOLD, cascade=cascade)


def single_keys(apps, schema_editor):
    for table, _cascade in HOUSEHOLD_KEYS:  # units 0008, rolled back, makes the single-column ones
        keys.drop_composite_fk(schema_editor, table, "household_id")
    for table in CHILDREN:
        keys.drop_composite_fk(schema_editor, table, "application_id")
    for table in (APPLICATION, *CHILDREN):
        keys.single_pk(schema_editor, table)
    for table in (*CHILDREN, TITLE):
        keys.single_fk(schema_editor, table, "application_id", APPLICATION)


def to_application(related_name):
    return wuyiqu.units.models.DistrictForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE,
                                                  related_name=related_name, to="applications.application")


class Migration(migrations.Migration):

    dependencies = [
        ("applications", "0003_signing_lock_lift"),
        ("units", "0008_household_district_code"),
        # The titles' key to the applications is dropped here.
        ("certification", "0003_stored_reason_forms"),
    ]

    operations = [
        migrations.AddField(
            model_name="application",
            name="district_code",
            field=wuyiqu.units.models.DistrictCodeField(default="", editable=False, max_length=40),
        ),
        *[migrations.AddField(
            model_name=name,
            name="district_code",
            field=wuyiqu.units.models.DistrictCodeField(default="", editable=False, max_length=40,
                                                        unit_field="application"),
        ) for name in ("attachment", "cosignature", "reviewstep", "signatureattempt")],
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="application",
            name="token",
            field=models.CharField(blank=True, db_index=True, max_length=32, null=True),
        ),
        migrations.AddConstraint(
            model_name="application",
            constraint=models.UniqueConstraint(fields=("district_code", "token"), name="application_token_unique"),
        ),
        migrations.RemoveConstraint(model_name="application", name="one_open_application_per_title"),
        migrations.AddConstraint(
            model_name="application",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status__in", ["draft", "community_review", "street_review", "health_review",
                                                   "command_review", "returned"])),
                fields=("district_code", "unit", "title"), name="one_open_application_per_title"),
        ),
        migrations.RemoveConstraint(model_name="cosignature", name="one_signature_per_household"),
        migrations.AddConstraint(
            model_name="cosignature",
            constraint=models.UniqueConstraint(fields=("district_code", "application", "household"),
                                               name="one_signature_per_household"),
        ),
        migrations.RunPython(district_keys, single_keys, elidable=False),
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AlterField(model_name="attachment", name="application", field=to_application("attachments")),
            migrations.AlterField(model_name="cosignature", name="application", field=to_application("signatures")),
            migrations.AlterField(model_name="reviewstep", name="application", field=to_application("steps")),
            migrations.AlterField(model_name="signatureattempt", name="application", field=to_application("+")),
            migrations.AlterField(
                model_name="cosignature",
                name="household",
                field=wuyiqu.units.models.DistrictForeignKey(db_constraint=False,
                                                             on_delete=django.db.models.deletion.PROTECT,
                                                             related_name="signatures", to="units.household"),
            ),
            migrations.AlterField(
                model_name="signatureattempt",
                name="household",
                field=wuyiqu.units.models.DistrictForeignKey(db_constraint=False, null=True,
                                                             on_delete=django.db.models.deletion.CASCADE,
                                                             related_name="+", to="units.household"),
            ),
        ]),
    ]
