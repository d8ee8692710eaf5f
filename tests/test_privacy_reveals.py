"""Who may reveal whole ID numbers and phones, and how often (issue 14, 6; docs/reliability.md).

Community staff and above may, in their scope; building heads, group leaders and property managers may
not (no button, 403, no audit row). Thirty reveals an hour per user: the next is refused and audited,
and the first refusal of the hour tells the street over the user; an hour later they may reveal again.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from conftest import WENLONG_COMMUNITY

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.accounts.visibility import REVEAL_ROLES, REVEALS_PER_WINDOW, may_reveal
from wuyiqu.audit.models import AuditEvent
from wuyiqu.notifications.models import Notification
from wuyiqu.units.models import Resident, Unit

T0 = dt.datetime(2022, 11, 28, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def mine(user) -> list[Resident]:
    return list(Resident.objects.filter(household__unit__path__startswith=user.unit.path).order_by("id"))


def test_the_roles_that_may_reveal_are_community_staff_and_above(world):
    assert REVEAL_ROLES == {Role.COMMUNITY_STAFF, Role.STREET_STAFF, Role.HEALTH_COMMISSION, Role.COMMAND, Role.ADMIN}
    unit = Unit.objects.get(code=WENLONG_COMMUNITY)
    for role in Role.values:
        user = do_create_user(actor=None, username=f"u-{role}", password="correct-horse-battery", role=role,
                              unit=unit, display_name=role)
        assert may_reveal(user) is (role in REVEAL_ROLES), role


@pytest.mark.parametrize("role", [Role.BUILDING_HEAD, Role.GROUP_LEADER, Role.PROPERTY_MANAGER])
def test_volunteer_roles_have_no_reveal_button_and_are_refused(client, world, dave, role):
    dave.role = role
    dave.save(update_fields=["role"])
    resident = mine(dave)[0]
    client.force_login(dave)
    page = client.get(f"/households/{resident.household.code}/").content.decode()
    assert resident.id_masked in page and "/reveal/" not in page
    assert "/reveal/" not in client.get(f"/units/{dave.unit.code}/").content.decode()
    resp = client.post(f"/residents/{resident.pk}/reveal/")
    assert resp.status_code == 403 and resident.reveal_id_number().encode() not in resp.content
    assert not AuditEvent.objects.filter(action__startswith="resident.reveal").exists()


def test_thirty_an_hour_then_locked_and_the_street_is_told(client, world, alice, carol, bob, clock):
    residents = mine(alice)
    client.force_login(alice)
    page = client.get(f"/households/{residents[0].household.code}/").content.decode()
    assert f"/residents/{residents[0].pk}/reveal/" in page
    for r in residents[:REVEALS_PER_WINDOW]:
        clock.shift(dt.timedelta(seconds=50))
        resp = client.post(f"/residents/{r.pk}/reveal/")
        assert resp.status_code == 200 and r.reveal_id_number() in resp.content.decode()
    assert AuditEvent.objects.filter(actor=alice, action="resident.reveal").count() == REVEALS_PER_WINDOW
    assert not Notification.objects.filter(user=carol).exists()

    over = residents[REVEALS_PER_WINDOW]
    resp = client.post(f"/residents/{over.pk}/reveal/")
    assert resp.status_code == 403 and over.reveal_id_number() not in resp.content.decode()
    refused = AuditEvent.objects.get(actor=alice, action="resident.reveal_refused")
    assert refused.target_id == str(over.pk) and refused.detail["limit"] == REVEALS_PER_WINDOW
    alert = Notification.objects.get(user=carol)
    assert "alice" in alert.text and "30" in alert.text and alert.link == "/audit/?user=alice"
    assert not Notification.objects.filter(user=bob).exists()  # the street's staff only, not a sibling community
    # Refused again: audited, but the street is told once.
    assert client.post(f"/residents/{residents[REVEALS_PER_WINDOW + 1].pk}/reveal/").status_code == 403
    assert AuditEvent.objects.filter(actor=alice, action="resident.reveal_refused").count() == 2
    assert Notification.objects.filter(user=carol).count() == 1
    # Other people are not limited by alice's reveals.
    client.force_login(carol)
    assert client.post(f"/residents/{over.pk}/reveal/").status_code == 200

    # An hour after the first of her reveals, one more fits in the window again.
    clock.shift(dt.timedelta(minutes=60, seconds=1) - dt.timedelta(seconds=50 * (REVEALS_PER_WINDOW - 1)))
    client.force_login(alice)
    assert client.post(f"/residents/{over.pk}/reveal/").status_code == 200
    assert client.post(f"/residents/{residents[REVEALS_PER_WINDOW + 2].pk}/reveal/").status_code == 403


def test_above_a_street_the_administrators_are_told(client, world, erin, root, clock):
    residents = list(Resident.objects.order_by("id")[:REVEALS_PER_WINDOW + 1])
    client.force_login(erin)
    for r in residents[:REVEALS_PER_WINDOW]:
        assert client.post(f"/residents/{r.pk}/reveal/").status_code == 200
    assert client.post(f"/residents/{residents[-1].pk}/reveal/").status_code == 403
    assert Notification.objects.get(user=root).link == "/audit/?user=erin"
