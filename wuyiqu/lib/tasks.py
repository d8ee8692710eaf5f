"""Django's task framework, from where this Django has it: ``django.tasks`` (Django 6) or the
``django_tasks`` backport (Django 5.2 LTS on Python 3.11, installed by django-tasks-db[compat]).

Every background task of the project is declared with ``task`` from here; the backend in
``settings.TASKS`` decides where it runs (`wuyiqu worker` for the database queue in production, at
once in the enqueuing process in demo and tests). Arguments must be JSON: pass ids, not objects.
"""

from __future__ import annotations

try:
    from django.tasks import TaskResultStatus, task, task_backends
except ImportError:  # Django 5.2
    from django_tasks import TaskResultStatus, task, task_backends  # type: ignore[no-redef]

__all__ = ["TaskResultStatus", "task", "task_backends"]
