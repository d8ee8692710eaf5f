"""The schema steps that make a table district-keyed on PostgreSQL (docs/scaling.md, "Running on Citus"),
shared by the migrations of the tables distributed after the first ones (applications 0004,
certification 0004, supervision 0003, inspections 0006). Each is a no-op on SQLite, which keeps its
``id`` primary keys and single-column foreign keys.

- ``composite_pk``: the primary key ``(district_code, id)``; ``id`` stays the model's key, drawn from an
  ordinary sequence (Citus distributes no table with an identity column). ``single_pk`` reverses it
  (the sequence stays: it numbers as the identity did).
- ``drop_single_fks``: the single-column foreign keys from a table to another, which must go before the
  other's primary key changes and which Citus refuses between distributed tables.
- ``composite_fk``: ``(district_code, <column>) → (district_code, id)``, deferred as Django's keys are;
  ``ON DELETE CASCADE`` where the model cascades (Citus accepts it between co-located tables; it refuses
  SET NULL, which Django does itself anyway). ``drop_composite_fk`` + ``single_fk`` reverse it.
"""

from __future__ import annotations


def _pg(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


def backfill_from_unit(apps, schema_editor, app: str, model: str) -> None:
    """``district_code`` of every row of ``app.model`` from its unit's path."""
    Model = apps.get_model(app, model)
    table = Model._meta.db_table
    if _pg(schema_editor):
        schema_editor.execute(f"UPDATE {table} t SET district_code = split_part(u.path, '/', 2) "
                              "FROM units_unit u WHERE u.id = t.unit_id")
        return
    Unit = apps.get_model("units", "Unit")
    for unit_id in Model.objects.values_list("unit_id", flat=True).distinct():
        path = Unit.objects.filter(pk=unit_id).values_list("path", flat=True).first() or "/"
        Model.objects.filter(unit_id=unit_id).update(district_code=path.strip("/").split("/", 1)[0])


def backfill_from_parent(apps, schema_editor, app: str, model: str, field: str) -> None:
    """``district_code`` of every row of ``app.model`` from the row its relation ``field`` names (already
    backfilled); rows without one keep ``""``."""
    Model = apps.get_model(app, model)
    Parent = Model._meta.get_field(field).related_model
    if _pg(schema_editor):
        schema_editor.execute(f"UPDATE {Model._meta.db_table} t SET district_code = p.district_code "
                              f"FROM {Parent._meta.db_table} p WHERE p.id = t.{field}_id")
        return
    for district in Parent._base_manager.values_list("district_code", flat=True).distinct():
        Model._base_manager.filter(**{f"{field}__district_code": district}).update(district_code=district)


def drop_single_fks(schema_editor, table: str, referenced: str) -> None:
    if not _pg(schema_editor):
        return
    schema_editor.execute(f"""
        DO $$ DECLARE c record; BEGIN
          FOR c IN SELECT conname FROM pg_constraint
                   WHERE contype = 'f' AND conrelid = '{table}'::regclass AND confrelid = '{referenced}'::regclass LOOP
            EXECUTE format('ALTER TABLE {table} DROP CONSTRAINT %%I', c.conname);
          END LOOP; END $$""")


def composite_pk(schema_editor, table: str) -> None:
    if not _pg(schema_editor):
        return
    schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, "
                          f"ADD CONSTRAINT {table}_pkey PRIMARY KEY (district_code, id)")
    schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN id DROP IDENTITY IF EXISTS")
    schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {table}_id_seq OWNED BY {table}.id")
    schema_editor.execute(f"SELECT setval('{table}_id_seq', COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)")
    schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq')")


def single_pk(schema_editor, table: str) -> None:
    if _pg(schema_editor):
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, "
                              f"ADD CONSTRAINT {table}_pkey PRIMARY KEY (id)")


def _fk_name(table: str, column: str) -> str:
    return f"{table}_{column}_dfk"[:63]


def composite_fk(schema_editor, table: str, column: str, referenced: str, *, cascade: bool = False) -> None:
    if not _pg(schema_editor):
        return
    schema_editor.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT {_fk_name(table, column)} FOREIGN KEY (district_code, {column}) "
        f"REFERENCES {referenced} (district_code, id){' ON DELETE CASCADE' if cascade else ''} "
        "DEFERRABLE INITIALLY DEFERRED")


def drop_composite_fk(schema_editor, table: str, column: str) -> None:
    if _pg(schema_editor):
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {_fk_name(table, column)}")


def single_fk(schema_editor, table: str, column: str, referenced: str) -> None:
    """The single-column key a composite one replaced (a rollback), once ``referenced`` has its ``id``
    primary key again."""
    if _pg(schema_editor):
        schema_editor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fk FOREIGN KEY ({column}) "
                              f"REFERENCES {referenced} (id) DEFERRABLE INITIALLY DEFERRED")
