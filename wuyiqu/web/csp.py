"""The Content-Security-Policy header on Django 5.2 (Python 3.11), which lacks Django 6's
``django.middleware.csp``: the same SECURE_CSP setting, the same header. A response that already has
the header (a view that set its own) keeps it. Nonces are not supported: no page needs one."""

from __future__ import annotations

from django.conf import settings

HEADER = "Content-Security-Policy"


def build_policy(config: dict[str, list[str] | str]) -> str:
    """``{"default-src": ["'self'"], ...}`` -> ``"default-src 'self'; ..."`` (Django 6's format)."""
    parts = []
    for directive, values in config.items():
        if values in (None, False):
            continue
        if values is True:
            parts.append(directive)
            continue
        values = [values] if isinstance(values, str) else list(values)
        parts.append(" ".join([directive, *values]))
    return "; ".join(parts)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        config = getattr(settings, "SECURE_CSP", None)
        if config and HEADER not in response:
            response[HEADER] = build_policy(config)
        return response
