"""The clear birth date goes (0006 kept what the evaluator needs of it: ``turns_three_on``)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("units", "0006_no_clear_birth_date")]

    operations = [migrations.RemoveField(model_name="resident", name="birth_date")]
