"""Supervision on the district-sized world of bench/evaluate_world.py, with EVERY titled unit named.

    .venv/bin/python bench/supervise_world.py --db sqlite      # bench/out/supervise_bench.sqlite3
    .venv/bin/python bench/supervise_world.py --db postgres    # database wuyiqu_bench_sup

The world is built by ``evaluate_world.build`` (imported, not copied; skipped when the database
holds it already — a copy of the standards engineer's database/file is the quickest start:
``CREATE DATABASE wuyiqu_bench_sup TEMPLATE wuyiqu_bench_eval`` and the SQLite backup API). Then
every building, compound, group, village, community and street is given a current title (once).

Times, in one run, each inside a transaction that is rolled back (so runs repeat on the same data):
1. the daily run on D (``run_daily``): the first run of the day (the world's facts withdraw and
   warn a lot), and the second run of the same day (nothing left to change), each with the
   evaluation time beside the total; target < 10 s, dominated by the evaluation;
2. a positive case recorded for a resident of a named building in a named compound in a named
   community (``health.actions.do_record_case``: the case, its audit row, and the recheck that
   withdraws the building, the compound, the community and whatever else fails); target < 200 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import evaluate_world as world  # noqa: E402  (bench/evaluate_world.py: the world builder)

PG_URL = "postgres://postgres@127.0.0.1:5432/wuyiqu_bench_sup"
D = world.D


def setup(db: str) -> None:
    os.environ.setdefault("WUYIQU_ENV", "test")
    if db == "postgres":
        url = os.environ.get("BENCH_DATABASE_URL", PG_URL)
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
        os.environ["DATABASE_URL"] = url
    else:
        world.OUT.mkdir(exist_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{world.OUT / 'supervise_bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wuyiqu.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def name_everything() -> int:
    """A current title for every titled unit that has none (kept between runs)."""
    from django.db import connection, transaction

    title = ("CASE u.kind WHEN 'building' THEN '无疫楼栋' WHEN 'compound' THEN '无疫小区' WHEN 'group' THEN '无疫社' "
             "WHEN 'village' THEN '无疫村' WHEN 'community' THEN '无疫社区' ELSE '无疫街道' END")
    named_on = (D - dt.timedelta(days=20)).isoformat()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"""INSERT INTO certification_title (district_code, unit_id, title, named_on, withdrawn_reason)
            SELECT split_part(u.path, '/', 2), u.id, {title}, %s, '' FROM units_unit u
            WHERE u.kind IN ('building', 'compound', 'group', 'village', 'community', 'street')
              AND NOT EXISTS (SELECT 1 FROM certification_title t WHERE t.unit_id = u.id AND t.withdrawn_on IS NULL)""",
                    [named_on])
        return cur.rowcount


def clock():
    from zoneinfo import ZoneInfo

    import time_machine

    return time_machine.travel(dt.datetime(D.year, D.month, D.day, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))


def daily(runs: int) -> None:
    from django.db import transaction

    from wuyiqu.supervision.services import run_daily

    for i in range(runs):
        with transaction.atomic():
            t = time.perf_counter()
            first = run_daily(on=D)
            t1 = time.perf_counter() - t
            t = time.perf_counter()
            second = run_daily(on=D)
            t2 = time.perf_counter() - t
            transaction.set_rollback(True)
        print(f"daily run #{i + 1}, first of the day: {t1:.2f} s total = evaluation {first.evaluate_seconds:.2f} s "
              f"({first.evaluate_seconds / t1:.0%}) + writes {first.write_seconds:.2f} s + storing the day "
              f"{first.store_seconds:.2f} s + rest; {first.evaluated} units, withdrawn {len(first.withdrawn)}, "
              f"warnings opened {first.opened}, evaluations stored {first.stored}")
        print(f"daily run #{i + 1}, same day again: {t2:.2f} s total = evaluation {second.evaluate_seconds:.2f} s "
              f"({second.evaluate_seconds / t2:.0%}) + writes {second.write_seconds:.2f} s + comparing the stored day "
              f"{second.store_seconds:.2f} s + rest; withdrawn {len(second.withdrawn)}, opened {second.opened}, "
              f"stored {second.stored} (idempotent: nothing changed)")


def positive_case(runs: int) -> None:
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from wuyiqu.certification.models import Title
    from wuyiqu.health.actions import do_record_case
    from wuyiqu.units.models import Household, Resident, Unit

    building = Unit.objects.filter(kind="building", path__contains="-C3-").order_by("id")[500]
    compound, community = Unit.objects.get(pk=building.parent_id), None
    community = Unit.objects.get(pk=compound.parent_id)
    chain = [building.pk, compound.pk, community.pk]
    times = []
    for _ in range(runs):
        with transaction.atomic():
            r = Resident(household=Household.objects.filter(unit=building).first(), name="李四", sex="F")
            number = "500222198001011232"
            r.set_id_number(number)
            r.set_phone("")
            r.save()
            assert Title.objects.filter(unit_id__in=chain, withdrawn_on__isnull=True).count() == 3
            with CaptureQueriesContext(connection) as q:
                t = time.perf_counter()
                do_record_case(actor=None, reported_on=D, case_type="confirmed", id_number=number)
                times.append(time.perf_counter() - t)
            assert not Title.objects.filter(unit_id__in=chain, withdrawn_on__isnull=True).exists()
            withdrawn = Title.objects.filter(withdrawn_on=D).count()
            transaction.set_rollback(True)
    print(f"positive case for a resident of {building.code} (named building, compound {compound.code}, community "
          f"{community.code}; the street is named too): recorded and all three withdrawn in the same transaction "
          f"in {min(times) * 1000:.0f} ms (runs: {', '.join(f'{x * 1000:.0f}' for x in times)} ms; "
          f"{len(q.captured_queries)} queries; {withdrawn} titles withdrawn)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    setup(args.db)
    world.build()
    added = name_everything()
    from django.db import connection

    with connection.cursor() as cur:
        # As evaluate_world does after its build: VACUUM sets the visibility map (index-only probes of
        # the nucleic-acid index without heap reads), what autovacuum does in time on a real system.
        cur.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")

    from wuyiqu.certification.models import Title

    print(f"database: {connection.vendor}; named units: {Title.objects.filter(withdrawn_on__isnull=True).count()} "
          f"({added} named now)")
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (the machine is shared)")
    with clock():
        positive_case(5)
        daily(args.runs)


if __name__ == "__main__":
    main()
