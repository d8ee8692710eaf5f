"""A city the size of 重庆市 on PostgreSQL — 38 districts, ~1,000 streets/towns, ~11,000 villages and
communities, ~30 million residents — with eight days of facts; built fast and resumable, per district.

    .venv/bin/python bench/city_world.py --districts 1     # 綦江区 alone (~0.95 M residents): try it first
    .venv/bin/python bench/city_world.py --districts 2     # + the first generated district
    .venv/bin/python bench/city_world.py                   # the whole city, database wuyiqu_city
    nohup .venv/bin/python bench/city_world.py > bench/out/city_world.log 2>&1 &

Options: ``--workers`` (2: processes building districts side by side), ``--residents`` (30,000,000 for
the whole city; a prefix gets its districts' share), ``--nat-every`` (3: each resident is tested once
every N days), ``--no-finish`` (build districts only). Database: ``BENCH_DATABASE_URL`` or wuyiqu_city.

The divisions. District 0 is the real 綦江区 (wuyiqu/data: 31 streets/towns, 480 villages and communities);
the other 37 are generated on its pattern, with generated names and codes 5001xx: streets/towns in
proportion to the population (綦江: 31 for ~1 M people), villages/communities per street taken from 綦江's
streets (x0.7: the city has ~11 a street, 綦江 15.5), more communities than villages in the ten big urban
districts. District populations follow the spread of 重庆's 38 districts and counties (0.19–2.19 M in 2020),
scaled to ``--residents`` (0.18–2.05 M at 30 M). Below every village and community: compounds, groups, buildings, entrances,
households and residents made by bench/world.py's committee generator (the district world's), with valid
ID numbers unique in the city (region code = the district's code), real AES-256-GCM ciphertext and HMAC
lookup hashes (wuyiqu/lib/crypto.py, the test keys unless WUYIQU_DATA_KEY is set) for every ID number and
phone, and each household's verification.

The facts, at the rates of bench/evaluate_world.py's district world (per resident and per unit) except
for an ordinary day's registry and ledger (1 in 200 households last verified over 30 days ago; 1 in 200
ledger lines without a helper, 1 in 3,000 reviewed too long ago), made in SQL inside the database:
nucleic-acid results over the 8 days D-7 … D (every ``--nat-every`` days per resident, 2 % never tested),
positive cases (1 in 5,000 residents), measures (1 in 500), risk zones (1 in 300 compounds), inspections
(7 items of buildings/compounds, 4 of groups/committees; one in the window and one older each),
incidents, surveys, applications (30 % of buildings/groups, every committee and street) with the
co-signatures of the households below them (1 in 97 missing), titles on a fifth of the buildings and
groups, the special-population ledger (1 in 20 residents).

Why it is fast: no ORM. Each district is built by one worker process (``--workers`` of them side by side)
in two transactions: the registry goes in with COPY FROM STDIN (psycopg ``cursor.copy``) as the generator
makes it, committee by committee, in slices; then, after ANALYZE, the facts are ``INSERT … SELECT`` over
the district's id ranges (``generate_series`` for the days). Ids are fixed per district (district k
numbers its units, households and residents from (k+1)·10⁸), so nothing is read back. The sessions skip
the foreign-key triggers (``session_replication_role = replica``: the rows are consistent by
construction) and commit asynchronously. The indexes that random keys make slow to maintain row by row
(the residents' unique ID lookup hash, the results' primary key that starts with the hash; before units
migration 0002 also the phone hash and the ``_like`` twins) are dropped for the build and made again once
at the end with a sort (their definitions are kept in ``bench_city_index`` until then); the others stay,
their keys arriving nearly in order.

Resumable and idempotent: each stage of a district (people, facts) is committed whole or not at all, with
its record in ``bench_city_district`` (what it took), and a stage already committed is skipped. No
district is started with less than ``--min-free-gb`` free on disk (the server is shared). After a crash,
run the same command again: only the districts not committed are built, then the indexes are made again
and the tables vacuumed and analysed (autovacuum is off on this server). A smaller ``--districts`` is a
prefix of the same city: the same seed gives the same districts whatever the order they were built in.
Writes bench/out/city_world_<N>.json (counts, sizes, times). The whole city took 46 min on this shared
2-core machine, 38.8 GiB (docs/scaling.md)."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import multiprocessing as mp
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nat_world  # noqa: E402  (bench/nat_world.py: the database set-up)
import world as district_world  # noqa: E402  (bench/world.py: the committee generator)

from wuyiqu.lib.idcard import kept_third_birthday, mask_id_number, mask_phone  # noqa: E402
from wuyiqu.units import generator as g  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
PG_URL = "postgres://postgres@127.0.0.1:5432/wuyiqu_city"
DIVISIONS = Path(__file__).resolve().parents[1] / "wuyiqu" / "data" / "qijiang-divisions-2023.csv"
D = dt.date(2022, 11, 28)
SEED = 2022
STRIDE = 10**8  # district k numbers its units, households and residents from (k + 1) * STRIDE
SLICE = 50_000  # residents per COPY slice
_DISTRICT_LOCK = 0x63697479  # + k: pg_advisory_xact_lock of a district being built

# Populations (10,000s) with the spread of 重庆's 26 districts and 12 counties (2020 census, rounded);
# the first is 綦江区's. Scaled to --residents.
POPULATIONS = (101, 219, 156, 153, 148, 136, 124, 120, 119, 118, 115, 115, 93, 93, 83, 83, 76, 74, 72,
               69, 69, 69, 67, 65, 65, 61, 59, 58, 56, 49, 49, 48, 46, 42, 39, 39, 36, 19)
URBAN = 10  # the ten largest generated districts: mostly communities, 街道 rather than 镇
STREETS_PER_10K = 0.312  # 綦江: 31 streets/towns for 1.01 M people; the city ~1,000
COMMITTEES_SCALE = 0.715  # 綦江 has 15.5 villages/communities a street, the city ~11
NAME_CHARS = ("云江北南山川岭溪河平安丰城盘龙凤金石清宁永和兴华桥坝湾塘林松柏桂莲梅竹新东西中上下古双高"
              "天白马青黄红太长万福寿顺德文武乐民广")


@dataclass
class Committee:
    code: str
    name: str
    kind: str  # village | community


@dataclass
class Street:
    code: str
    name: str
    committees: list[Committee] = field(default_factory=list)


@dataclass
class District:
    index: int
    code: str
    name: str
    population: int
    streets: list[Street] = field(default_factory=list)

    @property
    def committees(self) -> list[Committee]:
        return [c for s in self.streets for c in s.committees]

    @property
    def base(self) -> int:
        return (self.index + 1) * STRIDE


def plan_city(residents: int, seed: int = SEED) -> list[District]:
    """The 38 districts with their streets and committees (no people yet): 綦江区 as it is, then the
    generated ones. The same arguments give the same plan."""
    rnd = random.Random(seed)
    with open(DIVISIONS, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    total = sum(POPULATIONS)
    qj = District(0, rows[0]["code"], rows[0]["name"], round(residents * POPULATIONS[0] / total))
    streets = {r["code"]: Street(r["code"], r["name"]) for r in rows if r["kind"] == "street"}
    for r in rows:
        if r["kind"] in ("village", "community"):
            streets[r["parent_code"]].committees.append(Committee(r["code"], r["name"], r["kind"]))
    qj.streets = list(streets.values())
    pattern = [len(s.committees) for s in qj.streets]
    used_names: set[str] = set()

    def name(suffix: str) -> str:
        # Two characters (~4,800 pairs), three once a kind's pairs run short: villages are ~7,500.
        for attempt in range(1000):
            n = "".join(rnd.choice(NAME_CHARS) for _ in range(2 if attempt < 20 else 3))
            if n[0] != n[1] and n + suffix not in used_names:
                used_names.add(n + suffix)
                return n + suffix
        raise RuntimeError(f"no free name for {suffix}")

    codes = [str(c) for c in range(500101, 500160) if c != int(qj.code)]
    out = [qj]
    by_size = sorted(range(1, len(POPULATIONS)), key=lambda i: -POPULATIONS[i])
    urban = set(by_size[:URBAN])
    for k in range(1, len(POPULATIONS)):
        d = District(k, codes[k - 1], name("区" if k in urban or rnd.random() < 0.6 else "县"),
                     round(residents * POPULATIONS[k] / total))
        n_streets = max(8, round(POPULATIONS[k] * STREETS_PER_10K))
        n_jiedao = round(n_streets * (0.7 if k in urban else 0.2))
        for j in range(n_streets):
            jiedao = j < n_jiedao
            code = f"{d.code}{j + 1:03d}" if jiedao else f"{d.code}{100 + j - n_jiedao:03d}"
            street = Street(code, name("街道" if jiedao else "镇"))
            n = max(3, round(pattern[(k * 7 + j) % len(pattern)] * COMMITTEES_SCALE * rnd.uniform(0.8, 1.2)))
            share = 0.65 if jiedao and k in urban else 0.45 if jiedao else 0.12
            n_comm = max(1 if jiedao else 0, round(n * share))
            for i in range(n):
                if i < n_comm:
                    street.committees.append(Committee(f"{code}{i + 1:03d}", name("社区居民委员会"), "community"))
                else:
                    street.committees.append(Committee(f"{code}{200 + i - n_comm:03d}", name("村村民委员会"),
                                                       "village"))
            d.streets.append(street)
        out.append(d)
    return out


# --- the people of a district (worker process) --------------------------------------------------------


class _DistrictPeople(g._People):
    """bench/world.py's people with ID numbers of the district's region code, unique in the city."""

    def __init__(self, rnd: random.Random, today: dt.date, region: str):
        super().__init__(rnd, today)
        self.region = region

    def id_number(self, birth: dt.date, male: bool) -> str:
        n = self._seq.get(birth, 0)
        if n >= 500:  # a birth date full in this region (never at ~2 M people): a second code of it
            region = self.region[:3] + "9" + self.region[4:]
            n2 = self._seq.get((region, birth), 0)
            if n2 >= 500:
                raise RuntimeError(f"more than 1,000 people born on {birth} in {self.region}")
            self._seq[(region, birth)] = n2 + 1
            first17 = f"{region}{birth:%Y%m%d}{n2 * 2 + (1 if male else 0):03d}"
        else:
            self._seq[birth] = n + 1
            first17 = f"{self.region}{birth:%Y%m%d}{n * 2 + (1 if male else 0):03d}"
        return first17 + g.check_digit(first17)


class _Loader:
    """Gathers one district's rows as COPY text and sends them in slices, parents before children."""

    TABLES = (
        ("units_unit", "id, code, name, kind, parent_id, path, depth"),
        ("units_household", "id, code, unit_id, district_code, address"),
        ("units_householdverification", "household_id, district_code, verified_on, verifier"),
        ("units_resident", "id, household_id, district_code, name, id_enc, id_hash, id_masked, turns_three_on, sex, phone_enc, "
                           "phone_hash, phone_masked, bedridden"),
        ("units_residentdirectory", "id_hash, district_code"),  # the city-wide directory (units.directory)
    )

    def __init__(self, cur, district: District):
        from wuyiqu.health.nat_import import IdHasher
        from wuyiqu.lib import crypto

        self.cur = cur
        self.cipher = crypto.cipher()
        self.hasher = IdHasher()
        self.hasher.MAX_CACHED = 0  # every number is new: nothing to cache
        self.units: dict[str, tuple[int, str, int]] = {}  # code -> (id, path, depth)
        self.next_unit = self.next_household = self.next_resident = district.base
        self.buf: dict[str, list[str]] = {t: [] for t, _c in self.TABLES}
        self.counts = {"units": 0, "households": 0, "residents": 0}
        self.copy_seconds = 0.0

    def unit(self, code: str, name: str, kind: str, parent_code: str | None) -> None:
        parent = self.units.get(parent_code) if parent_code else None
        uid = self.next_unit
        self.next_unit += 1
        path = (parent[1] if parent else "/") + code + "/"
        depth = parent[2] + 1 if parent else 0
        self.units[code] = (uid, path, depth)
        self.buf["units_unit"].append(f"{uid}\t{code}\t{name}\t{kind}\t{parent[0] if parent else NULL}\t{path}\t{depth}\n")
        self.counts["units"] += 1

    def committee(self, w: g.World) -> None:
        for u in w.units:
            self.unit(u.code, u.name, u.kind, u.parent_code)
        households: dict[str, int] = {}
        districts: dict[str, str] = {}  # household code -> its unit's district (units 0008, 0009)
        hb, vb = self.buf["units_household"], self.buf["units_householdverification"]
        for h in w.households:
            hid = self.next_household
            self.next_household += 1
            households[h.code] = hid
            district = districts[h.code] = self.units[h.unit_code][1].strip("/").split("/", 1)[0]
            hb.append(f"{hid}\t{h.code}\t{self.units[h.unit_code][0]}\t{district}\t{h.address}\n")
            # An ordinary day of an established registry: every household checked within the 30 days
            # but 1 in 200 (bench/world.py's dates, 0–40 days back and 5 % never, would fail nearly
            # every building on registry_verified).
            vb.append(f"{hid}\t{district}\t{D - dt.timedelta(days=35 if hid % 200 == 0 else hid % 30)}\t网格员\n")
        people = w.residents
        ids = [r.id_number for r in people]
        id_enc = self.cipher.encrypt_many(ids)
        phones = [r.phone for r in people if r.phone]
        phone_enc = iter(self.cipher.encrypt_many(phones))
        hasher = self.hasher
        rb = self.buf["units_resident"]
        db = self.buf["units_residentdirectory"]
        rid = self.next_resident
        for r, enc in zip(people, id_enc, strict=True):
            n = r.id_number
            if r.phone:
                phone = f"\\\\x{next(phone_enc).hex()}\t{hasher(r.phone)}\t{mask_phone(r.phone)}"
            else:
                phone = f"{NULL}\t\t"
            turns = kept_third_birthday(dt.date(int(n[6:10]), int(n[10:12]), int(n[12:14])), D)
            h = hasher(n)
            db.append(f"{h}\t{districts[r.household_code]}\n")
            rb.append(f"{rid}\t{households[r.household_code]}\t{districts[r.household_code]}\t{r.name}\t\\\\x{enc.hex()}\t{h}\t"
                      f"{mask_id_number(n)}\t{turns or NULL}\t{'M' if int(n[16]) % 2 else 'F'}\t"
                      f"{phone}\t{'t' if r.bedridden else 'f'}\n")
            rid += 1
        self.next_resident = rid
        self.counts["households"] += len(w.households)
        self.counts["residents"] += len(people)
        w.units.clear()
        w.households.clear()
        w.residents.clear()
        if len(rb) >= SLICE:
            self.flush()

    def flush(self) -> None:
        t = time.perf_counter()
        for table, columns in self.TABLES:
            rows = self.buf[table]
            if rows:
                with self.cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    copy.write("".join(rows))
                rows.clear()
        self.copy_seconds += time.perf_counter() - t


NULL = "\\N"


def _people(cur, d: District, seed: int) -> dict:
    """Units, households, verifications and residents of ``d`` into the database; returns counts."""
    loader = _Loader(cur, d)
    rnd = random.Random(seed * 1000 + d.index)
    people = _DistrictPeople(rnd, D, d.code)
    loader.unit(d.code, d.name, "district", None)
    for s in d.streets:
        loader.unit(s.code, s.name, "street", d.code)
        for c in s.committees:
            loader.unit(c.code, c.name, c.kind, s.code)
    committees = d.committees
    # As bench/world.py: communities (urban, compounds of buildings) weigh 3, villages 1.
    weights = [3 if c.kind == "community" else 1 for c in committees]
    per_weight = d.population / sum(weights)
    w = g.World()
    made = cum = 0
    for c, weight in zip(committees, weights, strict=True):
        cum += weight
        target = round(per_weight * cum) - made
        made += district_world._committee(w, people, rnd, {"code": c.code, "name": c.name, "kind": c.kind},
                                          max(1, target), D)
        loader.committee(w)
    loader.flush()
    return {**loader.counts, "copy_seconds": round(loader.copy_seconds, 1)}


def _facts(cur, d: District, nat_every: int) -> dict:
    """The district's facts, set-based over its id ranges; returns rows per table."""
    lo, hi = d.base, d.base + STRIDE
    day = f"DATE '{D.isoformat()}'"
    r_in = f"r.id >= {lo} AND r.id < {hi}"
    h_in = f"h.id >= {lo} AND h.id < {hi}"
    u_in = f"u.id >= {lo} AND u.id < {hi}"
    title = ("CASE u.kind WHEN 'building' THEN '无疫楼栋' WHEN 'compound' THEN '无疫小区' WHEN 'group' THEN '无疫社' "
             "WHEN 'village' THEN '无疫村' WHEN 'community' THEN '无疫社区' ELSE '无疫街道' END")
    items = [(k, i) for k in ("building", "compound") for i in
             ("masks", "entrance", "vehicles", "visitors", "disinfection", "garbage", "environment")]
    items += [(k, i) for k in ("group", "village", "community") for i in
              ("masks", "environment", "garbage", "weekly_cleaning")]
    items_sql = ", ".join(f"('{k}', '{i}')" for k, i in items)
    statements = {
        # One round every nat_every days per resident over D-7 … D, at a time of day between 07:00
        # and 19:00 local; 2 % never tested.
        "health_natresult": f"""
            INSERT INTO health_natresult (district_code, id_hash, resident_id, unit_id, sampled_at, sampled_on, result)
            SELECT split_part(u.path, '/', 2), r.id_hash, r.id, h.unit_id,
                   (({day} - d.d) + TIME '07:00' + make_interval(secs => (r.id * 7919) % 43200))
                       AT TIME ZONE 'Asia/Shanghai',
                   {day} - d.d, 'negative'
            FROM units_resident r JOIN units_household h ON h.id = r.household_id JOIN units_unit u ON u.id = h.unit_id
            JOIN generate_series(0, 7) AS d(d) ON (r.id + d.d) % {nat_every} = 0
            WHERE {r_in} AND {h_in} AND r.id % 50 <> 0""",
        "health_positivecase": f"""
            INSERT INTO health_positivecase (resident_id, district_code, unit_id, id_hash, id_masked, source,
                created_at, reported_on, case_type)
            SELECT r.id, r.district_code, h.unit_id, r.id_hash, r.id_masked, 'import', now(), {day} - (r.id % 10)::int, 'confirmed'
            FROM units_resident r JOIN units_household h ON h.district_code = r.district_code AND h.id = r.household_id
            WHERE {r_in} AND {h_in} AND r.id % 5000 = 7""",
        "health_measure": f"""
            INSERT INTO health_measure (resident_id, district_code, unit_id, id_hash, id_masked, source,
                created_at, kind, start_on, end_on, origin)
            SELECT r.id, r.district_code, h.unit_id, r.id_hash, r.id_masked, 'import', now(),
                CASE r.id % 3 WHEN 0 THEN 'close_contact' WHEN 1 THEN 'home_quarantine' ELSE 'returnee' END,
                {day} - (r.id % 10)::int, {day} - (r.id % 10)::int + 7, ''
            FROM units_resident r JOIN units_household h ON h.district_code = r.district_code AND h.id = r.household_id
            WHERE {r_in} AND {h_in} AND r.id % 500 = 3""",
        "health_riskzone": f"""
            INSERT INTO health_riskzone (unit_id, district_code, zone_type, start_on, end_on, created_at)
            SELECT u.id, split_part(u.path, '/', 2), 'high', {day} - 3, CASE WHEN u.id % 2 = 0 THEN NULL ELSE {day} + 2 END, now()
            FROM units_unit u WHERE {u_in} AND u.kind = 'compound' AND u.id % 300 = 5""",
        "inspections_inspection": f"""
            INSERT INTO inspections_inspection (district_code, unit_id, inspected_on, item, passed, inspector, note,
                evidence, created_at)
            SELECT split_part(u.path, '/', 2), u.id, {day} - b.back, i.item, u.id % 23 <> 0, '', '', '', now()
            FROM units_unit u JOIN (VALUES {items_sql}) AS i(kind, item) ON i.kind = u.kind
            CROSS JOIN LATERAL (VALUES ((u.id % 5)::int), ((10 + u.id % 3)::int)) AS b(back)
            WHERE {u_in}""",
        "inspections_incident": f"""
            INSERT INTO inspections_incident (district_code, unit_id, occurred_on, incident_type, description,
                evidence, created_at)
            SELECT split_part(u.path, '/', 2), u.id, {day} - (u.id % 12)::int,
                   CASE WHEN u.id % 2 = 0 THEN 'fight' ELSE 'negative_opinion' END, '', '', now()
            FROM units_unit u WHERE {u_in} AND u.kind = 'building' AND u.id % 400 = 9""",
        "inspections_survey": f"""
            INSERT INTO inspections_survey (district_code, unit_id, surveyed_on, awareness, approval, participation)
            SELECT split_part(u.path, '/', 2), u.id, {day} - (u.id % 40)::int, 0.95, CASE WHEN u.id % 7 = 0 THEN 0.85 ELSE 0.93 END, 0.92
            FROM units_unit u WHERE {u_in} AND u.kind IN ('village', 'community')""",
        "applications_application": f"""
            INSERT INTO applications_application (district_code, unit_id, title, status, opened_at, unit_signed_on)
            SELECT split_part(u.path, '/', 2), u.id, {title}, 'draft', now(),
                   CASE WHEN u.kind IN ('village', 'community', 'street') AND u.id % 2 = 0 THEN {day} - 2 END
            FROM units_unit u
            WHERE {u_in} AND ((u.kind IN ('building', 'group') AND u.id % 10 < 3)
                              OR u.kind IN ('village', 'community', 'street'))""",
        # The households of the application's building/group and of the units below it (entrances;
        # a group's buildings), found through the codes on each household unit's path.
        "applications_cosignature": f"""
            INSERT INTO applications_cosignature (district_code, application_id, household_id, signed_on, source,
                created_at)
            SELECT a.district_code, a.id, h.id, {day} - 1, 'paper', now()
            FROM (SELECT u.id, unnest(string_to_array(trim(both '/' from u.path), '/')) AS code
                  FROM units_unit u WHERE {u_in} AND u.kind IN ('building', 'entrance', 'group')) hu
            JOIN units_unit au ON au.code = hu.code AND au.kind IN ('building', 'group')
            JOIN applications_application a ON a.unit_id = au.id
            JOIN units_household h ON h.district_code = a.district_code AND h.unit_id = hu.id
            WHERE {h_in} AND h.id % 97 <> 0""",
        "certification_title": f"""
            INSERT INTO certification_title (district_code, unit_id, title, named_on, withdrawn_reason)
            SELECT split_part(u.path, '/', 2), u.id, {title}, {day} - 20, '' FROM units_unit u
            WHERE {u_in} AND u.kind IN ('building', 'group') AND u.id % 5 = 0""",
        "units_specialpopulationentry": f"""
            INSERT INTO units_specialpopulationentry (resident_id, district_code, tags, needs, helper, reviewed_on)
            SELECT r.id, r.district_code, 'elderly_alone', '送药', CASE WHEN r.id % 4000 = 0 THEN '' ELSE '王五' END,
                   {day} - (CASE WHEN r.id % 3000 = 20 THEN 40 ELSE r.id % 28 END)::int
            FROM units_resident r WHERE {r_in} AND r.id % 20 = 0""",
    }
    counts = {}
    for table, sql in statements.items():
        t = time.perf_counter()
        cur.execute(sql)
        counts[table] = cur.rowcount
        counts[f"{table}_seconds"] = round(time.perf_counter() - t, 1)
    return counts


def build_district(args: tuple[str, District, int, int, int]) -> dict | None:
    """Worker: build district ``d`` on a connection of its own, in two transactions: the people
    (units, households, verifications, residents), then — after ANALYZE, so that the planner joins the
    new rows sensibly — the facts. Each stage is recorded with its commit (``bench_city_district``),
    so a crash loses at most the stage under way. None when the district was done already."""
    import psycopg

    url, d, nat_every, seed, min_free = args
    free = shutil.disk_usage(OUT).free  # the database is on the same file system here
    if free < min_free:
        print(f"  district {d.index:2d} {d.code}: not built, {free / 2**30:.1f} GiB free on disk", flush=True)
        return {"district": d.code, "low_disk": round(free / 2**30, 1)}
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        # Skip the foreign-key triggers: the rows are consistent by construction (needs a superuser).
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET work_mem = '64MB'")
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_DISTRICT_LOCK + d.index])
            cur.execute("SELECT stage, stats FROM bench_city_district WHERE code = %s", [d.code])
            row = cur.fetchone()
            if row is None:
                people = _people(cur, d, seed)
                people["people_seconds"] = round(time.perf_counter() - t0, 1)
                cur.execute("INSERT INTO bench_city_district (code, idx, stage, stats, built_at) "
                            "VALUES (%s, %s, 'people', %s, now())", [d.code, d.index, json.dumps(people)])
            elif row[0] == "done":
                return None
            else:
                people = row[1]
        t1 = time.perf_counter()
        # Outside the transaction: ANALYZE holds its table lock until the end of the transaction, which
        # would make the other worker's ANALYZE wait for this district's facts.
        conn.execute("ANALYZE units_unit, units_household, units_resident, units_residentdirectory")
        t2 = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_DISTRICT_LOCK + d.index])
            cur.execute("SELECT stage FROM bench_city_district WHERE code = %s", [d.code])
            if cur.fetchone()[0] == "done":
                return None
            facts = _facts(cur, d, nat_every)
            t3 = time.perf_counter()
            stats = {"district": d.code, "name": d.name, "index": d.index, "streets": len(d.streets),
                     "committees": len(d.committees), **people, "analyze_seconds": round(t2 - t1, 1),
                     "facts": facts, "facts_seconds": round(t3 - t2, 1), "worker_pid": os.getpid()}
            stats["seconds"] = round(stats["people_seconds"] + t3 - t1, 1)
            cur.execute("UPDATE bench_city_district SET stage = 'done', stats = %s, built_at = now() WHERE code = %s",
                        [json.dumps(stats, ensure_ascii=False), d.code])
    print(f"  district {d.index:2d} {d.code} {d.name}: {people['residents']:,} residents, "
          f"{people['households']:,} households, {people['units']:,} units, "
          f"{facts['health_natresult']:,} results; people {people['people_seconds']:.0f} s "
          f"(COPY {people['copy_seconds']:.0f} s), analyze {t2 - t1:.0f} s, facts {t3 - t2:.0f} s (results "
          f"{facts['health_natresult_seconds']:.0f} s, co-signatures {facts['applications_cosignature_seconds']:.0f} s)"
          f" — {stats['seconds']:.0f} s [pid {os.getpid()}, load {os.getloadavg()[0]:.1f}]", flush=True)
    return stats


# --- the main process ---------------------------------------------------------------------------------

# Indexes dropped for the build: their keys (lookup hashes) arrive in random order, so maintaining them
# row by row would touch a random page of a multi-GB index per row; made again at the end with a sort.
SLOW_INDEXES_SQL = """
    SELECT c.conname AS name, 'units_resident', 'constraint', pg_get_constraintdef(c.oid)
    FROM pg_constraint c WHERE c.conrelid = 'units_resident'::regclass AND c.contype = 'u'
      AND pg_get_constraintdef(c.oid) = 'UNIQUE (id_hash)'
    UNION ALL
    SELECT i.indexname, 'units_resident', 'index', i.indexdef FROM pg_indexes i
    WHERE i.tablename = 'units_resident' AND (i.indexdef LIKE '%(id_hash varchar_pattern_ops)'
          OR i.indexdef LIKE '%(phone_hash)' OR i.indexdef LIKE '%(phone_hash varchar_pattern_ops)')
    UNION ALL
    SELECT c.conname, 'health_natresult', 'constraint', pg_get_constraintdef(c.oid)
    FROM pg_constraint c WHERE c.conrelid = 'health_natresult'::regclass AND c.contype = 'p'
"""


def setup(url: str) -> None:
    nat_world.use_database(url)
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_city_district (code text PRIMARY KEY, idx int, stage text, "
                    "stats jsonb, built_at timestamptz)")
        cur.execute("CREATE TABLE IF NOT EXISTS bench_city_index (name text PRIMARY KEY, tbl text, kind text, "
                    "definition text)")
        cur.execute("CREATE TABLE IF NOT EXISTS bench_city_state (key text PRIMARY KEY, value jsonb)")
    from wuyiqu.health.nat_import import ensure_nat_partitions

    ensure_nat_partitions(D - dt.timedelta(days=7), D)


def drop_slow_indexes() -> list[str]:
    """Save the definitions of the slow indexes (once) and drop those that exist; return their names."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(SLOW_INDEXES_SQL)
        found = cur.fetchall()
        for name, table, kind, definition in found:
            cur.execute("INSERT INTO bench_city_index VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
                        [name, table, kind, definition])
            if kind == "constraint":
                cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            else:
                cur.execute(f'DROP INDEX "{name}"')
    return [f[0] for f in found]


def restore_indexes() -> list[tuple[str, float]]:
    """Make again every saved index that does not exist; return (name, seconds)."""
    from django.db import connection

    done = []
    with connection.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("SELECT name, tbl, kind, definition FROM bench_city_index ORDER BY tbl DESC, name")
        for name, table, kind, definition in cur.fetchall():
            cur.execute("SELECT 1 FROM pg_class WHERE relname = %s", [name])
            if cur.fetchone() is None:
                t = time.perf_counter()
                if kind == "constraint":
                    cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
                else:
                    cur.execute(definition)
                done.append((name, round(time.perf_counter() - t, 1)))
                print(f"  index {name} on {table}: {done[-1][1]:.0f} s", flush=True)
        cur.execute("RESET maintenance_work_mem")
    return done


TABLES = ("units_unit", "units_household", "units_householdverification", "units_resident", "units_residentdirectory", "health_natresult",
          "health_positivecase", "health_measure", "health_riskzone", "inspections_inspection",
          "inspections_incident", "inspections_survey", "applications_application", "applications_cosignature",
          "certification_title", "units_specialpopulationentry")


def finish() -> dict:
    """Indexes back, sequences past the fixed ids, VACUUM ANALYZE; returns the times."""
    from django.db import connection

    t = time.perf_counter()
    indexes = restore_indexes()
    t_index = time.perf_counter() - t
    with connection.cursor() as cur:
        for table in ("units_unit", "units_household", "units_resident"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"GREATEST((SELECT max(id) FROM {table}), 1))")
    t = time.perf_counter()
    vacuum = {}
    with connection.cursor() as cur:
        for table in TABLES:
            t1 = time.perf_counter()
            # VACUUM, not only ANALYZE: it sets the visibility map, without which index-only scans
            # read the heap as well (autovacuum is off on this server).
            cur.execute(f"VACUUM (ANALYZE) {table}")
            vacuum[table] = round(time.perf_counter() - t1, 1)
        print(f"  vacuum analyze: {time.perf_counter() - t:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in vacuum.items() if v >= 1)})",
              flush=True)
    return {"index_seconds": round(t_index, 1), "indexes": indexes, "vacuum_seconds": round(time.perf_counter() - t, 1),
            "vacuum": vacuum}


def counts_and_sizes() -> dict:
    """Rows (the planner's count after VACUUM ANALYZE: exact enough, and no scan of 100 M rows) and bytes
    (indexes and partitions included) per table."""
    from django.db import connection

    out = {}
    with connection.cursor() as cur:
        for table in TABLES:
            cur.execute("SELECT COALESCE(sum(c.reltuples) FILTER (WHERE c.relkind <> 'p'), 0), "
                        "COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c WHERE c.oid = %s::regclass OR c.oid IN "
                        "(SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass)", [table, table])
            n, size = cur.fetchone()
            out[table] = {"rows": max(0, int(n)), "bytes": int(size)}
        cur.execute("SELECT kind, count(*) FROM units_unit GROUP BY kind ORDER BY 2")
        out["units_by_kind"] = dict(cur.fetchall())
        cur.execute("SELECT pg_database_size(current_database())")
        out["database_bytes"] = cur.fetchone()[0]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--districts", type=int, default=len(POPULATIONS), help="build the first N (1–38)")
    parser.add_argument("--residents", type=int, default=30_000_000, help="the whole city's residents")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--nat-every", type=int, default=3, help="days between two tests of a resident")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--no-finish", action="store_true", help="build districts only (indexes stay dropped)")
    parser.add_argument("--min-free-gb", type=float, default=15,
                        help="start no district with less free disk (the server is shared: never fill it)")
    args = parser.parse_args(argv)
    url = os.environ.get("BENCH_DATABASE_URL", PG_URL)
    t_start = time.perf_counter()
    plan = plan_city(args.residents, args.seed)[: args.districts]
    print(f"city plan: {len(plan)} districts, {sum(len(d.streets) for d in plan):,} streets/towns, "
          f"{sum(len(d.committees) for d in plan):,} villages/communities "
          f"({sum(c.kind == 'community' for d in plan for c in d.committees):,} communities), "
          f"{sum(d.population for d in plan):,} residents; database {url.rsplit('@', 1)[-1]}", flush=True)
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores",
          flush=True)
    setup(url)
    from django.db import connection, connections

    with connection.cursor() as cur:
        cur.execute("SELECT code FROM bench_city_district WHERE stage = 'done'")
        built = {c for (c,) in cur.fetchall()}
    todo = [d for d in plan if d.code not in built]
    result: dict = {"started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "args": vars(args),
                    "load_at_start": os.getloadavg(), "built_before": len(plan) - len(todo), "districts": []}
    if todo:
        dropped = drop_slow_indexes()
        print(f"{len(todo)} districts to build ({len(plan) - len(todo)} there already), {args.workers} workers; "
              f"dropped for the build: {', '.join(dropped) or 'nothing (dropped earlier)'}", flush=True)
        connections.close_all()  # the workers are forked: each opens its own connection
        t = time.perf_counter()
        # Largest first, so that the two workers finish together.
        jobs = [(url, d, args.nat_every, args.seed, int(args.min_free_gb * 2**30))
                for d in sorted(todo, key=lambda d: -d.population)]
        low_disk = []
        with mp.get_context("fork").Pool(args.workers, maxtasksperchild=1) as pool:
            for stats in pool.imap_unordered(build_district, jobs):
                if stats and "low_disk" in stats:
                    low_disk.append(stats["district"])
                elif stats:
                    result["districts"].append(stats)
        result["districts_seconds"] = round(time.perf_counter() - t, 1)
        print(f"districts built in {result['districts_seconds']:.0f} s", flush=True)
        if low_disk:
            sys.exit(f"stopped: {len(low_disk)} districts not built for lack of disk ({', '.join(low_disk)}); "
                     "free some space and run the same command again")
    if not args.no_finish:
        with connection.cursor() as cur:
            cur.execute("SELECT value FROM bench_city_state WHERE key = 'finished'")
            row = cur.fetchone()
        if todo or row is None or row[0].get("districts") != len(plan) or _missing_indexes():
            result["finish"] = finish()
            with connection.cursor() as cur:
                cur.execute("INSERT INTO bench_city_state VALUES ('finished', %s) ON CONFLICT (key) DO UPDATE "
                            "SET value = EXCLUDED.value", [json.dumps({"districts": len(plan)})])
        else:
            print("nothing to do: every district built, indexes there, tables analysed")
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    result["load_at_end"] = os.getloadavg()
    result["world"] = counts_and_sizes()
    OUT.mkdir(exist_ok=True)
    path = OUT / f"city_world_{len(plan)}.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    w = result["world"]
    print(f"done in {result['seconds']:.0f} s; database {w['database_bytes'] / 2**30:.1f} GiB; "
          + ", ".join(f"{t} {v['rows']:,}" for t, v in w.items() if isinstance(v, dict) and "rows" in v))
    print(f"units by kind: {w['units_by_kind']}; written {path}")


def _missing_indexes() -> bool:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM bench_city_index i WHERE NOT EXISTS "
                    "(SELECT 1 FROM pg_class c WHERE c.relname = i.name)")
        return cur.fetchone()[0] > 0


if __name__ == "__main__":
    main()
