from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "wuyiqu.accounts"
    verbose_name = "账号"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from .middleware import start_session_clocks

        user_logged_in.connect(start_session_clocks, dispatch_uid="wuyiqu.accounts.start_session_clocks")
