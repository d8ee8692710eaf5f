"""The one way to write an audit row."""

from __future__ import annotations

from typing import Any

from .models import AuditEvent


def record(
    *,
    actor,
    action: str,
    target=None,
    target_type: str = "",
    target_id: str | int = "",
    unit=None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Write one audit row. ``target`` (a model instance) fills type and id when given."""
    if target is not None:
        target_type = target._meta.label_lower
        target_id = target.pk
    return AuditEvent.objects.create(
        actor=actor if (actor is not None and actor.is_authenticated) else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        unit=unit,
        detail=detail or {},
        ip=ip,
    )
