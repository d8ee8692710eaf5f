"""The standards, supervision and applications worlds run on one database, their verdicts, titles and
warnings printed as JSON: tests/test_citus.py runs it on plain PostgreSQL and on a Citus coordinator
(the same migrations, then `wuyiqu citus distribute`) and compares. Not a test module.

    DATABASE_URL=postgres://… python tests/citus_worlds.py worlds OUT.json
    DATABASE_URL=postgres://… python tests/citus_worlds.py daily OUT.json [--stop-worker DATADIR]

``worlds``: each world in a transaction rolled back at its end (the database stays as migrated).
``daily``: two districts (the supervision world's 测试区 T and a small 另一区 S) committed, then the
daily supervision of D+1..D+3; with ``--stop-worker`` the worker whose data directory is DATADIR is
stopped (immediate) in the middle of district T's run on D+3 — after its warnings and withdrawals
were written, as its evaluations are stored — and the script records what the database holds of
that day, starts the worker again and runs the day again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wuyiqu.settings_test")

import django  # noqa: E402

django.setup()

import time_machine  # noqa: E402
from django.db import IntegrityError, connection, transaction  # noqa: E402


class Rollback(Exception):
    pass


def rolled_back(fn):
    """Run ``fn`` in a transaction that is rolled back; return what it returned."""
    out = {}
    try:
        with transaction.atomic():
            out["value"] = fn()
            raise Rollback
    except Rollback:
        pass
    return out["value"]


def verdicts(results) -> dict:
    return {r.unit.code: [r.eligible, r.named, sorted(c.id for c in r.criteria if not c.passed)] for r in results}


def stored(on=None) -> dict:
    from wuyiqu.standards.models import Evaluation

    rows = Evaluation.objects.select_related("unit").order_by("unit__code", "on")
    if on is not None:
        rows = rows.filter(on=on)
    return {f"{e.unit.code} {e.on}": [e.eligible, e.named, sorted(e.failed), e.district_code] for e in rows}


def titles() -> list:
    from wuyiqu.certification.models import Title

    return sorted([t.unit.code, t.title, str(t.named_on), str(t.withdrawn_on), t.withdrawn_reason or ""]
                  for t in Title.objects.select_related("unit"))


def warnings() -> list:
    from wuyiqu.supervision.models import TitleEvent, Warning

    ws = sorted([w.unit.code, w.criterion, w.status, str(w.opened_on), str(w.deadline), str(w.closed_on)]
                for w in Warning.objects.select_related("unit"))
    events = sorted([e.unit.code, e.kind, str(e.on), e.reason]
                    for e in TitleEvent.objects.select_related("unit"))
    return ws + events


# --- the worlds -------------------------------------------------------------------------------------

def standards_world() -> dict:
    from test_standards_world import D, build_street

    from wuyiqu.standards.actions import do_store_evaluations
    from wuyiqu.standards.evaluator import evaluate

    def good():
        build_street(D)
        live = verdicts(evaluate(D))
        do_store_evaluations(on=D)
        return {"live": live, "stored": stored(D), "titles": titles()}

    def bad():
        u = build_street(D, good=False)
        return {"live": verdicts(evaluate(D)), "below_street": verdicts(evaluate(D, root=u["T1C"]))}

    return {"good": rolled_back(good), "bad": rolled_back(bad)}


def supervision_world() -> dict:
    from test_standards_world import D, days, inspect
    from test_supervision_world import at, named_street

    from wuyiqu.inspections.actions import do_record_inspection
    from wuyiqu.supervision.services import run_daily

    def run():
        u = named_street()
        with at(D):
            do_record_inspection(actor=None, unit=u["B9"], inspected_on=D, results={"masks": False}, inspector="王")
        inspect(u["B2"], ["masks"], D, passed=False)
        outs = []
        for n in (0, 1, 2, 3):
            with at(D + days(n)):
                out = run_daily(on=D + days(n))
            outs.append([sorted(out.withdrawn), out.opened, out.rectified, out.expired, out.stored])
        return {"runs": outs, "opinion": opinion(u, D + days(3)), "titles": titles(), "warnings": warnings(),
                "stored": stored()}

    return rolled_back(run)


def opinion(u: dict, day: dt.date) -> dict:
    """A negative opinion on the village group G1 on ``day``: recorded, handled, accepted, sent back by
    the street (an ``OpinionReturn``), handled and accepted again — each step re-checking the named
    units above it; then the village's verdicts on ``day`` and the day before, and the returns."""
    from test_supervision_world import at

    from wuyiqu.inspections import actions
    from wuyiqu.inspections.models import OpinionReturn
    from wuyiqu.standards.evaluator import evaluate

    with at(day):
        incident = actions.do_record_incident(actor=None, unit=u["G1"], occurred_on=day - dt.timedelta(days=1),
                                              incident_type="negative_opinion", description="网传隔离不严")
        actions.do_mark_opinion_handled(actor=None, incident=incident, handled_on=day, note="已回应")
        actions.do_accept_opinion_handling(actor=None, incident=incident)
        actions.do_return_opinion_handling(actor=None, incident=incident, reason="回应不充分")
        accepted_before = verdicts(evaluate(day, root=u["T1V"]))
        actions.do_mark_opinion_handled(actor=None, incident=incident, handled_on=day, note="已再次回应")
        actions.do_accept_opinion_handling(actor=None, incident=incident)
        return {"returned": accepted_before, "accepted": verdicts(evaluate(day, root=u["T1V"])),
                "returns": [[r.incident.unit.code, r.district_code, str(r.handled_on), str(r.accepted_on), r.reason]
                            for r in OpinionReturn.objects.select_related("incident__unit")]}


def applications_world() -> dict:
    from test_applications_world import NOW, build, name_through_chain, people, sign_all

    from wuyiqu.applications.actions import do_open_application, do_submit_application
    from wuyiqu.applications.models import ReviewStep

    def run():
        with time_machine.travel(NOW, tick=False):
            u = build()
            p = people(u)
            out = {}
            for key, applicant in (("B1", "hank"), ("G1", "gina")):
                app = do_open_application(actor=p[applicant], unit=u[key])
                sign_all(app)
                app = do_submit_application(actor=p[applicant], application=app)
                app = name_through_chain(app, p)
                out[key] = [app.status, [[s.from_status, s.to_status, s.decision]
                                         for s in ReviewStep.objects.filter(application=app).order_by("id")]]
            return {"applications": out, "titles": [t[:4] for t in titles()]}

    return rolled_back(run)


def _ids_of(model, resident_id: int) -> list[int]:
    """The ids of ``model``'s rows about resident ``resident_id`` (the resident's own id for Resident)."""
    from wuyiqu.health.models import MeasureChange
    from wuyiqu.units.models import Resident

    if model is Resident:
        return [resident_id]
    if model is MeasureChange:
        return list(MeasureChange.objects.filter(measure__resident_id=resident_id).values_list("pk", flat=True))
    return list(model.objects.filter(resident_id=resident_id).values_list("pk", flat=True))


def results_world() -> dict:
    """Nucleic-acid results through every write path (docs/scaling.md: each kept in its district): an
    unscoped import (a resident of T, one of S, a stranger), a scoped one from S's community (a
    stranger, and T's resident: outside the scope, held), the same file again (nothing added), the
    stranger registered in T (linked: moved from "" to T), the other registered in S (linked inside
    S), T's resident moved to S — with a measure (and its extension), a case, a ledger entry and held
    facts, all kept with the person: the move deletes them in T and inserts them in S with the same
    ids, results included (``units.relocation``); then the participation of both districts, the
    testing list and the rows as kept, and what is left in T of the moved person (nothing)."""
    from test_standards_world import D, build_street, days, id_number
    from test_supervision_world import at

    from wuyiqu.health.actions import CaseRow, MeasureRow, do_extend_measure, write_cases, write_measures
    from wuyiqu.health.linking import hold_facts, link_facts
    from wuyiqu.health.models import HeldFacts, Measure, MeasureChange, NatResult, PositiveCase
    from wuyiqu.health.nat_import import write_nat_rows
    from wuyiqu.health.selectors import testing_status
    from wuyiqu.standards.evaluator import evaluate
    from wuyiqu.units.actions import Move, move_residents
    from wuyiqu.units.models import (
        Household,
        PastResidence,
        Resident,
        ResidentDirectory,
        SpecialPopulationEntry,
        Unit,
    )

    def person(name: str, number: str, household: str) -> Resident:
        r = Resident(household=Household.objects.get(code=household), name=name, sex="M")
        r.set_id_number(number)
        r.set_phone("")
        r.save()
        return r

    def run():
        u = build_street(D)
        second_district(D)
        numbers = {name: id_number(dt.date(1990, 1, n + 1)) for n, name in enumerate("甲乙丙丁")}
        jia = person("甲", numbers["甲"], "T1C-C1-B1-101")
        person("乙", numbers["乙"], "S1C-B1-101")
        day = f"{D:%Y-%m-%d}"
        out = {}
        with at(D):
            rows = [(numbers["甲"], f"{day} 10:00:00", "negative"), (numbers["乙"], f"{day} 10:00:00", "negative"),
                    (numbers["丙"], f"{day} 10:00:00", "negative")]
            c = write_nat_rows(rows)
            out["unscoped"] = [c.created, c.unchanged, c.unmatched]
            s1c = Unit.objects.get(code="S1C")
            c = write_nat_rows([(numbers["丁"], f"{day} 11:00:00", "negative"),
                                (numbers["甲"], f"{day} 11:00:00", "negative")], scope=s1c)
            out["scoped"] = [c.created, c.unchanged, c.unmatched]
            c = write_nat_rows(rows)
            out["again"] = [c.created, c.unchanged, c.unmatched]
            bing = person("丙", numbers["丙"], "T1C-B9-101")
            ding = person("丁", numbers["丁"], "S1C-B1-102")
            out["linked"] = [link_facts([bing.id_hash]).results, link_facts([ding.id_hash]).results]
            hold_facts([jia.id_hash])
            out["held"] = sorted([h.resident.name, h.results] for h in HeldFacts.objects.select_related("resident"))
            # 甲's facts, kept with 甲 in T until the move.
            write_measures([MeasureRow("home_quarantine", numbers["甲"], D - days(3), D + days(4))])
            write_cases([CaseRow(D - days(1), "asymptomatic", numbers["甲"])])
            do_extend_measure(Measure.objects.get(resident=jia), actor=None, until=D + days(6), reason="复核延期")
            SpecialPopulationEntry.objects.create(resident=jia, tags="chronic", needs="送药", helper="王五")
            kept_with = (Resident, SpecialPopulationEntry, PositiveCase, Measure, MeasureChange, HeldFacts)
            ids_before = {m.__name__: sorted(m.objects.filter(district_code="T", pk__in=_ids_of(m, jia.pk))
                                             .values_list("pk", flat=True)) for m in kept_with}
            to = Household.objects.get(code="S1C-B1-102")
            out["moved_units"] = len(move_residents([Move(jia.pk, jia.household_id, jia.moved_on, to.pk, D)]))
            # Nothing of 甲 left in T but the past spell (kept where it was spent); the same ids in S.
            out["moved"] = {m.__name__: [sorted(m.objects.filter(district_code=d, pk__in=_ids_of(m, jia.pk))
                                                .values_list("pk", flat=True)) == (ids_before[m.__name__] if d == "S" else [])
                                         for d in ("T", "S")] for m in kept_with}
            out["moved_counts"] = {k: len(v) for k, v in ids_before.items()}
            out["past_spell"] = list(PastResidence.objects.filter(resident_id=jia.pk).values_list("district_code", "household__code"))
            out["jia"] = [Resident.objects.get(pk=jia.pk).household.code,
                          [[d, str(end), unit] for d, end, unit in Measure.objects.filter(resident_id=jia.pk)
                           .values_list("district_code", "end_on", "unit__code")],
                          [[d, str(end)] for d, end in MeasureChange.objects.filter(measure__resident_id=jia.pk)
                           .values_list("district_code", "new_end_on")]]
            out["past_spell"] = [list(p) for p in out["past_spell"]]
            names = dict(Resident.objects.values_list("pk", "name"))
            out["rows"] = sorted([r.district_code, names.get(r.resident_id, "") if r.resident_id else "",
                                  str(r.sampled_on), r.sampled_at.isoformat(), r.result]
                                 for r in NatResult.objects.all())
            out["participation"] = {code: [[v.unit.code, [[c.passed, str(c.detail)] for c in v.criteria
                                                           if c.id == "nat_participation"]]
                                           for v in evaluate(D, root=Unit.objects.get(code=code))]
                                    for code in ("T", "S", "T1C")}
            # The city-wide directory: each number once, with the district that keeps the person (甲's
            # moved with 甲); the same number registered again in another district is refused by its key.
            by_hash = {r.id_hash: r.name for r in Resident.objects.filter(name__in=list(numbers))}
            out["directory"] = sorted([by_hash[h], d] for h, d in ResidentDirectory.objects.filter(
                id_hash__in=list(by_hash)).values_list("id_hash", "district_code"))
            try:
                with transaction.atomic():
                    person("甲二", numbers["甲"], "T1C-B9-101")
                out["twin"] = "registered"
            except IntegrityError:
                out["twin"] = "refused"
            status = testing_status(Unit.objects.get(code="S1C"), on=D, days=7)
            out["testing_S1C"] = [status.non_exempt_total, status.tested_within,
                                  sorted([r.resident.name, str(r.last_sampled_on)] for r in status.rows)]
        del u
        return out

    return rolled_back(run)


# --- the daily run of two districts, and a worker stopped in the middle of one -----------------------

def second_district(on: dt.date) -> None:
    """另一区 S: one street, one community, one named building with two households, all good on ``on``."""
    from test_standards_world import (
        BUILDING_ITEMS,
        COMMITTEE_ITEMS,
        days,
        inspect,
        make_resident,
        make_unit,
        nat,
    )

    from wuyiqu.certification.models import Title
    from wuyiqu.units.models import TITLE_BY_KIND, Household, HouseholdVerification

    s = make_unit("S", "district", name="另一区")
    street = make_unit("S1", "street", s, "另一街道")
    community = make_unit("S1C", "community", street, "另一社区")
    building = make_unit("S1C-B1", "building", community, "另一社区1栋")
    for room in ("101", "102"):
        hh = Household.objects.create(code=f"S1C-B1-{room}", unit=building, address=f"另一社区1栋{room}")
        HouseholdVerification.objects.create(household=hh, verified_on=on)
        nat(make_resident(hh), on)
    inspect(community, COMMITTEE_ITEMS, on)
    inspect(building, BUILDING_ITEMS, on)
    Title.objects.create(unit=building, title=TITLE_BY_KIND["building"], named_on=on - days(30))


def shard_datadir_port(table: str, value: str) -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) "
                    "WHERE p.shardid = get_shard_id_for_distribution_column(%s, %s)", [table, value])
        return cur.fetchone()[0]


def pg_ctl(datadir: str, *args: str) -> None:
    bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
    cmd = [f"{bindir}/pg_ctl", "-D", datadir, *args]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True)


def daily(stop_worker: str | None) -> dict:
    from test_standards_world import D, days
    from test_supervision_world import at, named_street

    import wuyiqu.standards.actions as standards_actions
    from wuyiqu.inspections.actions import do_record_inspection
    from wuyiqu.supervision.services import run_daily

    with transaction.atomic():
        u = named_street()
        second_district(D)
        with at(D):
            do_record_inspection(actor=None, unit=u["B9"], inspected_on=D, results={"masks": False}, inspector="王")
    for n in (1, 2):
        with at(D + days(n)):
            run_daily(on=D + days(n))
    day = D + days(3)
    out: dict = {}
    if stop_worker:
        original = standards_actions.do_store_evaluations

        def stopping(**kwargs):
            root = kwargs.get("root")
            if root is not None and root.path == "/T/":
                out["worker_port_of_T"] = shard_datadir_port("standards_evaluation", "T")
                pg_ctl(stop_worker, "-m", "immediate", "-w", "stop")
            return original(**kwargs)

        standards_actions.do_store_evaluations = stopping
        try:
            with at(day):
                run_daily(on=day)
            out["interrupted"] = "no error"
        except Exception as exc:  # the worker is gone: the district's transaction fails
            out["interrupted"] = type(exc).__name__
        finally:
            standards_actions.do_store_evaluations = original
        connection.close()
        pg_ctl(stop_worker, "-w", "-t", "60", "-l", str(Path(stop_worker) / "server.log"), "start")
        from wuyiqu.certification.models import Title
        from wuyiqu.supervision.models import TitleEvent, Warning

        out["after_fault"] = {
            "stored_T": [k for k in stored(day) if k.startswith("T")],
            "stored_S": sorted(k for k in stored(day) if k.startswith("S")),
            "withdrawn_T": sorted(Title.objects.filter(withdrawn_on=day).values_list("unit__code", flat=True)),
            "closed_warnings": Warning.objects.filter(closed_on=day).count(),
            "title_events": TitleEvent.objects.filter(on=day).count(),
        }
    with at(day):
        again = run_daily(on=day)
    out["rerun"] = [sorted(again.withdrawn), again.expired, again.stored]
    out["titles"], out["warnings"], out["stored"] = titles(), warnings(), stored()
    return out


def main(argv: list[str]) -> int:
    what, target = argv[0], Path(argv[1])
    if what == "worlds":
        result = {"standards": standards_world(), "supervision": supervision_world(),
                  "applications": applications_world(), "results": results_world()}
    elif what == "daily":
        result = daily(argv[3] if len(argv) > 3 and argv[2] == "--stop-worker" else None)
    else:
        raise SystemExit(__doc__)
    target.write_text(json.dumps(result, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
