"""Generated worlds below the real villages and communities: compounds, groups, buildings,
households and residents with valid (but fictitious) ID-card numbers and phones.

The same seed gives the same world. Used by `wuyiqu demo`, the tests' factories and bench/.
Everything is produced as plain rows so that callers can bulk-insert them or write CSV files.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from wuyiqu.lib.idcard import check_digit

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红梅鹏飞辉建国志强文龙春燕海波晓东俊宇浩然欣怡子涵梓轩雨桐诗琪一诺思远明轩佳怡家豪"
COMPOUND_NAMES = (
    "龙湖", "金科", "锦绣", "阳光", "滨江", "翠湖", "康庭", "和园", "新城", "书香", "花园", "丽景",
    "南州", "东城", "世纪", "御景", "文华", "桂苑", "枫林", "江畔", "紫荆", "半岛", "瑞景", "怡心",
)
COMPOUND_SUFFIX = ("花园", "小区", "苑", "家园", "名城", "雅居")
GROUP_NUMERALS = "一二三四五六七八九十"
# 綦江's ID-card region prefixes: 500222 (old 綦江县) and 500110 (today's 綦江区).
ID_REGIONS = ("500222", "500110", "500222", "500222")
PHONE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
                  "157", "158", "159", "173", "177", "180", "181", "182", "186", "187", "188", "189", "199")


# How many of a prefix's 10,000 blocks a region of 重庆's size holds (about 3 % of the country's
# subscribers, so ~300 blocks of each prefix).
PHONE_BLOCKS_PER_PREFIX = 300


@lru_cache(maxsize=64)
def region_phone_blocks(prefix: str) -> tuple[int, ...]:
    """The 4-digit blocks after ``prefix`` that the generated region's phones use: fixed per prefix,
    the same in every world (an attacker is assumed to know them: tests/test_privacy_attack.py)."""
    return tuple(sorted(random.Random(f"wuyiqu-phone-blocks-{prefix}").sample(range(10_000), PHONE_BLOCKS_PER_PREFIX)))


@dataclass
class UnitRow:
    code: str
    name: str
    kind: str
    parent_code: str


@dataclass
class HouseholdRow:
    code: str
    unit_code: str
    address: str
    verified_on: dt.date | None


@dataclass
class ResidentRow:
    id_number: str
    name: str
    household_code: str
    phone: str
    bedridden: bool


@dataclass
class World:
    units: list[UnitRow] = field(default_factory=list)
    households: list[HouseholdRow] = field(default_factory=list)
    residents: list[ResidentRow] = field(default_factory=list)


class _People:
    """Fictitious people: names, birth dates, unique valid ID numbers and phones."""

    def __init__(self, rnd: random.Random, today: dt.date):
        self.rnd = rnd
        self.today = today
        self._seq: dict[tuple[str, dt.date], int] = {}

    def name(self) -> str:
        r = self.rnd
        given = r.choice(GIVEN) + (r.choice(GIVEN) if r.random() < 0.7 else "")
        return r.choice(SURNAMES) + given

    def id_number(self, birth: dt.date, male: bool) -> str:
        # A counter per (region, birth date) gives each person a distinct sequence code, so the
        # numbers are unique in a world of millions while still valid and realistic.
        region = ID_REGIONS[self.rnd.randrange(len(ID_REGIONS))]
        key = (region, birth)
        n = self._seq.get(key, 0)
        while n >= 500:  # that day is full in this region: use the next one
            region = str(int(region) + 1)
            key = (region, birth)
            n = self._seq.get(key, 0)
        self._seq[key] = n + 1
        first17 = f"{region}{birth:%Y%m%d}{n * 2 + (1 if male else 0):03d}"
        return first17 + check_digit(first17)

    def birth(self, min_age: int, max_age: int) -> dt.date:
        days = self.rnd.randint(min_age * 365, max_age * 365 + 364)
        return self.today - dt.timedelta(days=days)

    def phone(self) -> str:
        # Shaped like a real one: a carrier prefix, one of that prefix's blocks of the region (the
        # 4 digits after the prefix, HLR code, as allotted to 重庆), then the subscriber's 4 digits.
        # One draw for block and subscriber, as many draws as before: a seed's world stays the same.
        prefix = self.rnd.choice(PHONE_PREFIXES)
        draw = self.rnd.randrange(10**8)
        blocks = region_phone_blocks(prefix)
        return f"{prefix}{blocks[draw // 10**4 % len(blocks)]:04d}{draw % 10**4:04d}"


def _household_members(people: _People, rnd: random.Random, household_code: str) -> Iterator[ResidentRow]:
    """A household of 1–5 people shaped like real ones: couples, children, elderly living alone."""
    shape = rnd.random()
    if shape < 0.12:  # an elderly person living alone
        ages = [(66, 92)]
    elif shape < 0.30:  # an elderly couple
        ages = [(60, 88), (60, 88)]
    elif shape < 0.80:  # a family with children
        kids = rnd.choice((1, 1, 2, 2, 3))
        ages = [(28, 50), (28, 50)] + [(0, 17)] * kids
    else:  # three generations
        ages = [(30, 48), (30, 48), (0, 12), (60, 85)]
    for i, (lo, hi) in enumerate(ages):
        birth = people.birth(lo, hi)
        male = (i % 2 == 0) if len(ages) > 1 else rnd.random() < 0.5
        adult = (people.today - birth).days > 18 * 365
        yield ResidentRow(
            id_number=people.id_number(birth, male),
            name=people.name(),
            household_code=household_code,
            phone=people.phone() if adult else "",
            bedridden=adult and (people.today - birth).days > 75 * 365 and rnd.random() < 0.08,
        )


def generate_world(
    committees: list[tuple[str, str, str]],
    *,
    residents: int,
    seed: int = 2022,
    today: dt.date | None = None,
) -> World:
    """Generate units, households and residents below ``committees`` ((code, name, kind) of real
    communities and villages) totalling about ``residents`` people.

    Communities get compounds of several buildings (some split into 单元) plus scattered
    buildings; villages get groups (社) of households.
    """
    rnd = random.Random(seed)
    today = today or dt.date(2022, 11, 28)
    people = _People(rnd, today)
    world = World()
    if not committees:
        return world
    per_committee = max(1, residents // len(committees))
    for code, cname, kind in committees:
        target = per_committee
        made = 0
        short = cname.replace("居民委员会", "").replace("村民委员会", "")
        if kind == "village":
            g = 0
            while made < target:
                g += 1
                gcode = f"{code}-G{g:02d}"
                gname = f"{short}{_numeral(g)}社"
                world.units.append(UnitRow(gcode, gname, "group", code))
                for h in range(1, rnd.randint(25, 70) + 1):
                    hcode = f"{gcode}-H{h:03d}"
                    verified = today - dt.timedelta(days=rnd.randint(0, 40)) if rnd.random() < 0.95 else None
                    world.households.append(HouseholdRow(hcode, gcode, f"{gname}{h}号", verified))
                    for r in _household_members(people, rnd, hcode):
                        world.residents.append(r)
                        made += 1
                    if made >= target:
                        break
        else:
            c = b_loose = 0
            names = rnd.sample(COMPOUND_NAMES, k=len(COMPOUND_NAMES))
            while made < target:
                if rnd.random() < 0.8:  # a compound of several buildings
                    c += 1
                    ccode = f"{code}-C{c:02d}"
                    cname_full = names[(c - 1) % len(names)] + rnd.choice(COMPOUND_SUFFIX)
                    world.units.append(UnitRow(ccode, cname_full, "compound", code))
                    for b in range(1, rnd.randint(3, 10) + 1):
                        made += _building(world, people, rnd, f"{ccode}-B{b:02d}", f"{cname_full}{b}栋", ccode, today)
                        if made >= target:
                            break
                else:  # a scattered building straight under the community
                    b_loose += 1
                    bname = f"{short}{b_loose}号楼"
                    made += _building(world, people, rnd, f"{code}-B{b_loose:02d}", bname, code, today)
    return world


def _numeral(n: int) -> str:
    if n <= 10:
        return GROUP_NUMERALS[n - 1]
    if n < 20:
        return "十" + GROUP_NUMERALS[n - 11]
    return f"{n}"


def _building(world: World, people: _People, rnd: random.Random, code: str, name: str, parent: str,
              today: dt.date) -> int:
    """Add one building (with 单元 for some) and its households; return how many residents it got."""
    world.units.append(UnitRow(code, name, "building", parent))
    floors = rnd.randint(5, 18)
    per_floor = rnd.choice((2, 2, 3, 4))
    entrances = rnd.choice((1, 1, 1, 2, 3))
    made = 0
    for e in range(1, entrances + 1):
        if entrances > 1:
            holder = f"{code}-U{e}"
            world.units.append(UnitRow(holder, f"{name}{e}单元", "entrance", code))
            prefix = f"{name}{e}单元"
        else:
            holder, prefix = code, name
        for floor in range(1, floors + 1):
            for door in range(1, per_floor + 1):
                room = f"{floor}{door:02d}"
                if rnd.random() < 0.12:  # empty flat
                    continue
                hcode = f"{holder}-{room}"
                verified = today - dt.timedelta(days=rnd.randint(0, 40)) if rnd.random() < 0.95 else None
                world.households.append(HouseholdRow(hcode, holder, f"{prefix}{room}室", verified))
                for r in _household_members(people, rnd, hcode):
                    world.residents.append(r)
                    made += 1
    return made
