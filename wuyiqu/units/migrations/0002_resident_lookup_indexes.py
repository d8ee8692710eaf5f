"""Only the resident indexes something reads: no index on phone_hash (nothing looks a resident up by
phone) and, on PostgreSQL, no ``_like`` (varchar_pattern_ops) twin of the unique id_hash index (hashes
are matched by equality, never by prefix). At 30 million residents these were 3 of the table's 6
indexes, ~6.5 GB kept up on every insert (docs/scaling.md). Dropping an index is instant."""

from django.db import migrations, models


def _like_index(schema_editor) -> str:
    # The name Django gave it (deterministic from table and column): units_resident_id_hash_9e5fbc95_like
    return schema_editor._create_index_name("units_resident", ["id_hash"], suffix="_like")


def drop_id_hash_like(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(_like_index(schema_editor))}")


def create_id_hash_like(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {schema_editor.quote_name(_like_index(schema_editor))} "
                              "ON units_resident (id_hash varchar_pattern_ops)")


class Migration(migrations.Migration):
    dependencies = [("units", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="resident",
            name="phone_hash",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.RunPython(drop_id_hash_like, create_id_hash_like),
    ]
