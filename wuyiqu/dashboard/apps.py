from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "wuyiqu.dashboard"
    verbose_name = "态势总览"
