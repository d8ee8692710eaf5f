"""Titles (称号) named by the command, and their withdrawal (摘牌销号)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Title(models.Model):
    """A unit holds its title from ``named_on`` until ``withdrawn_on`` (empty: current)."""

    unit = models.ForeignKey("units.Unit", on_delete=models.PROTECT, related_name="titles")
    title = models.CharField(_("称号"), max_length=10)
    named_on = models.DateField(_("命名日期"))
    named_at = models.DateTimeField(null=True, blank=True)
    withdrawn_on = models.DateField(_("摘牌日期"), null=True, blank=True)
    withdrawn_reason = models.TextField(blank=True)
    # The machine form of the text the system wrote (``wuyiqu.standards.criteria.render``: the page
    # shows it in the reader's language); null: a person's words or a row older than the forms.
    withdrawn_form = models.JSONField(null=True, blank=True)
    application = models.ForeignKey("applications.Application", null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    # Printed on the certificate and in its QR code (/verify/<number>/); titles named through the
    # review chain get one, titles imported from before the system have none.
    certificate_number = models.CharField(_("证书编号"), max_length=32, null=True, blank=True, unique=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["unit"], condition=models.Q(withdrawn_on__isnull=True),
                                    name="one_current_title_per_unit"),
        ]

    def __str__(self) -> str:
        return f"{self.title} {self.named_on}"

    @property
    def shown_withdrawn_reason(self) -> str:
        from wuyiqu.standards.criteria import shown

        return shown(self.withdrawn_reason, self.withdrawn_form)
