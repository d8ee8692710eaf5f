"""A copy of the database without the keys gives back no ID number and no phone (docs/reliability.md,
"A copied database"). Before: the mask kept 4 + 4 characters of the number and the birth date was a
clear column, which left at most 9 candidates, and one with the district's county codes.

- ``turns_three_on`` replaces ``birth_date``: kept only for children whose third birthday is at most
  a year past (``idcard.kept_third_birthday``); the nucleic-acid exemption is all the evaluator used
  the birth date for.
- Masks shrink to 3 + 1 characters for ID numbers and 3 + 2 for phones, in the residents and fact
  tables, and wherever an old mask was copied into stored text (reasons of stored evaluations,
  warnings, withdrawals, notifications, audit rows, import reports): every text and JSON column of
  every table is searched for the old shapes. A person named in stored text by an earlier reason
  ("居民 丁** (…)") becomes "一名居民": stored reasons are read by volunteer roles too. The old shapes
  are rebuilt from the masks alone, so no key is needed.

The column ``birth_date`` is dropped by 0007 (apart: PostgreSQL refuses to alter a table with
pending trigger events in the transaction that updated it). Reversible (docs/deploy.md): rolling back
drops ``turns_three_on`` and keeps the short masks (the lost digits do not come back); 0007's rollback refills ``birth_date`` from the
encrypted numbers.
"""

import datetime as dt
import json
import re

from django.db import migrations, models
from django.utils import timezone

# The masks of the previous versions: 4 + 10 stars + 4 (ID), 3 + 4 stars + 4 (an 11-digit phone).
OLD_ID_MASK = re.compile(r"(?<![0-9*])([0-9]{3})[0-9]\*{10}[0-9]{3}([0-9X])(?![0-9X*])")
OLD_PHONE_MASK = re.compile(r"(?<![0-9*])(1[0-9]{2})\*{4}[0-9]{2}([0-9]{2})(?![0-9*])")
# A person as the reasons of earlier versions named them ("居民 丁** (5002**********0032)", "居民 (…)"):
# stored reasons, warnings, withdrawals and notices are read by volunteer roles too, who may not see
# who (SPEC §1), so the stored text keeps "一名居民" as the reasons now do.
OLD_PERSON = re.compile(r"居民 (?:[^\s()（）；，、]{1,20} )?\([0-9]{3}[0-9*]\*{10}[0-9*]{3}[0-9X]\)")


def remask_text(text: str) -> str:
    text = OLD_PERSON.sub("一名居民", text)
    text = OLD_ID_MASK.sub(lambda m: m.group(1) + "*" * 14 + m.group(2), text)
    return OLD_PHONE_MASK.sub(lambda m: m.group(1) + "*" * 6 + m.group(2), text)


def _remask_value(value):
    if isinstance(value, str):
        return remask_text(value)
    if isinstance(value, list):
        return [_remask_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _remask_value(v) for k, v in value.items()}
    return value


def _mask_phone(phone: str) -> str:
    # The old masks of other lengths kept first 3 + last 4; the new keep first 3 + last 2.
    if len(phone) < 7:
        return phone
    return phone[:3] + "*" * (len(phone) - 5) + phone[-2:]


def _third_birthday(born: dt.date) -> dt.date:
    try:
        return born.replace(year=born.year + 3)
    except ValueError:
        return dt.date(born.year + 3, 3, 1)


def forwards(apps, schema_editor):
    conn = schema_editor.connection
    q = schema_editor.quote_name
    Resident = apps.get_model("units", "Resident")
    today = timezone.localdate()
    kept_from = today - dt.timedelta(days=366)
    # Children only (born in the last 5 years or so): a few hundred rows per 10,000.
    young = Resident.objects.filter(birth_date__gte=dt.date(kept_from.year - 4, 1, 1))
    for pk, born in young.values_list("pk", "birth_date").iterator(chunk_size=2000):
        day = _third_birthday(born)
        if day >= kept_from:
            Resident.objects.filter(pk=pk).update(turns_three_on=day)
    with conn.cursor() as cur:
        # One UPDATE per table for the common shapes (18-character numbers, 11-digit phones).
        for table in ("units_resident", "health_positivecase", "health_measure"):
            cur.execute(f"UPDATE {q(table)} SET id_masked = substr(id_masked, 1, 3) || '{'*' * 14}' || "
                        "substr(id_masked, 18, 1) WHERE length(id_masked) = 18 AND substr(id_masked, 4, 1) <> '*'")
        cur.execute(f"UPDATE {q('units_resident')} SET phone_masked = substr(phone_masked, 1, 3) || '******' || "
                    "substr(phone_masked, 10, 2) WHERE length(phone_masked) = 11 AND substr(phone_masked, 10, 1) <> '*'")
    for pk, phone in (Resident.objects.exclude(phone_masked="").exclude(phone_masked__regex=r"^.{11}$")
                      .values_list("pk", "phone_masked")):
        Resident.objects.filter(pk=pk).update(phone_masked=_mask_phone(phone))
    _remask_stored_text(apps, conn)


def _remask_stored_text(apps, conn):
    """Every text and JSON column of every table: old masks copied into stored text are re-masked."""
    q = conn.ops.quote_name
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        table = model._meta.db_table
        pk = model._meta.pk.column
        if pk is None:  # a composite key (the partitioned nucleic-acid results): numbers only, no text
            continue
        for f in model._meta.concrete_fields:
            if not isinstance(f, (models.CharField, models.TextField, models.JSONField)) or f.primary_key or not f.column:
                continue
            if isinstance(f, models.CharField) and (f.max_length or 0) < 11:
                continue
            col = q(f.column)
            as_text = f"CAST({col} AS TEXT)" if isinstance(f, models.JSONField) else col
            with conn.cursor() as cur:
                cur.execute(f"SELECT {q(pk)}, {as_text} FROM {q(table)} WHERE {as_text} LIKE %s", ["%****%"])
                rows = cur.fetchall()
            for row_pk, text in rows:
                if text is None:
                    continue
                if isinstance(f, models.JSONField):
                    old = json.loads(text)
                    new = _remask_value(old)
                else:
                    old, new = text, remask_text(text)
                if new != old:
                    model._base_manager.filter(pk=row_pk).update(**{f.name: new})


def keep_short_masks(apps, schema_editor):
    """Backward: nothing to undo in the rows; the masks stay short and the column goes with the
    reversed AddField."""


class Migration(migrations.Migration):
    dependencies = [
        ("units", "0005_transfer_requests"),
        ("accounts", "0005_password_sheet"),
        ("api", "0002_apitoken_acts_as_apitoken_role_apitoken_scopes"),
        ("applications", "0003_signing_lock_lift"),
        ("audit", "0001_initial"),
        ("certification", "0002_title_certificate_number"),
        ("health", "0004_held_facts"),
        ("imports", "0003_ledgers"),
        ("inspections", "0003_opinion_note_default"),
        ("notifications", "0001_initial"),
        ("ops", "0001_initial"),
        ("standards", "0003_evaluation_rollup"),
        ("supervision", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="resident",
            name="turns_three_on",
            field=models.DateField(blank=True, null=True, verbose_name="满3周岁日期"),
        ),
        migrations.RunPython(forwards, keep_short_masks, elidable=False),
    ]
