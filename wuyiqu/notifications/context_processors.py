"""The unread count in the page header."""

from __future__ import annotations


def unread(request) -> dict:
    """``unread_notifications``: the signed-in user's unread count (one COUNT query, only when a
    template reads it)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def count() -> int:
        from .models import Notification

        return Notification.objects.filter(user=user, read_at__isnull=True, done_at__isnull=True).count()

    from django.utils.functional import SimpleLazyObject

    return {"unread_notifications": SimpleLazyObject(count)}
