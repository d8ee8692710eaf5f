"""The clear birth date goes (0006 kept what the evaluator needs of it: ``turns_three_on``).

Reversible (docs/deploy.md, "Upgrading and rolling back"): the birth date is digits 7-14 of the
18-character ID number, so the rollback re-adds the column as nullable, fills it from the decrypted
numbers (the keys are needed, as for every rollback that reads them) and only then makes it NOT NULL.
Forward, nothing but the DROP COLUMN touches the database: the column is not relaxed before it goes.
"""

import datetime as dt

from django.db import migrations, models


class RelaxedOnlyForRollback(migrations.AlterField):
    """State: ``birth_date`` becomes nullable (so the reversed RemoveField adds it nullable).
    Database: nothing forward (the column is dropped next); backward, the NOT NULL comes back once
    every row has its date."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        pass


def no_op(apps, schema_editor):
    pass


def fill_birth_dates(apps, schema_editor):
    from wuyiqu.lib import crypto

    Resident = apps.get_model("units", "Resident")
    c = crypto.cipher()
    rows = Resident.objects.filter(birth_date__isnull=True).values_list("pk", "id_enc")
    for pk, blob in rows.iterator(chunk_size=2000):
        number = c.decrypt(blob)
        try:
            born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        except ValueError:
            raise RuntimeError(f"units.Resident {pk}: no birth date in its ID number; cannot roll back") from None
        Resident.objects.filter(pk=pk).update(birth_date=born)


class Migration(migrations.Migration):
    dependencies = [("units", "0006_no_clear_birth_date")]

    operations = [
        RelaxedOnlyForRollback(
            model_name="resident",
            name="birth_date",
            field=models.DateField(null=True, verbose_name="出生日期"),
        ),
        migrations.RunPython(no_op, fill_birth_dates, elidable=False),
        migrations.RemoveField(model_name="resident", name="birth_date"),
    ]
