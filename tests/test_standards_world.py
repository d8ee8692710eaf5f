"""A tiny street built by hand for the standards tests (no tests here; the other test_standards_*
and test_criteria_* files import it). On D everything passes unless a test breaks one thing.

    T (district) └ T1 街道
        ├ T1C 社区 ─┬ T1C-C1 小区 ─┬ T1C-C1-B1 楼栋 (households 101, 102)
        │          │              └ T1C-C1-B2 楼栋 (households 101; entrance U1 with 201)
        │          └ T1C-B9 楼栋 directly under the community (household 101)
        └ T1V 村 ── T1V-G1 社 (households H1, H2 on the group itself)
"""

from __future__ import annotations

import datetime as dt
import itertools

from wuyiqu.applications.models import Application, ApplicationStatus, CoSignature
from wuyiqu.certification.models import Title
from wuyiqu.health.models import NatResult
from wuyiqu.inspections.models import Inspection, Survey
from wuyiqu.lib import crypto
from wuyiqu.lib.idcard import check_digit, kept_third_birthday
from wuyiqu.units.models import (
    TITLE_BY_KIND,
    Household,
    HouseholdVerification,
    Resident,
    Unit,
    district_of,
    path_for,
)

D = dt.date(2022, 11, 28)
_seq = itertools.count(1)


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def make_unit(code: str, kind: str, parent: Unit | None = None, name: str | None = None) -> Unit:
    return Unit.objects.create(code=code, name=name or f"单位{code}", kind=kind, parent=parent,
                               path=path_for(parent.path if parent else "", code),
                               depth=(parent.depth + 1) if parent else 0)


def id_number(born: dt.date) -> str:
    first17 = f"500222{born:%Y%m%d}{next(_seq) % 1000:03d}"
    return first17 + check_digit(first17)


def make_resident(household: Household, *, born: dt.date = dt.date(1980, 5, 1), bedridden: bool = False,
                  name: str = "张三") -> Resident:
    r = Resident(household=household, name=name, sex="M", bedridden=bedridden)
    r.set_id_number(id_number(born))
    # Registered as of D (the clock is not frozen): a child's third birthday is kept relative to D.
    r.turns_three_on = kept_third_birthday(born, D)
    r.set_phone("")
    r.save()
    return r


def nat(resident: Resident, on: dt.date) -> None:
    NatResult.objects.create(
        id_hash=resident.id_hash, resident_id=resident.pk, unit_id=resident.household.unit_id,
        sampled_at=dt.datetime(on.year, on.month, on.day, 9, 0, tzinfo=dt.UTC), sampled_on=on, result="negative")


BUILDING_ITEMS = ["masks", "entrance", "vehicles", "visitors", "disinfection", "garbage", "environment"]
COMMITTEE_ITEMS = ["masks", "environment", "garbage", "weekly_cleaning"]


def inspect(unit: Unit, items, on: dt.date = D, passed: bool = True) -> None:
    for item in items:
        # Not update_or_create: its row lock (FOR UPDATE) needs the district to be routed on Citus, and
        # its save sets every field with a pre_save (the district too), which Citus refuses for a
        # distribution column; an existing row is saved with its changed field only.
        row = Inspection.objects.filter(district_code=district_of(unit.path), unit=unit, item=item,
                                        inspected_on=on).first()
        if row is None:
            Inspection.objects.create(unit=unit, item=item, inspected_on=on, passed=passed)
        elif row.passed != passed:
            row.passed = passed
            row.save(update_fields=["passed"])


def build_street(on: dt.date = D, *, good: bool = True) -> dict[str, Unit]:
    """The tiny street; with ``good`` every criterion of every unit passes on ``on`` (buildings named,
    so that the compound's children_named holds)."""
    u: dict[str, Unit] = {}
    u["T"] = make_unit("T", "district", name="测试区")
    u["T1"] = make_unit("T1", "street", u["T"], "测试街道")
    u["T1C"] = make_unit("T1C", "community", u["T1"], "测试社区")
    u["C1"] = make_unit("T1C-C1", "compound", u["T1C"], "龙湖花园")
    u["B1"] = make_unit("T1C-C1-B1", "building", u["C1"], "龙湖花园1栋")
    u["B2"] = make_unit("T1C-C1-B2", "building", u["C1"], "龙湖花园2栋")
    u["U1"] = make_unit("T1C-C1-B2-U1", "entrance", u["B2"], "龙湖花园2栋1单元")
    u["B9"] = make_unit("T1C-B9", "building", u["T1C"], "测试社区9号楼")
    u["T1V"] = make_unit("T1V", "village", u["T1"], "测试村")
    u["G1"] = make_unit("T1V-G1", "group", u["T1V"], "测试村一社")
    homes = {
        "B1": ["101", "102"], "B2": ["101"], "U1": ["201"], "B9": ["101"], "G1": ["H1", "H2"],
    }
    for key, rooms in homes.items():
        for room in rooms:
            hh = Household.objects.create(code=f"{u[key].code}-{room}", unit=u[key], address=f"{u[key].name}{room}")
            if not good:
                continue
            HouseholdVerification.objects.create(household=hh, verified_on=on)
            r = make_resident(hh)
            nat(r, on)
    if good:
        make_all_good(u, on)
    return u


def make_all_good(u: dict[str, Unit], on: dt.date) -> None:
    for key in ("B1", "B2", "B9", "C1"):
        inspect(u[key], BUILDING_ITEMS, on)
    for key in ("G1", "T1C", "T1V"):
        inspect(u[key], COMMITTEE_ITEMS, on)
    for key in ("T1C", "T1V"):
        Survey.objects.create(unit=u[key], surveyed_on=on, awareness="0.95", approval="0.95", participation="0.95")
    for key in ("B1", "B2", "B9", "C1", "G1", "T1C", "T1V", "T1"):
        unit = u[key]
        app = Application.objects.create(unit=unit, title=TITLE_BY_KIND[unit.kind], status=ApplicationStatus.DRAFT,
                                         unit_signed_on=on if key in ("T1C", "T1V", "T1") else None)
        if unit.kind in ("building", "compound", "group"):
            for hh in Household.objects.filter(unit__path__startswith=unit.path):
                CoSignature.objects.create(application=app, household=hh, signed_on=on)
    for key in ("B1", "B2", "B9"):
        Title.objects.create(unit=u[key], title=TITLE_BY_KIND[u[key].kind], named_on=on - days(30))


def cipher_hash(number: str) -> str:
    return crypto.cipher().lookup_hash(number)
