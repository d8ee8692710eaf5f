"""Titles (称号) named by the command, and their withdrawal (摘牌销号)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from wuyiqu.units.models import DistrictCodeField, DistrictForeignKey, DistrictKeyedModel


class Title(DistrictKeyedModel):
    """A unit holds its title from ``named_on`` until ``withdrawn_on`` (empty: current)."""

    unit = models.ForeignKey("units.Unit", on_delete=models.PROTECT, related_name="titles")
    # The unit's district: the distribution column on Citus (migration 0004, docs/scaling.md).
    district_code = DistrictCodeField()
    title = models.CharField(_("称号"), max_length=10)
    named_on = models.DateField(_("命名日期"))
    named_at = models.DateTimeField(null=True, blank=True)
    withdrawn_on = models.DateField(_("摘牌日期"), null=True, blank=True)
    withdrawn_reason = models.TextField(blank=True)
    # The machine form of the text the system wrote (``wuyiqu.standards.criteria.render``: the page
    # shows it in the reader's language); null: a person's words or a row older than the forms.
    withdrawn_form = models.JSONField(null=True, blank=True)
    application = DistrictForeignKey("applications.Application", null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    # Printed on the certificate and in its QR code (/verify/<number>/); titles named through the
    # review chain get one, titles imported from before the system have none. Unique with the
    # district (Citus wants it in every unique key; the number is drawn at random and checked first),
    # indexed alone for the public lookup.
    certificate_number = models.CharField(_("证书编号"), max_length=32, null=True, blank=True,  # noqa: DJ001
                                          db_index=True)  # null: many titles have none, unique among the rest

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["district_code", "certificate_number"], name="title_certificate_unique"),
            models.UniqueConstraint(fields=["district_code", "unit"], condition=models.Q(withdrawn_on__isnull=True),
                                    name="one_current_title_per_unit"),
        ]

    def __str__(self) -> str:
        return f"{self.title} {self.named_on}"

    @property
    def shown_withdrawn_reason(self) -> str:
        from wuyiqu.standards.criteria import shown

        return shown(self.withdrawn_reason, self.withdrawn_form)
