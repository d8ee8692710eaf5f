"""Facts that arrive before the person is registered count once the person is (docs/facts.md, "Facts
before the person"): a residents import — from the console or the import page — and the
administrator's `wuyiqu relink-facts` link the unmatched results, cases and measures to the resident
and the household's unit; the evaluation and the supervision see them at once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection, connections, transaction
from import_flow import confirm
from test_standards_world import D, build_street, days, id_number
from test_supervision_world import ALL, at, current_codes, named_street

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role
from wuyiqu.audit.models import AuditEvent
from wuyiqu.health import linking
from wuyiqu.health.models import Measure, NatResult, PositiveCase
from wuyiqu.imports.models import ImportJob, ImportStatus
from wuyiqu.imports.services import run_import
from wuyiqu.lib import crypto
from wuyiqu.standards.evaluator import evaluate
from wuyiqu.supervision.models import TitleEvent
from wuyiqu.units.models import Household, Resident

pytestmark = pytest.mark.django_db

NEWCOMER = id_number(dt.date(1990, 3, 7))  # registered in the tests, after the facts
STRANGER = id_number(dt.date(1985, 6, 1))  # never registered: their facts stay unmatched
HOME = "T1C-C1-B1-101"  # a household of building T1C-C1-B1


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def import_facts(tmp_path, *numbers: str, case: bool = True) -> None:
    """For each number: a negative result on D, a confirmed case on D−1 (unless ``case`` is off) and a
    close-contact measure covering D — each imported as a file, each unmatched (nobody registered)."""
    nat = "\n".join(f"{n},{D} 08:{i:02d},阴性" for i, n in enumerate(numbers))
    cases = "\n".join(f"{n},{D - days(1)},confirmed" for n in numbers)
    contacts = "\n".join(f"{n},{D - days(2)},{D + days(5)}" for n in numbers)
    files = [("nat-results", "id_number,sampled_at,result\n" + nat),
             ("close-contacts", "id_number,start_on,end_on\n" + contacts)]
    if case:
        files.append(("cases", "id_number,reported_on,type\n" + cases))
    with at(D):
        for kind, text in files:
            job = run_import(kind=kind, path=write(tmp_path, f"{kind}.csv", text + "\n"))
            assert job.status == ImportStatus.SUCCEEDED, job.message
            assert job.unmatched == len(numbers)


def import_residents(tmp_path, *rows: tuple[str, str], actor=None, scope=None) -> ImportJob:
    text = "id_number,name,household_code\n" + "".join(f"{n},新居民,{hh}\n" for n, hh in rows)
    with at(D):
        return run_import(kind="residents", path=write(tmp_path, "residents.csv", text), actor=actor, scope=scope)


def facts_of(number: str) -> list[tuple]:
    """(table, resident id, unit id) of every stored fact about ``number``."""
    h = crypto.cipher().lookup_hash(number)
    return sorted(
        [("case", *row) for row in PositiveCase.objects.filter(id_hash=h).values_list("resident_id", "unit_id")]
        + [("measure", *row) for row in Measure.objects.filter(id_hash=h).values_list("resident_id", "unit_id")]
        + [("result", *row) for row in NatResult.objects.filter(id_hash=h).values_list("resident_id", "unit_id")])


def snapshot() -> list[tuple]:
    return sorted(
        [(r.id_hash, r.resident_id, r.unit_id) for r in NatResult.objects.all()]
        + [(r.id_hash, r.resident_id, r.unit_id) for r in PositiveCase.objects.all()]
        + [(r.id_hash, r.resident_id, r.unit_id) for r in Measure.objects.all()])


def verdict(code: str, on: dt.date = D):
    return next(e for e in evaluate(on) if e.unit.code == code)


def criterion(evaluation, cid: str):
    return next(c for c in evaluation.criteria if c.id == cid)


def test_a_residents_import_links_the_earlier_facts_and_the_evaluation_counts_them(tmp_path):
    u = build_street()
    import_facts(tmp_path, NEWCOMER, STRANGER)
    assert facts_of(NEWCOMER) == [("case", None, None), ("measure", None, None), ("result", None, None)]
    before = verdict("T1C-C1-B1")
    assert before.eligible and not before.failed  # the facts count for no unit yet

    job = import_residents(tmp_path, (NEWCOMER, HOME))
    assert job.status == ImportStatus.SUCCEEDED and job.created == 1, job.message
    resident = Resident.objects.get(id_hash=crypto.cipher().lookup_hash(NEWCOMER))
    b1 = u["B1"].pk
    assert facts_of(NEWCOMER) == [("case", resident.pk, b1), ("measure", resident.pk, b1), ("result", resident.pk, b1)]
    assert facts_of(STRANGER) == [("case", None, None), ("measure", None, None), ("result", None, None)]

    after = verdict("T1C-C1-B1")
    assert {"no_case", "no_close_contact"} <= set(after.failed)
    assert "no_case" in verdict("T1C").failed  # a case counts for every unit above
    # Participation: the newcomer is one more resident to test, and their result (sampled before they
    # were registered) counts: 3 of 3, not 2 of 3.
    assert "应检 3 人，已检 3 人" in criterion(after, "nat_participation").detail
    assert criterion(after, "nat_participation").passed

    row = AuditEvent.objects.get(action="imports.run", target_id=str(job.pk))
    assert row.detail["facts_linked"] == {"results": 1, "cases": 1, "measures": 1}


def test_a_linked_result_is_what_makes_participation_pass(tmp_path):
    build_street()
    import_facts(tmp_path, NEWCOMER, case=False)
    Measure.objects.all().delete()  # only the result matters here
    assert import_residents(tmp_path, (NEWCOMER, HOME)).status == ImportStatus.SUCCEEDED
    assert criterion(verdict("T1C-C1-B1"), "nat_participation").passed
    NatResult.objects.filter(id_hash=crypto.cipher().lookup_hash(NEWCOMER)).update(resident_id=None, unit_id=None)
    unlinked = criterion(verdict("T1C-C1-B1"), "nat_participation")  # as before this change
    assert not unlinked.passed and "应检 3 人，已检 2 人" in unlinked.detail


def test_importing_the_residents_again_changes_nothing(tmp_path):
    build_street()
    import_facts(tmp_path, NEWCOMER, STRANGER)
    assert import_residents(tmp_path, (NEWCOMER, HOME)).status == ImportStatus.SUCCEEDED
    stored = snapshot()
    again = import_residents(tmp_path, (NEWCOMER, HOME))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    assert snapshot() == stored
    row = AuditEvent.objects.get(action="imports.run", target_id=str(again.pk))
    assert row.detail["facts_linked"] == {"results": 0, "cases": 0, "measures": 0}


def test_an_import_that_fails_links_nothing(tmp_path):
    build_street()
    import_facts(tmp_path, NEWCOMER)
    job = import_residents(tmp_path, (NEWCOMER, HOME), (STRANGER, "NO-SUCH-HOUSEHOLD"))
    assert job.status == ImportStatus.FAILED
    assert facts_of(NEWCOMER) == [("case", None, None), ("measure", None, None), ("result", None, None)]


def test_a_linked_case_withdraws_the_titles_in_the_import(tmp_path):
    named_street()
    import_facts(tmp_path, NEWCOMER)
    assert current_codes() == ALL  # unmatched: no unit's title is touched
    job = import_residents(tmp_path, (NEWCOMER, HOME))
    assert job.status == ImportStatus.SUCCEEDED, job.message
    assert current_codes() == ALL - {"T1C-C1-B1", "T1C-C1", "T1C", "T1"}
    assert set(TitleEvent.objects.values_list("source", flat=True)) == {"import:residents"}


def test_the_import_page_links_the_facts_of_the_residents_it_adds(tmp_path, client, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    u = build_street()
    import_facts(tmp_path, NEWCOMER, STRANGER)
    staff = do_create_user(actor=None, username="tina", password="correct-horse-battery",
                           role=Role.COMMUNITY_STAFF, unit=u["T1C"], display_name="tina")
    client.force_login(staff)
    upload = SimpleUploadedFile("居民.csv", f"身份证号,姓名,户编码\n{NEWCOMER},新居民,{HOME}\n".encode(),
                                content_type="text/csv")
    with at(D):
        response = client.post(f"/units/{u['T1C'].code}/import/", {"kind": "residents", "file": upload})
        job = confirm(client, response)  # the preview, then 确认导入
    assert job.status == ImportStatus.SUCCEEDED and job.created == 1, job.message
    resident = Resident.objects.get(household__code=HOME, name="新居民")
    assert {(rid, uid) for _t, rid, uid in facts_of(NEWCOMER)} == {(resident.pk, u["B1"].pk)}
    assert {(rid, uid) for _t, rid, uid in facts_of(STRANGER)} == {(None, None)}
    row = AuditEvent.objects.get(action="imports.run", target_id=str(job.pk))
    assert row.actor == staff and row.detail["facts_linked"] == {"results": 1, "cases": 1, "measures": 1}


def test_a_linked_fact_keeps_a_unit_it_has(tmp_path):
    """Only an empty unit is filled in: a fact that already names its unit keeps it."""
    u = build_street()
    import_facts(tmp_path, NEWCOMER)
    h = crypto.cipher().lookup_hash(NEWCOMER)
    NatResult.objects.filter(id_hash=h).update(unit_id=u["B9"].pk)
    assert import_residents(tmp_path, (NEWCOMER, HOME)).status == ImportStatus.SUCCEEDED
    assert set(NatResult.objects.filter(id_hash=h).values_list("unit_id", flat=True)) == {u["B9"].pk}
    assert set(Measure.objects.filter(id_hash=h).values_list("unit_id", flat=True)) == {u["B1"].pk}


def test_the_command_links_facts_stored_before_and_a_second_run_changes_nothing(tmp_path, capsys):
    named_street()
    import_facts(tmp_path, NEWCOMER, STRANGER)
    # Older data: the resident was registered without linking (as before residents imports did it).
    newcomer = Resident(household=Household.objects.get(code=HOME), name="老居民",
                        sex="M")
    newcomer.set_id_number(NEWCOMER)
    newcomer.set_phone("")
    newcomer.save()
    assert current_codes() == ALL and {rid for _t, rid, _u in facts_of(NEWCOMER)} == {None}

    with at(D):
        call_command("relink-facts")
    assert "已关联核酸结果 1 条、阳性病例 1 条、管控措施 1 条，涉及 1 个单位" in capsys.readouterr().out
    b1 = Household.objects.get(code=HOME).unit_id
    assert {(rid, uid) for _t, rid, uid in facts_of(NEWCOMER)} == {(newcomer.pk, b1)}
    assert {(rid, uid) for _t, rid, uid in facts_of(STRANGER)} == {(None, None)}
    assert current_codes() == ALL - {"T1C-C1-B1", "T1C-C1", "T1C", "T1"}
    assert set(TitleEvent.objects.values_list("source", flat=True)) == {"health.relink_facts"}
    row = AuditEvent.objects.get(action="health.relink_facts")
    assert row.actor is None and row.detail == {"results": 1, "cases": 1, "measures": 1, "units": 1, "held": 0}

    stored, events = snapshot(), TitleEvent.objects.count()
    with at(D):
        call_command("relink-facts")
    assert "已关联核酸结果 0 条、阳性病例 0 条、管控措施 0 条，涉及 0 个单位" in capsys.readouterr().out
    assert snapshot() == stored and TitleEvent.objects.count() == events
    assert AuditEvent.objects.filter(action="health.relink_facts").count() == 2


def test_linking_is_one_statement_per_fact_table_for_a_whole_batch(tmp_path):
    build_street()
    numbers = [id_number(dt.date(1970, 1, 1) + days(i)) for i in range(30)]
    import_facts(tmp_path, *numbers)
    rows = [(n, HOME) for n in numbers]
    text = "id_number,name,household_code\n" + "".join(f"{n},新居民,{hh}\n" for n, hh in rows)
    from django.test.utils import CaptureQueriesContext

    with at(D), CaptureQueriesContext(connection) as q:
        job = run_import(kind="residents", path=write(tmp_path, "r.csv", text))
    assert job.status == ImportStatus.SUCCEEDED and job.created == 30
    # Cases and measures move into the person's district as the results do (PersonFact's docstring: the
    # unscoped import kept them in ""): one delete and one insert per table for the 30 people.
    for table in ("health_positivecase", "health_measure"):
        writes = [x["sql"].lstrip().split()[0].upper() for x in q.captured_queries
                  if f'"{table}"' in x["sql"] and x["sql"].lstrip().upper().startswith(("DELETE", "INSERT", "UPDATE"))]
        assert writes == ["DELETE", "INSERT"], (table, writes)
    # Results move into the person's district (NatResult's docstring): one delete where they were
    # kept (one district here, "" of the unscoped import) and one insert, for the 30 people.
    moves = [x["sql"].lstrip()[:40] for x in q.captured_queries if "health_natresult" in x["sql"]
             and x["sql"].lstrip().upper().startswith(("DELETE", "INSERT", "UPDATE"))]
    assert [m.split()[0].upper() for m in moves] == ["DELETE", "INSERT"], moves
    assert set(NatResult.objects.values_list("district_code", flat=True)) == {"T"}
    assert NatResult.objects.filter(resident_id__isnull=True).count() == 0
    assert PositiveCase.objects.filter(resident_id__isnull=True).count() == 0


@pytest.mark.django_db(transaction=True)  # the lock lives until a real commit
def test_linking_holds_the_lock_that_fact_writers_wait_for():
    """PostgreSQL: while a transaction that linked facts is open, a fact writer's shared lock cannot be
    had (it would wait for the commit). SQLite needs no lock: its transactions are IMMEDIATE, so a
    second writer cannot even begin until the first one commits."""
    build_street()
    if connection.vendor != "postgresql":
        assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
        return
    other = connections.create_connection("default")
    try:
        with transaction.atomic():
            linking.link_facts([crypto.cipher().lookup_hash(NEWCOMER)])
            with other.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock_shared(%s)", [linking._LINK_LOCK])
                assert cur.fetchone() == (False,)
        with other.cursor() as cur:  # committed: free again
            cur.execute("SELECT pg_try_advisory_lock_shared(%s)", [linking._LINK_LOCK])
            assert cur.fetchone() == (True,)
            cur.execute("SELECT pg_advisory_unlock_shared(%s)", [linking._LINK_LOCK])
    finally:
        other.close()


def test_the_world_generator_links_the_facts_of_the_people_it_adds(tmp_path):
    """The other place residents are created (demo, test worlds): same linking, same audit detail."""
    from conftest import WENLONG_COMMUNITY

    from wuyiqu.units.actions import do_load_divisions, do_load_generated_world
    from wuyiqu.units.generator import generate_world
    from wuyiqu.units.models import Unit

    do_load_divisions()
    committees = list(Unit.objects.filter(code=WENLONG_COMMUNITY).values_list("code", "name", "kind"))
    world = generate_world(committees, residents=40, seed=3)
    person = world.residents[5].id_number
    import_facts(tmp_path, person, STRANGER)

    do_load_generated_world(world=world)
    resident = Resident.objects.get(id_hash=crypto.cipher().lookup_hash(person))
    unit = resident.household.unit_id
    assert facts_of(person) == [("case", resident.pk, unit), ("measure", resident.pk, unit), ("result", resident.pk, unit)]
    assert {(rid, uid) for _t, rid, uid in facts_of(STRANGER)} == {(None, None)}
    row = AuditEvent.objects.get(action="units.load_generated_world")
    assert row.detail["facts_linked"] == {"results": 1, "cases": 1, "measures": 1}
