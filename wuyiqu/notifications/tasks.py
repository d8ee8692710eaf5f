"""Sending a notification e-mail is background work: a slow or unreachable mail server holds up the
worker (`wuyiqu worker`), never the reviewer's request. One task per recipient, so one bad address
fails alone; a failed send is kept as a failed task with its traceback (django_tasks_db's table)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail

from wuyiqu.lib.tasks import task


@task(priority=5)
def send_notification_email(address: str, subject: str, body: str) -> None:
    send_mail(subject=subject, message=body, from_email=getattr(settings, "DEFAULT_FROM_EMAIL", None),
              recipient_list=[address])
