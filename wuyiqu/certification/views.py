"""The certificate PDF (signed in, scoped) and the public verification page behind its QR code."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from wuyiqu.web import public

from .certificate import certificate_pdf
from .selectors import access_title_by_certificate, verify_certificate


@login_required
@require_GET
def certificate(request, number: str):
    title = access_title_by_certificate(request.user, number)
    url = request.build_absolute_uri(reverse("certification:verify", args=[number]))
    pdf = certificate_pdf(unit_name=title.unit.full_name(), title=title.title, named_on=title.named_on, number=number,
                          verify_url=url)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="certificate-{number}.pdf"'
    return response


def _no_such_certificate(request):
    return public.not_found(request, heading=_("查无此证书"),
                            message=_("没有这个编号的无疫区证书。"),
                            hint=_("请核对证书或牌匾上的编号；如怀疑证书是伪造的，请向所在街道或社区反映。"))


@require_GET
def verify(request, number: str):
    """Public: unit, title, naming date and whether the title is current today. No personal data.
    An unknown or malformed number answers "查无此证书" (404), never the staff 404 page."""
    try:
        title = verify_certificate(number)
    except Http404:
        return _no_such_certificate(request)
    response = render(request, "certification/verify.html", {"t": title})
    response["Cache-Control"] = "no-cache"  # "current today" must not be served from yesterday's cache
    return response


@require_GET
def verify_malformed(request, rest: str = ""):
    """/verify/ with no number, or with one the URL pattern cannot take (a slash in it). A number typed
    without the final slash goes to its page."""
    if rest and "/" not in rest:
        return redirect("certification:verify", number=rest)
    return _no_such_certificate(request)
