"""A copy of the database without the keys: the attack of issue 14 (2) on 2,000 generated residents.

The attacker holds every clear column of every table and the district's county codes, and knows how
numbers are made (GB 11643: county, birth date, sequence code, check character) and which blocks
of each carrier prefix the region's phones use. Before: masks of 4 + 4 characters and a clear birth
date left at most 9 candidates per ID number, one with the county codes. The test counts, for each
resident, every number consistent with everything the database holds in clear.
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
from bisect import bisect_left, bisect_right
from types import SimpleNamespace

import pytest
from conftest import HONGQI_VILLAGE, TIANQIAO_COMMUNITY, WENLONG_COMMUNITY
from django.apps import apps as django_apps
from django.db import connection, models

from wuyiqu.lib import dates
from wuyiqu.lib.idcard import _CHECK_CHARS, _WEIGHTS, turns_three_on
from wuyiqu.units.actions import do_load_divisions, do_load_generated_world
from wuyiqu.units.generator import ID_REGIONS, generate_world, region_phone_blocks
from wuyiqu.units.models import Resident, Unit

EARLIEST_BIRTH = dt.date(1900, 1, 1)
MIGRATION = importlib.import_module("wuyiqu.units.migrations.0006_no_clear_birth_date")


@pytest.fixture
def residents(db):
    do_load_divisions()
    committees = list(Unit.objects.filter(code__in=[WENLONG_COMMUNITY, TIANQIAO_COMMUNITY, HONGQI_VILLAGE])
                      .order_by("code").values_list("code", "name", "kind"))
    world = generate_world(committees, residents=2000, seed=14, today=dates.today())
    do_load_generated_world(world=world)
    numbers = {r.id_number: r.phone for r in world.residents}
    assert len(numbers) >= 2000
    return numbers


def _clear_rows() -> list[tuple]:
    """What the copy gives of each resident without a key: every column but the ciphers and keyed hashes."""
    with connection.cursor() as cur:
        cur.execute("SELECT id, id_masked, sex, turns_three_on, bedridden, phone_masked, name, household_id "
                    "FROM units_resident")
        return cur.fetchall()


def _date_sums(first: dt.date, last: dt.date) -> tuple[list[dt.date], list[list[int]]]:
    """Every day first..last, and per residue mod 11 the running count of days whose 8 birth-date
    digits weigh to it (so any range of days has its histogram in 11 subtractions)."""
    days, running, counts = [], [], [0] * 11
    day = first
    while day <= last:
        digits = f"{day:%Y%m%d}"
        counts[sum(int(c) * w for c, w in zip(digits, _WEIGHTS[6:14], strict=True)) % 11] += 1
        days.append(day)
        running.append(counts.copy())
        day += dt.timedelta(days=1)
    return days, running


def _histogram(days, running, lo: dt.date, hi: dt.date) -> list[int]:
    i, j = bisect_left(days, lo), bisect_right(days, hi)
    if j <= i:
        return [0] * 11
    top = running[j - 1]
    base = running[i - 1] if i > 0 else [0] * 11
    return [a - b for a, b in zip(top, base, strict=True)]


# Sequence codes (3 digits, the last one's parity is the sex) by residue of their weighted sum mod 11.
_SEQ = {parity: [sum(1 for s in range(1000) if s % 2 == parity
                     and (int(f"{s:03d}"[0]) * 8 + int(f"{s:03d}"[1]) * 4 + int(f"{s:03d}"[2]) * 2) % 11 == r)
                 for r in range(11)] for parity in (0, 1)}


def _id_candidates(mask: str, sex: str, born_lo: dt.date, born_hi: dt.date, days, running, counties) -> int:
    """How many valid numbers fit the mask, the sex and a birth date in born_lo..born_hi."""
    head, check = mask[:3], mask[-1]
    target = _CHECK_CHARS.index(check)
    parity = 1 if sex == "M" else 0
    hist = _histogram(days, running, born_lo, born_hi)
    total = 0
    for county in counties:
        if not county.startswith(head):
            continue
        county_sum = sum(int(c) * w for c, w in zip(county, _WEIGHTS[:6], strict=True))
        total += sum(hist[r] * _SEQ[parity][(target - county_sum - r) % 11] for r in range(11))
    return total


def test_a_copied_database_gives_back_no_id_number_and_no_phone(residents):
    today = dates.today()
    counties = sorted(set(ID_REGIONS) | {u[:6] for u in Unit.objects.values_list("code", flat=True) if len(u) >= 6})
    days, running = _date_sums(EARLIEST_BIRTH, today)
    id_counts, phone_counts, child_counts = [], [], []
    truth = {r.pk: (r.reveal_id_number(), r.reveal_phone()) for r in Resident.objects.all()}
    for pk, mask, sex, third_birthday, bedridden, phone_mask, _name, _household in _clear_rows():
        number, phone = truth[pk]
        born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        # The attacker's birth-date range from every clear column: a kept third birthday gives the day
        # (or the two days 29 February / 1 March), generated phones are adults' only, the bedridden old.
        if third_birthday is not None:
            hi = third_birthday.replace(year=third_birthday.year - 3)
            lo = hi - dt.timedelta(days=1) if (hi.month, hi.day) == (3, 1) else hi
        else:
            lo, hi = EARLIEST_BIRTH, today - dt.timedelta(days=3 * 365 + 366)
        if phone_mask:
            hi = min(hi, today - dt.timedelta(days=18 * 365))
        elif third_birthday is None:
            lo = max(lo, today - dt.timedelta(days=19 * 365))
        if bedridden:
            hi = min(hi, today - dt.timedelta(days=75 * 365))
        assert lo <= born <= hi, (number, lo, hi)  # the attacker's inference is sound
        if third_birthday is not None:
            assert turns_three_on(born) == third_birthday
        n = _id_candidates(mask, sex, lo, hi, days, running, counties)
        assert n >= 2, (mask, n)  # never recovered uniquely
        assert number[:3] == mask[:3] and number[-1] == mask[-1] and int(number[16]) % 2 == (sex == "M")
        (child_counts if third_birthday is not None else id_counts).append(n)
        if phone_mask:
            assert phone_mask == phone[:3] + "******" + phone[-2:]
            # The prefix's blocks of the region (all of them known to the attacker) times 100 endings.
            blocks = region_phone_blocks(phone_mask[:3])
            assert int(phone[3:7]) in blocks
            phone_counts.append(len(blocks) * 100)
    everyone = id_counts + child_counts
    assert len(everyone) >= 2000 and child_counts and phone_counts
    assert sum(everyone) / len(everyone) >= 10_000, sum(everyone) / len(everyone)
    assert min(everyone) >= 2 and min(phone_counts) >= 10_000
    assert sum(phone_counts) / len(phone_counts) >= 10_000


def _text_columns():
    for model in django_apps.get_models():
        if model._meta.proxy or not model._meta.managed or model._meta.pk.column is None:
            continue
        for f in model._meta.concrete_fields:
            if isinstance(f, (models.CharField, models.TextField, models.JSONField)) and f.column:
                yield model._meta.db_table, f.column, isinstance(f, models.JSONField)


def test_no_other_clear_column_holds_more_of_a_number(residents):
    """Every text column of every table: no birth-date-bearing run of digits, no full phone, no mask
    longer than the residents' own (a reason, an audit row or a report copying more)."""
    numbers, phones = set(residents), {p for p in residents.values() if p}
    leak = re.compile(r"[0-9]{6}(?:19|20)[0-9]{6}|1[3-9][0-9]{9}|[0-9]{4}\*{10}|1[0-9]{2}\*{4}[0-9]{4}")
    scanned = 0
    for table, column, is_json in _text_columns():
        q = connection.ops.quote_name
        as_text = f"CAST({q(column)} AS TEXT)" if is_json else q(column)
        with connection.cursor() as cur:
            cur.execute(f"SELECT {as_text} FROM {q(table)}")
            for (text,) in cur.fetchall():
                if not text:
                    continue
                scanned += 1
                hits = [h for h in leak.findall(text) if h in numbers or h in phones or "*" in h]
                assert not hits, (table, column, hits)
    assert scanned > 2000


def test_the_migration_rebuilds_nothing_from_old_rows(residents):
    """0006 on rows of the earlier shape: a clear birth date and 4 + 4 masks in the residents, facts and
    stored text become a kept third birthday (children only) and 3 + 1 / 3 + 2 masks."""
    from django.db.migrations.loader import MigrationLoader

    today = dates.today()
    state = MigrationLoader(connection).project_state(MIGRATION.Migration.dependencies)
    MIGRATION.Migration.operations[0].state_forwards("units", state)  # the AddField before the data step
    old_apps = state.apps
    child, adult = list(Resident.objects.exclude(phone_masked="").order_by("id")[:2])
    child_born = today - dt.timedelta(days=400)
    old_masks = {}
    # The earlier column, put back by hand (a schema editor cannot run inside the test's transaction on
    # SQLite).
    editor = SimpleNamespace(connection=connection, quote_name=connection.ops.quote_name)
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":  # the fixture's deferred foreign-key checks, before the ALTER
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("ALTER TABLE units_resident ADD COLUMN birth_date date NULL")
    for r, born in ((child, child_born), (adult, dt.date(1980, 5, 1))):
        number, phone = r.reveal_id_number(), r.reveal_phone()
        old_masks[r.pk] = (number[:4] + "*" * 10 + number[-4:], phone[:3] + "****" + phone[-4:])
        with connection.cursor() as cur:
            cur.execute("UPDATE units_resident SET birth_date = %s, turns_three_on = NULL, id_masked = %s, "
                        "phone_masked = %s WHERE id = %s", [born, *old_masks[r.pk], r.pk])
    # The stored row is written with today's model (the table has columns added after 0006, such as
    # the district code, that the historical model does not know); the migration reads it through its own.
    from wuyiqu.standards.models import Evaluation as CurrentEvaluation

    Evaluation = old_apps.get_model("standards", "Evaluation")
    unit = Unit.objects.get(code=WENLONG_COMMUNITY)
    reason = f"居民 张** ({old_masks[adult.pk][0]}) 为密接，管控至 12-12；电话 {old_masks[adult.pk][1]}"
    CurrentEvaluation.objects.create(unit_id=unit.pk, on=today, eligible=False, named=False,
                              failed=["no_close_contact"], details={"no_close_contact": reason},
                              profile_version="wenlong-2022 test")
    MIGRATION.forwards(old_apps, editor)
    with connection.cursor() as cur:
        cur.execute("SELECT id, turns_three_on, id_masked, phone_masked FROM units_resident WHERE id IN (%s, %s)",
                    [child.pk, adult.pk])
        after = {pk: (turns, idm, pm) for pk, turns, idm, pm in cur.fetchall()}
    # The column goes with the test's transaction (DDL is transactional on SQLite and PostgreSQL).
    turns = after[child.pk][0]
    assert (dt.date.fromisoformat(turns) if isinstance(turns, str) else turns) == turns_three_on(child_born)
    assert after[adult.pk][0] is None
    for r in (child, adult):
        number, phone = r.reveal_id_number(), r.reveal_phone()
        assert after[r.pk][1:] == (number[:3] + "*" * 14 + number[-1], phone[:3] + "******" + phone[-2:])
    stored = Evaluation.objects.get(unit_id=unit.pk, on=today).details["no_close_contact"]
    assert stored == f"一名居民 为密接，管控至 12-12；电话 {after[adult.pk][2]}"
    assert MIGRATION.remask_text(f"居民 ({old_masks[adult.pk][0]}) 11-23 报告") == "一名居民 11-23 报告"
    assert MIGRATION.remask_text(f"证号 {old_masks[adult.pk][0]}") == f"证号 {after[adult.pk][1]}"
    # A second run changes nothing (the new masks do not look like the old ones).
    assert MIGRATION.remask_text(stored) == stored


def test_the_daily_run_forgets_third_birthdays_a_year_past(residents):
    from wuyiqu.audit.models import AuditEvent
    from wuyiqu.supervision.tasks import run_daily_supervision

    today = dates.today()
    old, recent, young = Resident.objects.order_by("id")[:3]
    for r, day in ((old, today - dt.timedelta(days=367)), (recent, today - dt.timedelta(days=366)),
                   (young, today + dt.timedelta(days=30))):
        Resident.objects.filter(pk=r.pk).update(turns_three_on=day)
    Resident.objects.exclude(pk__in=[old.pk, recent.pk, young.pk]).update(turns_three_on=None)
    result = run_daily_supervision.call(today.isoformat())
    assert result["third_birthdays_forgotten"] == 1
    kept = dict(Resident.objects.exclude(turns_three_on=None).values_list("pk", "turns_three_on"))
    assert kept == {recent.pk: today - dt.timedelta(days=366), young.pk: today + dt.timedelta(days=30)}
    assert AuditEvent.objects.filter(action="units.forget_third_birthdays").count() == 1
    assert run_daily_supervision.call(today.isoformat())["third_birthdays_forgotten"] == 0
