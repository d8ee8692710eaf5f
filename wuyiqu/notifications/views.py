"""The inbox (通知). To-dos whose step is done (``done_at``) are no longer listed."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from .actions import do_mark_notifications_read
from .models import Notification


@login_required
@require_GET
def inbox(request):
    page = Paginator(Notification.objects.filter(user=request.user, done_at__isnull=True), 50).get_page(request.GET.get("page"))
    return render(request, "notifications/inbox.html", {"page": page})


@login_required
@require_POST
def open_notification(request, notification_id: int):
    """Mark one of the user's notifications read and follow its link (only ever a local path)."""
    try:
        n = Notification.objects.get(pk=notification_id, user=request.user)
    except Notification.DoesNotExist:
        raise Http404("notification") from None
    do_mark_notifications_read(actor=request.user, ids=[n.pk])
    if n.link and url_has_allowed_host_and_scheme(n.link, allowed_hosts=None) and n.link.startswith("/"):
        return redirect(n.link)
    return redirect("notifications:inbox")


@login_required
@require_POST
def read_all(request):
    do_mark_notifications_read(actor=request.user)
    return redirect("notifications:inbox")
