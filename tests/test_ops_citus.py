"""The Citus deployment mode where there is no Citus (SQLite, plain PostgreSQL): `wuyiqu citus`
refuses with a clear message, and the district code every distributed table carries is filled from
the row's unit. The cluster itself: tests/test_citus.py (WUYIQU_CITUS=1)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from test_standards_world import D, build_street

from wuyiqu.lib import crypto
from wuyiqu.ops.citus import DISTRIBUTED, REFERENCE, citus_version, tables
from wuyiqu.standards.actions import do_store_evaluations
from wuyiqu.standards.models import Evaluation
from wuyiqu.units.models import district_of

pytestmark = pytest.mark.django_db


def test_distribute_and_status_refuse_without_the_citus_extension():
    assert citus_version() is None and tables() == {}
    with pytest.raises(CommandError, match="citus"):
        call_command("citus", "distribute")
    with pytest.raises(CommandError, match="citus"):
        call_command("citus", "status")


def test_the_lists_name_existing_tables_once():
    from django.apps import apps

    names = {m._meta.db_table for m in apps.get_models()}
    assert set(DISTRIBUTED) <= names and set(REFERENCE) <= names
    assert {"inspections_inspection", "inspections_survey", "health_natresult"} <= set(DISTRIBUTED)
    assert not set(DISTRIBUTED) & set(REFERENCE)


def test_district_code_is_the_first_segment_of_the_path_and_filled_on_every_write():
    assert district_of("/500110/500110002/500110002015/") == "500110"
    assert district_of("/T/") == "T"
    u = build_street(D)
    assert do_store_evaluations(on=D) == 8
    assert set(Evaluation.objects.values_list("district_code", flat=True)) == {"T"}
    e = Evaluation.objects.create(unit=u["B1"], on=D.replace(day=1), eligible=True, named=True)
    assert e.district_code == "T"
    Evaluation.objects.bulk_create([Evaluation(unit_id=u["B2"].pk, on=D.replace(day=1), eligible=True, named=False)])
    assert Evaluation.objects.get(unit=u["B2"], on=D.replace(day=1)).district_code == "T"
    # A stored day of the district is replaced within the district.
    assert do_store_evaluations(on=D, root=u["T"]) == 8
    assert Evaluation.objects.filter(on=D).count() == 8


def test_a_result_is_kept_in_its_residents_district_or_its_submitters_and_moves_with_them():
    """NatResult's docstring, on every write path: the import (unscoped and scoped, the same rows again),
    linking when the person is registered, a move to another district, a removal."""
    from test_standards_world import id_number, make_unit
    from test_supervision_world import at

    from wuyiqu.health.linking import link_facts
    from wuyiqu.health.models import NatResult
    from wuyiqu.health.nat_import import write_nat_rows
    from wuyiqu.standards.evaluator import evaluate
    from wuyiqu.units.actions import Move, do_remove_resident, move_residents
    from wuyiqu.units.models import Household, Resident

    u = build_street(D)
    s = make_unit("S", "district", name="另一区")
    s1c = make_unit("S1C", "community", make_unit("S1", "street", s), "另一社区")
    s_home = Household.objects.create(code="S1C-101", unit=s1c, address="另一社区101")
    numbers = [id_number(dt.date(1991, 2, n)) for n in (1, 2, 3)]
    t_person = Resident.objects.filter(household__unit=u["B1"]).first()

    # Unscoped: a stranger's result goes to "", T's resident's to T; from S's community: a stranger's
    # to S, and T's resident's too (registered outside the scope: unmatched, held).
    with at(D):
        t_number = crypto.cipher().decrypt(t_person.id_enc)
        day = f"{D:%Y-%m-%d}"
        write_nat_rows([(numbers[0], f"{day} 09:00:00", "negative"), (t_number, f"{day} 09:00:00", "negative")])
        write_nat_rows([(numbers[1], f"{day} 10:00:00", "negative"), (t_number, f"{day} 10:00:00", "negative")],
                       scope=s1c)
        again = write_nat_rows([(numbers[0], f"{day} 09:00:00", "negative"), (t_number, f"{day} 09:00:00", "negative")])
    assert (again.created, again.unchanged) == (0, 2)
    rows = {(r.id_hash, r.sampled_at.hour + 8): r for r in NatResult.objects.filter(sampled_on=D)
            if r.sampled_at.hour + 8 in (9, 10)}
    t_hash = t_person.id_hash
    h0, h1 = (crypto.cipher().lookup_hash(n) for n in numbers[:2])
    assert {k: (r.district_code, r.resident_id, r.scope_unit_id) for k, r in rows.items()} == {
        (h0, 9): ("", None, None), (t_hash, 9): ("T", t_person.pk, None),
        (h1, 10): ("S", None, s1c.pk), (t_hash, 10): ("S", None, s1c.pk)}
    # The strangers registered: the unscoped one in T (moved from "" to T), S's in S (stays in S).
    a = Resident(household=Household.objects.get(code="T1C-B9-101"), name="甲", sex="M")
    b = Resident(household=s_home, name="乙", sex="M")
    for r, n in ((a, numbers[0]), (b, numbers[1])):
        r.set_id_number(n)
        r.set_phone("")
        r.save()
    assert link_facts([a.id_hash, b.id_hash]).results == 2
    assert NatResult.objects.get(id_hash=h0).district_code == "T"
    assert (NatResult.objects.get(id_hash=h1).district_code, NatResult.objects.get(id_hash=h1).resident_id) == \
        ("S", b.pk)
    # T's resident moves to S: their results go along (the held one, unmatched, stays where it is).
    before = evaluate(D, root=s)
    move_residents([Move(t_person.pk, t_person.household_id, t_person.moved_on, s_home.pk, D)])
    mine = NatResult.objects.filter(resident_id=t_person.pk)
    assert mine.count() == 2 and set(mine.values_list("district_code", flat=True)) == {"S"}
    assert NatResult.objects.filter(id_hash=t_hash, resident_id=None).get().district_code == "S"
    # …and S's participation, which reads S's results only, counts them.
    after = {v.unit.code: v for v in evaluate(D, root=s)}
    assert "S1C" in after and {v.unit.code for v in before} <= set(after)
    nat = next(c for c in after["S1C"].criteria if c.id == "nat_participation")
    assert nat.passed, nat.detail
    # Taken off the register: the results stay in the district of the last home, unmatched.
    do_remove_resident(actor=None, resident=Resident.objects.get(pk=t_person.pk), reason="迁出本市")
    assert set(NatResult.objects.filter(id_hash=t_hash).values_list("district_code", "resident_id")) == {("S", None)}


def test_inspections_and_surveys_carry_their_units_district_on_every_write(tmp_path):
    """Distributed by district on Citus (ops.citus.DISTRIBUTED): the form's action, the imports (raw
    rows built with the district) and the ORM all write it; a second import of the same day updates
    the row within its district."""
    from test_supervision_world import at

    from wuyiqu.imports.services import run_import
    from wuyiqu.inspections.actions import do_record_inspection
    from wuyiqu.inspections.models import Inspection, Survey

    u = build_street(D)
    do_record_inspection(actor=None, unit=u["B9"], inspected_on=D, results={"masks": False}, inspector="王")
    (tmp_path / "i.csv").write_text(f"unit_code,inspected_on,item,passed\n{u['C1'].code},{D},visitors,不合格\n"
                                    f"{u['B1'].code},{D - dt.timedelta(days=20)},masks,合格\n", encoding="utf-8")
    (tmp_path / "s.csv").write_text("unit_code,surveyed_on,awareness,approval,participation\n"
                                    f"{u['T1C'].code},{D - dt.timedelta(days=40)},0.9,0.9,0.9\n", encoding="utf-8")
    with at(D):
        for kind, name in (("inspections", "i.csv"), ("surveys", "s.csv"), ("inspections", "i.csv")):
            job = run_import(kind=kind, path=tmp_path / name)
            assert job.status == "succeeded", job.message
    assert set(Inspection.objects.values_list("district_code", flat=True)) == {"T"}
    assert set(Survey.objects.values_list("district_code", flat=True)) == {"T"}
    assert Inspection.objects.filter(unit=u["C1"], item="visitors", inspected_on=D, passed=False).count() == 1
    assert Inspection.objects.get(unit=u["B9"], item="masks", inspected_on=D).passed is False


def test_a_district_keyed_row_is_updated_in_its_district_and_never_moves_by_save():
    """units.models.DistrictKeyedModel: an UPDATE never sets district_code (Citus refuses it for a
    distribution column) and names it in the WHERE clause (routed to the row's shard); a row saved with
    another district than it was read with is refused, not quietly left where it was."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from wuyiqu.units.models import DistrictMoveError, Household

    u = build_street(D)
    household = Household.objects.create(code="T-HH-1", unit=u["B1"], address="1-101")
    assert household.district_code == "T"
    household = Household.objects.get(pk=household.pk)
    household.address = "1-102"
    with CaptureQueriesContext(connection) as queries:
        household.save()
    update = next(q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE"))
    set_part, where_part = update.split(" WHERE ")
    assert "district_code" not in set_part and "district_code" in where_part
    assert Household.objects.get(pk=household.pk).address == "1-102"
    household.district_code = "S"
    with pytest.raises(DistrictMoveError), transaction.atomic():
        household.save()
    assert Household.objects.get(pk=household.pk).district_code == "T"
    # An object never read from the database updates in the district it names.
    Household(pk=household.pk, code="T-HH-1", unit=u["B1"], address="1-103", district_code="T").save()
    assert Household.objects.get(pk=household.pk).address == "1-103"


def test_applications_and_titles_carry_their_units_district_on_every_write():
    """Applications and what hangs on them (the workflow) and titles (the naming) carry their unit's
    district, distributed by it on Citus (ops.citus.DISTRIBUTED), parents before children."""
    import time_machine
    from test_applications_world import NOW, build, name_through_chain, people, sign_all

    from wuyiqu.applications.actions import do_open_application, do_submit_application
    from wuyiqu.applications.models import Application, CoSignature, ReviewStep
    from wuyiqu.certification.models import Title

    assert {"applications_application", "applications_cosignature", "certification_title", "supervision_warning",
            "supervision_titleevent"} <= set(DISTRIBUTED)
    assert DISTRIBUTED.index("applications_application") < DISTRIBUTED.index("certification_title") < \
        DISTRIBUTED.index("supervision_warning") < DISTRIBUTED.index("supervision_titleevent")
    with time_machine.travel(NOW, tick=False):
        u = build()
        p = people(u)
        app = do_open_application(actor=p["hank"], unit=u["B1"])
        sign_all(app)
        name_through_chain(do_submit_application(actor=p["hank"], application=app), p)
    named = Title.objects.get(application=app)
    assert (named.district_code, Application.objects.get(pk=app.pk).district_code) == ("T", "T")
    assert set(CoSignature.objects.filter(application=app).values_list("district_code", flat=True)) == {"T"}
    assert set(ReviewStep.objects.filter(application=app).values_list("district_code", flat=True)) == {"T"}


def test_the_daily_runs_warnings_withdrawals_and_events_carry_their_units_district():
    from test_standards_world import days
    from test_supervision_world import at, named_street

    from wuyiqu.certification.models import Title
    from wuyiqu.inspections.actions import do_record_inspection
    from wuyiqu.supervision.models import TitleEvent, Warning
    from wuyiqu.supervision.services import run_daily

    u = named_street(D)
    with at(D):
        do_record_inspection(actor=None, unit=u["B9"], inspected_on=D, results={"masks": False}, inspector="王")
    for n in range(4):
        with at(D + days(n)):
            run_daily(on=D + days(n))
    assert Warning.objects.exists() and TitleEvent.objects.exists() and Title.objects.filter(
        withdrawn_on__isnull=False).exists()
    for model in (Title, Warning, TitleEvent):
        assert set(model.objects.values_list("district_code", flat=True)) == {"T"}, model
