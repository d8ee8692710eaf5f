"""A small street for the application tests (no tests here; the other test_applications_*,
test_certification_*, test_notifications_* and browser files import it). On D every criterion of
every unit passes except the co-signatures, which the tests collect, and no unit is named.

    T 测试区 ├ T1 测试街道 ├ T1C 测试社区 ├ T1C-C1 龙湖花园 (小区) ├ B1 1栋: 101, 102
             │            │             │                      └ B2 2栋: 101, 102
             │            │             └ T1C-B9 9号楼 (directly under the community): 101
             │            └ T1V 测试村 ── T1V-G1 一社: H1, H2
             └ T2 另一街道 └ T2C 另一社区 └ T2C-B1 楼栋: 101

Each household has one resident; the last 6 characters of their ID-card number (PINS) prove
membership when they co-sign; their phone ends in a 4-digit pin. People: hank (building head of B1), bella (building head of B9),
pam (property manager of C1), gina (group leader of G1), cora (community staff of T1C), vera
(community staff of T1V), sam (street staff of T1), tom (street staff of T2), otto (community staff of
T2C), hugo (health commission, district), cmd (command, district). Everyone has an e-mail address.
"""

from __future__ import annotations

import datetime as dt
import importlib
import itertools
from zoneinfo import ZoneInfo

from django.apps import apps as django_apps
from test_standards_world import inspect  # the raw inspection rows of a world (no recheck, no audit)

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.health.models import NatResult
from wuyiqu.inspections.models import Survey
from wuyiqu.lib.idcard import check_digit
from wuyiqu.units.models import Household, HouseholdVerification, Resident, Unit, path_for

D = dt.date(2022, 11, 28)
NOW = dt.datetime(2022, 11, 28, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PASSWORD = "correct-horse-battery"
BUILDING_ITEMS = ["masks", "entrance", "vehicles", "visitors", "disinfection", "garbage", "environment"]
COMMITTEE_ITEMS = ["masks", "environment", "garbage", "weekly_cleaning"]
PINS: dict[str, str] = {}  # household code -> the last 6 characters of its resident's ID number
_seq = itertools.count(1)


def ensure_profile() -> None:
    """The seeded policy profile (a transactional test's flush removes the migration's row)."""
    seed = importlib.import_module("wuyiqu.standards.migrations.0002_seed_wenlong_2022").seed
    seed(django_apps, None)


def make_unit(code: str, kind: str, parent: Unit | None = None, name: str | None = None) -> Unit:
    return Unit.objects.create(code=code, name=name or f"单位{code}", kind=kind, parent=parent,
                               path=path_for(parent.path if parent else "", code),
                               depth=(parent.depth + 1) if parent else 0)


def id_number(born: dt.date) -> str:
    first17 = f"500222{born:%Y%m%d}{next(_seq) % 1000:03d}"
    return first17 + check_digit(first17)


def make_household(unit: Unit, room: str, on: dt.date = D, *, with_facts: bool = True) -> Household:
    hh = Household.objects.create(code=f"{unit.code}-{room}", unit=unit, address=f"{unit.name}{room}室")
    n = next(_seq)
    pin = f"{(n * 7919) % 10000:04d}"
    number = id_number(dt.date(1980, 5, 1))
    PINS[hh.code] = number[-6:]  # the proof of membership: the last 6 characters of the ID number
    r = Resident(household=hh, name=f"住户{n}", sex="M")
    r.set_id_number(number)
    r.set_phone(f"1380000{pin}")
    r.save()
    if with_facts:
        HouseholdVerification.objects.create(household=hh, verified_on=on)
        NatResult.objects.create(id_hash=r.id_hash, resident_id=r.pk, unit_id=unit.pk,
                                 sampled_at=dt.datetime(on.year, on.month, on.day, 1, 0, tzinfo=dt.UTC),
                                 sampled_on=on, result="negative")
    return hh


def build(on: dt.date = D) -> dict[str, Unit]:
    ensure_profile()
    u: dict[str, Unit] = {}
    u["T"] = make_unit("T", "district", name="测试区")
    u["T1"] = make_unit("T1", "street", u["T"], "测试街道")
    u["T1C"] = make_unit("T1C", "community", u["T1"], "测试社区")
    u["C1"] = make_unit("T1C-C1", "compound", u["T1C"], "龙湖花园")
    u["B1"] = make_unit("T1C-C1-B1", "building", u["C1"], "龙湖花园1栋")
    u["B2"] = make_unit("T1C-C1-B2", "building", u["C1"], "龙湖花园2栋")
    u["B9"] = make_unit("T1C-B9", "building", u["T1C"], "测试社区9号楼")
    u["T1V"] = make_unit("T1V", "village", u["T1"], "测试村")
    u["G1"] = make_unit("T1V-G1", "group", u["T1V"], "测试村一社")
    u["T2"] = make_unit("T2", "street", u["T"], "另一街道")
    u["T2C"] = make_unit("T2C", "community", u["T2"], "另一社区")
    u["T2B"] = make_unit("T2C-B1", "building", u["T2C"], "另一社区1栋")
    for key, rooms in {"B1": ["101", "102"], "B2": ["101", "102"], "B9": ["101"], "G1": ["H1", "H2"],
                       "T2B": ["101"]}.items():
        for room in rooms:
            make_household(u[key], room, on)
    for key in ("B1", "B2", "B9", "C1", "T2B"):
        inspect(u[key], BUILDING_ITEMS, on)
    for key in ("G1", "T1C", "T1V", "T2C"):
        inspect(u[key], COMMITTEE_ITEMS, on)
    for key in ("T1C", "T1V", "T2C"):
        Survey.objects.create(unit=u[key], surveyed_on=on, awareness="0.95", approval="0.95", participation="0.95")
    return u


def person(username: str, role: str, unit: Unit):
    user = do_create_user(actor=None, username=username, password=PASSWORD, role=role, unit=unit,
                          display_name=username)
    user.email = f"{username}@example.test"
    user.save(update_fields=["email"])
    return user


def people(u: dict[str, Unit]) -> dict:
    return {
        "hank": person("hank", Role.BUILDING_HEAD, u["B1"]),
        "bella": person("bella", Role.BUILDING_HEAD, u["B9"]),
        "pam": person("pam", Role.PROPERTY_MANAGER, u["C1"]),
        "gina": person("gina", Role.GROUP_LEADER, u["G1"]),
        "cora": person("cora", Role.COMMUNITY_STAFF, u["T1C"]),
        "vera": person("vera", Role.COMMUNITY_STAFF, u["T1V"]),
        "sam": person("sam", Role.STREET_STAFF, u["T1"]),
        "tom": person("tom", Role.STREET_STAFF, u["T2"]),
        "otto": person("otto", Role.COMMUNITY_STAFF, u["T2C"]),
        "hugo": person("hugo", Role.HEALTH_COMMISSION, u["T"]),
        "cmd": person("cmd", Role.COMMAND, u["T"]),
    }


def sign_all(app) -> None:
    """Every household below the application's unit signs online with its proof (PINS)."""
    from wuyiqu.applications.actions import do_sign_application

    for hh in Household.objects.filter(unit__path__startswith=app.unit.path):
        do_sign_application(application=app, household_id=hh.pk, proof=PINS[hh.code], ip="10.0.0.1")


def name_through_chain(app, p: dict):
    """Drive an application from its first review step to named, each step approving."""
    from wuyiqu.applications.actions import do_review_application
    from wuyiqu.applications.workflow import STEP_ROLE

    by_role = {}
    for user in p.values():
        by_role.setdefault(user.role, []).append(user)
    while app.status in STEP_ROLE:
        role = STEP_ROLE[app.status]
        actor = next(x for x in by_role[role] if app.unit.path.startswith(x.unit.path))
        app = do_review_application(app, actor=actor, decision="approve", opinion="同意")
    return app
