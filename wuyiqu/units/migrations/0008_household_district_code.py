"""Households carry their unit's district (``district_code``): the distribution column when the
deployment runs on Citus (docs/scaling.md, "Running on Citus"), as the stored evaluations (standards
0004) and the inspections (inspections 0005). The district joins the code's unique key everywhere and,
on PostgreSQL, the primary key ``(district_code, id)`` — the key the composite foreign keys of the
tables that point at a household (residents, co-signatures, …) reference; ``id`` stays the model's
key, drawn from an ordinary sequence (Citus distributes no table with an identity column). SQLite
keeps its ``id`` primary key."""

from django.db import migrations, models

import wuyiqu.units.models

TABLE = "units_household"


def backfill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"UPDATE {TABLE} t SET district_code = split_part(u.path, '/', 2) "
                              "FROM units_unit u WHERE u.id = t.unit_id")
        return
    Unit = apps.get_model("units", "Unit")
    Household = apps.get_model("units", "Household")
    for unit_id in Household.objects.values_list("unit_id", flat=True).distinct():
        path = Unit.objects.filter(pk=unit_id).values_list("path", flat=True).first() or "/"
        Household.objects.filter(unit_id=unit_id).update(district_code=path.strip("/").split("/", 1)[0])


def composite_pk(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # The single-column keys that point at the household go first: they need its single-column
    # primary key. The tables that keep pointing at it get their composite keys in their own
    # migrations (units 0009, applications 0004); until then the plain id stays indexed.
    schema_editor.execute(f"""
        DO $$ DECLARE c record; BEGIN
          FOR c IN SELECT conrelid::regclass AS tbl, conname FROM pg_constraint
                   WHERE contype = 'f' AND confrelid = '{TABLE}'::regclass LOOP
            EXECUTE format('ALTER TABLE %%s DROP CONSTRAINT %%I', c.tbl, c.conname);
          END LOOP; END $$""")
    schema_editor.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT {TABLE}_pkey, "
                          f"ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (district_code, id)")
    schema_editor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id DROP IDENTITY IF EXISTS")
    schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {TABLE}_id_seq OWNED BY {TABLE}.id")
    schema_editor.execute(f"SELECT setval('{TABLE}_id_seq', COALESCE((SELECT max(id) FROM {TABLE}), 0) + 1, false)")
    schema_editor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id SET DEFAULT nextval('{TABLE}_id_seq')")


# The single-column keys that pointed at a household when this migration was written.
POINTING = [("units_householdverification", "household_id"), ("units_resident", "household_id"),
            ("units_pastresidence", "household_id"), ("units_transferrequest", "from_household_id"),
            ("units_transferrequest", "to_household_id"), ("applications_cosignature", "household_id"),
            ("applications_signatureattempt", "household_id")]


def single_pk(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT {TABLE}_pkey, "
                              f"ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id)")
        for table, column in POINTING:
            schema_editor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fk_household "
                                  f"FOREIGN KEY ({column}) REFERENCES {TABLE} (id) DEFERRABLE INITIALLY DEFERRED")


class Migration(migrations.Migration):

    dependencies = [
        ("units", "0007_remove_resident_birth_date"),
        # Every table that points at a household exists before its primary key changes.
        ("applications", "0003_signing_lock_lift"),
    ]

    operations = [
        migrations.AddField(
            model_name="household",
            name="district_code",
            field=wuyiqu.units.models.DistrictCodeField(default="", editable=False, max_length=40),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="household",
            name="code",
            field=models.CharField(max_length=60, verbose_name="户编码"),
        ),
        migrations.AddConstraint(
            model_name="household",
            constraint=models.UniqueConstraint(fields=["district_code", "code"], name="household_code_unique"),
        ),
        migrations.RunPython(composite_pk, single_pk, elidable=False),
    ]
