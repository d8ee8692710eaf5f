"""The certificate PDF (signed in, scoped) and the public verification page behind its QR code."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from .certificate import certificate_pdf
from .selectors import access_title_by_certificate, verify_certificate


@login_required
@require_GET
def certificate(request, number: str):
    title = access_title_by_certificate(request.user, number)
    url = request.build_absolute_uri(reverse("certification:verify", args=[number]))
    pdf = certificate_pdf(unit_name=title.unit.name, title=title.title, named_on=title.named_on, number=number,
                          verify_url=url)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="certificate-{number}.pdf"'
    return response


@require_GET
def verify(request, number: str):
    """Public: unit, title, naming date and whether the title is current today. No personal data."""
    response = render(request, "certification/verify.html", {"t": verify_certificate(number)})
    response["Cache-Control"] = "no-cache"  # "current today" must not be served from yesterday's cache
    return response
