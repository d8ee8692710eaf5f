"""Seed the default policy profile wenlong-2022 (the policy text of 2022-11-20), in force from that day."""

import datetime as dt
import hashlib
import json
from importlib import resources

from django.db import migrations


def seed(apps, schema_editor):
    PolicyProfile = apps.get_model("standards", "PolicyProfile")
    PolicyActivation = apps.get_model("standards", "PolicyActivation")
    text = resources.files("wuyiqu.standards").joinpath("profiles", "wenlong-2022.json").read_text(encoding="utf-8")
    content = json.loads(text)
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    sha = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    start = dt.date(2022, 11, 20)
    row, _ = PolicyProfile.objects.get_or_create(
        name=content["name"], version=content["version"],
        defaults={"content": content, "sha256": sha, "active_from": start},
    )
    if not PolicyActivation.objects.filter(profile=row).exists():
        PolicyActivation.objects.create(profile=row, active_from=start)


class Migration(migrations.Migration):
    dependencies = [("standards", "0001_initial")]
    # Unapplying leaves the seeded profile: 0001's reversal drops the table anyway.
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
