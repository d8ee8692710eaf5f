"""The sign-in form: Django's, with the lock of ``wuyiqu.accounts.selectors`` in front of it."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from .actions import do_record_login_failure
from .selectors import LoginRefusal, login_refusal


def client_ip(request) -> str | None:
    return (request.META.get("REMOTE_ADDR") or None) if request is not None else None


class LoginForm(AuthenticationForm):
    """Refuses, without checking the password, while the name or the address is locked; counts every
    wrong password (and a name that does not exist, the same way). ``refusal`` is set when refused."""

    refusal: LoginRefusal | None = None

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        ip = client_ip(self.request)
        self.refusal = login_refusal(username=username, ip=ip)
        if self.refusal is not None:
            raise forms.ValidationError(self.refusal.message(), code="locked")
        try:
            return super().clean()
        except forms.ValidationError:
            if username is None or not password:
                raise  # a field left empty: not an attempt
            self.refusal = do_record_login_failure(username=username, ip=ip)
            if self.refusal is not None:
                raise forms.ValidationError(self.refusal.message(), code="locked") from None
            raise
