"""Applications for a title and the household co-signatures (联名申请) on them."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ApplicationStatus(models.TextChoices):
    DRAFT = "draft", _("征集联名中")
    COMMUNITY_REVIEW = "community_review", _("村/社区受理")
    STREET_REVIEW = "street_review", _("街道初审")
    HEALTH_REVIEW = "health_review", _("区卫健委复核")
    COMMAND_REVIEW = "command_review", _("区指挥部命名")
    RETURNED = "returned", _("已退回")
    REJECTED = "rejected", _("未通过")
    NAMED = "named", _("已命名")


OPEN_STATUSES = (
    ApplicationStatus.DRAFT,
    ApplicationStatus.COMMUNITY_REVIEW,
    ApplicationStatus.STREET_REVIEW,
    ApplicationStatus.HEALTH_REVIEW,
    ApplicationStatus.COMMAND_REVIEW,
    ApplicationStatus.RETURNED,
)


class Application(models.Model):
    unit = models.ForeignKey("units.Unit", on_delete=models.PROTECT, related_name="applications")
    title = models.CharField(_("称号"), max_length=10)
    status = models.CharField(_("状态"), max_length=20, choices=ApplicationStatus.choices,
                              default=ApplicationStatus.DRAFT)
    applicant = models.ForeignKey("accounts.User", null=True, on_delete=models.SET_NULL, related_name="+")
    opened_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # The village/community's own signed application (经村（社区）签字申请).
    unit_signed_on = models.DateField(null=True, blank=True)
    frozen_evaluation = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            # At most one open application per unit and title.
            models.UniqueConstraint(
                fields=["unit", "title"],
                condition=models.Q(status__in=[s.value for s in OPEN_STATUSES]),
                name="one_open_application_per_title",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_status_display()})"


class SignatureSource(models.TextChoices):
    ONLINE = "online", _("手机签名")
    PAPER = "paper", _("纸质联名表")


class CoSignature(models.Model):
    """One household's co-signature on one application."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="signatures")
    household = models.ForeignKey("units.Household", on_delete=models.PROTECT, related_name="signatures")
    signed_on = models.DateField(_("签名日期"))
    source = models.CharField(max_length=8, choices=SignatureSource.choices, default=SignatureSource.ONLINE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["application", "household"], name="one_signature_per_household"),
        ]

    def __str__(self) -> str:
        return f"{self.household_id} → {self.application_id}"
