"""Pages for the public (no account): what they answer when the number or link is unknown.

They render their own page with status 404 instead of raising Http404, so a resident never sees the
staff 404 ("不在您的管辖范围内", a sign-in link) nor, with DEBUG on as in the demo, Django's debug page
with every URL pattern."""

from __future__ import annotations

from django.shortcuts import render


def not_found(request, *, heading: str, message: str, hint: str = ""):
    response = render(request, "public_not_found.html", {"heading": heading, "message": message, "hint": hint},
                      status=404)
    response["Cache-Control"] = "no-cache"
    return response
