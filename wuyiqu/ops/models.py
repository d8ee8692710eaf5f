from django.db import models


class ScheduledRun(models.Model):
    """One row per scheduled task and day, written in the transaction that enqueues the task: a second
    worker (or a restarted one) finds the row and enqueues nothing, so a day's run is enqueued once."""

    name = models.CharField(max_length=64)
    on = models.DateField()
    enqueued_at = models.DateTimeField(auto_now_add=True)
    task_id = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "on"], name="ops_scheduledrun_once_a_day")]

    def __str__(self) -> str:
        return f"{self.name} {self.on:%Y-%m-%d}"
