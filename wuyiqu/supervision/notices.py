"""Who is told about a withdrawal or a warning: the responsible people of the unit — users whose
own unit is the unit itself or one above it, with a role that looks after units (building head,
group leader, property manager, community staff, street staff). An expired warning issued by a
person also goes to the command in scope, which decides whether to withdraw."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.urls import reverse

RESPONSIBLE_ROLES = ("building_head", "group_leader", "property_manager", "community_staff", "street_staff")
DIGEST_OVER = 5  # more notices than this for one person in one pass: one summary line instead


def _ancestor_paths(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    return ["/" + "".join(p + "/" for p in parts[:i]) for i in range(1, len(parts) + 1)]


class Notices:
    """Collects the notices of one supervision pass; ``send`` writes them (one users query). Texts
    are made only for units that have someone to tell (a bad day opens tens of thousands)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, Callable[[], str], bool]] = []  # (path, code, text, to command too)

    def add(self, unit, text: Callable[[], str], *, to_command: bool = False) -> None:
        self.items.append((unit.path, unit.code, text, to_command))

    def withdrawn(self, unit, title: str, on: dt.date, reason: str) -> None:
        self.add(unit, lambda: f"【摘牌】{unit.name}的{title}称号已于{on:%Y-%m-%d}摘牌：{reason}")

    def warned(self, unit, criterion, profile, deadline: dt.date) -> None:
        def text() -> str:
            spec = profile.get(criterion.id)
            return (f"【警示】{unit.name}未达“{spec.name if spec else criterion.id}”：{criterion.detail}；"
                    f"请于{deadline:%Y-%m-%d}前整改，逾期未整改将摘牌")

        self.add(unit, text)

    def rectified(self, warning) -> None:
        u = warning.unit
        def text() -> str:
            from wuyiqu.dashboard.selectors import criterion_names
            from wuyiqu.lib.dates import today

            name = criterion_names(today()).get(warning.criterion, warning.criterion)
            return f"【整改完成】{u.name}的警示（{name}）已整改，警示关闭"

        self.add(u, text)

    def manual_expired(self, warning) -> None:
        u = warning.unit
        self.add(u, lambda: f"【警示到期】{u.name}的人工警示已到整改期限{warning.deadline:%Y-%m-%d}，"
                            f"请核实整改情况并决定是否摘牌：{warning.detail}", to_command=True)

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
                notify(single, text=text(), link=reverse("supervision:history", args=[code]))
        for user, first in digest.values():
            code = self.items[first][1]
            notify([user], text=f"【监督】本次检查涉及您负责的单位 {per_user[user.pk]} 项摘牌、警示或整改变化，"
                                f"请逐一查看各单位的监督记录", link=reverse("supervision:history", args=[code]))
