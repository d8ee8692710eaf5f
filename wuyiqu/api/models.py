"""API tokens (one per client system, e.g. a testing laboratory) and the batches they sent.

A token's secret is shown once at creation and stored only as its SHA-256: the database never holds
a usable credential. Each token is scoped to one unit (it reads and writes only about that unit and
the units below it), to the fact kinds it may write (``kinds``), to what else it may read or do
(``scopes``), and expires; revoking is immediate. A token with ``applications:act`` acts at the review
step of ``role`` on behalf of one named account (``acts_as``): the decision is that person's, signed
with their name, exactly as in the web form.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# The fact kinds the API accepts: ``POST /api/v1/facts/<kind>`` runs the import kind of that name.
FACT_KINDS = ("nat-results", "cases", "close-contacts", "home-quarantines", "returnees", "risk-zones")

# What a token may read or do besides writing facts.
READ_SCOPES = ("units:read", "evaluations:read", "applications:read")
ACT_SCOPE = "applications:act"
SCOPES = (*READ_SCOPES, ACT_SCOPE)


class ApiToken(models.Model):
    name = models.CharField(_("名称"), max_length=100, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)  # sha256 hex of the secret
    prefix = models.CharField(_("前缀"), max_length=12)  # the first characters, to recognise a token in logs
    unit = models.ForeignKey("units.Unit", verbose_name=_("管辖单位"), on_delete=models.PROTECT, related_name="+")
    kinds = models.JSONField(_("可写数据类型"), default=list)
    scopes = models.JSONField(_("权限"), default=list)  # READ_SCOPES and ACT_SCOPE
    # applications:act only: the review step's role, and the account whose decision it is.
    role = models.CharField(_("办理角色"), max_length=32, blank=True)
    acts_as = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("经办人"), null=True, blank=True,
                                on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(_("有效期至"))
    revoked_at = models.DateTimeField(_("吊销时间"), null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and now < self.expires_at

    def allows(self, scope: str) -> bool:
        return scope in (self.scopes or [])


class ApiBatch(models.Model):
    """One accepted batch: a second POST with the same ``batch_key`` gets this response again and
    writes nothing."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="batches")
    kind = models.CharField(max_length=32)
    batch_key = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)
    response = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token", "kind", "batch_key"], name="api_batch_once"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.batch_key}"
