"""Sessions end: after SESSION_IDLE_SECONDS without a request, and SESSION_COOKIE_AGE after the sign-in
however active the person is. The session then is flushed, so the page sends them to the login.

Django alone gives neither: its cookie age slides forward whenever the session is saved (and this
middleware must save it to remember the last request), and it knows nothing of idleness.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

SIGNED_IN_AT = "wuyiqu_signed_in_at"
SEEN_AT = "wuyiqu_seen_at"
# The last request is written to the session at most once a minute: a database write on every
# request would cost more than a minute of precision on a 30-minute timeout is worth.
SEEN_GRANULARITY = 60
# Set by the pages that poll (htmx ``every Ns``): an open tab refreshing itself is not a person using it.
POLL_HEADER = "X-Wuyiqu-Poll"


def start_session_clocks(sender, request, user, **kwargs) -> None:
    """At every sign-in (``user_logged_in``, connected in AccountsConfig.ready): both clocks start now,
    written with the session the sign-in saves anyway, so the first page after it writes nothing."""
    if request is not None and hasattr(request, "session"):
        now = int(time.time())
        request.session[SIGNED_IN_AT] = now
        request.session[SEEN_AT] = now


class SessionLimitsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            self._check(request)
        return self.get_response(request)

    def _check(self, request) -> None:
        now = int(time.time())
        session = request.session
        signed_in_at = session.setdefault(SIGNED_IN_AT, now)
        seen_at = session.get(SEEN_AT, now)
        if now - seen_at > settings.SESSION_IDLE_SECONDS:
            self._end(request, _("长时间未操作，已自动退出，请重新登录。"))
        elif now - signed_in_at > settings.SESSION_COOKIE_AGE:
            self._end(request, _("登录已超过有效时间，请重新登录。"))
        elif SEEN_AT not in session or (now - seen_at >= SEEN_GRANULARITY and POLL_HEADER not in request.headers):
            session[SEEN_AT] = now

    @staticmethod
    def _end(request, message: str) -> None:
        logout(request)  # flushes the session; request.user is anonymous from here on
        messages.info(request, message)


class PasswordChangeRequiredMiddleware:
    """A person whose password someone else chose (a new account, a reset: ``must_change_password``) is
    sent to the own-password page from every page until they have picked their own. Signing out, the
    language switch and static files stay reachable; the API is token-based and not concerned."""

    ALLOWED_PREFIXES = ("/account/password/", "/logout/", "/i18n/", "/static/", "/api/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (user.is_authenticated and user.must_change_password
                and not request.path.startswith(self.ALLOWED_PREFIXES)):
            target = reverse("accounts:password")
            if request.method == "GET":
                target += "?" + urlencode({"next": request.get_full_path()})
            return redirect(target)
        return self.get_response(request)
