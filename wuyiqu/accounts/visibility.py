"""Who may see which health facts about whom (SPEC §1; docs/reliability.md, "Who may see what").

Volunteer roles (building head, group leader, property manager) keep their building's household list
and collect signatures: they see how many residents are under control and until when, never who. The
community staff and everyone above see who. This module is the one place that decides it; pages,
fragments, exports and API answers ask it rather than the role.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from wuyiqu.accounts.models import Role

# The roles that see count and date only. Everyone else signed in (community staff and above) sees who.
VOLUNTEER_ROLES = frozenset({Role.BUILDING_HEAD, Role.GROUP_LEADER, Role.PROPERTY_MANAGER})

# Who may reveal a whole ID number and phone (the grid worker calling a resident, checking a paper
# form; the street and the district following up a case): community staff and above, never a
# volunteer role. And how often: a person at work reveals a few an hour; a script hundreds.
REVEAL_ROLES = frozenset({Role.COMMUNITY_STAFF, Role.STREET_STAFF, Role.HEALTH_COMMISSION, Role.COMMAND, Role.ADMIN})
REVEALS_PER_WINDOW = 30
REVEAL_WINDOW = dt.timedelta(hours=1)

# Machine-readable items of a reason that point at a person (links to their timeline).
_PERSON_ITEMS = frozenset({"resident"})


def sees_people(user) -> bool:
    """True when ``user`` may read who a health fact is about (names, masked numbers, timelines)."""
    return bool(user and getattr(user, "is_authenticated", False)) and user.role not in VOLUNTEER_ROLES


def may_reveal(user) -> bool:
    """True when ``user``'s role may reveal whole ID numbers and phones (in scope, within the limit)."""
    return bool(user and getattr(user, "is_authenticated", False)) and (
        user.role in REVEAL_ROLES or bool(getattr(user, "is_superuser", False)))


def reason_for(result, user) -> str:
    """The reason of a criterion result (``CriterionResult``) as ``user`` may read it."""
    named = getattr(result, "named", "")
    return named if named and sees_people(user) else result.detail


def items_for(items: list[dict[str, Any]], user) -> list[dict[str, Any]]:
    """The machine-readable items ``user`` may see: without the people for volunteer roles."""
    if sees_people(user):
        return items
    return [i for i in items if i.get("type") not in _PERSON_ITEMS]
