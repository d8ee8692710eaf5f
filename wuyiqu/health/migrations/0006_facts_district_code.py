"""The health facts carry their district (``district_code``): the distribution column when the
deployment runs on Citus (docs/scaling.md, "Running on Citus"), co-located with the registry (units
0009) and the results (0005).

- cases and measures: their resident's district; unmatched, their unit's, else their submitter's
  scope's ("" for an unscoped submitter), as the results are kept;
- measure changes: their measure's; held facts: their resident's; risk zones: their unit's.

The district joins the unique keys everywhere and, on PostgreSQL, the primary keys ``(district_code,
id)`` with ``id`` from an ordinary sequence; the keys to the resident and to the measure become
composite ``(district_code, x_id) → (district_code, id)``, deferred. SQLite keeps its ``id`` primary
keys and single-column keys."""

import django.db.models.deletion
from django.db import migrations, models

import wuyiqu.units.models

TABLES = ("health_positivecase", "health_measure", "health_measurechange", "health_heldfacts", "health_riskzone")

COMPOSITE_FKS = [
    ("health_positivecase", "resident_id", "units_resident", ""),
    ("health_measure", "resident_id", "units_resident", ""),
    ("health_heldfacts", "resident_id", "units_resident", " ON DELETE CASCADE"),
    ("health_measurechange", "measure_id", "health_measure", " ON DELETE CASCADE"),
]


def backfill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in ("health_positivecase", "health_measure"):
            schema_editor.execute(f"""
                UPDATE {table} t SET district_code = COALESCE(
                    (SELECT r.district_code FROM units_resident r WHERE r.id = t.resident_id),
                    (SELECT split_part(u.path, '/', 2) FROM units_unit u WHERE u.id = t.unit_id),
                    (SELECT split_part(u.path, '/', 2) FROM units_unit u WHERE u.id = t.scope_unit_id), '')""")
        schema_editor.execute("UPDATE health_heldfacts t SET district_code = r.district_code "
                              "FROM units_resident r WHERE r.id = t.resident_id")
        schema_editor.execute("UPDATE health_measurechange t SET district_code = m.district_code "
                              "FROM health_measure m WHERE m.id = t.measure_id")
        schema_editor.execute("UPDATE health_riskzone t SET district_code = split_part(u.path, '/', 2) "
                              "FROM units_unit u WHERE u.id = t.unit_id")
        return
    Unit = apps.get_model("units", "Unit")
    Resident = apps.get_model("units", "Resident")
    paths = dict(Unit.objects.values_list("pk", "path"))
    districts = dict(Resident.objects.values_list("pk", "district_code"))

    def of_unit(unit_id):
        return paths[unit_id].strip("/").split("/", 1)[0] if unit_id in paths else None

    for name in ("PositiveCase", "Measure"):
        model = apps.get_model("health", name)
        for pk, rid, unit_id, scope_id in model.objects.values_list("pk", "resident_id", "unit_id", "scope_unit_id"):
            code = districts.get(rid) or of_unit(unit_id) or of_unit(scope_id) or ""
            model.objects.filter(pk=pk).update(district_code=code)
    Held = apps.get_model("health", "HeldFacts")
    for pk, rid in Held.objects.values_list("pk", "resident_id"):
        Held.objects.filter(pk=pk).update(district_code=districts.get(rid, ""))
    Measure = apps.get_model("health", "Measure")
    Change = apps.get_model("health", "MeasureChange")
    for code in Measure.objects.values_list("district_code", flat=True).distinct():
        Change.objects.filter(measure__district_code=code).update(district_code=code)
    Zone = apps.get_model("health", "RiskZone")
    for pk, unit_id in Zone.objects.values_list("pk", "unit_id"):
        Zone.objects.filter(pk=pk).update(district_code=of_unit(unit_id) or "")


def composite_keys(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # The single-column keys to a measure (and any left to a resident: units 0009 dropped them).
    schema_editor.execute("""
        DO $$ DECLARE c record; BEGIN
          FOR c IN SELECT conrelid::regclass AS tbl, conname FROM pg_constraint
                   WHERE contype = 'f' AND confrelid IN ('health_measure'::regclass, 'units_resident'::regclass)
                   AND conrelid::regclass::text LIKE 'health\\_%%' LOOP
            EXECUTE format('ALTER TABLE %%s DROP CONSTRAINT %%I', c.tbl, c.conname);
          END LOOP; END $$""")
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


def single_keys(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column, _target, _on in COMPOSITE_FKS:
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_{column}_fk")
    for table in TABLES:
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, "
                              f"ADD CONSTRAINT {table}_pkey PRIMARY KEY (id)")
    schema_editor.execute("ALTER TABLE health_measurechange ADD CONSTRAINT health_measurechange_measure_id_fk_measure "
                          "FOREIGN KEY (measure_id) REFERENCES health_measure (id) DEFERRABLE INITIALLY DEFERRED")


def field(unit_field=None):
    kwargs = {"unit_field": unit_field} if unit_field else {}
    return wuyiqu.units.models.DistrictCodeField(default="", editable=False, max_length=40, **kwargs)


class Migration(migrations.Migration):

    dependencies = [
        ("health", "0005_natresult_district_code"),
        ("units", "0009_registry_district_code"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="heldfacts", name="held_facts_open_once"),
        migrations.RemoveConstraint(model_name="measure", name="measure_once"),
        migrations.RemoveConstraint(model_name="positivecase", name="case_once"),
        migrations.RemoveConstraint(model_name="positivecase", name="unit_case_once"),
        migrations.RemoveConstraint(model_name="riskzone", name="zone_once"),
        migrations.AddField(model_name="positivecase", name="district_code", field=field("resident,unit,scope_unit")),
        migrations.AddField(model_name="measure", name="district_code", field=field("resident,unit,scope_unit")),
        migrations.AddField(model_name="measurechange", name="district_code", field=field("measure")),
        migrations.AddField(model_name="heldfacts", name="district_code", field=field("resident")),
        migrations.AddField(model_name="riskzone", name="district_code", field=field()),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
        migrations.AddConstraint(
            model_name="heldfacts",
            constraint=models.UniqueConstraint(condition=models.Q(("status", "pending")),
                                               fields=("district_code", "id_hash", "scope_unit"),
                                               name="held_facts_open_once"),
        ),
        migrations.AddConstraint(
            model_name="measure",
            constraint=models.UniqueConstraint(fields=("district_code", "kind", "id_hash", "start_on"), name="measure_once"),
        ),
        migrations.AddConstraint(
            model_name="positivecase",
            constraint=models.UniqueConstraint(condition=models.Q(("id_hash", ""), _negated=True),
                                               fields=("district_code", "id_hash", "reported_on", "case_type"),
                                               name="case_once"),
        ),
        migrations.AddConstraint(
            model_name="positivecase",
            constraint=models.UniqueConstraint(condition=models.Q(("id_hash", "")),
                                               fields=("district_code", "unit", "reported_on", "case_type"),
                                               name="unit_case_once"),
        ),
        migrations.AddConstraint(
            model_name="riskzone",
            constraint=models.UniqueConstraint(fields=("district_code", "unit", "zone_type", "start_on"), name="zone_once"),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="positivecase", name="resident",
                    field=wuyiqu.units.models.DistrictForeignKey(
                        blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+", to="units.resident"),
                ),
                migrations.AlterField(
                    model_name="measure", name="resident",
                    field=wuyiqu.units.models.DistrictForeignKey(
                        blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+", to="units.resident"),
                ),
                migrations.AlterField(
                    model_name="heldfacts", name="resident",
                    field=wuyiqu.units.models.DistrictForeignKey(
                        db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name="+",
                        to="units.resident"),
                ),
                migrations.AlterField(
                    model_name="measurechange", name="measure",
                    field=wuyiqu.units.models.DistrictForeignKey(
                        db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name="changes",
                        to="health.measure"),
                ),
            ],
            database_operations=[migrations.RunPython(composite_keys, single_keys, elidable=False)],
        ),
    ]
