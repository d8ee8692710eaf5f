"""Inspections (检查), incidents (次生事件/负面舆情) and awareness surveys of units."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from wuyiqu.units.models import DistrictCodeField, DistrictForeignKey, DistrictKeyedModel


class InspectionItem(models.TextChoices):
    ENTRANCE = "entrance", _("出入口值守")
    VEHICLES = "vehicles", _("车辆出入管理")
    VISITORS = "visitors", _("外来人员管理")
    MASKS = "masks", _("口罩佩戴")
    DISINFECTION = "disinfection", _("楼道电梯栏杆清洁消毒")
    GARBAGE = "garbage", _("垃圾分类处置")
    ENVIRONMENT = "environment", _("环境卫生")
    WEEKLY_CLEANING = "weekly_cleaning", _("每周清洁消毒")


class Inspection(models.Model):
    unit = models.ForeignKey("units.Unit", on_delete=models.PROTECT, related_name="inspections")
    # The unit's district: the distribution column on Citus (migration 0005, docs/scaling.md).
    district_code = DistrictCodeField()
    inspected_on = models.DateField(_("检查日期"))
    item = models.CharField(_("检查项"), max_length=16, choices=InspectionItem.choices)
    passed = models.BooleanField(_("合格"))
    inspector = models.CharField(_("检查人"), max_length=50, blank=True)
    note = models.TextField(blank=True)
    evidence = models.CharField(max_length=300, blank=True)  # stored file path below MEDIA_ROOT
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["district_code", "unit", "item", "inspected_on"],
                                    name="inspection_once_a_day"),
        ]
        indexes = [models.Index(fields=["unit", "item", "inspected_on"], name="inspection_latest")]

    def __str__(self) -> str:
        return f"{self.get_item_display()} {self.inspected_on} {'合格' if self.passed else '不合格'}"


class IncidentType(models.TextChoices):
    FIGHT = "fight", _("斗殴")
    SELF_HARM = "self_harm", _("自寻短见")
    ARSON = "arson", _("纵火")
    REVENGE = "revenge", _("报复社会")
    NEGATIVE_OPINION = "negative_opinion", _("负面舆情")


class Incident(DistrictKeyedModel):
    unit = models.ForeignKey("units.Unit", on_delete=models.PROTECT, related_name="incidents")
    # The unit's district: the distribution column on Citus (migration 0006, docs/scaling.md).
    district_code = DistrictCodeField()
    occurred_on = models.DateField(_("发生日期"))
    incident_type = models.CharField(_("类型"), max_length=16, choices=IncidentType.choices)
    description = models.TextField(_("描述"), blank=True)
    evidence = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # A negative opinion (负面舆情) handled (处置完毕) by the community, with the day and a note, and
    # accepted by the street: from the day of the acceptance it no longer fails no_negative_opinion.
    handled_on = models.DateField(_("处置完毕日期"), null=True, blank=True)
    handled_note = models.TextField(_("处置情况"), blank=True, db_default="")  # raw INSERTs (bench) leave it out
    handled_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    accepted_on = models.DateField(_("街道认可日期"), null=True, blank=True)
    accepted_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["district_code", "unit", "occurred_on", "incident_type", "description"],
                                    name="incident_once"),
        ]

    def __str__(self) -> str:
        return f"{self.get_incident_type_display()} {self.occurred_on}"


class OpinionReturn(DistrictKeyedModel):
    """A handling of a negative opinion the street sent back (退回) with a reason: the handling (and the
    acceptance, if there was one) as it stood until ``returned_on``. The incident itself is then
    unhandled again, so it fails no_negative_opinion again from that day; this row keeps the days
    before it true (an acceptance counted from ``accepted_on`` until the day before ``returned_on``)."""

    incident = DistrictForeignKey(Incident, on_delete=models.CASCADE, related_name="returns")
    district_code = DistrictCodeField(unit_field="incident")  # the incident's
    handled_on = models.DateField(_("处置完毕日期"))
    handled_note = models.TextField(_("处置情况"), blank=True)
    handled_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    accepted_on = models.DateField(_("街道认可日期"), null=True, blank=True)
    accepted_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    returned_on = models.DateField(_("退回日期"))
    returned_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    reason = models.TextField(_("退回理由"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-returned_on", "-id"]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.returned_on}"


class Survey(models.Model):
    """知晓度、认可度、参与度 of a village/community, rates 0–1."""

    unit = models.ForeignKey("units.Unit", on_delete=models.PROTECT, related_name="surveys")
    district_code = DistrictCodeField()  # as Inspection's
    surveyed_on = models.DateField(_("调查日期"))
    awareness = models.DecimalField(_("知晓度"), max_digits=4, decimal_places=3)
    approval = models.DecimalField(_("认可度"), max_digits=4, decimal_places=3)
    participation = models.DecimalField(_("参与度"), max_digits=4, decimal_places=3)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["district_code", "unit", "surveyed_on"],
                                               name="survey_once_a_day")]

    def __str__(self) -> str:
        return f"{self.unit_id} {self.surveyed_on}"
