from django.apps import AppConfig


class StandardsConfig(AppConfig):
    name = "wuyiqu.standards"
