from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "wuyiqu.accounts"
    verbose_name = "账号"
