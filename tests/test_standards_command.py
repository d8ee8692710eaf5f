"""`wuyiqu evaluate`: the JSON contract of SPEC §7, read-only, and `--store` history."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import pytest
from django.core.management import call_command
from test_standards_world import D, build_street

from wuyiqu.cli import main
from wuyiqu.health.models import PositiveCase
from wuyiqu.standards.models import Evaluation
from wuyiqu.units.models import Resident

pytestmark = pytest.mark.django_db


def run_json(*args) -> list[dict]:
    out = io.StringIO()
    call_command("evaluate", "--json", "--date", D.isoformat(), *args, stdout=out)
    return json.loads(out.getvalue())


def test_the_json_contract():
    u = build_street()
    r = Resident.objects.filter(household__unit=u["B1"]).first()
    PositiveCase.objects.create(resident=r, unit=u["B1"], id_hash=r.id_hash, reported_on=D, case_type="confirmed")
    data = run_json()
    assert [d["unit"] for d in data] == ["T1", "T1C", "T1C-B9", "T1C-C1", "T1C-C1-B1", "T1C-C1-B2", "T1V", "T1V-G1"]
    for d in data:
        assert {"unit", "kind", "title", "eligible", "named", "criteria"} <= set(d)
        assert isinstance(d["eligible"], bool) and isinstance(d["named"], bool)
        for c in d["criteria"]:
            assert {"id", "passed", "detail"} <= set(c)
            assert isinstance(c["passed"], bool) and isinstance(c["detail"], str) and c["detail"]
    b1 = next(d for d in data if d["unit"] == "T1C-C1-B1")
    assert (b1["kind"], b1["title"], b1["eligible"], b1["named"]) == ("building", "无疫楼栋", False, True)
    no_case = next(c for c in b1["criteria"] if c["id"] == "no_case")
    assert not no_case["passed"] and "1 例阳性感染者" in no_case["detail"]
    village = next(d for d in data if d["unit"] == "T1V")
    assert village["title"] == "无疫村" and village["eligible"] is True


def test_one_unit_and_its_subtree():
    build_street()
    assert [d["unit"] for d in run_json("--unit", "T1V")] == ["T1V", "T1V-G1"]


def test_through_the_console_command(capsys):
    build_street()
    main(["evaluate", "--json", "--date", D.isoformat(), "--unit", "T1C-C1-B1"])
    data = json.loads(capsys.readouterr().out)
    assert data[0]["unit"] == "T1C-C1-B1" and data[0]["eligible"] is True


def test_evaluate_changes_no_row():
    from django.apps import apps

    build_street()

    def counts():
        return {m._meta.label: m.objects.count() for m in apps.get_models() if m._meta.managed}

    before = counts()
    run_json()
    f = io.StringIO()
    with redirect_stdout(f):
        call_command("evaluate", "--date", D.isoformat(), stdout=f)
    assert "评估日期 2022-11-28" in f.getvalue()
    assert counts() == before


def test_store_keeps_one_row_per_unit_and_day_with_the_profile_version():
    u = build_street()
    call_command("evaluate", "--store", "--date", D.isoformat(), stdout=io.StringIO())
    assert Evaluation.objects.filter(on=D).count() == 8
    r = Resident.objects.filter(household__unit=u["B1"]).first()
    PositiveCase.objects.create(resident=r, unit=u["B1"], id_hash=r.id_hash, reported_on=D, case_type="confirmed")
    call_command("evaluate", "--store", "--date", D.isoformat(), stdout=io.StringIO())
    assert Evaluation.objects.filter(on=D).count() == 8
    row = Evaluation.objects.get(unit=u["B1"], on=D)
    assert not row.eligible and row.named and row.failed == ["no_case"]
    assert "阳性感染者" in row.details["no_case"]
    assert row.profile_version == "wenlong-2022 2022.11.20-1" and row.profile.name == "wenlong-2022"


def test_a_bad_date_or_unit_is_refused():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="格式不对"):
        call_command("evaluate", "--date", "28/11/2022x")
    with pytest.raises(CommandError, match="不存在"):
        call_command("evaluate", "--unit", "NOPE")
