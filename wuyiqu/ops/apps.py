from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Running in production: `wuyiqu serve`, `wuyiqu worker` and the worker's daily schedule."""

    name = "wuyiqu.ops"
    verbose_name = "运行"
