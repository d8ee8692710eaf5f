"""Supervision after naming (SPEC §6): re-evaluate named units, withdraw, warn.

Two entry points, one logic:

- ``recheck_after_facts(unit_ids, on=…, actor=…, source=…)``: called inside the transaction that
  wrote new facts (imports, API batches, single-fact actions). It re-evaluates the named units in
  the chains of the affected units (the units themselves and every named unit above them; for a
  risk zone also every named unit below) and acts on them at once.
- ``run_daily(on)``: every named unit, one set-based evaluation, then the same actions, and the
  day's evaluations stored.

The cascade is decided inside ONE evaluation: the evaluator judges units bottom-up, and as soon as
a named unit is found to lose its title today, its verdict is handed to the units above it as *not
named* — exactly what a second evaluation after the withdrawal would see (a title withdrawn on D
is not current on D). So a compound whose building is withdrawn fails ``children_named`` in the
same pass, and a community fails ``children_free`` only when a unit below it is neither named nor
eligible. No loop of re-evaluations, and the stored evaluation is the fixed point (idempotent).

What is written (warnings, title events, notices, the day's evaluations) is in Chinese, the
language of the stored records, whatever language the request that wrote the facts chose.

A named unit loses its title on D when it fails a criterion of severity ``revoke``, or when a
warning of it is past its deadline (deadline ≤ D) and its criterion still fails. A failed ``warn``
criterion opens a warning (one open per unit and criterion) with the deadline D + rectify_days
(profile ``supervision.rectify_days``, default 3); a warning whose criterion passes again closes
as rectified. Nothing is written when nothing changes.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone, translation

from wuyiqu.audit import actions as audit
from wuyiqu.certification.models import Title
from wuyiqu.lib.dates import today
from wuyiqu.standards import criteria as C
from wuyiqu.standards.criteria import CriterionResult
from wuyiqu.standards.evaluator import (
    _Evaluator,
    _like_prefix,
    _path_upper,
    parsed_profile,
    profile_row_in_force,
)
from wuyiqu.standards.profiles import Profile
from wuyiqu.units.models import Unit, district_of

from .locks import hold_for_facts
from .models import MANUAL, TitleEvent, TitleEventKind, Warning, WarningStatus

RECTIFY_DAYS = 3
COMMITTEE_KINDS = ("village", "community")
COMMITTEE_DEPTH = 2  # district 0, street 1, village/community 2


def rectify_days(profile: Profile) -> int:
    """Days a warning gives to rectify: the profile's ``supervision.rectify_days`` (1–60), else 3."""
    value = ((profile.content or {}).get("supervision") or {}).get("rectify_days", RECTIFY_DAYS)
    return value if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 60 else RECTIFY_DAYS


def current_on(on: dt.date) -> Q:
    """Titles current on ``on`` (withdrawn on ``on`` is not current on ``on``)."""
    return Q(named_on__lte=on) & (Q(withdrawn_on__isnull=True) | Q(withdrawn_on__gt=on))


# --- the decision, taken during the evaluation ---------------------------------------------------------

@dataclass
class Withdrawal:
    evaluation: object  # UnitEvaluation
    revoke: list[CriterionResult]
    expired: list[OpenWarning]


class _Decider:
    """Called by the evaluator for every named unit, bottom-up: True when the unit loses its title
    today. Units outside ``targets`` (None: all) are left alone (the daily run handles them)."""

    def __init__(self, on: dt.date, profile: Profile, targets: set[int] | None, open_warnings: dict[int, list[OpenWarning]]):
        self.on = on
        self.severity = {c.id: c.severity for c in profile.criteria}
        self.targets = targets
        self.open = open_warnings
        self.withdrawn: dict[int, Withdrawal] = {}
        self.kept: dict[int, object] = {}  # named units (in targets) that keep their title: their evaluation
        self.seen: set[int] = set()  # every evaluated unit in targets, named or not

    def __call__(self, ev) -> bool:
        uid = ev.unit.id
        if self.targets is not None and uid not in self.targets:
            return False
        self.seen.add(uid)
        if not ev.named:
            return False
        failed = {c.id for c in ev.criteria if not c.passed}
        revoke = [c for c in ev.criteria if not c.passed and self.severity.get(c.id) == "revoke"]
        expired = [w for w in self.open.get(uid, ()) if w.criterion in failed and w.deadline <= self.on
                   and self.severity.get(w.criterion) == "warn"]
        if revoke or expired:
            self.withdrawn[uid] = Withdrawal(ev, revoke, expired)
            return True
        self.kept[uid] = ev
        return False


class _SupervisingEvaluator(_Evaluator):
    """The standards evaluator, with the supervision decision taken as each unit is judged, so that
    the units above see a withdrawn unit without its title (the evaluator walks bottom-up)."""

    def __init__(self, on, profile, root, decide: _Decider):
        super().__init__(on, profile, root)
        self._decide = decide

    def _judge(self, facts, named):
        ev = super()._judge(facts, named)
        if ev.named and self._decide(ev):
            # Withdrawn today: not current on this day. Judged again as unnamed, since a criterion may
            # depend on the unit's own title (all_households_signed), so that the stored verdict is
            # the one a later evaluation of the day gives.
            facts.named = False
            ev = super()._judge(facts, False)
        return ev


# --- outcome ------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    on: dt.date | None = None
    evaluated: int = 0
    withdrawn: list[str] = field(default_factory=list)  # unit codes
    opened: int = 0
    rectified: int = 0
    expired: int = 0
    closed: int = 0
    stored: int = 0
    evaluate_seconds: float = 0.0
    write_seconds: float = 0.0  # titles, events, warnings, notices
    store_seconds: float = 0.0  # the day's evaluations (compare + do_store_evaluations)
    results: list = field(default_factory=list, repr=False)
    # recheck_after_facts: the units the facts bear on (ids; ``subtrees``: with everything below) and
    # the codes of the named units in their chains whose titles it judged, for the pages to say so.
    units: list[int] = field(default_factory=list)
    subtrees: list[int] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.withdrawn or self.opened or self.rectified or self.expired or self.closed or self.stored)

    def as_dict(self) -> dict:
        return {"on": self.on.isoformat() if self.on else None, "evaluated": self.evaluated,
                "withdrawn": self.withdrawn, "warnings_opened": self.opened, "rectified": self.rectified,
                "expired": self.expired, "closed": self.closed, "stored": self.stored}

    def add(self, part: Outcome) -> None:
        """Add the counts, withdrawals and times of ``part`` (one district's pass); not its results."""
        self.evaluated += part.evaluated
        self.withdrawn = sorted(self.withdrawn + part.withdrawn)
        for name in ("opened", "rectified", "expired", "closed", "stored", "evaluate_seconds", "write_seconds",
                     "store_seconds"):
            setattr(self, name, getattr(self, name) + getattr(part, name))


# --- entry points -------------------------------------------------------------------------------------

_COLLECTED: ContextVar[list[Outcome] | None] = ContextVar("wuyiqu_rechecks", default=None)


@contextmanager
def collecting_rechecks() -> Iterator[list[Outcome]]:
    """Yields a list that receives the outcome of every ``recheck_after_facts`` made inside the block.
    The single-fact actions return their record, not the re-check they ran inside their transaction;
    a page that must tell the user which units the change re-checked collects it here instead of
    every action's return value carrying supervision's outcome."""
    token = _COLLECTED.set([])
    try:
        yield _COLLECTED.get()
    finally:
        _COLLECTED.reset(token)


def recheck_after_facts(unit_ids: Iterable[int], *, on: dt.date | None = None, actor=None, source: str,
                        subtree_ids: Iterable[int] = ()) -> Outcome:
    """Re-check the named units that new facts about ``unit_ids`` bear on — each unit and every unit
    above it, and for ``subtree_ids`` (risk zones) also every unit below — and withdraw / warn at
    once. Call it inside the transaction that wrote the facts: the withdrawals commit or roll back
    with them. Returns what changed (nothing is written, not even an audit row, when nothing did).

    The evaluation reads the subtree of the village/community of each affected unit (or of the
    affected unit itself when it lies higher, e.g. a zone on a street). A named street above that
    subtree is judged from it: it fails a roll-up criterion (a case, a measure, a zone, an incident
    counts for every unit above) when its village/community fails it, and ``children_free`` when its
    village/community ends up neither named nor eligible — enough to withdraw it at once; its other
    criteria are the daily run's (reading a whole street per fact would cost seconds)."""
    ids = {int(i) for i in unit_ids if i}
    below = {int(i) for i in subtree_ids if i}
    out = Outcome(on=on or today(), units=sorted(ids | below), subtrees=sorted(below))
    if (collected := _COLLECTED.get()) is not None:
        collected.append(out)
    if not ids and not below:
        return out
    on = out.on
    paths = dict(Unit.objects.filter(pk__in=ids | below).values_list("id", "path"))
    # Before reading the titles: a naming of one of these units in progress commits first, and its
    # title is then seen here (supervision/locks.py).
    hold_for_facts([p for uid, p in paths.items() if uid in ids], [p for uid, p in paths.items() if uid in below])
    codes = {c for p in paths.values() for c in p.strip("/").split("/")}
    # Every unit judged lies in the districts of the affected units: named, each read (and its rows
    # locked) is routed to that district's shard on Citus.
    districts = sorted({district_of(p) for p in paths.values()})
    cond = Q(unit__code__in=codes)
    for uid in below:
        if uid in paths:
            cond |= Q(unit__path__startswith=paths[uid])
    named = {uid: path for uid, path in Title.objects.filter(district_code__in=districts).filter(current_on(on)).filter(cond)
             .values_list("unit_id", "unit__path")}
    if not named:
        return out  # nothing named above or below: the common case costs two queries
    out.checked = sorted(path.strip("/").rsplit("/", 1)[-1] for path in named.values())
    named_paths = set(named.values())
    roots: set[str] = set()
    for uid, path in paths.items():
        if path.count("/") <= COMMITTEE_DEPTH + 1:
            roots.add(path)  # a fact on a street (or the district) is judged on its whole subtree
            continue
        chain = _prefixes(path)
        if uid not in below and not named_paths.intersection(chain):
            continue
        # The village/community of the unit, whose subtree holds the unit's own subtree (a zone
        # covers it) and every unit up to the village/community: district → street →
        # village/community is fixed (units.models.ALLOWED_PARENT_KINDS), so it is at depth 2.
        roots.add(chain[COMMITTEE_DEPTH])
    roots = _outermost(roots)
    if len(roots) > 3:
        roots = {_common_path(roots)}
    return _supervise(on, roots=sorted(roots), targets=set(named), actor=actor, source=source, out=out,
                      districts=districts)


def run_daily(*, on: dt.date | None = None, actor=None, store: bool = True) -> Outcome:
    """The daily run: every named unit re-evaluated in one set-based pass, warnings opened, rectified
    and expired, titles withdrawn, the day's evaluations stored. Running it again for the same day
    changes nothing (the second pass sees the first one's withdrawals and open warnings).

    A tree of several districts (a city) is run one district at a time, each in a transaction of its
    own: no fact, verdict or warning crosses a district, so the verdicts are those of one pass over
    everything, while memory and locks stay those of one district (docs/scaling.md). If the run
    stops half-way, the districts done stay done and running it again does the rest. The returned
    outcome then adds up the districts' counts and carries no ``results``."""
    out = Outcome(on=on or today())
    # As the evaluator does during its walk: the cyclic garbage collector stays paused for the whole
    # pass (the district's evaluations are a million small objects without cycles, freed by reference
    # counting); re-enabled right after the walk, its first collection would traverse them all.
    paused = gc.isenabled()
    gc.disable()
    try:
        districts = list(Unit.objects.filter(parent__isnull=True).order_by("code").values_list("path", flat=True))
        if len(districts) <= 1:
            with transaction.atomic():
                _supervise(out.on, roots=["/"], targets=None, actor=actor, source="daily", out=out, store=store,
                           districts=[district_of(p) for p in districts])
            return out
        for path in districts:
            part = Outcome(on=out.on)
            with transaction.atomic():
                _supervise(out.on, roots=[path], targets=None, actor=actor, source="daily", out=part, store=store,
                           scope=path, districts=[district_of(path)])
            out.add(part)
            del part  # the district's evaluations, freed before the next district is read
    finally:
        if paused:
            gc.enable()
    return out


# --- the work -------------------------------------------------------------------------------------------

def _prefixes(path: str) -> list[str]:
    """The paths of a unit and of every unit above it, from the top."""
    parts = path.strip("/").split("/")
    return ["/" + "".join(p + "/" for p in parts[:i]) for i in range(1, len(parts) + 1)]


def _outermost(paths: set[str]) -> set[str]:
    """``paths`` without those lying inside another one."""
    return {p for p in paths if not any(p != q and p.startswith(q) for q in paths)}


def _common_path(paths: Iterable[str]) -> str:
    """The longest unit path that is a prefix of all ``paths`` ("/" when they share no unit)."""
    split = [p.strip("/").split("/") for p in paths]
    common: list[str] = []
    for parts in zip(*split, strict=False):
        if all(x == parts[0] for x in parts):
            common.append(parts[0])
        else:
            break
    return "/" + "".join(c + "/" for c in common) if common else "/"


@dataclass(frozen=True, slots=True)
class _UnitLabel:
    path: str
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class OpenWarning:
    """An open warning as the supervision pass reads it (plain values: a bad day has tens of thousands)."""

    pk: int
    unit_id: int
    criterion: str
    detail: str
    opened_on: dt.date
    deadline: dt.date
    unit: _UnitLabel
    detail_form: str | None = None  # its machine form (None: a person's words, or an older row)


def _open_warnings(on: dt.date, targets: set[int] | None, districts: list[str],
                   scope: str | None = None) -> dict[int, list[OpenWarning]]:
    """The warnings open on ``on`` in ``districts``: a pass over a past day (a missed day run
    afterwards) leaves alone the warnings opened after it — closing them would date their closing
    before their opening. One query per district (Citus routes a row lock only to one shard)."""
    qs = Warning.objects.filter(status=WarningStatus.OPEN, opened_on__lte=on)
    if targets is not None:
        qs = qs.filter(unit_id__in=targets)
    if scope is not None:
        qs = qs.filter(unit__path__startswith=scope)
    # The race: a daily run and a fact import closing/opening the same warnings; the lock makes the
    # second wait and then see the first one's changes.
    found: dict[int, list[OpenWarning]] = defaultdict(list)
    rows = [row for district in districts for row in qs.filter(district_code=district).select_for_update(of=("self",))
            .order_by("id").values_list("id", "unit_id", "criterion", "detail", "opened_on", "deadline", "unit__path",
                                        "unit__code", "unit__name", "detail_form")]
    for pk, uid, criterion, detail, opened_on, deadline, path, code, name, form in rows:
        found[uid].append(OpenWarning(pk, uid, criterion, detail, opened_on, deadline, _UnitLabel(path, code, name),
                                      form if isinstance(form, str) else None))
    return found


def _supervise(on: dt.date, *, roots: list[str], targets: set[int] | None, actor, source: str, out: Outcome,
               districts: list[str], store: bool = False, scope: str | None = None) -> Outcome:
    """Evaluate the subtrees of ``roots`` ("/": everything) with the decision taken on the way, judge
    the named streets above them (``_judge_above``), write the changes, store the day if asked. With
    ``scope`` (a district's path, the daily run of a city), the open warnings read and closed and the
    stored evaluations compared and replaced are those of that subtree only. ``districts``: the
    districts of the roots' units (their titles and warnings are read, locked and written district by
    district)."""
    import time

    with transaction.atomic(), translation.override(settings.LANGUAGE_CODE):
        row = profile_row_in_force(on)
        profile = parsed_profile(row)
        open_warnings = _open_warnings(on, targets, districts, scope)
        decide = _Decider(on, profile, targets, open_warnings)
        # The evaluator reads only a root's path (and the codes in it): no query for the units.
        units = {r: Unit(path=r, code=r.strip("/").rsplit("/", 1)[-1]) for r in roots if r != "/"}
        t = time.perf_counter()
        results = []
        # The reasons in their machine form, then in zh-hans beside it (``C.localise``): what is
        # stored (warnings, withdrawals, evaluations) keeps both, pages show the reader's language.
        with C.machine_reasons():
            for path in roots:
                results += _SupervisingEvaluator(on, profile, units.get(path), decide).run()
        C.localise(results)
        out.evaluate_seconds = time.perf_counter() - t
        out.evaluated = len(results)
        out.results = results
        if targets is not None:
            _judge_above(decide, profile, results, targets - decide.seen)
        t = time.perf_counter()
        _write(decide, profile, on=on, actor=actor, source=source, out=out, districts=districts)
        out.write_seconds = time.perf_counter() - t
        if store:
            t = time.perf_counter()
            out.stored = _store(results, on=on, row=row, actor=actor, scope=scope)
            out.store_seconds = time.perf_counter() - t
        if out.changed:
            audit.record(actor=actor, action="supervision.daily" if source == "daily" else "supervision.recheck",
                         detail={"source": source, **out.as_dict(), **({"scope": scope} if scope else {})})
    return out


# Criteria that a failing unit passes on to every unit above it (its facts count for them too).
ROLL_UP = ("no_case", "no_close_contact", "no_home_quarantine", "no_returnee_under_control", "no_risk_zone",
           "no_secondary_incident")


def _judge_above(decide: _Decider, profile: Profile, results, above: set[int]) -> None:
    """The named units of ``above`` (streets over the evaluated villages/communities) that must go:
    a roll-up ``revoke`` criterion failed by an evaluated village/community below, or
    ``children_free`` failed because one ended up neither named nor eligible."""
    if not above:
        return
    m = C.machine_messages()
    committees = [e for e in results if e.unit.kind in COMMITTEE_KINDS]
    for uid, path, kind in Unit.objects.filter(pk__in=above).values_list("id", "path", "kind"):
        ids = {c.id for c in profile.criteria_for(kind) if decide.severity.get(c.id) == "revoke"}
        below = [e for e in committees if e.unit.path.startswith(path)]
        revoke = []
        for cid in ROLL_UP:
            failing = [(e, c) for e in below for c in e.criteria if c.id == cid and not c.passed]
            if cid in ids and failing:
                revoke.append(_composed(cid, m.text("semicolon").join(
                    m.text("unit_reason", unit=C.plain(e.unit.name), detail=c.machine or C.plain(c.detail))
                    for e, c in failing)))
        gone = [e for e in below if not e.named and not e.eligible]
        if "children_free" in ids and gone:
            revoke.append(_composed("children_free", m.text("below_neither", list=m.text("and").join(
                C.plain(e.unit.name) for e in gone))))
        if revoke:
            decide.withdrawn[uid] = Withdrawal(None, revoke, [])


def _composed(cid: str, form: str) -> CriterionResult:
    """A result whose reason supervision composed in the machine form, with its zh-hans text."""
    result = CriterionResult(cid, False, form)
    result.localise()
    return result


def withdrawal_form(w: Withdrawal, profile: Profile) -> str:
    """The machine form of a withdrawal's reason: each failed revoke criterion with its name and
    detail, and each expired warning (names, not ids: the reason is shown on pages and in notices)."""
    m = C.machine_messages()
    parts = []
    for c in w.revoke:
        c.localise()  # the verdict that withdrew the unit (judged again since, so not among the results)
        spec = profile.get(c.id)
        parts.append(m.text("criterion_reason", criterion=C.label(spec.name) if spec else C.plain(c.id),
                            detail=c.machine or C.plain(c.detail)))
    for warning in w.expired:
        spec = profile.get(warning.criterion)
        parts.append(m.text("warning_expired", criterion=C.label(spec.name) if spec else C.plain(warning.criterion),
                            opened=f"{warning.opened_on:%Y-%m-%d}", deadline=f"{warning.deadline:%Y-%m-%d}",
                            detail=warning.detail_form or C.plain(warning.detail)))
    return m.text("semicolon").join(parts)


def withdrawal_reason(w: Withdrawal, profile: Profile) -> str:
    """The zh-hans reason of a withdrawal (``withdrawal_form`` written out)."""
    with translation.override(settings.LANGUAGE_CODE):
        return C.render(withdrawal_form(w, profile))


def _write(decide: _Decider, profile: Profile, *, on: dt.date, actor, source: str, out: Outcome,
           districts: list[str]) -> None:
    from .notices import Notices

    notices = Notices()
    days = rectify_days(profile)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    day = connection.ops.adapt_datefield_value(on)
    actor_id = actor.pk if (actor is not None and getattr(actor, "is_authenticated", False)) else None
    gone: set[int] = set()
    if decide.withdrawn:
        # The race: two requests withdrawing the same title (e.g. two cases in one compound at once);
        # the lock makes the second wait, and the filter then no longer finds the title current.
        # Plain values, not model instances: thousands of titles on a bad day.
        # One locked read per district: Citus routes a row lock only to one shard.
        titles = {uid: (pk, title, _UnitLabel(path, code, name), district)
                  for district in districts for pk, uid, title, path, code, name in
                  Title.objects.select_for_update(of=("self",))
                  .filter(district_code=district, unit_id__in=list(decide.withdrawn), withdrawn_on__isnull=True)
                  .values_list("id", "unit_id", "title", "unit__path", "unit__code", "unit__name")}
        events = []
        updates: dict[str, list[tuple]] = defaultdict(list)  # by district
        for uid, w in decide.withdrawn.items():
            t = titles.get(uid)
            if t is None:
                continue
            pk, title, unit, district = t
            form = withdrawal_form(w, profile)
            reason = C.render(form)  # zh-hans: the pass runs in LANGUAGE_CODE
            gone.add(uid)
            updates[district].append((pk, reason, json.dumps(form, ensure_ascii=False)))
            criteria = [c.id for c in w.revoke] + [x.criterion for x in w.expired]
            events.append((pk, uid, district, TitleEventKind.WITHDRAWN.value, day, now, reason,
                           json.dumps(form, ensure_ascii=False), json.dumps(criteria),
                           source[:60], actor_id, w.expired[0].pk if w.expired else None))
            notices.withdrawn(unit, title, on, reason, form)
        # Plain rows (one statement per district on PostgreSQL, named: one shard on Citus):
        # bulk_update's CASE WHEN and model instances cost more than the evaluation itself.
        if connection.vendor == "postgresql":
            _executemany(f"UPDATE {Title._meta.db_table} t SET withdrawn_on = %s, withdrawn_reason = v.r->>1, "
                         f"withdrawn_form = (v.r->>2)::jsonb "
                         f"FROM json_array_elements(%s::json) AS v(r) "
                         f"WHERE t.district_code = %s AND t.id = (v.r->>0)::bigint",
                         [(day, _json_rows(rows), district) for district, rows in updates.items()])
        else:
            _executemany(f"UPDATE {Title._meta.db_table} SET withdrawn_on = %s, withdrawn_reason = %s, "
                         f"withdrawn_form = %s WHERE district_code = %s AND id = %s",
                         [(day, reason, form, district, pk) for district, rows in updates.items()
                          for pk, reason, form in rows])
        _insert(TitleEvent._meta.db_table, [("title_id", "bigint"), ("unit_id", "bigint"), ("district_code", "text"),
                                            ("kind", "text"),
                                            ("on", "date"), ("at", "timestamptz"), ("reason", "text"),
                                            ("reason_form", "jsonb"), ("criteria", "jsonb"), ("source", "text"), ("actor_id", "bigint"),
                                            ("warning_id", "bigint")], events)
        out.withdrawn = sorted(titles[u][2].code for u in gone)

    to_close: dict[str, list[OpenWarning]] = defaultdict(list)
    for uid, warnings in decide.open.items():
        kept = decide.kept.get(uid)
        failed = {c.id for c in kept.criteria if not c.passed} if kept is not None else set()
        for w in warnings:
            if uid in gone:  # withdrawn now: an expired warning is the reason, the others close with it
                withdrawal = decide.withdrawn[uid]
                to_close[WarningStatus.EXPIRED if w in withdrawal.expired else WarningStatus.CLOSED].append(w)
            elif kept is not None:
                if w.criterion == MANUAL:
                    if w.deadline <= on:  # a person's warning: the command decides, nothing automatic
                        to_close[WarningStatus.EXPIRED].append(w)
                        notices.manual_expired(w)
                elif decide.severity.get(w.criterion) != "warn":
                    to_close[WarningStatus.CLOSED].append(w)  # the profile in force no longer warns on it
                elif w.criterion not in failed:
                    to_close[WarningStatus.RECTIFIED].append(w)
                    notices.rectified(w)
            elif uid in decide.seen or decide.targets is None:
                to_close[WarningStatus.CLOSED].append(w)  # the unit holds no title any more
    for status, warnings in to_close.items():
        Warning.objects.filter(district_code__in=districts, pk__in=[w.pk for w in warnings]).update(
            status=status, closed_on=on)
    out.rectified += len(to_close.get(WarningStatus.RECTIFIED, []))
    out.expired += len(to_close.get(WarningStatus.EXPIRED, []))
    out.closed += len(to_close.get(WarningStatus.CLOSED, []))

    new: list[tuple[int, str, str, str | None]] = []  # (unit id, criterion, detail, its machine form)
    deadline = on + dt.timedelta(days=days)
    for uid, ev in decide.kept.items():
        have = {w.criterion for w in decide.open.get(uid, ())}
        for c in ev.criteria:
            if not c.passed and c.id not in have and decide.severity.get(c.id) == "warn":
                c.localise()
                new.append((uid, c.id, c.detail, json.dumps(c.machine, ensure_ascii=False) if c.machine else None))
                notices.warned(ev.unit, c, profile, deadline)
    if new:
        title_ids = dict(Title.objects.filter(district_code__in=districts, unit_id__in={uid for uid, *_rest in new},
                                              withdrawn_on__isnull=True).values_list("unit_id", "id"))
        # Ignoring conflicts: a concurrent recheck that opened the same warning first wins (the
        # partial unique index one_open_warning_per_criterion decides).
        until = connection.ops.adapt_datefield_value(deadline)
        _insert(Warning._meta.db_table, [("unit_id", "bigint"), ("district_code", "text"), ("title_id", "bigint"),
                                         ("criterion", "text"),
                                         ("detail", "text"), ("detail_form", "jsonb"), ("opened_on", "date"), ("deadline", "date"),
                                         ("status", "text"), ("closed_note", "text"), ("created_at", "timestamptz")],
                [(uid, district_of(decide.kept[uid].unit.path), title_ids.get(uid), cid, detail, form, day, until,
                  WarningStatus.OPEN.value, "", now) for uid, cid, detail, form in new], ignore_conflicts=True)
    out.opened += len(new)
    notices.send()


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _insert(table: str, columns: list[tuple[str, str]], rows: list[tuple], *, ignore_conflicts: bool = False) -> None:
    """INSERT ``rows`` into ``table``: one statement on PostgreSQL (the rows sent as one JSON array
    of arrays — the C JSON encoder is many times quicker than psycopg's Python array dumpers),
    executemany on SQLite. ``columns``: (name, PostgreSQL type) in the rows' order; a ``jsonb``
    value is given as JSON text."""
    if not rows:
        return
    names = ", ".join(_q(n) for n, _t in columns)
    if connection.vendor == "postgresql":
        cols = ", ".join(f"(v.r->>{i})::{t}" for i, (_n, t) in enumerate(columns))
        sql = (f"INSERT INTO {table} ({names}) SELECT {cols} FROM json_array_elements(%s::json) AS v(r)"
               + (" ON CONFLICT DO NOTHING" if ignore_conflicts else ""))
        _executemany(sql, [(_json_rows(rows),)])
    else:
        sql = (f"INSERT {'OR IGNORE ' if ignore_conflicts else ''}INTO {table} ({names}) "
               f"VALUES ({', '.join(['%s'] * len(columns))})")
        _executemany(sql, rows)


def _json_value(value):
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")


def _json_rows(rows: list[tuple]) -> str:
    """``rows`` as one JSON array of arrays (dates and times in ISO form) for ``json_array_elements``."""
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"), default=_json_value)


def _executemany(sql: str, rows: list[tuple]) -> None:
    if rows:
        with connection.cursor() as cur:
            cur.executemany(sql, rows)


def _store(results, *, on: dt.date, row, actor, scope: str | None = None) -> int:
    """Store the day's evaluations (standards ``do_store_evaluations``) unless the rows stored for
    the day already give every unit the same verdict (eligible, named, failed criteria) under the same
    profile: a second run of the day writes nothing. The reasons' texts are not compared: the
    evaluator names a sample of households in no fixed order, so equal verdicts may read differently.
    With ``scope`` (a unit path): only the day's rows of that subtree are compared and replaced."""
    from wuyiqu.standards.actions import do_store_evaluations
    from wuyiqu.standards.models import Evaluation

    label = f"{row.name} {row.version}"
    wanted = {r.unit.id: (r.eligible, r.named, list(r.failed)) for r in results}
    sql = (f"SELECT e.unit_id, e.eligible, e.named, e.failed, e.profile_version FROM {Evaluation._meta.db_table} e "
           f"WHERE e.{_q('on')} = %s")
    params = [connection.ops.adapt_datefield_value(on)]
    if scope is not None:
        # The subtree's units by the path index: a prefix LIKE on PostgreSQL (varchar_pattern_ops), a
        # range on SQLite (whose LIKE cannot use an index), as the evaluator reads them.
        if connection.vendor == "sqlite":
            cond, more = "u.path >= %s AND u.path < %s", [scope, _path_upper(scope)]
        else:
            cond, more = "u.path LIKE %s ESCAPE '\\'", [_like_prefix(scope)]
        # The district first: on Citus it routes the read to the district's shard.
        sql += f" AND e.district_code = %s AND e.unit_id IN (SELECT u.id FROM {Unit._meta.db_table} u WHERE {cond})"
        params += [district_of(scope), *more]
    # Plain rows: tens of thousands of them, and Django's per-value JSON converters cost seconds.
    with connection.cursor() as cur:
        cur.execute(sql, params)
        stored = {uid: (bool(e), bool(n), json.loads(f) if isinstance(f, str) else f)
                  for uid, e, n, f, p in cur.fetchall() if p == label}
    if stored == wanted:
        return 0
    root = Unit(path=scope, code=scope.strip("/").rsplit("/", 1)[-1]) if scope is not None else None
    return do_store_evaluations(on=on, profile_row=row, actor=actor, results=results, root=root)
