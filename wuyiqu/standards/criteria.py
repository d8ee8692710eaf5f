"""The criteria: one registered function per criterion id, pure (no database).

A criterion function gets the rolled-up facts of one unit (``UnitFacts``, gathered for all units
at once by ``evaluator.py``), its ``CriterionSpec`` from the profile (parameters) and returns a
``CriterionResult``: passed or not, a reason that names what to fix (in the active language: Chinese
by default, from the texts of ``Messages``), machine-readable items for links, and — for the
time-window criteria — the day it clears if nothing new happens.

Adding a criterion = a function here decorated with ``@criterion("id")`` + its entry in a profile.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple

from django.conf import settings
from django.utils.translation import get_language, gettext, gettext_noop, ngettext, override, pgettext

from wuyiqu.lib.dates import window_start as _window_start

from .profiles import CriterionSpec

SAMPLES = 5  # how many offending items a reason names before "等 N 户"

# The labels stay Chinese here (TITLE_KINDS are also the titles stored on applications and in the
# `wuyiqu evaluate --json` contract); ``Messages`` holds them translated.
INSPECTION_LABELS = {
    "entrance": gettext_noop("出入口值守"), "vehicles": gettext_noop("车辆出入管理"),
    "visitors": gettext_noop("外来人员管理"), "masks": gettext_noop("口罩佩戴"),
    "disinfection": gettext_noop("楼道电梯栏杆清洁消毒"), "garbage": gettext_noop("垃圾分类处置"),
    "environment": gettext_noop("环境卫生"), "weekly_cleaning": gettext_noop("每周清洁消毒"),
}
INCIDENT_LABELS = {
    "fight": gettext_noop("斗殴"), "self_harm": gettext_noop("自寻短见"), "arson": gettext_noop("纵火"),
    "revenge": gettext_noop("报复社会"), "negative_opinion": gettext_noop("负面舆情"),
}
ZONE_LABELS = {"high": gettext_noop("高风险区"), "temporary": gettext_noop("临时管控区")}
TITLE_KINDS = {"building": "无疫楼栋", "compound": "无疫小区", "group": "无疫社", "village": "无疫村",
               "community": "无疫社区", "street": "无疫街道"}


# --- the texts of the reasons --------------------------------------------------------------------------


def _texts() -> dict[str, str]:
    """Every fixed text of the reasons, in the active language (called once per language)."""
    return {
        # Translators: the separators of the reasons: between listed items, between clauses, between rates.
        "and": pgettext("列举分隔", "、"), "semicolon": pgettext("分句分隔", "；"), "comma": pgettext("分句分隔", "，"),
        "resident": gettext("居民 %(name)s (%(id)s)"), "resident_no_name": gettext("居民 (%(id)s)"),
        "unregistered": gettext("未登记人员"),
        # Translators: a person a reason does not name (the reasons volunteer roles read, SPEC §1).
        "someone": gettext("一名居民"),
        "case": gettext("%(who)s %(date)s 报告"),
        "no_case": gettext("近%(days)s天无阳性感染者"),
        "no_close_contact": gettext("无密接"), "no_home_quarantine": gettext("无居家隔离"),
        "no_returnee": gettext("无管控期中的返綦人员"),
        "close_contact": gettext("%(person)s 为密接，管控至 %(date)s"),
        "home_quarantine": gettext("%(person)s 为居家隔离，管控至 %(date)s"),
        "returnee": gettext("%(person)s 为管控期中的返綦人员，管控至 %(date)s"),
        "no_zone": gettext("无风险区、临时管控区"),
        "self": pgettext("风险区所在", "本单位"), "below": pgettext("风险区所在", "下级单位"),
        "above": pgettext("风险区所在", "上级单位"),
        "zone_until": gettext("%(where)s %(name)s 为%(zone)s（%(start)s 起，至 %(end)s）"),
        "zone_open": gettext("%(where)s %(name)s 为%(zone)s（%(start)s 起，未解除）"),
        "inspected": gettext("近%(days)s天%(items)s检查均合格"),
        "not_inspected": gettext("近%(days)s天无%(item)s检查"),
        "not_inspected_since": gettext("近%(days)s天无%(item)s检查（最近一次 %(date)s）"),
        "inspection_failed": gettext("%(item)s %(date)s 检查不合格"),
        "masks_check": gettext("口罩佩戴检查"), "cleaning_check": gettext("清洁消毒检查"),
        "awareness_survey": gettext("宣传知晓度调查"),
        "nobody_to_test": gettext("无应检居民（免检：%(age)s岁以下、卧床）"),
        "nat": gettext("近%(days)s天核酸参与率 %(share)s（应检 %(required)s 人，已检 %(tested)s 人；要求 ≥ %(rate)s）"),
        "nat_missing_people": gettext("未检：%(list)s"), "nat_exempt_people": gettext("免检：%(list)s"),
        "exempt_bedridden": gettext("卧床"), "exempt_young": gettext("%(age)s岁以下"),
        "person_exempt": gettext("%(person)s（%(why)s）"),
        "no_committee_application": gettext("尚未发起创建%(title)s申请"),
        "not_signed_by_unit": gettext("创建%(title)s申请尚未由本单位签字"),
        "no_households": gettext("无登记住户，无法联名申请"),
        "named_no_signing": gettext("已持有称号，无需再次联名申请"),
        "ledger_complete": gettext("特殊人群台账完整，均在期限内复核"),
        "ledger_entry": gettext("%(person)s（%(missing)s）"),
        "ledger_needs": pgettext("台账缺项", "需求"), "ledger_helper": pgettext("台账缺项", "帮扶人"),
        "ledger_not_reviewed": pgettext("台账缺项", "未复核"),
        "ledger_review_expired": pgettext("台账缺项", "%(date)s 复核已过期"),
        "no_secondary_incident": gettext("近%(days)s天无次生事件"),
        "no_negative_opinion": gettext("近%(days)s天无负面舆情"),
        "incident": gettext("%(date)s %(unit)s %(type)s"),
        "opinion_handled": gettext("%(date)s %(unit)s %(type)s（%(handled)s 已处置完毕，待街道认可）"),
        "no_survey": gettext("近%(days)s天无知晓度、认可度、参与度调查"),
        "no_survey_since": gettext("近%(days)s天无知晓度、认可度、参与度调查（最近一次 %(date)s）"),
        "awareness": gettext("知晓度"), "approval": gettext("认可度"), "participation": gettext("参与度"),
        "rate_low": gettext("%(name)s %(value)s 低于 %(min)s"),
        "survey_low": gettext("%(date)s 调查：%(list)s"),
        "survey_ok": gettext("%(date)s 调查：知晓度 %(awareness)s、认可度 %(approval)s、参与度 %(participation)s"),
        # The reasons supervision composes from the criteria's (withdrawals, a street's roll-up).
        "unit_reason": gettext("%(unit)s：%(detail)s"),
        "criterion_reason": gettext("%(criterion)s：%(detail)s"),
        "below_neither": gettext("%(list)s 既未获称号也未达标"),
        "warning_expired": gettext("警示逾期未整改：%(criterion)s，%(opened)s 警示，整改期限 %(deadline)s：%(detail)s"),
        "command_withdrawal": gettext("指挥部摘牌：%(reason)s"),
    }


# The texts with a count, by key: each gives the text for ``n`` in the active language.
_PLURALS: dict[str, Callable[[int], str]] = {
    # The reasons without the people they name (volunteer roles: counts and what to do).
    "cases_count": lambda n: ngettext("近%(days)s天有 %(n)s 例阳性感染者；如无新增，%(clears)s 起满%(days)s天",
                                      "近%(days)s天有 %(n)s 例阳性感染者；如无新增，%(clears)s 起满%(days)s天", n),
    "measures_count": lambda n: ngettext("%(n)s 名居民处于管控中，至 %(date)s", "%(n)s 名居民处于管控中，至 %(date)s", n),
    "ledger_incomplete_count": lambda n: ngettext("%(n)s 人台账不完整或未按期复核", "%(n)s 人台账不完整或未按期复核", n),
    "more_cases": lambda n: ngettext("%(list)s 等 %(n)s 例", "%(list)s 等 %(n)s 例", n),
    "more_households": lambda n: ngettext("%(list)s 等 %(n)s 户", "%(list)s 等 %(n)s 户", n),
    "more_units": lambda n: ngettext("%(list)s 等 %(n)s 个", "%(list)s 等 %(n)s 个", n),
    "more_people": lambda n: ngettext("%(list)s 等 %(n)s 人", "%(list)s 等 %(n)s 人", n),
    "more_buildings": lambda n: ngettext("%(list)s 等 %(n)s 栋", "%(list)s 等 %(n)s 栋", n),
    "more_incidents": lambda n: ngettext("%(list)s 等 %(n)s 起", "%(list)s 等 %(n)s 起", n),
    "more_measures": lambda n: ngettext(" 等 %(n)s 人", " 等 %(n)s 人", n),
    "cases": lambda n: ngettext("近%(days)s天有 %(n)s 例阳性感染者：%(list)s；如无新增，%(clears)s 起满%(days)s天",
                                "近%(days)s天有 %(n)s 例阳性感染者：%(list)s；如无新增，%(clears)s 起满%(days)s天", n),
    "verified": lambda n: ngettext("全部 %(n)s 户近%(days)s天内已核实", "全部 %(n)s 户近%(days)s天内已核实", n),
    "unverified": lambda n: ngettext("%(n)s 户近%(days)s天未核实：%(list)s", "%(n)s 户近%(days)s天未核实：%(list)s", n),
    "committees_pass": lambda n: ngettext("所辖 %(n)s 个村（社区）%(what)s均达标", "所辖 %(n)s 个村（社区）%(what)s均达标", n),
    "committees_fail": lambda n: ngettext("%(n)s 个村（社区）%(what)s未达标：%(list)s",
                                          "%(n)s 个村（社区）%(what)s未达标：%(list)s", n),
    "nat_missing": lambda n: ngettext("，还差 %(n)s 人", "，还差 %(n)s 人", n),
    "below_not_signed": lambda n: ngettext("%(n)s 个下级单位既未完成100%%联名也未持有称号：%(list)s",
                                           "%(n)s 个下级单位既未完成100%%联名也未持有称号：%(list)s", n),
    "below_signed": lambda n: ngettext("本单位已签字申请，所辖 %(n)s 个单位均已100%%联名或持有称号",
                                       "本单位已签字申请，所辖 %(n)s 个单位均已100%%联名或持有称号", n),
    "no_application": lambda n: ngettext("尚未发起创建%(title)s联名申请（共 %(n)s 户）",
                                         "尚未发起创建%(title)s联名申请（共 %(n)s 户）", n),
    "all_signed": lambda n: ngettext("全部 %(n)s 户已联名申请", "全部 %(n)s 户已联名申请", n),
    "unsigned": lambda n: ngettext("%(n)s 户未签名：%(list)s", "%(n)s 户未签名：%(list)s", n),
    "ledger_incomplete": lambda n: ngettext("%(n)s 人台账不完整或未按期复核：%(list)s",
                                            "%(n)s 人台账不完整或未按期复核：%(list)s", n),
    "secondary_incidents": lambda n: ngettext(
        "近%(days)s天有 %(n)s 起次生事件：%(list)s；如无新增，%(clears)s 起满%(days)s天",
        "近%(days)s天有 %(n)s 起次生事件：%(list)s；如无新增，%(clears)s 起满%(days)s天", n),
    "negative_opinions": lambda n: ngettext(
        "近%(days)s天有 %(n)s 起负面舆情未处置完毕：%(list)s；由村（社区）处置完毕、经街道认可后即不再计入",
        "近%(days)s天有 %(n)s 起负面舆情未处置完毕：%(list)s；由村（社区）处置完毕、经街道认可后即不再计入", n),
    "buildings_named": lambda n: ngettext("所有 %(n)s 栋楼均为无疫楼栋", "所有 %(n)s 栋楼均为无疫楼栋", n),
    "buildings_not_named": lambda n: ngettext("%(n)s 栋楼未获无疫楼栋称号：%(list)s",
                                              "%(n)s 栋楼未获无疫楼栋称号：%(list)s", n),
    "below_free": lambda n: ngettext("所辖 %(n)s 个单位均已获称号或达标", "所辖 %(n)s 个单位均已获称号或达标", n),
    "below_not_free": lambda n: ngettext("%(n)s 个下级单位既未获称号也未达标：%(list)s",
                                         "%(n)s 个下级单位既未获称号也未达标：%(list)s", n),
}


class Messages:
    """The texts of the reasons in one language, looked up in the catalogue once (``messages()``).

    The evaluator builds 100,000s of reasons for a district; a gettext call for each would cost more
    than the judging. The criteria format these templates instead (``text``, ``count``, ``listing``);
    a text with a count is looked up once per (key, count) and remembered."""

    __slots__ = ("language", "t", "inspection", "incident", "zone", "title", "_counted")

    def __init__(self, language: str | None):
        self.language = language
        with override(language):
            self.t = _texts()
            self.inspection = {k: gettext(v) for k, v in INSPECTION_LABELS.items()}
            self.incident = {k: gettext(v) for k, v in INCIDENT_LABELS.items()}
            self.zone = {k: gettext(v) for k, v in ZONE_LABELS.items()}
            self.title = {k: gettext(v) for k, v in TITLE_KINDS.items()}
        self._counted: dict[tuple[str, int], str] = {}

    def text(self, key: str, **values: Any) -> str:
        """The text ``key`` with its ``%(name)s`` placeholders filled from ``values``."""
        return self.t[key] % values if values else self.t[key]

    def count(self, key: str, n: int, **values: Any) -> str:
        """The text ``key`` (of ``_PLURALS``) in the form for ``n``, filled with ``n`` and ``values``.
        Shared by the threads of a server: two may look the same form up at once, both store it."""
        template = self._counted.get((key, n))
        if template is None:
            with override(self.language):
                template = self._counted[(key, n)] = _PLURALS[key](n)
        values["n"] = n
        return template % values

    def listing(self, labels: list[str], total: int, noun: str) -> str:
        """"2-1-301、2-1-302 等 7 户" — the first few, then how many in all (``noun``: a more_* key)."""
        text = self.t["and"].join(labels)
        return self.count(noun, total, list=text) if total > len(labels) else text


@lru_cache(maxsize=8)
def _messages_for(language: str | None) -> Messages:
    return Messages(language)


def messages() -> Messages:
    """The reasons' texts in the active language (made once per language); inside
    ``machine_reasons()``, their machine form."""
    if _MACHINE.get():
        return machine_messages()
    return _messages_for(get_language())


# --- the machine form of the reasons (stored beside their zh-hans text) --------------------------------
#
# The reasons the system stores (stored evaluations, warnings, withdrawals) are written in zh-hans
# and, beside them, in a machine form that names the texts and their parameters instead of their
# words, so that a page renders them again in the reader's language (``render``). The machine form
# is what ``MachineMessages`` makes: the same criteria, the same formatting, with templates that
# write tokens: START key (ARG name SEP value)* END, where key is "t:<text key>", "n:<plural key>"
# or "g:<msgid>" (a label: gettext of a catalogue text, e.g. an inspection item or a criterion's
# name) and a value is plain text (a unit's name, a date, a number, a person's words) and tokens.
M_START, M_ARG, M_SEP, M_END = "\ue010", "\ue011", "\ue012", "\ue013"
_MARKS = re.compile("[\ue010-\ue013]")
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_MACHINE: ContextVar[bool] = ContextVar("machine_reasons", default=False)
_LOCALISING = threading.Lock()


def plain(text: str) -> str:
    """``text`` (a person's words, a name) as a value of a machine form: without the token marks."""
    return _MARKS.sub("", text) if text else text


def _token(key: str, names) -> str:
    return M_START + key + "".join(f"{M_ARG}{name}{M_SEP}%({name})s" for name in names) + M_END


def label(msgid: str) -> str:
    """A catalogue text (shown through gettext) in the machine form."""
    return f"{M_START}g:{plain(msgid)}{M_END}"


class MachineMessages(Messages):
    """``Messages`` writing the machine form (see ``M_START``)."""

    def __init__(self):  # noqa: D107 - no catalogue: the keys and the placeholders of the zh-hans texts
        self.language = "machine"
        with override(settings.LANGUAGE_CODE):
            texts = _texts()
            self._plural_names = {k: sorted(set(_PLACEHOLDER.findall(fn(1) + fn(2))) | {"n"}) for k, fn in _PLURALS.items()}
        self.t = {k: _token(f"t:{k}", sorted(set(_PLACEHOLDER.findall(v)))) for k, v in texts.items()}
        self.inspection = {k: label(v) for k, v in INSPECTION_LABELS.items()}
        self.incident = {k: label(v) for k, v in INCIDENT_LABELS.items()}
        self.zone = {k: label(v) for k, v in ZONE_LABELS.items()}
        self.title = {k: label(v) for k, v in TITLE_KINDS.items()}
        self._counted = {}

    def count(self, key: str, n: int, **values: Any) -> str:
        template = self._counted.get((key, 0))
        if template is None:
            template = self._counted[(key, 0)] = _token(f"n:{key}", self._plural_names[key])
        values["n"] = n
        return template % values


@lru_cache(maxsize=1)
def machine_messages() -> MachineMessages:
    return MachineMessages()


@contextmanager
def machine_reasons():
    """Inside: ``messages()`` (hence the evaluator) writes the reasons in their machine form; turn
    the results into their zh-hans text with ``localise``."""
    token = _MACHINE.set(True)
    try:
        yield
    finally:
        _MACHINE.reset(token)


def _parse(text: str, i: int, inside: bool) -> tuple[list, int]:
    """The pieces of ``text`` from ``i``: strings and tokens (key, {name: pieces}); ``inside`` a
    token's value, up to the next ARG or END mark (returned: the index of that mark)."""
    out: list = []
    start, n = i, len(text)
    while i < n:
        ch = text[i]
        if ch == M_START:
            if i > start:
                out.append(text[start:i])
            j = i + 1
            while j < n and text[j] not in (M_ARG, M_END):
                j += 1
            key, params = text[i + 1:j], {}
            while j < n and text[j] == M_ARG:
                k = text.find(M_SEP, j)
                if k < 0:
                    raise ValueError("a machine form without its value mark")
                params[text[j + 1:k]], j = _parse(text, k + 1, True)
            if j >= n:
                raise ValueError("a machine form without its end")
            out.append((key, params))
            i = start = j + 1
        elif inside and ch in (M_ARG, M_END):
            break
        else:
            i += 1
    if i > start:
        out.append(text[start:i])
    return out, i


def _render(pieces: list, m: Messages) -> str:
    parts = []
    for piece in pieces:
        if isinstance(piece, str):
            parts.append(piece)
            continue
        key, params = piece
        kind, _, name = key.partition(":")
        values = {k: _render(v, m) for k, v in params.items()}
        if kind == "g":
            parts.append(gettext(name))
        elif kind == "n":
            n = int(values.pop("n"))
            parts.append(m.count(name, n, **values))
        else:
            parts.append(m.text(name, **values))
    return "".join(parts)


@lru_cache(maxsize=4096)
def _render_cached(form: str, language: str | None) -> str:
    with override(language):
        return _render(_parse(form, 0, False)[0], _messages_for(language))


def render(form: str, language: str | None = None) -> str:
    """The machine form ``form`` in ``language`` (the active one by default). A text without token
    marks (a person's words, a reason stored before the machine forms) is returned as it is."""
    if not form or M_START not in form:
        return form or ""
    return _render_cached(form, language or get_language())


def shown(text: str, form) -> str:
    """A stored reason as a page shows it: its machine form in the active language when it has one
    (and it still renders), else the text as stored."""
    if isinstance(form, str) and form:
        try:
            return render(form)
        except (KeyError, ValueError, TypeError):  # a form older than its texts' parameters
            pass
    return text


# --- facts -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnitRef:
    id: int
    code: str
    name: str
    kind: str
    path: str
    parent_id: int | None


# --- people in reasons (SPEC §1: volunteer roles see counts and what to do, never who) ---------------------
#
# A person in a reason is written in both forms between private-use marks: OPEN named SPLIT anonymous
# CLOSE. ``CriterionResult`` splits every reason it is given into ``detail`` (the anonymous form: what is
# stored, notified, exported and shown to everyone) and ``named`` (the named form, shown only to the
# roles that may see who, ``wuyiqu.accounts.visibility``). So a reason that names people through
# ``PersonRef.label`` can never reach a volunteer with the names, whichever criterion writes it.
PERSON_OPEN, PERSON_SPLIT, PERSON_CLOSE = "\ue000", "\ue001", "\ue002"
_PERSON = re.compile("\ue000([^\ue001]*)\ue001([^\ue002]*)\ue002")


def named_form(text: str) -> str:
    """``text`` with each marked person in the named form."""
    return _PERSON.sub(r"\1", text) if PERSON_OPEN in text else text


def anonymous_form(text: str) -> str:
    """``text`` with each marked person in the anonymous form ("一名居民")."""
    return _PERSON.sub(r"\2", text) if PERSON_OPEN in text else text


@dataclass(frozen=True, slots=True)
class PersonRef:
    """A resident as a reason shows them: masked name and masked ID number (named form), or nobody in
    particular (anonymous form); see ``PERSON_OPEN``."""

    resident_id: int | None
    name: str
    id_masked: str

    def label(self, m: Messages) -> str:
        if not self.name:
            named = m.text("resident_no_name", id=self.id_masked) if self.id_masked else m.text("unregistered")
        else:
            masked = self.name[0] + "*" * max(1, len(self.name) - 1)
            named = m.text("resident", name=masked, id=self.id_masked)
        return f"{PERSON_OPEN}{named}{PERSON_SPLIT}{m.text('someone')}{PERSON_CLOSE}"


@dataclass(frozen=True, slots=True)
class CaseFact:
    reported_on: dt.date
    person: PersonRef | None  # None: a case recorded on a unit
    unit_name: str


@dataclass(frozen=True, slots=True)
class MeasureFact:
    kind: str  # close_contact / home_quarantine / returnee
    start_on: dt.date
    end_on: dt.date
    person: PersonRef


@dataclass(frozen=True, slots=True)
class ZoneFact:
    zone_type: str
    start_on: dt.date
    end_on: dt.date | None
    unit_code: str
    unit_name: str
    relation: str  # "self", "below", "above"


@dataclass(frozen=True, slots=True)
class IncidentFact:
    occurred_on: dt.date
    incident_type: str
    unit_code: str
    unit_name: str
    handled_on: dt.date | None = None  # a negative opinion handled (处置完毕) by D, not yet accepted


class InspectionFact(NamedTuple):
    # A named tuple, not a dataclass: the evaluator makes one per inspection row (100,000s a day).
    inspected_on: dt.date
    passed: bool


@dataclass(frozen=True, slots=True)
class SurveyFact:
    surveyed_on: dt.date
    awareness: Decimal
    approval: Decimal
    participation: Decimal


@dataclass(frozen=True, slots=True)
class ApplicationFact:
    id: int
    status: str
    unit_signed_on: dt.date | None


@dataclass(slots=True)
class Sampled:
    """A count with the first few offending items (label, machine-readable item)."""

    count: int = 0
    samples: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def add(self, label: str, item: dict[str, Any]) -> None:
        self.count += 1
        if len(self.samples) < SAMPLES:
            self.samples.append((label, item))

    def merge(self, other: Sampled) -> None:
        self.count += other.count
        room = SAMPLES - len(self.samples)
        if room > 0:
            self.samples.extend(other.samples[:room])


@dataclass(slots=True)
class Verdict:
    """What a unit below (or the unit itself, once judged) amounts to, for the criteria above it."""

    unit: UnitRef
    named: bool
    eligible: bool
    passed: dict[str, bool]


@dataclass(slots=True)
class UnitFacts:
    """Everything the criteria look at for one unit on ``on``, already rolled up over its subtree."""

    unit: UnitRef
    level: str
    on: dt.date
    cases: list[CaseFact] = field(default_factory=list)  # on U or below, in the fetched window
    measures: list[MeasureFact] = field(default_factory=list)  # residents below U, covering ``on``
    zones: list[ZoneFact] = field(default_factory=list)  # on U, below or above, covering ``on``
    households: int = 0
    unverified: Sampled = field(default_factory=Sampled)  # households not verified within verify_days
    nat_required: int = 0  # non-exempt residents
    nat_tested: int = 0  # of them, with a result sampled within nat_days
    ledger_incomplete: Sampled = field(default_factory=Sampled)
    incidents: list[IncidentFact] = field(default_factory=list)  # on U or below, in the fetched window
    inspections: dict[str, InspectionFact] = field(default_factory=dict)  # latest per item on U itself
    survey: SurveyFact | None = None  # the latest survey of U itself on or before ``on``
    named: bool = False  # U holds its title on ``on``
    application: ApplicationFact | None = None  # U's open (or latest) application for its title
    signed: int = 0  # households below U that co-signed that application by ``on``
    unsigned: Sampled = field(default_factory=Sampled)
    descendants: list[Verdict] = field(default_factory=list)  # titled units below, judged first
    # The texts of the reasons: the evaluator passes the ones it resolved once for the whole walk.
    msgs: Messages = field(default_factory=messages)


@dataclass(slots=True)
class CriterionResult:
    id: str
    passed: bool
    # The reason as everyone may read it: never who (a person named in it is in the anonymous form).
    detail: str
    items: list[dict[str, Any]] = field(default_factory=list)
    # Time-window criteria: the first day it passes if nothing new happens (None: not known/applicable).
    clears_on: dt.date | None = None
    time_based: bool = False
    # The reason with the people it names, for the roles that may see who; "" when it names nobody.
    # Never stored: stored evaluations, warnings, withdrawals and notices carry ``detail`` only.
    named: str = ""
    # The machine form of ``detail`` (see ``M_START``) once ``localise`` made ``detail`` zh-hans text.
    machine: str = ""

    def __post_init__(self) -> None:
        if PERSON_OPEN in self.detail:
            self.named = named_form(self.named or self.detail)
            self.detail = anonymous_form(self.detail)
        elif self.named and PERSON_OPEN in self.named:
            self.named = named_form(self.named)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "passed": self.passed, "detail": self.detail, "items": self.items}

    def localise(self) -> None:
        """A result made inside ``machine_reasons()``: keep its machine form in ``machine`` and write
        ``detail`` and ``named`` in the active language. Once: results are shared between units."""
        if self.machine or M_START not in self.detail + self.named:
            return
        with _LOCALISING:  # a passing result is shared between the threads of a server too
            if self.machine or M_START not in self.detail + self.named:
                return
            form, named = self.detail, self.named
            self.detail, self.named = render(form), render(named)
            self.machine = form


def localise(evaluations) -> None:
    """``CriterionResult.localise`` over the criteria of ``evaluations``."""
    for ev in evaluations:
        for c in ev.criteria:
            c.localise()


CriterionFn = Callable[[UnitFacts, CriterionSpec], CriterionResult]
REGISTRY: dict[str, CriterionFn] = {}


def criterion(criterion_id: str) -> Callable[[CriterionFn], CriterionFn]:
    """Register ``fn`` as the rule of ``criterion_id`` (the id profiles and the API use)."""

    def register(fn: CriterionFn) -> CriterionFn:
        if criterion_id in REGISTRY:
            raise ValueError(f"criterion {criterion_id!r} registered twice")
        REGISTRY[criterion_id] = fn
        return fn

    return register


# --- helpers -----------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def window_start(on: dt.date, days: int) -> dt.date:
    """``wuyiqu.lib.dates.window_start``, remembered: the evaluator asks it for 100,000s of units."""
    return _window_start(on, days)


def md(day: dt.date | None) -> str:
    """2022-11-28: the reasons give dates with their year (they are stored and read months later)."""
    return day.isoformat() if day else "—"


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


# --- the criteria of the wenlong-2022 policy -----------------------------------------------------------


@criterion("no_case")
def no_case(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    days, m = spec.params["window_days"], f.msgs
    if not f.cases:
        return _passed(m, spec.id, "no_case", days, True)
    start = window_start(f.on, days)
    cases = sorted((c for c in f.cases if start <= c.reported_on <= f.on), key=lambda c: c.reported_on)
    if not cases:
        return _passed(m, spec.id, "no_case", days, True)
    last = cases[-1].reported_on
    labels = [m.text("case", who=c.person.label(m) if c.person else c.unit_name, date=md(c.reported_on))
              for c in cases[:SAMPLES]]
    items = [{"type": "resident", "id": c.person.resident_id} for c in cases if c.person and c.person.resident_id]
    clears = last + dt.timedelta(days=days)
    return CriterionResult(
        spec.id, False, m.count("cases_count", len(cases), days=days, clears=md(clears)), items[:SAMPLES], clears, True,
        named=m.count("cases", len(cases), days=days, list=m.listing(labels, len(cases), "more_cases"), clears=md(clears)))


# Per measure kind: the text when there is none, the text of one person under it.
MEASURE_TEXTS = {"close_contact": ("no_close_contact", "close_contact"),
                 "home_quarantine": ("no_home_quarantine", "home_quarantine"), "returnee": ("no_returnee", "returnee")}


def _measure(kind: str, f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    m = f.msgs
    none, one = MEASURE_TEXTS[kind]
    if not f.measures:
        return _passed(m, spec.id, none, None, True)
    active = sorted((x for x in f.measures if x.kind == kind and x.start_on <= f.on <= x.end_on),
                    key=lambda x: x.end_on)
    if not active:
        return _passed(m, spec.id, none, None, True)
    texts = [m.text(one, person=x.person.label(m), date=md(x.end_on)) for x in active[:SAMPLES]]
    items = [{"type": "resident", "id": x.person.resident_id} for x in active if x.person.resident_id]
    clears = active[-1].end_on + dt.timedelta(days=1)
    more = m.count("more_measures", len(active)) if len(active) > SAMPLES else ""
    return CriterionResult(spec.id, False, m.count("measures_count", len(active), date=md(active[-1].end_on)),
                           items[:SAMPLES], clears, True, named=m.text("semicolon").join(texts) + more)


@criterion("no_close_contact")
def no_close_contact(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    return _measure("close_contact", f, spec)


@criterion("no_home_quarantine")
def no_home_quarantine(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    return _measure("home_quarantine", f, spec)


@criterion("no_returnee_under_control")
def no_returnee_under_control(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    return _measure("returnee", f, spec)


@criterion("no_risk_zone")
def no_risk_zone(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    m = f.msgs
    if not f.zones:
        return _passed(m, spec.id, "no_zone", None, True)
    active = [z for z in f.zones if z.start_on <= f.on and (z.end_on is None or f.on <= z.end_on)]
    if not active:
        return _passed(m, spec.id, "no_zone", None, True)
    texts = [m.text("zone_until" if z.end_on else "zone_open", where=m.text(z.relation), name=z.unit_name,
                    zone=m.zone.get(z.zone_type, z.zone_type), start=md(z.start_on), end=md(z.end_on))
             for z in active[:SAMPLES]]
    ends = [z.end_on for z in active]
    clears = None if any(e is None for e in ends) else max(ends) + dt.timedelta(days=1)
    items = [{"type": "unit", "code": z.unit_code} for z in active[:SAMPLES]]
    return CriterionResult(spec.id, False, m.text("semicolon").join(texts), items, clears, True)


@criterion("registry_verified")
def registry_verified(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    days, m = spec.params["verify_days"], f.msgs
    if f.unverified.count == 0:
        return CriterionResult(spec.id, True, m.count("verified", f.households, days=days))
    labels = [label for label, _ in f.unverified.samples]
    return CriterionResult(
        spec.id, False, m.count("unverified", f.unverified.count, days=days,
                                list=m.listing(labels, f.unverified.count, "more_households")),
        [item for _, item in f.unverified.samples])


@lru_cache(maxsize=4096)
def _passed(m: Messages, criterion_id: str, key: str, days: int | None = None,
            time_based: bool = False) -> CriterionResult:
    """A passing result whose reason (the text ``key`` of ``m``, with ``days``) does not depend on the
    unit, made once and shared between units: the evaluator judges 100,000s of criteria, most of
    them passing (results are never changed after they are made)."""
    detail = m.text(key) if days is None else m.text(key, days=days)
    return CriterionResult(criterion_id, True, detail, time_based=time_based)


@lru_cache(maxsize=256)
def _inspections_passed(m: Messages, criterion_id: str, days: int, items: tuple[str, ...]) -> CriterionResult:
    names = m.text("and").join(m.inspection.get(i, i) for i in items)
    return CriterionResult(criterion_id, True, m.text("inspected", days=days, items=names))


def _inspections(f: UnitFacts, spec: CriterionSpec, items: tuple[str, ...] | list[str]) -> CriterionResult:
    days, m = spec.params["inspection_days"], f.msgs
    start = window_start(f.on, days)
    latest = f.inspections
    # Most units pass: check that first, without building any text (asked ~70,000 times a day).
    for item in items:
        last = latest.get(item)
        if last is None or last.inspected_on < start or not last.passed:
            break
    else:
        return _inspections_passed(m, spec.id, days, tuple(items))
    problems = []
    for item in items:
        label = m.inspection.get(item, item)
        last = f.inspections.get(item)
        if last is None:
            problems.append((m.text("not_inspected", days=days, item=label), item))
        elif last.inspected_on < start:
            problems.append((m.text("not_inspected_since", days=days, item=label, date=md(last.inspected_on)), item))
        elif not last.passed:
            problems.append((m.text("inspection_failed", item=label, date=md(last.inspected_on)), item))
    if not problems:
        return _inspections_passed(m, spec.id, days, tuple(items))
    return CriterionResult(spec.id, False, m.text("semicolon").join(p for p, _ in problems),
                           [{"type": "inspection", "item": i, "unit": f.unit.code} for _, i in problems])


def _over_children(f: UnitFacts, spec: CriterionSpec, kinds: tuple[str, ...], what: str) -> CriterionResult:
    """A street judged "over its villages and communities": passes when each of them passes."""
    m = f.msgs
    below = [v for v in f.descendants if v.unit.kind in kinds]
    failing = [v for v in below if not v.passed.get(spec.id, False)]
    if not failing:
        return CriterionResult(spec.id, True, m.count("committees_pass", len(below), what=m.text(what)))
    labels = [v.unit.name for v in failing[:SAMPLES]]
    return CriterionResult(spec.id, False, m.count("committees_fail", len(failing), what=m.text(what),
                                                   list=m.listing(labels, len(failing), "more_units")),
                           [{"type": "unit", "code": v.unit.code} for v in failing[:SAMPLES]])


COMMITTEES = ("village", "community")


def inspected_items(spec: CriterionSpec, level: str) -> tuple[str, ...]:
    """The inspection items a criterion reads from the unit's own inspections at ``level`` (none for a
    criterion that is not about inspections, or a street's, judged over its committees)."""
    if level == "street":
        return ()
    if spec.id == "mask_compliance":
        return ("masks",)
    if spec.id in ("entrance_control", "cleaning"):
        return tuple(spec.items_for(level))
    return ()


@criterion("mask_compliance")
def mask_compliance(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    if f.level == "street":
        return _over_children(f, spec, COMMITTEES, "masks_check")
    return _inspections(f, spec, ["masks"])


@criterion("entrance_control")
def entrance_control(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    return _inspections(f, spec, spec.items_for(f.level))


@criterion("cleaning")
def cleaning(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    if f.level == "street":
        return _over_children(f, spec, COMMITTEES, "cleaning_check")
    return _inspections(f, spec, spec.items_for(f.level))


@criterion("nat_participation")
def nat_participation(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    days, rate, age = spec.params["nat_days"], spec.params["nat_rate"], spec.params["exempt_under_age"]
    m = f.msgs
    if f.nat_required == 0:
        return CriterionResult(spec.id, True, m.text("nobody_to_test", age=age))
    share = f.nat_tested / f.nat_required
    text = m.text("nat", days=days, share=_pct(share), required=f.nat_required, tested=f.nat_tested, rate=_pct(rate))
    # Compare in integers so that 95% of 20 is exactly 19 (no float rounding at the boundary).
    if f.nat_tested * 10000 >= round(rate * 10000) * f.nat_required:
        return CriterionResult(spec.id, True, text)
    missing = math.ceil(rate * f.nat_required - 1e-9) - f.nat_tested
    return CriterionResult(spec.id, False, text + m.count("nat_missing", missing),
                           [{"type": "households", "unit": f.unit.code}])


def with_nat_people(result: CriterionResult, m: Messages, missing: Sampled, exempt: Sampled) -> CriterionResult:
    """A failing nat_participation's result with who is missing and who is exempt added to its reason
    (masked, the first few of each, the counts of those named) and the missing residents to its
    items: the evaluator reads them after judging (``_Evaluator._name_nat_people``). A new result,
    made like any other, so that whatever a result does with the people a reason names applies."""
    parts = []
    if missing.count:
        parts.append(m.text("nat_missing_people", list=m.listing([label for label, _ in missing.samples],
                                                                 missing.count, "more_people")))
    if exempt.count:
        parts.append(m.text("nat_exempt_people", list=m.listing([label for label, _ in exempt.samples],
                                                                exempt.count, "more_people")))
    if not parts:
        return result
    return CriterionResult(result.id, result.passed, m.text("semicolon").join([result.detail, *parts]),
                           result.items + [item for _, item in missing.samples], result.clears_on, result.time_based)


@criterion("all_households_signed")
def all_households_signed(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    m = f.msgs
    title = m.title.get(f.level, "")
    if f.named:
        # The co-signatures are what naming requires; a unit holding its title (named through the
        # chain, or before the system and imported) is not asked to collect them again.
        return _passed(m, spec.id, "named_no_signing")
    if f.level in ("village", "community", "street"):
        # 经村（社区）签字申请 + every group, compound and building below had all its households
        # co-sign its own application or holds its title (a street: every village/community below
        # passes this or holds its title).
        problems: list[str] = []
        items: list[dict[str, Any]] = []
        app = f.application
        if app is None:
            problems.append(m.text("no_committee_application", title=title))
        elif app.unit_signed_on is None or app.unit_signed_on > f.on:
            problems.append(m.text("not_signed_by_unit", title=title))
            items.append({"type": "application", "id": app.id})
        kinds = COMMITTEES if f.level == "street" else ("group", "compound", "building")
        below = [v for v in f.descendants if v.unit.kind in kinds]
        failing = [v for v in below if not (v.named or v.passed.get(spec.id, False))]
        if failing:
            labels = [v.unit.name for v in failing[:SAMPLES]]
            problems.append(m.count("below_not_signed", len(failing),
                                    list=m.listing(labels, len(failing), "more_units")))
            items += [{"type": "unit", "code": v.unit.code} for v in failing[:SAMPLES]]
        if problems:
            return CriterionResult(spec.id, False, m.text("semicolon").join(problems), items)
        return CriterionResult(spec.id, True, m.count("below_signed", len(below)))
    if f.households == 0:
        return CriterionResult(spec.id, False, m.text("no_households"))
    if f.application is None:
        return CriterionResult(spec.id, False, m.count("no_application", f.households, title=title),
                               [{"type": "households", "unit": f.unit.code}])
    if f.unsigned.count == 0:
        return CriterionResult(spec.id, True, m.count("all_signed", f.households))
    labels = [label for label, _ in f.unsigned.samples]
    return CriterionResult(spec.id, False, m.count("unsigned", f.unsigned.count,
                                                   list=m.listing(labels, f.unsigned.count, "more_households")),
                           [item for _, item in f.unsigned.samples])


@criterion("special_population_ledger")
def special_population_ledger(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    m = f.msgs
    if f.ledger_incomplete.count == 0:
        return _passed(m, spec.id, "ledger_complete")
    labels = [label for label, _ in f.ledger_incomplete.samples]
    return CriterionResult(
        spec.id, False, m.count("ledger_incomplete_count", f.ledger_incomplete.count),
        [item for _, item in f.ledger_incomplete.samples],
        named=m.count("ledger_incomplete", f.ledger_incomplete.count,
                      list=m.listing(labels, f.ledger_incomplete.count, "more_people")))


def ledger_label(m: Messages, person: PersonRef, needs: str | None, helper: str | None,
                 reviewed_on: dt.date | None) -> str:
    """One incomplete ledger entry as a reason names it: the person and what is missing or overdue
    (the evaluator keeps only entries that are incomplete or not reviewed in time)."""
    missing = [m.text(key) for key, value in (("ledger_needs", needs), ("ledger_helper", helper))
               if not (value or "").strip()]
    if reviewed_on is None:
        missing.append(m.text("ledger_not_reviewed"))
    elif not missing:
        missing.append(m.text("ledger_review_expired", date=md(reviewed_on)))
    return m.text("ledger_entry", person=person.label(m), missing=m.text("and").join(missing))


def _incidents(f: UnitFacts, spec: CriterionSpec, types: set[str], none: str, found_key: str) -> CriterionResult:
    days, m = spec.params["window_days"], f.msgs
    if not f.incidents:
        return _passed(m, spec.id, none, days, True)
    start = window_start(f.on, days)
    found = sorted((i for i in f.incidents if i.incident_type in types and start <= i.occurred_on <= f.on),
                   key=lambda i: i.occurred_on)
    if not found:
        return _passed(m, spec.id, none, days, True)
    labels = [m.text("incident", date=md(i.occurred_on), unit=i.unit_name,
                     type=m.incident.get(i.incident_type, i.incident_type)) for i in found[:SAMPLES]]
    clears = found[-1].occurred_on + dt.timedelta(days=days)
    return CriterionResult(spec.id, False, m.count(found_key, len(found), days=days, clears=md(clears),
                                                   list=m.listing(labels, len(found), "more_incidents")),
                           [{"type": "unit", "code": i.unit_code} for i in found[:SAMPLES]], clears, True)


@criterion("no_secondary_incident")
def no_secondary_incident(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    return _incidents(f, spec, {"fight", "self_harm", "arson", "revenge"}, "no_secondary_incident",
                      "secondary_incidents")


@criterion("no_negative_opinion")
def no_negative_opinion(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    """A negative opinion counts until its handling (处置完毕, by the community) is accepted by the
    street (the evaluator leaves out the accepted ones). Not a time criterion: a warning on it gives
    days to handle it, so the reason says how to clear it, not the day the window would."""
    days, m = spec.params["window_days"], f.msgs
    start = window_start(f.on, days)
    found = sorted((i for i in f.incidents if i.incident_type == "negative_opinion" and start <= i.occurred_on <= f.on),
                   key=lambda i: i.occurred_on)
    if not found:
        return _passed(m, spec.id, "no_negative_opinion", days, False)
    labels = [m.text("opinion_handled" if i.handled_on else "incident", date=md(i.occurred_on), unit=i.unit_name,
                     type=m.incident["negative_opinion"], handled=md(i.handled_on)) for i in found[:SAMPLES]]
    return CriterionResult(spec.id, False, m.count("negative_opinions", len(found), days=days,
                                                   list=m.listing(labels, len(found), "more_incidents")),
                           [{"type": "unit", "code": i.unit_code} for i in found[:SAMPLES]])


@criterion("children_named")
def children_named(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    m = f.msgs
    buildings = [v for v in f.descendants if v.unit.kind == "building"]
    missing = [v for v in buildings if not v.named]
    if not missing:
        return CriterionResult(spec.id, True, m.count("buildings_named", len(buildings)))
    labels = [v.unit.name for v in missing[:SAMPLES]]
    return CriterionResult(spec.id, False, m.count("buildings_not_named", len(missing),
                                                   list=m.listing(labels, len(missing), "more_buildings")),
                           [{"type": "unit", "code": v.unit.code} for v in missing[:SAMPLES]])


@criterion("children_free")
def children_free(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    m = f.msgs
    kinds = COMMITTEES if f.level == "street" else ("group", "compound", "building")
    below = [v for v in f.descendants if v.unit.kind in kinds]
    missing = [v for v in below if not (v.named or v.eligible)]
    if not missing:
        return CriterionResult(spec.id, True, m.count("below_free", len(below)))
    labels = [v.unit.name for v in missing[:SAMPLES]]
    return CriterionResult(spec.id, False, m.count("below_not_free", len(missing),
                                                   list=m.listing(labels, len(missing), "more_units")),
                           [{"type": "unit", "code": v.unit.code} for v in missing[:SAMPLES]])


@criterion("publicity_awareness")
def publicity_awareness(f: UnitFacts, spec: CriterionSpec) -> CriterionResult:
    if f.level == "street":
        return _over_children(f, spec, COMMITTEES, "awareness_survey")
    days, low, m = spec.params["survey_days"], spec.params["survey_min"], f.msgs
    s = f.survey
    if s is None or s.surveyed_on < window_start(f.on, days) or s.surveyed_on > f.on:
        text = m.text("no_survey_since", days=days, date=md(s.surveyed_on)) if s else m.text("no_survey", days=days)
        return CriterionResult(spec.id, False, text, [{"type": "survey", "unit": f.unit.code}])
    rates = [("awareness", s.awareness), ("approval", s.approval), ("participation", s.participation)]
    low_dec = Decimal(str(low))
    bad = [m.text("rate_low", name=m.text(key), value=f"{float(v):.2f}", min=f"{low:.2f}")
           for key, v in rates if Decimal(v) < low_dec]
    if bad:
        return CriterionResult(spec.id, False, m.text("survey_low", date=md(s.surveyed_on), list=m.text("comma").join(bad)),
                               [{"type": "survey", "unit": f.unit.code}])
    return CriterionResult(spec.id, True, m.text("survey_ok", date=md(s.surveyed_on), **{
        key: f"{float(v):.2f}" for key, v in rates}))
