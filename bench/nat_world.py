"""Shared set-up of the nucleic-acid benchmarks: a database with N residents, made fast.

``setup_django(db)`` points Django at the benchmark database (a SQLite file or PostgreSQL database
``wuyiqu_bench_nat``, made if missing) and migrates it; ``use_database(url, fresh=)`` does the same
for any URL, and the other benchmarks use it too. ``ensure_residents(n)`` loads the real
divisions and, below every village and community, buildings of 100 residents in households of 4 —
residents with valid, unique ID numbers made from their index (``id_number(i)``), encrypted and
hashed like the registry does. The world is kept between runs (made again only when the count
differs). Keys: the fixed test keys (WUYIQU_ENV=test) unless WUYIQU_DATA_KEY is set.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wuyiqu.lib.idcard import check_digit  # noqa: E402  (no Django needed)

PG_URL = "postgres://postgres@127.0.0.1:5432/wuyiqu_bench_nat"
SQLITE_PATH = Path(__file__).resolve().parent / "out" / "nat_bench.sqlite3"
PER_BUILDING = 100
PER_HOUSEHOLD = 4
_BIRTH0 = dt.date(1940, 1, 1)


def id_number(i: int, region: str = "500222") -> str:
    """The i-th resident's valid ID number: a birth date from 1940 on and a sequence code."""
    birth = _BIRTH0 + dt.timedelta(days=i % 25_000)
    first17 = f"{region}{birth:%Y%m%d}{i // 25_000:03d}"
    return first17 + check_digit(first17)


def stranger_id_number(i: int) -> str:
    """A valid number of someone not on the register (another region)."""
    return id_number(i, region="110101")


def database_url(db: str) -> str:
    if db == "postgres":
        return os.environ.get("BENCH_DATABASE_URL", PG_URL)
    SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{SQLITE_PATH}"


def use_database(url: str, *, fresh: bool = False) -> None:
    """Point Django at the benchmark database ``url`` (postgres://… or sqlite:///…) and migrate it. A
    PostgreSQL database is created when missing, and dropped first with ``fresh``. Keys: the fixed
    test keys (WUYIQU_ENV=test) unless WUYIQU_DATA_KEY is set."""
    if not os.environ.get("WUYIQU_DATA_KEY"):
        os.environ["WUYIQU_ENV"] = "test"
    if url.startswith("postgres"):
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            if fresh:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wuyiqu.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def setup_django(db: str) -> str:
    """Configure and migrate the benchmark database; return its URL."""
    url = database_url(db)
    use_database(url)
    return url


def ensure_residents(n: int) -> None:
    """Make the database hold exactly the bench world of ``n`` residents (kept between runs)."""
    from django.db import connection, transaction

    from wuyiqu.lib import crypto
    from wuyiqu.lib.idcard import mask_id_number
    from wuyiqu.units.actions import do_load_divisions
    from wuyiqu.units.models import Household, Resident, Unit, UnitKind, district_of, path_for

    if Resident.objects.count() == n and Unit.objects.filter(code__contains="-NB").exists():
        return
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        for table in ("health_natresult", "health_positivecase", "health_measure", "units_resident", "units_residentdirectory",
                      "units_householdverification", "units_specialpopulationentry", "units_household"):
            cur.execute(f"DELETE FROM {table}")
    Unit.objects.filter(code__contains="-NB").delete()
    if not Unit.objects.exists():
        do_load_divisions()
    committees = list(Unit.objects.filter(kind__in=[UnitKind.COMMUNITY, UnitKind.VILLAGE]).order_by("code"))
    buildings_n = -(-n // PER_BUILDING)
    c = crypto.cipher()
    with transaction.atomic():
        buildings = []
        for b in range(buildings_n):
            parent = committees[b % len(committees)]
            code = f"{parent.code}-NB{b:05d}"
            buildings.append(Unit(code=code, name=f"核酸基准{b}栋", kind=UnitKind.BUILDING, parent=parent,
                                  path=path_for(parent.path, code), depth=parent.depth + 1))
        Unit.objects.bulk_create(buildings, batch_size=5000)
        households = []
        for building in buildings:
            for h in range(PER_BUILDING // PER_HOUSEHOLD):
                households.append(Household(code=f"{building.code}-{h:03d}", unit_id=building.pk,
                                            district_code=district_of(building.path), address=f"{building.name}{h}号"))
        Household.objects.bulk_create(households, batch_size=5000)
        batch: list[Resident] = []
        numbers: list[str] = []
        for i in range(n):
            number = id_number(i)
            batch.append(Resident(
                household_id=households[i // PER_HOUSEHOLD].pk,
                district_code=households[i // PER_HOUSEHOLD].district_code, name="居民", id_enc=b"", id_hash=c.lookup_hash(number),
                id_masked=mask_id_number(number),
                sex="M" if int(number[16]) % 2 else "F"))
            numbers.append(number)
            if len(batch) == 20_000:
                _flush(batch, numbers, c, Resident)
        _flush(batch, numbers, c, Resident)
    print(f"bench world: {n:,} residents in {buildings_n:,} buildings made in {time.perf_counter() - t0:.0f}s",
          flush=True)


def _flush(batch, numbers, c, Resident) -> None:
    encs = c.encrypt_many(numbers)  # the number encrypted, as the registry keeps it
    for r, e in zip(batch, encs, strict=True):
        r.id_enc = e
    Resident.objects.bulk_create(batch, batch_size=5000)
    batch.clear()
    numbers.clear()


def write_results_file(path: Path, n: int, day: dt.date, *, strangers_every: int = 100,
                       positive_every: int = 20_000) -> int:
    """One round: every resident once on ``day`` between 07:00 and 19:00, plus one person not on
    the register per ``strangers_every`` residents; one positive per ``positive_every``. Returns rows."""
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("身份证号,采样时间,检测结果\n")
        out = []
        for i in range(n):
            secs = 7 * 3600 + (i * 7919) % (12 * 3600)
            when = f"{day} {secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
            out.append(f"{id_number(i)},{when},{'阳性' if i % positive_every == 17 else '阴性'}\n")
            if i % strangers_every == 0:
                out.append(f"{stranger_id_number(i)},{when},阴性\n")
            if len(out) >= 100_000:
                rows += len(out)
                f.write("".join(out))
                out.clear()
        rows += len(out)
        f.write("".join(out))
    return rows
