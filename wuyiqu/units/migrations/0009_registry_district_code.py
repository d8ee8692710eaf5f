"""The registry carries its district (``district_code``), as the households do (units 0008): the
distribution column when the deployment runs on Citus (docs/scaling.md, "Running on Citus").

- residents and household verifications: their household's district;
- past residences: the district of the household the spell was spent in (the person may live in
  another district since: the relation to the resident keeps no database key);
- special population entries: their resident's district (they move with the person);
- transfer requests stay on the coordinator under Citus (their two households may lie in two
  districts): their relations keep no database key (Citus refuses a local table's key to a
  distributed one).

The district joins the unique keys everywhere (a resident's ID hash is unique within a district: the
writers look a number up city-wide before registering it) and, on PostgreSQL, the primary keys
``(district_code, id)`` with ``id`` from an ordinary sequence, and the foreign keys between these
tables become composite ``(district_code, x_id) → (district_code, id)``, deferred. SQLite keeps its
``id`` primary keys and single-column keys."""

import django.db.models.deletion
from django.db import migrations, models

import wuyiqu.units.models

TABLES = ("units_resident", "units_householdverification", "units_pastresidence", "units_specialpopulationentry")

# (table, column, referenced table, ON DELETE) of the composite keys made on PostgreSQL.
COMPOSITE_FKS = [
    ("units_resident", "household_id", "units_household", ""),
    ("units_householdverification", "household_id", "units_household", " ON DELETE CASCADE"),
    ("units_pastresidence", "household_id", "units_household", ""),
    ("units_specialpopulationentry", "resident_id", "units_resident", " ON DELETE CASCADE"),
]


def backfill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in ("units_resident", "units_householdverification", "units_pastresidence"):
            schema_editor.execute(f"UPDATE {table} t SET district_code = h.district_code "
                                  "FROM units_household h WHERE h.id = t.household_id")
        schema_editor.execute("UPDATE units_specialpopulationentry t SET district_code = r.district_code "
                              "FROM units_resident r WHERE r.id = t.resident_id")
        return
    Household = apps.get_model("units", "Household")
    Resident = apps.get_model("units", "Resident")
    for name in ("Resident", "HouseholdVerification", "PastResidence"):
        model = apps.get_model("units", name)
        for code in Household.objects.values_list("district_code", flat=True).distinct():
            model.objects.filter(household__district_code=code).update(district_code=code)
    Entry = apps.get_model("units", "SpecialPopulationEntry")
    for code in Resident.objects.values_list("district_code", flat=True).distinct():
        Entry.objects.filter(resident__district_code=code).update(district_code=code)


def composite_keys(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # The single-column keys that point at a resident go first (they need its single-column primary
    # key): the tables that keep pointing at it get composite ones (the entries here, the health facts
    # in health 0006); a transfer request's and a past spell's stay without a key.
    schema_editor.execute("""
        DO $$ DECLARE c record; BEGIN
          FOR c IN SELECT conrelid::regclass AS tbl, conname FROM pg_constraint
                   WHERE contype = 'f' AND confrelid = 'units_resident'::regclass LOOP
            EXECUTE format('ALTER TABLE %%s DROP CONSTRAINT %%I', c.tbl, c.conname);
          END LOOP; END $$""")
    # The entry's one-to-one key: unique with the district (Citus refuses a unique key without it).
    schema_editor.execute("""
        DO $$ DECLARE c record; BEGIN
          FOR c IN SELECT conname FROM pg_constraint WHERE contype = 'u'
                   AND conrelid = 'units_specialpopulationentry'::regclass LOOP
            EXECUTE format('ALTER TABLE units_specialpopulationentry DROP CONSTRAINT %%I', c.conname);
          END LOOP; END $$""")
    schema_editor.execute("ALTER TABLE units_specialpopulationentry ADD CONSTRAINT special_entry_once "
                          "UNIQUE (district_code, resident_id)")
    for table in TABLES:
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, "
                              f"ADD CONSTRAINT {table}_pkey PRIMARY KEY (district_code, id)")
        schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN id DROP IDENTITY IF EXISTS")
        schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {table}_id_seq OWNED BY {table}.id")
        schema_editor.execute(f"SELECT setval('{table}_id_seq', COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)")
        schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq')")
    for table, column, target, on_delete in COMPOSITE_FKS:
        schema_editor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fk FOREIGN KEY "
                              f"(district_code, {column}) REFERENCES {target} (district_code, id){on_delete} "
                              "DEFERRABLE INITIALLY DEFERRED")


# The single-column keys that pointed at a resident when this migration was written.
POINTING = [("units_pastresidence", "resident_id"), ("units_specialpopulationentry", "resident_id"),
            ("units_transferrequest", "resident_id"), ("health_positivecase", "resident_id"),
            ("health_measure", "resident_id"), ("health_heldfacts", "resident_id")]


def single_keys(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column, _target, _on in COMPOSITE_FKS:
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_{column}_fk")
    schema_editor.execute("ALTER TABLE units_specialpopulationentry DROP CONSTRAINT special_entry_once, "
                          "ADD CONSTRAINT units_specialpopulationentry_resident_id_key UNIQUE (resident_id)")
    for table in TABLES:
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, "
                              f"ADD CONSTRAINT {table}_pkey PRIMARY KEY (id)")
    for table, column in POINTING:
        schema_editor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fk_resident "
                              f"FOREIGN KEY ({column}) REFERENCES units_resident (id) DEFERRABLE INITIALLY DEFERRED")


class Migration(migrations.Migration):

    dependencies = [
        ("units", "0008_household_district_code"),
        # Every table that points at a resident exists before its primary key changes.
        ("health", "0005_natresult_district_code"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="householdverification", name="verification_once_a_day"),
        migrations.AddField(
            model_name="resident",
            name="district_code",
            field=wuyiqu.units.models.DistrictCodeField(default="", editable=False, max_length=40, unit_field="household"),
        ),
        migrations.AddField(
            model_name="householdverification",
            name="district_code",
            field=wuyiqu.units.models.DistrictCodeField(default="", editable=False, max_length=40, unit_field="household"),
        ),
        migrations.AddField(
            model_name="pastresidence",
            name="district_code",
            field=wuyiqu.units.models.DistrictCodeField(default="", editable=False, max_length=40, unit_field="household"),
        ),
        migrations.AddField(
            model_name="specialpopulationentry",
            name="district_code",
            field=wuyiqu.units.models.DistrictCodeField(default="", editable=False, max_length=40, unit_field="resident"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(model_name="resident", name="id_hash", field=models.CharField(max_length=64)),
        migrations.AddIndex(model_name="resident", index=models.Index(fields=["id_hash"], name="resident_id_hash")),
        migrations.AddConstraint(
            model_name="resident",
            constraint=models.UniqueConstraint(fields=("district_code", "id_hash"), name="resident_id_hash_unique"),
        ),
        migrations.AddConstraint(
            model_name="householdverification",
            constraint=models.UniqueConstraint(fields=("district_code", "household", "verified_on"),
                                               name="verification_once_a_day"),
        ),
        # The relations: in the state, district keys (or plain ids); in the database, the composite
        # keys and primary keys made on PostgreSQL by ``composite_keys`` (SQLite keeps its own).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="resident", name="household",
                    field=wuyiqu.units.models.DistrictForeignKey(
                        db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name="residents",
                        to="units.household", verbose_name="户"),
                ),
                migrations.AlterField(
                    model_name="householdverification", name="household",
                    field=wuyiqu.units.models.DistrictForeignKey(
                        db_constraint=False, on_delete=django.db.models.deletion.CASCADE,
                        related_name="verifications", to="units.household"),
                ),
                migrations.AlterField(
                    model_name="pastresidence", name="household",
                    field=wuyiqu.units.models.DistrictForeignKey(
                        db_constraint=False, on_delete=django.db.models.deletion.PROTECT,
                        related_name="past_residents", to="units.household"),
                ),
                migrations.AlterField(
                    model_name="pastresidence", name="resident",
                    field=models.ForeignKey(db_constraint=False, db_index=False,
                                            on_delete=django.db.models.deletion.CASCADE,
                                            related_name="past_residences", to="units.resident"),
                ),
                migrations.AlterField(
                    model_name="specialpopulationentry", name="resident",
                    field=wuyiqu.units.models.DistrictOneToOneField(
                        db_constraint=False, on_delete=django.db.models.deletion.CASCADE,
                        related_name="special_entry", to="units.resident"),
                ),
                migrations.AlterField(
                    model_name="transferrequest", name="resident",
                    field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name="+", to="units.resident"),
                ),
                migrations.AlterField(
                    model_name="transferrequest", name="from_household",
                    field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT,
                                            related_name="+", to="units.household"),
                ),
                migrations.AlterField(
                    model_name="transferrequest", name="to_household",
                    field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT,
                                            related_name="+", to="units.household"),
                ),
            ],
            database_operations=[migrations.RunPython(composite_keys, single_keys, elidable=False)],
        ),
    ]
