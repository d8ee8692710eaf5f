"""The residents table keeps only the indexes something reads (docs/scaling.md): at 30 million
residents each index on a hash is 2–3 GB kept up on every insert."""

from __future__ import annotations

import pytest
from django.db import connection

from wuyiqu.units.models import Resident

pytestmark = pytest.mark.django_db


def indexes_on(column: str) -> list[dict]:
    """The indexes and unique constraints of units_resident on ``column`` alone."""
    with connection.cursor() as cur:
        constraints = connection.introspection.get_constraints(cur, Resident._meta.db_table)
    return [c for c in constraints.values() if c["columns"] == [column] and (c["index"] or c["unique"])]


def test_the_id_hash_has_one_index_and_is_unique_within_its_district():
    found = indexes_on("id_hash")
    assert len(found) == 1, found  # not also Django's varchar_pattern_ops twin on PostgreSQL
    # Unique with the district (units 0009: Citus wants the distribution column in every unique key);
    # the lookups by hash alone enter the plain index.
    assert not found[0]["unique"]
    with connection.cursor() as cur:
        constraints = connection.introspection.get_constraints(cur, Resident._meta.db_table)
    assert any(c["unique"] and c["columns"] == ["district_code", "id_hash"] for c in constraints.values())


def test_the_phone_hash_is_not_indexed():
    assert indexes_on("phone_hash") == []


def test_the_household_stays_indexed():
    assert indexes_on("household_id")  # a household's members, and the foreign key's checks
