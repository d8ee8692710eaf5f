"""Supervision after naming (跟踪监督，动态调整): warnings (警示提醒) and the history of each title's
withdrawals (摘牌销号) and reinstatements. ``certification.Title`` holds the current state
(``withdrawn_on``/``withdrawn_reason``, read by the public page); ``TitleEvent`` keeps every change."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from wuyiqu.units.models import DistrictCodeField, DistrictForeignKey, DistrictKeyedModel

MANUAL = "manual"  # the criterion of a warning issued by a person rather than by the evaluation


class WarningStatus(models.TextChoices):
    OPEN = "open", _("整改中")
    RECTIFIED = "rectified", _("已整改")
    EXPIRED = "expired", _("逾期未整改")
    CLOSED = "closed", _("因摘牌关闭")


class Warning(DistrictKeyedModel):
    """A warning on a named unit: one failed ``warn`` criterion (or ``manual``: issued by a person),
    to be rectified by ``deadline``. Rows are never deleted: closed ones are the history."""

    unit = models.ForeignKey("units.Unit", on_delete=models.PROTECT, related_name="warnings")
    # The unit's district: the distribution column on Citus (migration 0003, docs/scaling.md).
    district_code = DistrictCodeField()
    title = DistrictForeignKey("certification.Title", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="warnings")
    criterion = models.CharField(_("标准编号"), max_length=40)
    detail = models.TextField(_("情况"))
    # The machine form of the text the system wrote (``wuyiqu.standards.criteria.render``: the page
    # shows it in the reader's language); null: a person's words or a row older than the forms.
    detail_form = models.JSONField(null=True, blank=True)
    opened_on = models.DateField(_("警示日期"))
    deadline = models.DateField(_("整改期限"))
    status = models.CharField(_("状态"), max_length=12, choices=WarningStatus.choices, default=WarningStatus.OPEN)
    closed_on = models.DateField(_("关闭日期"), null=True, blank=True)
    closed_note = models.TextField(_("关闭说明"), blank=True)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")  # null: opened by the system
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # One open warning per unit and criterion (manual warnings may be several).
            models.UniqueConstraint(fields=["district_code", "unit", "criterion"],
                                    condition=models.Q(status="open") & ~models.Q(criterion=MANUAL),
                                    name="one_open_warning_per_criterion"),
        ]
        indexes = [models.Index(fields=["status", "unit"], name="warning_status_unit")]

    def __str__(self) -> str:
        return f"{self.unit_id} {self.criterion} {self.status}"

    @property
    def shown_detail(self) -> str:
        from wuyiqu.standards.criteria import shown

        return shown(self.detail, self.detail_form)


class TitleEventKind(models.TextChoices):
    WITHDRAWN = "withdrawn", _("摘牌")
    REINSTATED = "reinstated", _("恢复称号")


class TitleEvent(DistrictKeyedModel):
    """One withdrawal or reinstatement of a title: when, why (criterion ids + the Chinese reason),
    by what (``source``: daily run, an import, the API, a form, a person) and by whom."""

    title = DistrictForeignKey("certification.Title", on_delete=models.PROTECT, related_name="events")
    unit = models.ForeignKey("units.Unit", on_delete=models.PROTECT, related_name="title_events")
    district_code = DistrictCodeField()  # the unit's, as the title's
    kind = models.CharField(_("类型"), max_length=12, choices=TitleEventKind.choices)
    on = models.DateField(_("日期"))
    at = models.DateTimeField(default=timezone.now)
    reason = models.TextField(_("原因"))
    # The machine form of the text the system wrote (``wuyiqu.standards.criteria.render``: the page
    # shows it in the reader's language); null: a person's words or a row older than the forms.
    reason_form = models.JSONField(null=True, blank=True)
    criteria = models.JSONField(default=list)
    source = models.CharField(_("来源"), max_length=60)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    warning = DistrictForeignKey(Warning, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["unit", "on"], name="title_event_unit_on")]

    def __str__(self) -> str:
        return f"{self.unit_id} {self.kind} {self.on}"

    @property
    def shown_reason(self) -> str:
        from wuyiqu.standards.criteria import shown

        return shown(self.reason, self.reason_form)
