"""NatResult: the natural composite primary key, and on PostgreSQL a table partitioned by week.

Django cannot migrate a primary key to a composite one in place, and no result has been stored yet
by any installation (the table was created by 0001 and nothing writes it before this migration),
so the model is dropped and created again. On PostgreSQL the table Django creates is then replaced
by a partitioned one with the same columns, primary key and index names, so that Django's later
operations on the model (an added index, a new column) apply to the partitioned parent and cascade
to every partition. On SQLite the RunPython step does nothing: the ordinary table is right there.
"""

from django.db import migrations, models


def partition_on_postgres(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite keeps the ordinary table Django created
    schema_editor.execute("DROP TABLE health_natresult")
    schema_editor.execute(
        """
        CREATE TABLE health_natresult (
            id_hash varchar(64) NOT NULL,
            resident_id bigint NULL,
            unit_id bigint NULL,
            sampled_at timestamp with time zone NOT NULL,
            sampled_on date NOT NULL,
            result varchar(8) NOT NULL,
            CONSTRAINT health_natresult_pkey PRIMARY KEY (id_hash, sampled_on, sampled_at)
        ) PARTITION BY RANGE (sampled_on)
        """
    )
    # The (resident_id, sampled_on) index is not made here: CreateModel left its CREATE INDEX in
    # schema_editor.deferred_sql, which runs at the end of this migration, on the partitioned parent
    # (PostgreSQL then builds it on every partition, present and future).
    # Rows of weeks without their own partition land here; ensure_nat_partitions moves them out
    # when it creates the week's partition.
    schema_editor.execute("CREATE TABLE health_natresult_default PARTITION OF health_natresult DEFAULT")


class Migration(migrations.Migration):

    dependencies = [
        ("health", "0002_fact_keys"),
    ]

    operations = [
        migrations.DeleteModel(name="NatResult"),
        migrations.CreateModel(
            name="NatResult",
            fields=[
                ("pk", models.CompositePrimaryKey("id_hash", "sampled_on", "sampled_at", blank=True, editable=False,
                                                  primary_key=True, serialize=False)),
                ("id_hash", models.CharField(max_length=64)),
                ("resident_id", models.BigIntegerField(null=True)),
                ("unit_id", models.BigIntegerField(null=True)),
                ("sampled_at", models.DateTimeField(verbose_name="采样时间")),
                ("sampled_on", models.DateField(verbose_name="采样日期")),
                ("result", models.CharField(choices=[("negative", "阴性"), ("positive", "阳性")], max_length=8,
                                            verbose_name="结果")),
            ],
            options={
                "indexes": [models.Index(fields=["resident_id", "sampled_on"], name="health_natr_residen_d3a7e2_idx")],
            },
        ),
        # Reversing needs nothing here: reversing CreateModel drops the (partitioned) table.
        migrations.RunPython(partition_on_postgres, migrations.RunPython.noop, elidable=False),
    ]
