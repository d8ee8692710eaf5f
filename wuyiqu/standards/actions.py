"""Writes of the standards app: adding and activating policy profiles, storing evaluations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from wuyiqu.audit import actions as audit

from .evaluator import evaluate, parsed_profile, profile_row_in_force
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
        raise ProfileError([f"配置“{profile.name}”版本“{profile.version}”已存在且内容不同，请使用新的版本号"])
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
        raise ProfileError([f"没有名为“{name}”{('版本“' + version + '”') if version else ''}的政策配置"])
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
    evaluations already made by the caller (supervision's daily run) with ``profile_row``."""
    row = profile_row or profile_row_in_force(on)
    results = results if results is not None else evaluate(on, root=root, profile=parsed_profile(row))
    ids = [r.unit.id for r in results]
    stale = Evaluation.objects.filter(on=on)
    if root is not None:
        stale = stale.filter(unit_id__in=ids)
    stale.delete()
    label = f"{row.name} {row.version}"
    Evaluation.objects.bulk_create([
        Evaluation(unit_id=r.unit.id, on=on, eligible=r.eligible, named=r.named, failed=r.failed,
                   details={c.id: c.detail for c in r.criteria if not c.passed},
                   profile=row, profile_version=label, rollup=r.rollup)
        for r in results
    ], batch_size=2000)
    audit.record(actor=actor, action="standards.store_evaluations",
                 detail={"on": on.isoformat(), "units": len(results), "profile": label})
    return len(results)
