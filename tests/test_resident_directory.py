"""The city-wide resident directory (``units.directory``): every writer of the register keeps it, its key
makes an ID number unique across the districts (two districts registering the same new number at the
same moment: the second is refused whole), and the nucleic-acid import finds its people through it,
reading each district's residents only with a statement that names the district."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from test_standards_world import D, id_number, make_resident
from test_supervision_world import at, named_street
from test_units_relocation import other_district

from wuyiqu.health.models import NatResult
from wuyiqu.health.nat_import import write_nat_rows
from wuyiqu.imports.actions import RowRefused, do_record_row
from wuyiqu.imports.models import ImportStatus
from wuyiqu.imports.services import run_import
from wuyiqu.lib import crypto
from wuyiqu.units import directory
from wuyiqu.units.actions import do_move_resident, do_remove_resident
from wuyiqu.units.models import Resident, ResidentDirectory

pytestmark = pytest.mark.django_db

NEWCOMER = id_number(dt.date(1991, 4, 2))
ANOTHER = id_number(dt.date(1992, 8, 9))


def entries() -> set[tuple[str, str]]:
    return set(ResidentDirectory.objects.values_list("id_hash", "district_code"))


def register() -> set[tuple[str, str]]:
    return set(Resident.objects.values_list("id_hash", "district_code"))


def import_residents(tmp_path, rows: list[tuple[str, str]], name: str = "residents.csv"):
    path = tmp_path / name
    path.write_text("id_number,name,household_code\n" + "".join(f"{n},新居民,{hh}\n" for n, hh in rows),
                    encoding="utf-8")
    with at(D):
        return run_import(kind="residents", path=path)


def test_every_writer_of_the_register_keeps_the_directory(tmp_path):
    u = named_street()  # residents saved one by one (Resident.save)
    target = other_district()
    assert entries() == register() and len(entries()) >= 5
    job = import_residents(tmp_path, [(NEWCOMER, target.code), (ANOTHER, f"{u['B9'].code}-101")])
    assert job.status == ImportStatus.SUCCEEDED, job.message
    h = crypto.cipher().lookup_hash
    assert (h(NEWCOMER), "S") in entries() and (h(ANOTHER), "T") in entries()
    # A move to another district: the person's entry names their new district.
    person = Resident.objects.filter(household__unit=u["B9"]).order_by("id").first()
    with at(D):
        do_move_resident(actor=None, resident=person, household_code=target.code)
    assert (person.id_hash, "S") in entries() and (person.id_hash, "T") not in entries()
    # A number corrected on a stored resident: the entry follows it.
    kept = Resident.objects.filter(household__unit=u["B9"]).order_by("id").first()
    old = kept.id_hash
    kept.set_id_number(id_number(dt.date(1970, 1, 9)))
    kept.save(update_fields=["id_enc", "id_hash", "id_masked", "turns_three_on"])
    assert old not in dict(entries()) and (kept.id_hash, "T") in entries()
    # Bulk inserts too (the generator's and the benches' path).
    extra = Resident(household=target, name="李四", sex="F")
    extra.set_id_number(id_number(dt.date(1988, 2, 3)))
    Resident.objects.bulk_create([extra])
    assert entries() == register()
    assert directory.districts_of([extra.id_hash, NEWCOMER]) == {extra.id_hash: "S"}
    # Taken off the register (do_remove_resident, or a queryset's delete): the number leaves the directory.
    with at(D):
        do_remove_resident(actor=None, resident=Resident.objects.get(pk=extra.pk), reason="已迁往外省")
    Resident.objects.filter(id_hash=h(ANOTHER)).delete()
    assert extra.id_hash not in dict(entries()) and h(ANOTHER) not in dict(entries())
    assert entries() == register()


def test_a_number_is_unique_across_districts_by_the_directorys_key():
    u = named_street()
    target = other_district()
    person = Resident.objects.filter(household__unit=u["B9"]).order_by("id").first()
    twin = Resident(household=target, name="同号", sex="M")
    twin.set_id_number(person.reveal_id_number())  # the residents' own key, (district, number), lets it in
    twin.set_phone("")
    copy = Resident(household=target, name="同号", sex="M")
    copy.set_id_number(person.reveal_id_number())
    before = (register(), entries())
    with pytest.raises(IntegrityError), transaction.atomic():
        twin.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        Resident.objects.bulk_create([copy])
    assert (register(), entries()) == before


def test_a_residents_import_that_races_another_district_is_refused_whole(tmp_path, monkeypatch):
    """Two districts register the same new number at the same moment: the second one's look-up ran
    before the first committed (stood in for here by a look-up that finds nothing), so only the
    directory's key stops it — the whole import is refused with a message, and nothing is written."""
    u = named_street()
    target = other_district()
    person = Resident.objects.filter(household__unit=u["B9"]).order_by("id").first()
    number = person.reveal_id_number()
    monkeypatch.setattr(directory, "select_by_district", lambda sql, hashes, extra=(): [])
    monkeypatch.setattr("wuyiqu.imports.kinds.people._registered", lambda hashes: {})
    before = (register(), entries())
    job = import_residents(tmp_path, [(NEWCOMER, target.code), (number, target.code)])
    assert job.status == ImportStatus.FAILED
    assert "已由其他导入登记" in job.message
    assert (register(), entries()) == before
    # The form says the same, naming no person, and writes nothing either.
    with at(D), pytest.raises(RowRefused) as refused:
        do_record_row(kind="residents", raw={"id_number": number, "name": "同号", "household_code": target.code},
                      actor=None, scope=None)
    assert "已由其他导入登记" in refused.value.message
    assert (register(), entries()) == before


RESIDENT_TABLE = re.compile(r"\bunits_resident\b")


def test_the_results_import_finds_people_through_the_directory_and_names_each_district():
    u = named_street()
    target = other_district()
    here = Resident.objects.filter(household__unit=u["B9"]).order_by("id").first()
    there = make_resident(target, born=dt.date(1979, 7, 7))
    rows = [(here.reveal_id_number(), f"{D} 09:00", "negative"),
            (there.reveal_id_number(), f"{D} 09:05", "negative"),
            (NEWCOMER, f"{D} 09:10", "negative")]  # on no register
    with at(D), transaction.atomic(), CaptureQueriesContext(connection) as queries:
        counts = write_nat_rows(rows)
    assert (counts.created, counts.unmatched) == (3, 1)
    h = crypto.cipher().lookup_hash
    mine = NatResult.objects.filter(sampled_on=D, id_hash__in=[here.id_hash, there.id_hash, h(NEWCOMER)],
                                    sampled_at__lt=dt.datetime(D.year, D.month, D.day, 2, tzinfo=dt.UTC))  # 09:xx in Shanghai
    assert set(mine.values_list("id_hash", "resident_id", "district_code")) == \
        {(here.id_hash, here.pk, "T"), (there.id_hash, there.pk, "S"), (h(NEWCOMER), None, "")}
    sql = [q["sql"] for q in queries.captured_queries]
    assert any(ResidentDirectory._meta.db_table in s for s in sql)
    reads = [s for s in sql if RESIDENT_TABLE.search(s)]
    assert reads, sql
    # Every statement that reads the residents names the district it reads (on Citus: one shard).
    for s in reads:
        assert re.search(r'district_code"? = ', s), s
