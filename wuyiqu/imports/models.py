from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportStatus(models.TextChoices):
    PENDING = "pending", _("排队中")
    RUNNING = "running", _("导入中")
    PREVIEWED = "previewed", _("待确认")
    SUCCEEDED = "succeeded", _("已完成")
    FAILED = "failed", _("未导入")


class ImportJob(models.Model):
    """A persistent import: its file, progress counters and a row report a person can download."""

    kind = models.CharField(_("类型"), max_length=32)
    filename = models.CharField(_("文件名"), max_length=255)
    stored_path = models.CharField(max_length=500, blank=True)
    skip_invalid = models.BooleanField(default=False)
    status = models.CharField(max_length=12, choices=ImportStatus.choices, default=ImportStatus.PENDING)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    scope = models.ForeignKey("units.Unit", null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True)
    # The process running the job, "host:pid:start": a job left running by a killed process is told
    # from a live one by it (services.fail_interrupted).
    runner = models.CharField(max_length=200, blank=True, default="")
    finished_at = models.DateTimeField(null=True)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0)
    duplicate = models.PositiveIntegerField(default=0)
    unmatched = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # [{"line": n, "field": f, "message": m}], capped
    message = models.TextField(blank=True)
    # A preview checks every row and counts what would be created/updated/unchanged, then rolls back;
    # the person confirms (maybe with another mapping) and the same job runs again for real.
    dry_run = models.BooleanField(default=False)
    # The mapping to import with, as the person chose it: {"columns": {header: field key or ""},
    # "sheets": [sheet names] or []}; empty: found by the dictionary (or a remembered one).
    mapping = models.JSONField(default=dict, blank=True)
    # What the import found in the file (headers.Layout.as_json()): sheets, header rows, the mapping
    # used, a few sample rows (ID numbers and phones masked), for the page that confirms it.
    layout = models.JSONField(default=dict, blank=True)
    # The refused rows as the person's own columns plus 错误原因, an XLSX, encrypted (crypto).
    error_workbook = models.BinaryField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.filename} ({self.status})"

    @property
    def progress_percent(self) -> int:
        """0–100 for a progress bar (the check pass counts the rows, so early on it is 0)."""
        return min(100, round(100 * self.rows_done / self.rows_total)) if self.rows_total else 0


class ColumnMapping(models.Model):
    """A mapping of a file's columns that a person confirmed for a unit, kept so that next month's
    file of the same shape (the same headers) maps the same way without asking again."""

    unit = models.ForeignKey("units.Unit", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32)
    shape = models.CharField(max_length=64)  # headers.Layout.shape
    columns = models.JSONField(default=dict)  # {header: field key or ""}
    sheets = models.JSONField(default=list, blank=True)  # sheet names chosen, [] for every sheet with a header
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["unit", "kind", "shape"], name="imports_mapping_unique_shape")]

    def __str__(self) -> str:
        return f"{self.kind} {self.shape[:8]} ({self.unit_id})"
