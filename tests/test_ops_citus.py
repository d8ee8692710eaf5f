"""The Citus deployment mode where there is no Citus (SQLite, plain PostgreSQL): `wuyiqu citus`
refuses with a clear message, and the district code every distributed table carries is filled from
the row's unit. The cluster itself: tests/test_citus.py (WUYIQU_CITUS=1)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from test_standards_world import D, build_street

from wuyiqu.ops.citus import DISTRIBUTED, REFERENCE, citus_version, tables
from wuyiqu.standards.actions import do_store_evaluations
from wuyiqu.standards.models import Evaluation
from wuyiqu.units.models import district_of

pytestmark = pytest.mark.django_db


def test_distribute_and_status_refuse_without_the_citus_extension():
    assert citus_version() is None and tables() == {}
    with pytest.raises(CommandError, match="citus"):
        call_command("citus", "distribute")
    with pytest.raises(CommandError, match="citus"):
        call_command("citus", "status")


def test_the_lists_name_existing_tables_once():
    from django.apps import apps

    names = {m._meta.db_table for m in apps.get_models()}
    assert set(DISTRIBUTED) <= names and set(REFERENCE) <= names
    assert not set(DISTRIBUTED) & set(REFERENCE)


def test_district_code_is_the_first_segment_of_the_path_and_filled_on_every_write():
    assert district_of("/500110/500110002/500110002015/") == "500110"
    assert district_of("/T/") == "T"
    u = build_street(D)
    assert do_store_evaluations(on=D) == 8
    assert set(Evaluation.objects.values_list("district_code", flat=True)) == {"T"}
    e = Evaluation.objects.create(unit=u["B1"], on=D.replace(day=1), eligible=True, named=True)
    assert e.district_code == "T"
    Evaluation.objects.bulk_create([Evaluation(unit_id=u["B2"].pk, on=D.replace(day=1), eligible=True, named=False)])
    assert Evaluation.objects.get(unit=u["B2"], on=D.replace(day=1)).district_code == "T"
    # A stored day of the district is replaced within the district.
    assert do_store_evaluations(on=D, root=u["T"]) == 8
    assert Evaluation.objects.filter(on=D).count() == 8
