"""Write a district-sized generated world as import files: units.csv, households.csv, residents.csv.

    .venv/bin/python bench/world.py                      # 1,000,000 residents into bench/out/
    .venv/bin/python bench/world.py --residents 20000 --out /tmp/w

The units are the real 綦江区 divisions (district, 31 streets/towns, ~480 villages and communities)
plus generated compounds, groups, buildings and entrances; households and residents are generated
with the people of ``wuyiqu.units.generator`` (valid, unique ID numbers). Rows are written as they
are made, one committee at a time, so memory stays small at any size. The same seed gives the same
files. Needs no database and no Django settings.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wuyiqu.units import generator as g  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
DIVISIONS = Path(__file__).resolve().parents[1] / "wuyiqu" / "data" / "qijiang-divisions-2023.csv"


def _flush(world: g.World, units, households, residents) -> None:
    for u in world.units:
        units.writerow((u.code, u.name, u.kind, u.parent_code))
    for h in world.households:
        households.writerow((h.code, h.unit_code, h.address, h.verified_on.isoformat() if h.verified_on else ""))
    for r in world.residents:
        residents.writerow((r.id_number, r.name, r.household_code, r.phone, "是" if r.bedridden else ""))
    world.units.clear()
    world.households.clear()
    world.residents.clear()


def write_world(out: Path, *, residents: int, seed: int = 2022, today: dt.date = dt.date(2022, 11, 28)) -> dict:
    """Write the three files into ``out``; return counts by kind."""
    out.mkdir(parents=True, exist_ok=True)
    with open(DIVISIONS, encoding="utf-8") as f:
        divisions = list(csv.DictReader(f))
    committees = [d for d in divisions if d["kind"] in ("community", "village")]
    rnd = random.Random(seed)
    people = g._People(rnd, today)
    # Communities are urban and larger than villages: weight 3 to 1.
    weights = [3 if c["kind"] == "community" else 1 for c in committees]
    per_weight = residents / sum(weights)
    counts = {"units": len(divisions), "buildings": 0, "households": 0, "residents": 0}
    world = g.World()
    with (
        open(out / "units.csv", "w", encoding="utf-8", newline="") as fu,
        open(out / "households.csv", "w", encoding="utf-8", newline="") as fh,
        open(out / "residents.csv", "w", encoding="utf-8", newline="") as fr,
    ):
        units, households, people_w = csv.writer(fu), csv.writer(fh), csv.writer(fr)
        units.writerow(("编码", "名称", "类型", "上级编码"))
        households.writerow(("户编码", "所属单位编码", "地址", "核实日期"))
        people_w.writerow(("身份证号", "姓名", "户编码", "联系电话", "免检(卧床)"))
        for d in divisions:
            units.writerow((d["code"], d["name"], d["kind"], d["parent_code"]))
        made_total = 0
        for i, c in enumerate(committees):
            # Spread the remainder so the total comes out at exactly ``residents``.
            target = round(per_weight * sum(weights[: i + 1])) - made_total
            made = _committee(world, people, rnd, c, target, today)
            made_total += made
            counts["units"] += len(world.units)
            counts["buildings"] += sum(1 for u in world.units if u.kind == "building")
            counts["households"] += len(world.households)
            counts["residents"] += len(world.residents)
            _flush(world, units, households, people_w)
    return counts


def _committee(world: g.World, people, rnd: random.Random, c: dict, target: int, today: dt.date) -> int:
    """Units, households and residents of one village or community; stops at ``target`` residents."""
    code, short = c["code"], c["name"].replace("居民委员会", "").replace("村民委员会", "")
    made = 0
    if c["kind"] == "village":
        grp = 0
        while made < target:
            grp += 1
            gcode, gname = f"{code}-G{grp:02d}", f"{short}{g._numeral(grp)}社"
            world.units.append(g.UnitRow(gcode, gname, "group", code))
            if rnd.random() < 0.35:  # a resettlement block of small buildings in the group
                for b in range(1, rnd.randint(2, 6) + 1):
                    made += _small_building(world, people, rnd, f"{gcode}-B{b:02d}", f"{gname}{b}栋", gcode, today,
                                            target - made)
                    if made >= target:
                        return made
            for h in range(1, rnd.randint(25, 70) + 1):
                hcode = f"{gcode}-H{h:03d}"
                verified = today - dt.timedelta(days=rnd.randint(0, 40)) if rnd.random() < 0.95 else None
                world.households.append(g.HouseholdRow(hcode, gcode, f"{gname}{h}号", verified))
                made += _members(world, people, rnd, hcode, target - made)
                if made >= target:
                    return made
        return made
    comp = loose = 0
    names = rnd.sample(g.COMPOUND_NAMES, k=len(g.COMPOUND_NAMES))
    while made < target:
        if rnd.random() < 0.8:
            comp += 1
            ccode = f"{code}-C{comp:02d}"
            cname = names[(comp - 1) % len(names)] + rnd.choice(g.COMPOUND_SUFFIX)
            world.units.append(g.UnitRow(ccode, cname, "compound", code))
            for b in range(1, rnd.randint(4, 14) + 1):
                made += _small_building(world, people, rnd, f"{ccode}-B{b:02d}", f"{cname}{b}栋", ccode, today,
                                        target - made)
                if made >= target:
                    return made
        else:
            loose += 1
            made += _small_building(world, people, rnd, f"{code}-B{loose:02d}", f"{short}{loose}号楼", code, today,
                                    target - made)
    return made


def _members(world: g.World, people, rnd: random.Random, hcode: str, room: int) -> int:
    members = list(g._household_members(people, rnd, hcode))[: max(1, room)]
    world.residents.extend(members)
    return len(members)


def _small_building(world: g.World, people, rnd: random.Random, code: str, name: str, parent: str,
                    today: dt.date, room: int) -> int:
    """A building of 3–11 floors (some with 单元); about 50 residents, at most ``room``."""
    world.units.append(g.UnitRow(code, name, "building", parent))
    floors, per_floor = rnd.randint(3, 11), rnd.choice((2, 2, 3))
    entrances = rnd.choice((1, 1, 1, 2))
    made = 0
    for e in range(1, entrances + 1):
        if entrances > 1:
            holder, prefix = f"{code}-U{e}", f"{name}{e}单元"
            world.units.append(g.UnitRow(holder, prefix, "entrance", code))
        else:
            holder, prefix = code, name
        for floor in range(1, floors + 1):
            for door in range(1, per_floor + 1):
                if rnd.random() < 0.12:
                    continue
                room_no = f"{floor}{door:02d}"
                hcode = f"{holder}-{room_no}"
                verified = today - dt.timedelta(days=rnd.randint(0, 40)) if rnd.random() < 0.95 else None
                world.households.append(g.HouseholdRow(hcode, holder, f"{prefix}{room_no}室", verified))
                made += _members(world, people, rnd, hcode, room - made)
                if made >= room:
                    return made
    return made


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    counts = write_world(args.out, residents=args.residents, seed=args.seed)
    print(f"wrote {args.out}/units.csv, households.csv, residents.csv in {time.perf_counter() - t0:.1f}s: "
          + ", ".join(f"{k} {v:,}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
