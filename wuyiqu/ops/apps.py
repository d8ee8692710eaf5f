from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OpsConfig(AppConfig):
    """Running in production: `wuyiqu serve`, `wuyiqu worker` and the worker's daily schedule."""

    name = "wuyiqu.ops"
    verbose_name = _("运行")
