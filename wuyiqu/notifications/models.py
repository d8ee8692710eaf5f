"""Notifications (通知): a line in the user's inbox, also sent by e-mail."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Notification(models.Model):
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="notifications")
    text = models.CharField(_("内容"), max_length=300)
    link = models.CharField(_("链接"), max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # ``text`` is the zh-hans text as sent (and e-mailed); ``template`` + ``params`` let the inbox
    # render it again in the reader's language (wuyiqu.notifications.texts). Empty: shown as written.
    template = models.CharField(max_length=40, blank=True)
    params = models.JSONField(default=dict, blank=True)
    # A to-do (待办) names what it is about (e.g. "application:12:step"); when that step is done the
    # item is closed (``done_at``) and leaves the inbox and the unread count.
    topic = models.CharField(max_length=60, blank=True, db_index=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return self.text

    @property
    def shown(self) -> str:
        """The text in the active language (the stored zh-hans text when there is no template)."""
        from .texts import render

        return render(self)
