"""Policy profiles (the standards as versioned data), their activation dates, and stored evaluations."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from wuyiqu.units.models import DistrictCodeField


class PolicyProfile(models.Model):
    """One version of a policy profile file. Content is never edited: a change is a new version."""

    name = models.CharField(_("名称"), max_length=60)
    version = models.CharField(_("版本"), max_length=40)
    content = models.JSONField(_("内容"))
    sha256 = models.CharField(max_length=64)
    # The latest activation date (kept here for listing; PolicyActivation keeps the history).
    active_from = models.DateField(_("生效日期"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="profile_version_once")]
        ordering = ["name", "-created_at"]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class PolicyActivation(models.Model):
    """``profile`` is in force from ``active_from`` until a later activation takes over.
    The profile in force on D is the one of the activation with the greatest active_from ≤ D
    (on a tie, the activation recorded last)."""

    profile = models.ForeignKey(PolicyProfile, on_delete=models.PROTECT, related_name="activations")
    active_from = models.DateField(_("生效日期"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["active_from", "created_at"], name="activation_by_date")]

    def __str__(self) -> str:
        return f"{self.profile} ← {self.active_from}"


class Evaluation(models.Model):
    """The stored evaluation of one unit on one day, kept compact for history."""

    unit = models.ForeignKey("units.Unit", on_delete=models.CASCADE, related_name="evaluations")
    district_code = DistrictCodeField()  # the unit's district: Citus's distribution column
    on = models.DateField(_("评估日期"))
    eligible = models.BooleanField(_("达标"))
    named = models.BooleanField(_("已命名"))
    failed = models.JSONField(default=list)  # ids of the failed criteria
    details = models.JSONField(default=dict)  # {criterion id: Chinese reason} of the failed criteria
    # {criterion id: the reason's machine form} (``wuyiqu.standards.criteria.render``); null or missing:
    # shown as stored. Nullable: rows written in the earlier shape (no such column) stay valid.
    detail_forms = models.JSONField(null=True, blank=True)
    profile = models.ForeignKey(PolicyProfile, null=True, on_delete=models.SET_NULL, related_name="+")
    profile_version = models.CharField(max_length=110)  # "name version", kept if the profile row goes
    # Villages/communities only: the facts rolled up over the subtree (households, unverified
    # households, nucleic-acid counts, ledger, cases, measures), so that ``evaluate_chain`` can judge the street
    # above from the day's stored rows of the committees a new fact did not touch.
    rollup = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["district_code", "unit", "on"], name="evaluation_once_a_day")]
        indexes = [models.Index(fields=["on"], name="evaluation_on"),
                   models.Index(fields=["district_code", "on"], name="evaluation_district_on")]

    def __str__(self) -> str:
        return f"{self.unit_id} {self.on} {'达标' if self.eligible else '未达标'}"
