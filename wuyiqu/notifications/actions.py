"""Writes of notifications: ``notify`` puts a line in each user's inbox and, once the caller's
transaction has committed (a rolled-back review must not have told anyone anything), enqueues one
e-mail task per address for the worker (wuyiqu.notifications.tasks)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from wuyiqu.audit import actions as audit

from .models import Notification
from .tasks import send_notification_email
from .texts import stored_text

log = logging.getLogger(__name__)


def notify(users: Iterable, *, text: str = "", link: str = "", template: str = "", params: dict | None = None,
           topic: str = "") -> list[Notification]:
    """One inbox row per distinct user (inside the caller's transaction) and one e-mail each to those
    with an address, sent on commit. Returns the rows. With ``template`` (an id of
    wuyiqu.notifications.texts.TEMPLATES) and its ``params`` the zh-hans text is made from them and the
    inbox shows it in the reader's language; ``topic`` names the step a to-do is about
    (``close_topic`` closes it)."""
    params = dict(params or {})
    if template:
        text = stored_text(template, params)
    unique = {u.pk: u for u in users if u is not None and u.is_active}
    rows = Notification.objects.bulk_create(
        [Notification(user_id=pk, text=text[:300], link=link[:300], template=template, params=params,
                      topic=topic[:60]) for pk in unique])
    addresses = sorted({u.email for u in unique.values() if u.email})
    if addresses:
        def send() -> None:
            # Each recipient gets their own message (the addresses of other reviewers are not shared),
            # sent by the worker; enqueued only once the caller's transaction has committed.
            for address in addresses:
                try:
                    send_notification_email.enqueue(address, f"[无疫区] {text[:60]}", f"{text}\n\n{link}")
                except Exception:  # the review already committed: a queue hiccup must not undo it
                    log.exception("could not enqueue the notification e-mail to %s", address)

        transaction.on_commit(send)
    return rows


@transaction.atomic
def do_mark_notifications_read(*, actor, ids: list[int] | None = None) -> int:
    """Mark the actor's unread notifications (all, or those of ``ids``) read; returns how many."""
    qs = Notification.objects.filter(user=actor, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    n = qs.update(read_at=timezone.now())
    if n:
        audit.record(actor=actor, action="notifications.read", detail={"count": n})
    return n


def close_topic(topic: str) -> int:
    """The step a to-do was about is done (whoever did it): its open items leave every inbox and
    the unread counts. Inside the caller's transaction; returns how many were closed."""
    if not topic:
        return 0
    now = timezone.now()
    return Notification.objects.filter(topic=topic, done_at__isnull=True).update(done_at=now)
