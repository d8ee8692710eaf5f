"""Behind nginx every request comes from 127.0.0.1; the client's address is in X-Real-IP, which the
site configuration sets from the connection (deploy/nginx-wuyiqu.conf), overwriting anything the
client sent. The audit rows and the sign-in lock read REMOTE_ADDR, so it must be the client's."""

from __future__ import annotations

import ipaddress

from django.conf import settings

LOOPBACK = ("127.0.0.1", "::1")


class ForwardedClientMiddleware:
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
