"""Rooms in natural order (101, 102, …, 1001), on the unit's household list and on the sign page."""

from __future__ import annotations

import pytest
from test_standards_world import make_unit

from wuyiqu.applications.selectors import households_to_sign
from wuyiqu.units.models import Household
from wuyiqu.units.selectors import households_below

pytestmark = pytest.mark.django_db

ROOMS = ["1001", "102", "101", "1002", "201", "1101", "99"]
NATURAL = ["99", "101", "102", "201", "1001", "1002", "1101"]


def test_rooms_come_in_natural_order_not_as_text():
    t = make_unit("T", "district")
    c = make_unit("T1C", "community", make_unit("T1", "street", t))
    building = make_unit("T1C-B1", "building", c, "1栋")
    for room in ROOMS:
        Household.objects.create(code=f"T1C-B1-{room}", unit=building, address=f"1栋{room}室")
    for listed in (households_below(building), households_to_sign(building), households_to_sign(c)):
        assert [h.code.rsplit("-", 1)[1] for h in listed] == NATURAL
