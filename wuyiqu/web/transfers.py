"""The queue of cross-scope transfer requests (``units.transfers``): people registered outside an
importer's scope whom its residents import named for one of its households. Thin: the scoped read and
the action live in ``wuyiqu.units.transfers``; every look is audited (the page names people)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from wuyiqu.audit import actions as audit
from wuyiqu.units import transfers

PER_PAGE = 50


@login_required
@require_GET
def transfer_queue(request):
    """Pending requests the user may decide (empty for everyone else)."""
    page = Paginator(transfers.transfers_for(request.user), PER_PAGE).get_page(request.GET.get("page"))
    audit.record(actor=request.user, action="units.view_transfers", ip=request.META.get("REMOTE_ADDR") or None,
                 detail={"rows": page.paginator.count, "page": page.number})
    return render(request, "web/transfers.html", {"page": page})


@login_required
@require_POST
def decide_transfer(request, transfer_id: int):
    req = transfers.access_transfer(request.user, transfer_id)  # 404 outside the user's queue
    approve = request.POST.get("decision") == "approve"
    try:
        transfers.do_decide_transfer(req, actor=request.user, approve=approve, reason=request.POST.get("reason", ""))
    except transfers.TransferRefused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("已同意迁入，并已复核两处的称号") if approve else _("已不同意迁入"))
    return redirect("web:transfers")
