import pytest

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.audit.models import AuditEvent
from wuyiqu.units.selectors import visible_units


def test_admin_without_unit_sees_the_whole_registry(root):
    assert root.unit is None
    assert visible_units(root).filter(code="500110").exists()
    assert AuditEvent.objects.filter(action="accounts.create_user", target_id=str(root.pk)).exists()


def test_every_other_role_needs_a_unit(world):
    with pytest.raises(ValueError, match="必须属于一个单位"):
        do_create_user(actor=None, username="x", password="long-enough-1", role=Role.COMMUNITY_STAFF, unit=None)


def test_unknown_role_is_refused(world):
    with pytest.raises(ValueError, match="未知角色"):
        do_create_user(actor=None, username="x", password="long-enough-1", role="mayor", unit=None)
