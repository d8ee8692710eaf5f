from django.apps import AppConfig


class CertificationConfig(AppConfig):
    name = "wuyiqu.certification"
