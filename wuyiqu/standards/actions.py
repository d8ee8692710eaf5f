"""Writes of the standards app: adding and activating policy profiles, storing evaluations."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from wuyiqu.audit import actions as audit
from wuyiqu.imports.bulk import insert_rows
from wuyiqu.units.models import district_of

from . import criteria as C
from .evaluator import _Gather, evaluate, parsed_profile, profile_row_in_force
from .models import Evaluation, PolicyActivation, PolicyProfile
from .profiles import ProfileError, parse_profile


@transaction.atomic
def do_add_profile(*, actor, content: dict[str, Any]) -> PolicyProfile:
    """Store a new profile version after validating it. Adding the same name+version with the same
    content again returns the stored row; with different content it is refused (ProfileError):
    a published version never changes, a change is a new version."""
    profile = parse_profile(content)
    existing = PolicyProfile.objects.select_for_update().filter(name=profile.name, version=profile.version).first()
    if existing is not None:
        if existing.sha256 == profile.sha256:
            return existing
        raise ProfileError([_("配置“%(name)s”版本“%(version)s”已存在且内容不同，请使用新的版本号") % {
            "name": profile.name, "version": profile.version}])
    row = PolicyProfile.objects.create(name=profile.name, version=profile.version, content=content,
                                       sha256=profile.sha256, created_by=actor)
    audit.record(actor=actor, action="standards.profile_add", target=row,
                 detail={"name": row.name, "version": row.version, "sha256": row.sha256})
    return row


@transaction.atomic
def do_activate_profile(*, actor, name: str, active_from: dt.date, version: str | None = None) -> PolicyActivation:
    """Put the newest version of profile ``name`` (or ``version``) in force from ``active_from``.
    Earlier activations are kept: the one in force on a day is the latest with active_from ≤ that day."""
    qs = PolicyProfile.objects.select_for_update().filter(name=name)
    if version:
        qs = qs.filter(version=version)
    row = qs.order_by("-created_at", "-id").first()
    if row is None:
        raise ProfileError([_("没有名为“%(name)s”版本“%(version)s”的政策配置") % {"name": name, "version": version}
                            if version else _("没有名为“%(name)s”的政策配置") % {"name": name}])
    activation = PolicyActivation.objects.create(profile=row, active_from=active_from, created_by=actor)
    row.active_from = active_from
    row.save(update_fields=["active_from"])
    audit.record(actor=actor, action="standards.profile_activate", target=row,
                 detail={"version": row.version, "active_from": active_from.isoformat()})
    return activation


@transaction.atomic
def do_store_evaluations(*, on: dt.date, profile_row: PolicyProfile | None = None, actor=None, root=None,
                         results=None) -> int:
    """Evaluate every titled unit (below ``root``) on ``on`` and store one compact row per unit for
    the day, replacing that day's earlier rows. Returns how many rows were stored. ``results``: the
    evaluations already made by the caller (supervision's daily run) with ``profile_row``.

    The rows go in as plain values (``imports.bulk.insert_rows``: COPY on PostgreSQL, executemany
    on SQLite) with compact JSON: a district's day is ~24,000 rows, and model instances with
    Django's per-value JSON adaptation cost several times the insert itself.

    The stored reasons are Chinese (the evaluation is made in ``LANGUAGE_CODE`` whatever language is
    active) with their machine form beside them (``detail_forms``: pages show them in the reader's
    language); callers that pass ``results`` made them so (supervision does)."""
    row = profile_row or profile_row_in_force(on)
    if results is None:
        with translation.override(settings.LANGUAGE_CODE):
            with C.machine_reasons():
                results = evaluate(on, root=root, profile=parsed_profile(row))
            C.localise(results)
    stale = Evaluation.objects.filter(on=on)
    if root is not None:
        # The subtree's rows, found by path: a district's tens of thousands of unit ids in one IN list
        # would cost more than the rows (and pass PostgreSQL's 65,535 parameters in a big district).
        # The district's rows first (Citus routes the statement to the district's shard), then the subtree.
        stale = stale.filter(district_code=district_of(root.path)).filter(_Gather._below("unit__path", root.path))
    stale.delete()
    label = f"{row.name} {row.version}"
    now = timezone.now()
    if connection.vendor != "postgresql":
        now = connection.ops.adapt_datetimefield_value(now)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    day = on if connection.vendor == "postgresql" else connection.ops.adapt_datefield_value(on)
    pk = row.pk

    def rows():
        for r in results:
            failed = [c for c in r.criteria if not c.passed]
            yield (r.unit.id, district_of(r.unit.path), day, r.eligible, r.named, dumps([c.id for c in failed]),
                   dumps({c.id: c.detail for c in failed}), dumps({c.id: c.machine for c in failed if c.machine}),
                   pk, label,
                   None if r.rollup is None else dumps(r.rollup), now)

    insert_rows(Evaluation._meta.db_table, ["unit_id", "district_code", "on", "eligible", "named", "failed", "details", "detail_forms", "profile_id",
                                            "profile_version", "rollup", "created_at"], rows())
    audit.record(actor=actor, action="standards.store_evaluations",
                 detail={"on": on.isoformat(), "units": len(results), "profile": label})
    return len(results)
