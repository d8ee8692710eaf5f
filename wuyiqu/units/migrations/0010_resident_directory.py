"""The city-wide resident directory (``ResidentDirectory``, ``units.directory``): an ID number is unique
across the districts again (since units 0009 the residents' own unique key is ``(district_code,
id_hash)``), and a number is found without asking every district. Filled from the register; a number
registered in two districts (which the writers' look-up before registering should have prevented)
stops the migration with the count, to be resolved before it runs again. On PostgreSQL the directory
keeps its primary key only (no ``_like`` twin: it is looked up by equality)."""

from django.db import migrations, models


def fill(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM (SELECT id_hash FROM units_resident GROUP BY id_hash "
                    "HAVING count(*) > 1) t")
        (twice,) = cur.fetchone()
        if twice:
            raise RuntimeError(f"{twice} 个身份证号在多个区同时登记，请先核实并合并后再迁移 "
                               f"({twice} ID numbers are registered in more than one district)")
        cur.execute("INSERT INTO units_residentdirectory (id_hash, district_code) "
                    "SELECT id_hash, district_code FROM units_resident")


def drop_like_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("""
        DO $$ DECLARE i record; BEGIN
          FOR i IN SELECT indexname FROM pg_indexes WHERE tablename = 'units_residentdirectory'
                   AND indexname LIKE '%%\\_like' LOOP
            EXECUTE format('DROP INDEX %%I', i.indexname);
          END LOOP; END $$""")


class Migration(migrations.Migration):

    dependencies = [
        ('units', '0009_registry_district_code'),
    ]

    operations = [
        migrations.CreateModel(
            name='ResidentDirectory',
            fields=[
                ('id_hash', models.CharField(max_length=64, primary_key=True, serialize=False)),
                ('district_code', models.CharField(max_length=40)),
            ],
            options={
                'db_table': 'units_residentdirectory',
            },
        ),
        migrations.RunPython(drop_like_index, migrations.RunPython.noop),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
