"""Replay (SPEC §7 "Time"): a scripted 30-day history of the hand-built street — moves, cases,
measures, results, inspections, naming, warnings, withdrawals, a negative opinion handled, accepted
and sent back — supervised day by day as the daily run does; afterwards ``evaluate --date`` on each
past day gives exactly the verdicts stored that day.

The facts of each day are recorded on that day (the clock frozen on it) through the actions and
imports that forms and files use, then the day's supervision runs (``run_daily``: warnings,
withdrawals, the day's evaluations stored)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import call_command
from test_standards_world import (
    BUILDING_ITEMS,
    COMMITTEE_ITEMS,
    build_street,
    days,
    id_number,
    nat,
)
from test_supervision_world import at

from wuyiqu.applications.models import Application
from wuyiqu.certification.actions import do_name_unit
from wuyiqu.certification.models import Title
from wuyiqu.health.actions import do_end_measure_early, do_record_case, do_record_measure
from wuyiqu.imports.services import run_import
from wuyiqu.inspections.actions import (
    do_accept_opinion_handling,
    do_mark_opinion_handled,
    do_record_incident,
    do_record_inspection,
    do_return_opinion_handling,
)
from wuyiqu.inspections.models import Survey
from wuyiqu.standards.models import Evaluation
from wuyiqu.supervision.models import Warning
from wuyiqu.supervision.services import run_daily
from wuyiqu.units.actions import do_move_resident
from wuyiqu.units.models import Household, HouseholdVerification, Resident, SpecialPopulationEntry

pytestmark = pytest.mark.django_db

START = dt.date(2022, 11, 20)  # day 0 of the history: the policy's first day in force (wenlong-2022)
BUILDINGS = ("B1", "B2", "B9", "C1")
COMMITTEES = ("G1", "T1C", "T1V")


def day(n: int) -> dt.date:
    return START + days(n)


def upkeep(u, n: int) -> None:
    """What keeps a quiet street passing: tests every 3 days, inspections every 5, verifications and
    surveys every 20 (each well inside its window). Day 0's are build_street's."""
    on = day(n)
    if n == 0:
        return
    if n % 3 == 0:
        for r in Resident.objects.select_related("household"):
            nat(r, on)
    if n % 5 == 0:
        for key in BUILDINGS:
            do_record_inspection(actor=None, unit=u[key], inspected_on=on, inspector="网格员",
                                 results={i: True for i in BUILDING_ITEMS if i != "masks" or n != 10 or key != "B2"})
        for key in COMMITTEES:
            do_record_inspection(actor=None, unit=u[key], inspected_on=on, inspector="网格员",
                                 results={i: True for i in COMMITTEE_ITEMS})
    if n % 20 == 0:
        for hh in Household.objects.all():
            HouseholdVerification.objects.get_or_create(household=hh, verified_on=on)
        for key in ("T1C", "T1V"):
            Survey.objects.create(unit=u[key], surveyed_on=on, awareness="0.95", approval="0.95", participation="0.95")


def name(u, key: str) -> None:
    app = Application.objects.filter(unit=u[key]).order_by("-id").first()
    do_name_unit(actor=None, application=app)


def person_in(u, key: str) -> Resident:
    return Resident.objects.filter(household__unit=u[key]).order_by("id").first()


def write(tmp_path, name_, text):
    path = tmp_path / name_
    path.write_text(text, encoding="utf-8")
    return path


def events(u, n: int, tmp_path, state: dict) -> None:
    """The script: what happens on day ``n`` besides the upkeep."""
    on = day(n)
    if n == 2:
        name(u, "C1")
        name(u, "G1")
    elif n == 4:
        name(u, "T1C")
        name(u, "T1V")
    elif n == 6:  # a close contact in B9: B9 and the community lose their titles at once
        state["contact"] = person_in(u, "B9")
        state["measure"] = do_record_measure(actor=None, kind="close_contact", start_on=on, end_on=day(14),
                                             id_number=state["contact"].reveal_id_number())
    elif n == 8:  # ... and moves to B1: B1 and its compound go in the same request, B9 is free again
        do_move_resident(actor=None, resident=state["contact"], household_code=f"{u['B1'].code}-102")
    elif n == 10:  # B2's mask inspection fails (upkeep left it out): a warning, rectified on day 12
        do_record_inspection(actor=None, unit=u["B2"], inspected_on=on, results={"masks": False}, inspector="网格员")
    elif n == 11:  # G1's fails and is never rectified: withdrawn when the warning runs out
        do_record_inspection(actor=None, unit=u["G1"], inspected_on=on, results={"masks": False}, inspector="网格员")
    elif n == 12:
        do_record_inspection(actor=None, unit=u["B2"], inspected_on=on, results={"masks": True}, inspector="网格员")
        do_end_measure_early(state["measure"], actor=None, on=on, reason="核酸阴性，提前解除")
    elif n == 15:  # a newcomer registered from today, not tested yet: B2's participation falls
        number = id_number(dt.date(1990, 3, 3))
        state["newcomer"] = number
        path = write(tmp_path, "r.csv", f"id_number,name,household_code,moved_on\n{number},新住户,{u['B2'].code}-101,{on}\n")
        job = run_import(kind="residents", path=path)
        assert job.status == "succeeded", job.errors
    elif n == 16:
        nat(Resident.objects.get(name="新住户"), on)
    elif n == 17:  # a case in the group, then the person moves into B2: the case stays in G1
        state["case_person"] = person_in(u, "G1")
        do_record_case(actor=None, reported_on=on, case_type="confirmed", id_number=state["case_person"].reveal_id_number())
    elif n == 19:
        path = write(tmp_path, "m.csv", f"id_number,name,household_code,moved_on\n{state['case_person'].reveal_id_number()},"
                                        f"{state['case_person'].name},{u['B2'].code}-101,\n")
        job = run_import(kind="residents", path=path)
        assert job.status == "succeeded", job.errors
    elif n == 20:
        name(u, "B9")
    elif n == 22:  # a household registered today, not yet verified: a warning on B9, rectified next day
        path = write(tmp_path, "h.csv", f"code,unit_code,address,registered_on\n{u['B9'].code}-102,{u['B9'].code},9号楼102,{on}\n")
        assert run_import(kind="households", path=path).status == "succeeded"
        number = id_number(dt.date(1985, 6, 6))
        path = write(tmp_path, "r2.csv", f"id_number,name,household_code,moved_on\n{number},新户主,{u['B9'].code}-102,{on}\n")
        assert run_import(kind="residents", path=path).status == "succeeded"
        nat(Resident.objects.get(name="新户主"), on)
    elif n == 23:
        HouseholdVerification.objects.create(household=Household.objects.get(code=f"{u['B9'].code}-102"), verified_on=on)
    elif n == 25:
        do_record_incident(actor=None, unit=u["B2"], occurred_on=on, incident_type="negative_opinion", description="网络负面帖子")
        state["opinion"] = do_record_incident(actor=None, unit=u["B9"], occurred_on=on, incident_type="negative_opinion",
                                              description="业主群抱怨")
    elif n == 26:  # B9's opinion handled and accepted: its warning is rectified ...
        do_mark_opinion_handled(actor=None, incident=state["opinion"], handled_on=on, note="已上门解释")
        do_accept_opinion_handling(actor=None, incident=state["opinion"])
    elif n == 27:  # an incomplete ledger line registered today
        SpecialPopulationEntry.objects.create(resident=person_in(u, "B9"), tags="elderly_alone", registered_on=on)
        # ... and sent back by the street: the opinion counts again from today (day 26 stays accepted)
        do_return_opinion_handling(actor=None, incident=state["opinion"], reason="仍有投诉")


def verdicts_stored(on: dt.date) -> dict[str, tuple]:
    return {code: (eligible, named, tuple(sorted(failed))) for code, eligible, named, failed in
            Evaluation.objects.filter(on=on).values_list("unit__code", "eligible", "named", "failed")}


def verdicts_evaluated(on: dt.date, capsys) -> dict[str, tuple]:
    call_command("evaluate", "--date", on.isoformat(), "--json")
    rows = json.loads(capsys.readouterr().out)
    return {r["unit"]: (r["eligible"], r["named"], tuple(sorted(c["id"] for c in r["criteria"] if not c["passed"])))
            for r in rows}


def test_thirty_days_supervised_day_by_day_are_what_evaluate_gives_for_each_day_afterwards(tmp_path, capsys):
    with at(START):
        u = build_street(START)
    state: dict = {}
    for n in range(30):
        with at(day(n)):
            upkeep(u, n)
            events(u, n, tmp_path, state)
            run_daily(on=day(n))

    # The script did what it says: titles came and went, warnings opened, were rectified and ran out.
    withdrawn = dict(Title.objects.filter(withdrawn_on__isnull=False).values_list("unit__code", "withdrawn_on"))
    assert withdrawn == {"T1C-B9": day(6), "T1C": day(6), "T1C-C1-B1": day(8), "T1C-C1": day(8), "T1V-G1": day(14),
                         "T1V": day(14), "T1C-C1-B2": day(28)}, withdrawn
    assert set(Title.objects.filter(withdrawn_on__isnull=True).values_list("unit__code", flat=True)) == {"T1C-B9"}
    rectified = set(Warning.objects.filter(status="rectified").values_list("unit__code", "criterion", "closed_on"))
    assert {("T1C-C1-B2", "mask_compliance", day(12)), ("T1C-C1-B2", "nat_participation", day(16)),
            ("T1C-B9", "registry_verified", day(23)), ("T1C-B9", "no_negative_opinion", day(26))} <= rectified, rectified
    assert Warning.objects.filter(unit=u["B9"], criterion="no_negative_opinion", status="open", opened_on=day(27)).exists()
    assert "no_negative_opinion" not in verdicts_stored(day(26))["T1C-B9"][2]
    assert "no_negative_opinion" in verdicts_stored(day(27))["T1C-B9"][2]
    assert Warning.objects.filter(unit=u["G1"], criterion="mask_compliance", status="expired").exists()
    assert Warning.objects.filter(unit=u["B9"], criterion="special_population_ledger", status="open").exists()
    for n in (19, 20, 24):  # the case stays where its person lived on its date, not in B2
        assert "no_case" in verdicts_stored(day(n))["T1V-G1"][2]
        assert "no_case" not in verdicts_stored(day(n))["T1C-C1-B2"][2]

    # Afterwards, on each past day: exactly the verdicts stored that day.
    with at(day(29) + days(3)):
        for n in range(30):
            stored = verdicts_stored(day(n))
            assert stored, f"nothing stored on day {n}"
            assert verdicts_evaluated(day(n), capsys) == stored, f"day {n} ({day(n)})"
