"""Who is told about a withdrawal or a warning: the responsible people of the unit — users whose
own unit is the unit itself or one above it, with a role that looks after units (building head,
group leader, property manager, community staff, street staff). A withdrawal also goes to the
command in scope (it named the title), and so does an expired warning issued by a person (the
command decides whether to withdraw)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.urls import reverse
from django.utils import translation

RESPONSIBLE_ROLES = ("building_head", "group_leader", "property_manager", "community_staff", "street_staff")
DIGEST_OVER = 5  # more notices than this for one person in one pass: one summary line instead


def _ancestor_paths(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    return ["/" + "".join(p + "/" for p in parts[:i]) for i in range(1, len(parts) + 1)]


class Notices:
    """Collects the notices of one supervision pass; ``send`` writes them (one users query). Texts
    are made only for units that have someone to tell (a bad day opens tens of thousands)."""

    def __init__(self) -> None:
        # (path, code, (template id, params) made only when someone is told, to command too)
        self.items: list[tuple[str, str, Callable[[], tuple[str, dict]], bool]] = []

    def add(self, unit, text: Callable[[], tuple[str, dict]], *, to_command: bool = False) -> None:
        self.items.append((unit.path, unit.code, text, to_command))

    def withdrawn(self, unit, title: str, on: dt.date, reason: str, form: str | None = None) -> None:
        # The command is told too: it named the title (SPEC: 指挥部命名、摘牌). ``form``: the reason's
        # machine form, rendered in the reader's language (``texts.TRANSLATED``).
        self.add(unit, lambda: ("supervision.withdrawn", {"unit": unit.name, "title": title, "on": f"{on:%Y-%m-%d}",
                                                          "reason": form or reason}), to_command=True)

    def warned(self, unit, criterion, profile, deadline: dt.date) -> None:
        def text() -> tuple[str, dict]:
            spec = profile.get(criterion.id)
            return ("supervision.warned", {"unit": unit.name, "criterion": spec.name if spec else criterion.id,
                                           "detail": criterion.machine or criterion.detail,
                                           "deadline": f"{deadline:%Y-%m-%d}"})

        self.add(unit, text)

    def manual_warning(self, unit, detail: str, deadline: dt.date) -> None:
        self.add(unit, lambda: ("supervision.manual_warning", {"unit": unit.name, "detail": detail,
                                                               "deadline": f"{deadline:%Y-%m-%d}"}))

    def rectified(self, warning) -> None:
        u = warning.unit
        def text() -> tuple[str, dict]:
            from wuyiqu.dashboard.selectors import criterion_names
            from wuyiqu.lib.dates import today

            with translation.override(settings.LANGUAGE_CODE):
                name = criterion_names(today()).get(warning.criterion, warning.criterion)
            return ("supervision.rectified", {"unit": u.name, "criterion": name})

        self.add(u, text)

    def manual_expired(self, warning) -> None:
        u = warning.unit
        self.add(u, lambda: ("supervision.manual_expired", {"unit": u.name, "deadline": f"{warning.deadline:%Y-%m-%d}",
                                                            "detail": warning.detail}), to_command=True)

    def send(self) -> None:
        """One inbox line (and e-mail) per notice and person; a person with more than ``DIGEST_OVER``
        notices in one pass (a bad day) gets one summary line instead, linked to the first unit."""
        if not self.items:
            return
        from wuyiqu.accounts.models import User
        from wuyiqu.notifications.actions import notify

        by_path: dict[str, list] = {}
        commands: dict[str, list] = {}
        for user in User.objects.filter(is_active=True, unit__isnull=False,
                                        role__in=(*RESPONSIBLE_ROLES, "command")).select_related("unit"):
            (commands if user.role == "command" else by_path).setdefault(user.unit.path, []).append(user)
        if not by_path and not commands:
            return
        recipients: list[tuple[int, list]] = []  # (item index, users)
        per_user: dict[int, int] = {}
        for i, (path, _code, _text, to_command) in enumerate(self.items):
            above = _ancestor_paths(path)
            users = [u for p in above for u in by_path.get(p, ())]
            if to_command:
                users += [u for p in above for u in commands.get(p, ())]
            if users:
                recipients.append((i, users))
                for u in users:
                    per_user[u.pk] = per_user.get(u.pk, 0) + 1
        digest: dict[int, tuple] = {}  # user id -> (user, first item index)
        for i, users in recipients:
            single = [u for u in users if per_user[u.pk] <= DIGEST_OVER]
            for u in users:
                if per_user[u.pk] > DIGEST_OVER:
                    digest.setdefault(u.pk, (u, i))
            if single:
                _path, code, text, _c = self.items[i]
                template, params = text()
                notify(single, template=template, params=params, link=reverse("supervision:history", args=[code]))
        for user, first in digest.values():
            code = self.items[first][1]
            notify([user], template="supervision.digest", params={"n": per_user[user.pk]},
                   link=reverse("supervision:history", args=[code]))
