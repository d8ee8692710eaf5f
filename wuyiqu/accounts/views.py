"""The sign-in page: Django's LoginView with the lock (429 and Retry-After while refused) and audit rows."""

from __future__ import annotations

from django.contrib.auth import views as auth_views

from .actions import do_record_login
from .forms import LoginForm, client_ip


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "web/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        do_record_login(user=form.get_user(), ip=client_ip(self.request))
        return response

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.refusal is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.refusal.retry_after())
        return response
