"""Writes to the registry."""

from __future__ import annotations

import csv
from importlib import resources

from django.db import transaction

from wuyiqu.audit import actions as audit
from wuyiqu.lib import crypto
from wuyiqu.lib.idcard import mask_id_number, mask_phone, parse_id_number

from .generator import UnitRow, World
from .models import Household, HouseholdVerification, Resident, Unit, path_for

DIVISIONS_CSV = "qijiang-divisions-2023.csv"


def read_divisions() -> list[dict[str, str]]:
    """The real 綦江区 division rows shipped with the package (code, name, kind, parent_code)."""
    with resources.files("wuyiqu.data").joinpath(DIVISIONS_CSV).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _bulk_insert_units(rows: list[UnitRow], *, batch_size: int) -> list[Unit]:
    """Insert units whose parents exist or come earlier in ``rows``; existing codes are skipped.
    One bulk insert per generation, since children need their parents' ids and paths."""
    units = {u.code: u for u in Unit.objects.only("id", "code", "path", "depth")}
    created: list[Unit] = []
    pending = [r for r in rows if r.code not in units]
    while pending:
        ready = [r for r in pending if not r.parent_code or r.parent_code in units]
        if not ready:
            raise ValueError(f"unit {pending[0].code} has an unknown parent {pending[0].parent_code}")
        batch = []
        for row in ready:
            parent = units.get(row.parent_code)
            batch.append(Unit(code=row.code, name=row.name, kind=row.kind, parent_id=parent.pk if parent else None,
                              path=path_for(parent.path if parent else "", row.code),
                              depth=parent.depth + 1 if parent else 0))
        Unit.objects.bulk_create(batch, batch_size=batch_size)
        units.update({u.code: u for u in batch})
        created.extend(batch)
        ready_codes = {r.code for r in ready}
        pending = [r for r in pending if r.code not in ready_codes]
    return created


@transaction.atomic
def do_load_divisions(*, actor=None) -> int:
    """Create the district, its streets/towns and villages/communities; existing codes are kept.
    Returns how many units were created."""
    rows = [UnitRow(r["code"], r["name"], r["kind"], r["parent_code"]) for r in read_divisions()]
    created = _bulk_insert_units(rows, batch_size=1000)
    audit.record(actor=actor, action="units.load_divisions", detail={"created": len(created)})
    return len(created)


@transaction.atomic
def do_load_generated_world(*, world: World, actor=None, batch_size: int = 2000) -> dict[str, int]:
    """Insert a generated world below existing units in bulk. Returns counts by kind."""
    new_units = _bulk_insert_units(world.units, batch_size=batch_size)
    units = {u.code: u for u in Unit.objects.only("id", "code")}
    households = Household.objects.bulk_create(
        [Household(code=h.code, unit_id=units[h.unit_code].pk, address=h.address) for h in world.households],
        batch_size=batch_size,
    )
    hh_ids = {h.code: h.pk for h in households}
    HouseholdVerification.objects.bulk_create(
        [HouseholdVerification(household_id=hh_ids[h.code], verified_on=h.verified_on, verifier="网格员")
         for h in world.households if h.verified_on],
        batch_size=batch_size,
    )
    c = crypto.cipher()
    ids = [r.id_number for r in world.residents]
    id_enc = c.encrypt_many(ids)
    phone_enc = c.encrypt_many([r.phone for r in world.residents])
    residents = []
    for r, ienc, penc in zip(world.residents, id_enc, phone_enc, strict=True):
        info = parse_id_number(r.id_number)
        residents.append(Resident(
            household_id=hh_ids[r.household_code], name=r.name,
            id_enc=ienc, id_hash=c.lookup_hash(r.id_number), id_masked=mask_id_number(r.id_number),
            birth_date=info.birth_date, sex=info.sex,
            phone_enc=penc if r.phone else None, phone_hash=c.lookup_hash(r.phone) if r.phone else "",
            phone_masked=mask_phone(r.phone), bedridden=r.bedridden,
        ))
    Resident.objects.bulk_create(residents, batch_size=batch_size)
    counts = {"units": len(new_units), "households": len(households), "residents": len(residents)}
    audit.record(actor=actor, action="units.load_generated_world", detail=counts)
    return counts
