from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "wuyiqu.api"
    label = "api"
    verbose_name = "接口"
