"""The month behind `wuyiqu demo`: 30 days lived through the product's own actions, day by day.

Each day of the history runs with the clock frozen on that day (18:00 in Shanghai, after the day's rounds, time-machine), so
that every action sees the day as "today" exactly as it did when it happened: the day's facts are
recorded through the imports a community's staff would use (nucleic-acid rounds, inspections,
verifications, surveys, the special-population ledger — set-based, one job each), single facts through
their actions (a case, close contacts, a risk zone opened and lifted), applications through the whole
review chain (open, paper co-signatures, submit, 受理, 初审, 复核, 命名, one 退回), and then the day's
supervision (``supervision.services.run_daily``) withdraws, warns and stores the day's evaluations, so
the 30-day trend and every unit's history are full.

The seed decides everything random (who is tested in a round, which inspection fails), so the same
seed gives the same month. What happens to whom (the script) is fixed and told by ``TOUR``.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.test import override_settings

from wuyiqu.accounts.actions import do_create_user
from wuyiqu.accounts.models import Role, User
from wuyiqu.applications.actions import (
    ApplicationRefused,
    do_open_application,
    do_record_paper_signatures,
    do_review_application,
    do_submit_application,
)
from wuyiqu.applications.models import Application, ApplicationStatus
from wuyiqu.health.actions import do_end_risk_zone, do_record_case, do_record_measure, do_record_risk_zone
from wuyiqu.imports.services import run_import
from wuyiqu.supervision.services import run_daily
from wuyiqu.units.generator import World
from wuyiqu.units.models import Household, Resident, Unit, UnitKind, district_of

DAYS = 30
SHANGHAI = ZoneInfo("Asia/Shanghai")
DEMO_PASSWORD = "wuyiqu-demo-2022"
WENLONG_STREET = "500110002"
WENLONG = "500110002015"  # 文龙社区: its first compound, its buildings and then the community are named
TIANQIAO = "500110002014"  # 天桥社区: applications waiting at every step, one returned
SHUANGLONG = "500110002020"  # 双龙社区: close contacts, a temporary control zone opened and lifted
HONGQI = "500110002208"  # 红旗村: groups named, one warned, one withdrawn when its warning runs out
BUILDING_ITEMS = ("entrance", "vehicles", "visitors", "masks", "disinfection", "garbage", "environment")
COMMITTEE_ITEMS = ("masks", "environment", "garbage", "weekly_cleaning")
PARTICIPATION = 0.97  # share of residents sampled in a round; two rounds fall in every 7 days
LAGGING = 0.60  # one village's rounds (its nat_participation fails: 未达标 with a reason to read)
TAGS = ("独居老人", "孕产妇", "残疾人", "婴幼儿", "血透病人", "肿瘤患者", "慢性病患者")


class DemoArgon2(Argon2PasswordHasher):
    """Argon2 at a low cost for the demo's accounts, which all share the printed password: twenty
    hashes at the full cost took half a minute of the demo's start. The hash names the standard
    ``argon2`` algorithm with its parameters, so the standard hasher checks it and, its parameters
    being lower, rehashes it at the full cost on the account's first login (``must_update``)."""

    time_cost = 1
    memory_cost = 1024
    parallelism = 1


@dataclass
class Month:
    first: dt.date
    rnd: random.Random
    world: World
    workdir: Path
    users: dict[str, User] = field(default_factory=dict)
    apps: dict[str, Application] = field(default_factory=dict)
    state: dict = field(default_factory=dict)

    def day(self, n: int) -> dt.date:
        return self.first + dt.timedelta(days=n)


def first_day(last: dt.date) -> dt.date:
    """The first day of a history that ends on ``last`` (today)."""
    return last - dt.timedelta(days=DAYS - 1)


def at(day: dt.date):
    """The clock frozen on ``day`` at 18:00 in Shanghai (time-machine, imported only here: the demo's)."""
    import time_machine

    return time_machine.travel(dt.datetime(day.year, day.month, day.day, 18, 0, tzinfo=SHANGHAI), tick=False)


def unit(code: str) -> Unit:
    return Unit.objects.get(code=code)


def children(parent: Unit, kind: str) -> list[Unit]:
    return list(Unit.objects.filter(parent=parent, kind=kind).order_by("code"))


def waiting_buildings() -> list[Unit]:
    """The five buildings that apply on day 25 to wait at each step by today: 天桥社区's, then (in a
    small world) 文龙社区's own (outside its compounds), then other communities'."""
    tq, wl = unit(TIANQIAO), unit(WENLONG)
    buildings = list(Unit.objects.filter(path__startswith=tq.path, kind=UnitKind.BUILDING).order_by("code")[:5])
    buildings += Unit.objects.filter(parent=wl, kind=UnitKind.BUILDING).order_by("code")[:5 - len(buildings)]
    if len(buildings) < 5:  # a very small world: buildings of the other communities (their staff review)
        buildings += Unit.objects.filter(kind=UnitKind.BUILDING, path__contains=f"/{WENLONG_STREET}/").exclude(
            path__contains=f"/{WENLONG}/").exclude(path__contains=f"/{TIANQIAO}/").exclude(
            path__contains=f"/{SHUANGLONG}/").order_by("code")[:5 - len(buildings)]
    return buildings


def households_below(u: Unit) -> list[Household]:
    return list(Household.objects.filter(unit__path__startswith=u.path).select_related("unit").order_by("code"))


# --- accounts ------------------------------------------------------------------------------------

def create_accounts(m: Month) -> None:
    """An account for every role in 文龙社区 and 天桥社区 and in 红旗村, the street, the district's
    reviewers and the administrator; and a building head or property manager for each building or
    compound that applies in the script (``lz-<building code>``, ``wy-<compound code>``)."""
    district = unit("500110")
    wl, tq, hq = unit(WENLONG), unit(TIANQIAO), unit(HONGQI)
    wl_compound, tq_compound = children(wl, UnitKind.COMPOUND)[0], children(tq, UnitKind.COMPOUND)[0]
    tq_first = waiting_buildings()[0]
    groups = children(hq, UnitKind.GROUP)
    accounts = [
        ("admin", Role.ADMIN, district, "系统管理员"),
        ("command", Role.COMMAND, district, "区指挥部 值班员"),
        ("health", Role.HEALTH_COMMISSION, district, "区卫健委 复核员"),
        ("street", Role.STREET_STAFF, unit(WENLONG_STREET), "文龙街道 宣传文化办"),
        ("community", Role.COMMUNITY_STAFF, wl, "文龙社区 网格员"),
        ("property", Role.PROPERTY_MANAGER, wl_compound, f"{wl_compound.name} 物业"),
        ("building", Role.BUILDING_HEAD, children(wl_compound, UnitKind.BUILDING)[0], ""),
        ("community2", Role.COMMUNITY_STAFF, tq, "天桥社区 网格员"),
        ("property2", Role.PROPERTY_MANAGER, tq_compound, f"{tq_compound.name} 物业"),
        ("building2", Role.BUILDING_HEAD, tq_first, ""),  # the first to apply
        # 红旗村's own staff: a group leader's application for 无疫社 is received here (SPEC §5).
        ("village", Role.COMMUNITY_STAFF, hq, "红旗村 村委会 工作人员"),
    ]
    # 红旗村's first three 社 (a small world may have fewer: the script then leaves the missing ones out)
    accounts += [(name, Role.GROUP_LEADER, g, f"{g.name} 社长") for name, g in zip(("group", "group2", "group3"), groups, strict=False)]
    for username, role, u, name in accounts:
        m.users[username] = do_create_user(actor=None, username=username, password=DEMO_PASSWORD, role=role, unit=u,
                                           display_name=name or f"{u.name} 楼栋长")


def building_head(m: Month, building: Unit) -> User:
    for user in m.users.values():
        if user.role == Role.BUILDING_HEAD and user.unit_id == building.pk:
            return user
    username = "lz-" + building.code[9:].replace("-", "").lower()  # 500110002015-C01-B02: lz-015c01b02
    m.users[username] = do_create_user(actor=None, username=username, password=DEMO_PASSWORD,
                                       role=Role.BUILDING_HEAD, unit=building, display_name=f"{building.name} 楼栋长")
    return m.users[username]


def property_manager(m: Month, compound: Unit) -> User:
    for user in m.users.values():
        if user.role == Role.PROPERTY_MANAGER and user.unit_id == compound.pk:
            return user
    username = "wy-" + compound.code[9:].replace("-", "").lower()  # 500110002015-C02: wy-015c02
    m.users[username] = do_create_user(actor=None, username=username, password=DEMO_PASSWORD,
                                       role=Role.PROPERTY_MANAGER, unit=compound, display_name=f"{compound.name} 物业")
    return m.users[username]


# --- the upkeep: the imports a quiet month brings ---------------------------------------------------

def _import(m: Month, kind: str, header: list[str], rows: list[list]) -> None:
    path = m.workdir / f"{kind}.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)
    job = run_import(kind=kind, path=path)
    if job.status != "succeeded":
        raise RuntimeError(f"demo history: the {kind} import failed: {job.message} {job.errors[:3]}")


def nat_round(m: Month, n: int) -> None:
    """A nucleic-acid round: most residents sampled during the morning; one village lags behind."""
    on = m.day(n)
    lagging = m.state["lagging"]
    rows = []
    for r in m.world.residents:
        share = LAGGING if r.household_code.startswith(lagging) else PARTICIPATION
        if m.rnd.random() < share:
            rows.append([r.id_number, f"{on} {m.rnd.randint(7, 11):02d}:{m.rnd.randint(0, 59):02d}", "阴性"])
    _import(m, "nat-results", ["id_number", "sampled_at", "result"], rows)


def inspection_round(m: Month, n: int, failing: dict[str, set[str]]) -> None:
    """Every building, compound, group and committee inspected item by item; ``failing``: code → items."""
    on = m.day(n)
    rows = []
    for code, kind in Unit.objects.filter(path__contains=f"/{WENLONG_STREET}/", kind__in=(
            UnitKind.BUILDING, UnitKind.COMPOUND, UnitKind.GROUP, UnitKind.COMMUNITY, UnitKind.VILLAGE,
    )).order_by("code").values_list("code", "kind"):
        items = BUILDING_ITEMS if kind in (UnitKind.BUILDING, UnitKind.COMPOUND) else COMMITTEE_ITEMS
        for item in items:
            rows.append([code, on, item, "不合格" if item in failing.get(code, ()) else "合格", "网格员"])
    _import(m, "inspections", ["unit_code", "inspected_on", "item", "passed", "inspector"], rows)


def verification_round(m: Month, n: int) -> None:
    """Every household's registry checked (住户清楚、人员准确), but a few in one village left out."""
    gaps = m.state["unverified"]
    rows = [[h.code, m.day(n), "网格员"] for h in m.world.households if h.code not in gaps]
    _import(m, "verifications", ["household_code", "verified_on", "verifier"], rows)


def survey_round(m: Month, n: int) -> None:
    rows = []
    for code in Unit.objects.filter(parent__code=WENLONG_STREET).order_by("code").values_list("code", flat=True):
        low = code == m.state["low_survey"]
        rows.append([code, m.day(n), "0.86" if low else f"0.9{m.rnd.randint(2, 8)}", f"0.9{m.rnd.randint(1, 8)}",
                     f"0.9{m.rnd.randint(1, 8)}"])
    _import(m, "surveys", ["unit_code", "surveyed_on", "awareness", "approval", "participation"], rows)


def ledger(m: Month, n: int) -> None:
    """The special-population ledger: about one resident in 40 tagged; a few lines without needs or
    helper, all in one village (its special_population_ledger fails)."""
    gap_village = m.state["ledger_gaps"]
    rows, gaps = [], 0
    for r in m.world.residents:
        if m.rnd.random() >= 0.025:
            continue
        tags = "、".join(m.rnd.sample(TAGS, k=m.rnd.choice((1, 1, 2))))
        if r.household_code.startswith(gap_village) and gaps < 3:
            gaps += 1
            rows.append([r.id_number, tags, "", "", m.day(n)])
        else:
            rows.append([r.id_number, tags, "上门代购药品、定期探访", f"网格员{m.rnd.choice('王李张刘陈')}", m.day(n)])
    _import(m, "special-population", ["id_number", "tags", "needs", "helper", "reviewed_on"], rows)


# --- applications -----------------------------------------------------------------------------------

REVIEWERS = {
    ApplicationStatus.COMMUNITY_REVIEW: ("community", "经核实，住户联名齐全，同意上报。"),
    ApplicationStatus.STREET_REVIEW: ("street", "初审通过，同意上报区卫健委。"),
    ApplicationStatus.HEALTH_REVIEW: ("health", "复核研判符合创建标准。"),
    ApplicationStatus.COMMAND_REVIEW: ("command", "同意命名。"),
}


def reviewer(m: Month, app: Application) -> User:
    """The reviewer at ``app``'s step: the staff of its own community or village, else the street's,
    the health commission's or the command's account."""
    name, _opinion = REVIEWERS[app.status]
    if name != "community":
        return m.users[name]
    code = app.unit.path.strip("/").split("/")[2]
    staff = next((u for u in m.users.values() if u.role == Role.COMMUNITY_STAFF and u.unit.code == code), None)
    if staff is None:  # a committee without a demo account (a small world's waiting buildings)
        committee = unit(code)
        staff = m.users[f"sq-{code[9:]}"] = do_create_user(
            actor=None, username=f"sq-{code[9:]}", password=DEMO_PASSWORD, role=Role.COMMUNITY_STAFF,
            unit=committee, display_name=f"{committee.name} 工作人员")
    return staff


def apply(m: Month, key: str, u: Unit, applicant: User, *, signed_on: dt.date) -> None:
    """Open ``u``'s application, record every household's paper co-signature (or the committee's own
    signature) and submit it: it goes to its first review step."""
    if u.kind in (UnitKind.COMMUNITY, UnitKind.VILLAGE):
        app = do_open_application(actor=applicant, unit=u, unit_signed_on=signed_on)
    else:
        app = do_open_application(actor=applicant, unit=u)
        do_record_paper_signatures(actor=applicant, unit=u, households=households_below(u), signed_on=signed_on)
    try:
        m.apps[key] = do_submit_application(actor=applicant, application=app)
    except ApplicationRefused as exc:  # another seed's world may fail its self-assessment: the draft stays
        m.state.setdefault("refused", []).append(f"{u.name}：{exc}")


def advance(m: Month, key: str, *, until: str = ApplicationStatus.NAMED) -> None:
    """One review step on ``key``'s application (approve, with the step's opinion), unless it has
    reached ``until``."""
    if key not in m.apps:
        return
    app = Application.objects.select_related("unit").get(district_code=m.apps[key].district_code, pk=m.apps[key].pk)
    if app.status == until or app.status not in REVIEWERS:
        m.apps[key] = app
        return
    try:
        m.apps[key] = do_review_application(app, actor=reviewer(m, app), decision="approve",
                                            opinion=REVIEWERS[app.status][1])
    except ApplicationRefused as exc:  # not meeting the standard on the day: it waits at its step
        m.state.setdefault("refused", []).append(f"{app.unit.name}：{exc}")


def sign_below(m: Month, committee: Unit, on: dt.date) -> None:
    """Every building, compound and group below ``committee`` that holds no title co-signs (paper
    sheets recorded by the committee's staff): what a committee's own application needs."""
    from wuyiqu.certification.models import Title

    named = set(Title.objects.filter(district_code=district_of(committee.path), withdrawn_on__isnull=True)
                .values_list("unit_id", flat=True))
    staff = next(u for u in m.users.values() if u.role == Role.COMMUNITY_STAFF and u.unit_id == committee.pk)
    for u in Unit.objects.filter(path__startswith=committee.path, kind__in=(
            UnitKind.BUILDING, UnitKind.COMPOUND, UnitKind.GROUP)).order_by("code"):
        if u.pk not in named:
            do_record_paper_signatures(actor=staff, unit=u, households=households_below(u), signed_on=on)


# --- the script ----------------------------------------------------------------------------------------

def prepare(m: Month) -> None:
    wl, hq = unit(WENLONG), unit(HONGQI)
    villages = list(Unit.objects.filter(parent__code=WENLONG_STREET, kind=UnitKind.VILLAGE).exclude(pk=hq.pk)
                    .order_by("code"))
    m.state["lagging"] = villages[0].code
    m.state["ledger_gaps"] = villages[1].code
    m.state["low_survey"] = villages[2].code
    gaps = sorted(h.code for h in m.world.households if h.code.startswith(villages[3].code))
    m.state["unverified"] = set(gaps[:4])
    # 文龙社区's compounds and their buildings: all named in the first half of the month
    m.state["wl_compounds"] = children(wl, UnitKind.COMPOUND)
    m.state["wl_buildings"] = list(Unit.objects.filter(parent__in=m.state["wl_compounds"], kind=UnitKind.BUILDING)
                                   .order_by("code"))
    m.state["tq_buildings"] = waiting_buildings()
    # 双龙社区's first compound (or building): close contacts, then a temporary control zone
    m.state["zone"] = Unit.objects.filter(parent__code=SHUANGLONG).order_by("code")[0]
    m.state["hq_groups"] = children(hq, UnitKind.GROUP)[:3]


def events(m: Month, n: int) -> None:
    """What happens on day ``n`` besides the upkeep."""
    on = m.day(n)
    s = m.state
    wl_buildings, wl_compounds = s["wl_buildings"], s["wl_compounds"]
    groups = s["hq_groups"]
    tq_buildings = s["tq_buildings"]
    if n == 2:  # 文龙社区: the buildings of its compounds apply; 红旗村's first three groups too
        for b in wl_buildings:
            apply(m, b.code, b, building_head(m, b), signed_on=on)
        for g, leader in zip(groups[:3], ("group", "group2", "group3"), strict=False):
            apply(m, g.code, g, m.users[leader], signed_on=on)
    if 3 <= n <= 6:  # 受理, 初审, 复核, 命名: one step a day
        for key in [b.code for b in wl_buildings] + [g.code for g in groups[:3]]:
            advance(m, key)
    if n == 7:  # every building named: the compounds apply
        for c in wl_compounds:
            apply(m, c.code, c, property_manager(m, c), signed_on=on)
    if 8 <= n <= 11:
        for c in wl_compounds:
            advance(m, c.code)
    if n == 12:  # 文龙社区 itself: every unit below without a title co-signs, the community signs and applies
        sign_below(m, unit(WENLONG), on)
        apply(m, WENLONG, unit(WENLONG), m.users["community"], signed_on=on)
    if 13 <= n <= 15:
        advance(m, WENLONG)
    if n == 13:  # a positive case in 红旗村's third 社 (withdrawn at once); close contacts in 双龙社区
        where = groups[2] if len(groups) >= 3 else s["zone"]  # a small world has fewer 社
        case_person = Resident.objects.filter(household__unit__path__startswith=where.path).order_by("id")[0]
        do_record_case(actor=m.users["health"], reported_on=on, case_type="asymptomatic",
                       id_number=case_person.reveal_id_number())
        contacts = Resident.objects.filter(household__unit__path__startswith=s["zone"].path)
        for contact in contacts.order_by("id")[:3]:
            do_record_measure(actor=m.users["health"], kind="close_contact", id_number=contact.reveal_id_number(),
                              start_on=on, end_on=m.day(19))
    if n == 15:  # a temporary control zone where the contacts live, lifted four days later
        s["risk_zone"] = do_record_risk_zone(actor=m.users["health"], unit=s["zone"], zone_type="temporary",
                                             start_on=on)
    if n == 19:
        do_end_risk_zone(s["risk_zone"], actor=m.users["health"], on=on, reason="连续4天无新增，解除临时管控")
    if n == 25:  # the 社 of the case, clean again, applies once more; five buildings of 天桥社区 apply
        if len(groups) >= 3:
            apply(m, f"{groups[2].code}-again", groups[2], m.users["group3"], signed_on=on)
        for b in tq_buildings[:5]:
            apply(m, b.code, b, building_head(m, b), signed_on=on)
    if 26 <= n <= 28:  # by today the 2nd waits for the street, the 3rd for the health commission, the 4th for the command
        for steps, b in enumerate(tq_buildings[1:4], start=1):
            if n - 25 <= steps:
                advance(m, b.code)
    if n == 27 and len(tq_buildings) == 5 and tq_buildings[4].code in m.apps:  # the 5th is returned: a household's signature is in doubt
        app = Application.objects.select_related("unit").get(
            district_code=m.apps[tq_buildings[4].code].district_code, pk=m.apps[tq_buildings[4].code].pk)
        if app.status == ApplicationStatus.COMMUNITY_REVIEW:
            m.apps[tq_buildings[4].code] = do_review_application(
                app, actor=reviewer(m, app), decision="return", opinion="102室联名签字与户主不符，请核实后重新提交。")


def failing_items(m: Month, n: int) -> dict[str, set[str]]:
    """Inspections that fail: 红旗村's first group on day 16 (never rectified: withdrawn when its
    warning runs out), its second group on day 28 (under warning today)."""
    groups = m.state["hq_groups"]
    if n == 16:
        return {groups[0].code: {"masks"}}
    if n == 28 and len(groups) >= 2:
        return {groups[1].code: {"masks"}}
    return {}


def live_month(*, world: World, last: dt.date, seed: int, progress=None) -> Month:
    """Live the 30 days ending on ``last`` (today) on the freshly loaded demo world. Returns the month
    (its users and applications)."""
    # Only where Argon2 is the configured hasher (not under the tests' single fast hasher, which could
    # not check an argon2 hash afterwards).
    argon2 = settings.PASSWORD_HASHERS[0].endswith(".Argon2PasswordHasher")
    quick_hash = override_settings(PASSWORD_HASHERS=[f"{__name__}.DemoArgon2", *settings.PASSWORD_HASHERS]) if argon2 \
        else nullcontext()
    with tempfile.TemporaryDirectory(prefix="wuyiqu-demo-") as tmp, quick_hash:
        m = Month(first=first_day(last), rnd=random.Random(seed), world=world, workdir=Path(tmp))
        with at(m.first):
            create_accounts(m)
            prepare(m)
        for n in range(DAYS):
            with at(m.day(n)):
                if n % 3 == 0 or n in (1, DAYS - 1):
                    nat_round(m, n)
                if n % 4 == 0 or n in (16, 28):
                    inspection_round(m, n, failing_items(m, n))
                if n in (0, 20):
                    verification_round(m, n)
                if n in (0, 21):
                    survey_round(m, n)
                if n == 1:
                    ledger(m, n)
                events(m, n)
                run_daily(on=m.day(n))
            if progress:
                progress(n)
    return m
