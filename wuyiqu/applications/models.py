"""Applications for a title and the household co-signatures (联名申请) on them."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from wuyiqu.units.models import DistrictCodeField, DistrictForeignKey, DistrictKeyedModel


class ApplicationStatus(models.TextChoices):
    DRAFT = "draft", _("征集联名中")
    COMMUNITY_REVIEW = "community_review", _("村/社区受理")
    STREET_REVIEW = "street_review", _("街道初审")
    HEALTH_REVIEW = "health_review", _("区卫健委复核")
    COMMAND_REVIEW = "command_review", _("区指挥部命名")
    RETURNED = "returned", _("已退回")
    REJECTED = "rejected", _("未通过")
    NAMED = "named", _("已命名")


# The kinds whose application the unit signs itself instead of its households (applications.actions
# SELF_SIGNED_KINDS).
UNIT_SIGNED_KINDS = ("village", "community", "street")

OPEN_STATUSES = (
    ApplicationStatus.DRAFT,
    ApplicationStatus.COMMUNITY_REVIEW,
    ApplicationStatus.STREET_REVIEW,
    ApplicationStatus.HEALTH_REVIEW,
    ApplicationStatus.COMMAND_REVIEW,
    ApplicationStatus.RETURNED,
)


class Application(DistrictKeyedModel):
    unit = models.ForeignKey("units.Unit", on_delete=models.PROTECT, related_name="applications")
    # The unit's district: the distribution column on Citus (migration 0004, docs/scaling.md); the
    # application's steps, attachments, co-signatures and signing attempts carry it too.
    district_code = DistrictCodeField()
    title = models.CharField(_("称号"), max_length=10)
    status = models.CharField(_("状态"), max_length=20, choices=ApplicationStatus.choices,
                              default=ApplicationStatus.DRAFT)
    applicant = models.ForeignKey("accounts.User", null=True, on_delete=models.SET_NULL, related_name="+")
    opened_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # The village/community's own signed application (经村（社区）签字申请).
    unit_signed_on = models.DateField(null=True, blank=True)
    frozen_evaluation = models.JSONField(null=True, blank=True)
    # The unguessable part of the short signing link /s/<token> printed on the poster (empty for a
    # draft that a paper-sheet import opened, until its applicant takes it over).
    # Unique with the district (Citus wants it in every unique key; 128 random bits do the rest),
    # indexed alone for the link's lookup.
    token = models.CharField(max_length=32, null=True, blank=True, db_index=True)  # noqa: DJ001 (many drafts have none)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["district_code", "token"], name="application_token_unique"),
            # At most one open application per unit and title.
            models.UniqueConstraint(
                fields=["district_code", "unit", "title"],
                condition=models.Q(status__in=[s.value for s in OPEN_STATUSES]),
                name="one_open_application_per_title",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_status_display()})"

    @property
    def status_label(self) -> str:
        """The status as shown. No household co-signs a village's, community's or street's application:
        the unit signs it itself (签字申请, SPEC §5), so its draft is 待本单位签字 or, once signed,
        已签字待提交 — never 征集联名中."""
        if self.status == ApplicationStatus.DRAFT and self.unit.kind in UNIT_SIGNED_KINDS:
            return str(_("已签字待提交") if self.unit_signed_on else _("待本单位签字"))
        # The enum's label, not get_status_display(): Django rebuilds a dict of every choice on each
        # call of that one, which a queue of a thousand applications paid per row (docs/benchmarks.md,
        # load_mixed). A value outside the choices is shown as stored, as get_status_display does.
        try:
            return str(ApplicationStatus(self.status).label)
        except ValueError:
            return str(self.status)


class SignatureSource(models.TextChoices):
    ONLINE = "online", _("手机签名")
    PAPER = "paper", _("纸质联名表")


class CoSignature(DistrictKeyedModel):
    """One household's co-signature on one application."""

    application = DistrictForeignKey(Application, on_delete=models.CASCADE, related_name="signatures")
    # The application's district, which is the household's (it lies on the application's unit).
    district_code = DistrictCodeField(unit_field="application")
    household = DistrictForeignKey("units.Household", on_delete=models.PROTECT, related_name="signatures")
    signed_on = models.DateField(_("签名日期"))
    source = models.CharField(max_length=8, choices=SignatureSource.choices, default=SignatureSource.ONLINE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["district_code", "application", "household"],
                                    name="one_signature_per_household"),
        ]

    def __str__(self) -> str:
        return f"{self.household_id} → {self.application_id}"


class ReviewDecision(models.TextChoices):
    SUBMIT = "submit", _("提交申请")
    APPROVE = "approve", _("通过")
    RETURN = "return", _("退回修改")
    REJECT = "reject", _("不予通过")
    SEND_BACK = "send_back", _("发回下级重审")


class ReviewStep(DistrictKeyedModel):
    """One transition of an application: who, when, what they decided and wrote, from which status to
    which, and the live evaluation they saw when they decided."""

    application = DistrictForeignKey(Application, on_delete=models.CASCADE, related_name="steps")
    district_code = DistrictCodeField(unit_field="application")  # the application's
    actor = models.ForeignKey("accounts.User", null=True, on_delete=models.SET_NULL, related_name="+")
    # Kept as text too: the signed opinion (签注意见) must still name its author if the account goes.
    actor_name = models.CharField(_("经办人"), max_length=100)
    actor_role = models.CharField(max_length=32)
    decided_at = models.DateTimeField(_("时间"))
    decision = models.CharField(_("决定"), max_length=12, choices=ReviewDecision.choices)
    opinion = models.TextField(_("意见"), blank=True)
    from_status = models.CharField(max_length=20, choices=ApplicationStatus.choices)
    to_status = models.CharField(max_length=20, choices=ApplicationStatus.choices)
    evaluation = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["decided_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} {self.from_status} → {self.to_status}"


class AttachmentKind(models.TextChoices):
    PAPER_SHEET = "paper_sheet", _("纸质联名表扫描件")
    PHOTO = "photo", _("照片")
    DOCUMENT = "document", _("文件")


def _attachment_path(instance, filename: str) -> str:
    # Never the uploaded name: a random one under the application's folder, below MEDIA_ROOT, which
    # no URL serves; the file is only read back through the scoped attachment view.
    import secrets

    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"applications/{instance.application_id}/{secrets.token_hex(16)}.{ext}"


class Attachment(DistrictKeyedModel):
    """附件 of an application: the scan of a paper co-signature sheet, photos, documents."""

    application = DistrictForeignKey(Application, on_delete=models.CASCADE, related_name="attachments")
    district_code = DistrictCodeField(unit_field="application")  # the application's
    kind = models.CharField(_("类别"), max_length=12, choices=AttachmentKind.choices)
    file = models.FileField(upload_to=_attachment_path, max_length=200)
    original_name = models.CharField(_("文件名"), max_length=200)
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    note = models.CharField(_("说明"), max_length=200, blank=True)
    uploaded_by = models.ForeignKey("accounts.User", null=True, on_delete=models.SET_NULL, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["uploaded_at", "id"]

    def __str__(self) -> str:
        return self.original_name


class SignatureAttempt(DistrictKeyedModel):
    """A failed proof of household membership on the public signing page, kept for the application's
    life: it locks the household (until the building head lifts the lock: ``lifted_at``) and, within
    a window, the client address. At most ``actions.LIFETIME_TRIES`` per household and application."""

    application = DistrictForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    district_code = DistrictCodeField(unit_field="application")  # the application's
    household = DistrictForeignKey("units.Household", null=True, on_delete=models.CASCADE, related_name="+")
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        indexes = [
            models.Index(fields=["application", "household", "created_at"], name="sigattempt_household"),
            models.Index(fields=["ip", "created_at"], name="sigattempt_ip"),
        ]

    def __str__(self) -> str:
        return f"{self.application_id}/{self.household_id} {self.created_at:%Y-%m-%d %H:%M}"
