"""Policy profiles: validation errors in Chinese, the profile in force by date, the commands."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from django.core.management import CommandError, call_command

from wuyiqu.standards.actions import do_activate_profile, do_add_profile
from wuyiqu.standards.evaluator import profile_row_in_force
from wuyiqu.standards.models import PolicyActivation, PolicyProfile
from wuyiqu.standards.profiles import ProfileError, bundled_profile_content, parse_profile


def base() -> dict:
    return copy.deepcopy(bundled_profile_content())


def errors_of(content) -> list[str]:
    with pytest.raises(ProfileError) as exc:
        parse_profile(content)
    return exc.value.errors


def crit(content, cid):
    return next(c for c in content["criteria"] if c["id"] == cid)


def test_the_default_profile_reproduces_the_table():
    p = parse_profile(base())
    assert [c.id for c in p.criteria_for("building")] == [
        "no_case", "no_close_contact", "no_home_quarantine", "no_returnee_under_control", "registry_verified",
        "mask_compliance", "nat_participation", "all_households_signed", "entrance_control", "cleaning",
        "special_population_ledger", "no_secondary_incident", "no_negative_opinion"]
    assert "children_named" in [c.id for c in p.criteria_for("compound")]
    group = {c.id: p.rule(c, "group").clause for c in p.criteria_for("group")}
    assert group["cleaning"] == "3" and group["special_population_ledger"] == "4" and group["no_case"] == "1"
    assert "entrance_control" not in group
    # A street uses the village/community rules.
    street = [c.id for c in p.criteria_for("street")]
    assert street == [c.id for c in p.criteria_for("community")]
    assert "publicity_awareness" in street and "children_free" in street
    assert p.get("publicity_awareness").params == {"survey_days": 30, "survey_min": 0.9}
    assert p.get("no_case").severity == "revoke" and p.get("all_households_signed").severity is None


def test_an_unknown_criterion_id_is_refused():
    c = base()
    c["criteria"].append({"id": "no_dragons", "name": "无龙", "severity": "warn", "params": {},
                          "levels": {"building": {"clause": "9", "text": "无龙"}}})
    [msg] = errors_of(c)
    assert "第 18 条标准“no_dragons”：未知的标准编号" in msg


def test_an_unknown_level_is_refused():
    c = base()
    crit(c, "no_case")["levels"]["castle"] = {"clause": "1", "text": "x"}
    assert any("层级“castle”未知" in m for m in errors_of(c))


@pytest.mark.parametrize(("param", "value", "words"), [
    ("window_days", "8", "应为数字"),
    ("window_days", 0, "应在 1 到 60 之间"),
    ("window_days", 2.5, "应为整数"),
    ("nat_rate", 1.5, "应在 0 到 1 之间"),
    ("colour", 3, "未知参数“colour”"),
])
def test_bad_parameters_are_refused(param, value, words):
    c = base()
    target = "nat_participation" if param == "nat_rate" else "no_case"
    crit(c, target)["params"][param] = value
    assert any(words in m for m in errors_of(c)), errors_of(c)


def test_a_missing_clause_and_a_missing_parameter_are_refused():
    c = base()
    crit(c, "cleaning")["levels"]["group"] = {"text": "社内环境卫生"}
    del crit(c, "no_secondary_incident")["params"]["window_days"]
    errs = errors_of(c)
    assert any("“cleaning”：层级“group”缺少政策条款号" in m for m in errs)
    assert any("“no_secondary_incident”：缺少参数“window_days”" in m for m in errs)


def test_an_unknown_inspection_item_is_refused():
    c = base()
    crit(c, "entrance_control")["params"]["items"]["building"] = ["entrance", "moat"]
    assert any("检查项“moat”未知" in m for m in errors_of(c))


def test_a_bad_severity_is_refused():
    c = base()
    crit(c, "no_case")["severity"] = "shout"
    assert any("严重程度“shout”未知" in m for m in errors_of(c))


@pytest.mark.django_db
def test_the_profile_in_force_is_the_latest_activated_on_or_before_the_day():
    seeded = profile_row_in_force(dt.date(2022, 11, 28))
    assert (seeded.name, seeded.version) == ("wenlong-2022", "2022.11.20-1")
    c = base()
    c["version"] = "2022.12.07-1"
    crit(c, "nat_participation")["params"]["nat_rate"] = 0.9
    row = do_add_profile(actor=None, content=c)
    assert profile_row_in_force(dt.date(2022, 12, 10)) == seeded  # added, not yet active
    do_activate_profile(actor=None, name="wenlong-2022", active_from=dt.date(2022, 12, 7))
    assert profile_row_in_force(dt.date(2022, 12, 6)) == seeded
    assert profile_row_in_force(dt.date(2022, 12, 7)) == row
    assert profile_row_in_force(dt.date(2023, 1, 1)) == row
    with pytest.raises(ProfileError):
        profile_row_in_force(dt.date(2022, 11, 19))


@pytest.mark.django_db
def test_a_published_version_cannot_change():
    c = base()
    assert do_add_profile(actor=None, content=c).pk == PolicyProfile.objects.get().pk  # same content: same row
    crit(c, "no_case")["params"]["window_days"] = 14
    with pytest.raises(ProfileError, match="已存在且内容不同"):
        do_add_profile(actor=None, content=c)


@pytest.mark.django_db
def test_the_profile_commands(tmp_path, capsys):
    good = base()
    good["version"] = "2"
    path = tmp_path / "p.json"
    path.write_text(json.dumps(good, ensure_ascii=False), encoding="utf-8")
    call_command("profile", "validate", str(path))
    assert "配置有效：wenlong-2022 2" in capsys.readouterr().out
    call_command("profile", "add", str(path))
    call_command("profile", "activate", "wenlong-2022", "--from", "2023-01-01")
    assert PolicyActivation.objects.order_by("-active_from").first().profile.version == "2"
    bad = base()
    crit(bad, "no_case")["params"]["window_days"] = -1
    path.write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(CommandError, match="配置文件无效"):
        call_command("profile", "add", str(path))
    assert "window_days" in capsys.readouterr().err
    assert PolicyProfile.objects.count() == 2
