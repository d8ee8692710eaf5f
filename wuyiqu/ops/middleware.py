"""Middleware of the running site: the client's address behind nginx, NUL characters refused,
pages not cached (each class says why)."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import Http404

LOOPBACK = ("127.0.0.1", "::1")


class ForwardedClientMiddleware:
    """Behind nginx every request comes from 127.0.0.1; the client's address is in X-Real-IP, which
    the site configuration sets from the connection (deploy/nginx-wuyiqu.conf), overwriting anything
    the client sent. The audit rows and the sign-in lock read REMOTE_ADDR, so it must be the client's."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.enabled = getattr(settings, "SECURE_PROXY_SSL_HEADER", None) is not None

    def __call__(self, request):
        if self.enabled and request.META.get("REMOTE_ADDR") in LOOPBACK:
            forwarded = request.META.get("HTTP_X_REAL_IP", "").strip()
            try:
                request.META["REMOTE_ADDR"] = str(ipaddress.ip_address(forwarded))
            except ValueError:
                pass  # no proxy in between (a local health check): keep the loopback address
        return self.get_response(request)


class RefuseNulMiddleware:
    """A NUL character in the path or the query string is refused before any view runs: PostgreSQL
    cannot hold one in text, so a lookup by such a code (``/verify/a%00b/``, ``/s/a%00b/``, a unit
    code, a search) failed with a 500 and a traceback. The path: 404 (no such page can exist); the
    query string: 400. Form fields refuse it on their own (Django's ProhibitNullCharactersValidator),
    the API answers 422 for a JSON value the database cannot hold."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or "\x00" in request.path_info:
            raise Http404("NUL in the path")
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:  # cheap first look; the decoded values decide
            if any("\x00" in k or any("\x00" in v for v in values) for k, values in request.GET.lists()):
                raise BadRequest("NUL in the query string")
        return self.get_response(request)


class NoStoreMiddleware:
    """Pages are not kept by the browser or any cache on the way: every response to a signed-in
    person is ``Cache-Control: private, no-store`` unless its view said ``no-store`` already (names,
    masked numbers, health facts, full numbers once revealed — the back button or a shared
    computer's cache must not show them again), and a response to an anonymous request gets
    ``no-store`` unless its view chose otherwise (the certificate check's ``no-cache``). Static files
    are served by WhiteNoise before this and keep their long caching."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            if "no-store" not in response.get("Cache-Control", ""):  # a view's own no-store is kept
                response["Cache-Control"] = "private, no-store"
        elif not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store"
        return response
