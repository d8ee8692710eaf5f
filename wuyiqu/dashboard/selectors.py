"""Reads of the dashboard (态势总览): the status of every titled unit of a scope on a day, aggregated.

Status of a titled unit (building, compound, group, village/community, street) on D — one of:

- ``named``: holds a title current on D (``certification.Title``) and no open warning;
- ``warned``: holds a current title and has a warning open on D (``supervision.Warning``);
- ``withdrawn``: held a title that was withdrawn on or before D and holds none now;
- ``eligible``: holds no title, never held one, and every criterion passes on D;
- ``not_eligible``: the rest;
- ``no_data``: instead of ``eligible``/``not_eligible``, a unit with no registered household below it
  (the streets, towns, villages and communities whose registers were never imported): it takes no
  part yet, so it counts neither as 未达标 nor in the coverage; the page says how many there are.

Titles and warnings are read from their tables, so a naming or a withdrawal shows at once. Whether a
unit is eligible comes from the day's STORED evaluation (``standards.Evaluation``, written by
``wuyiqu evaluate --store`` and by the daily ``wuyiqu supervise`` run) when every titled unit of the
scope has a row for D; otherwise from ONE live set-based evaluation of the scope (the same evaluator
as ``wuyiqu evaluate``), kept in the cache for ``LIVE_CACHE_SECONDS`` per scope and date, so that a
page reload does not evaluate again. The 30-day trend reads stored rows only: a day without stored
rows is a gap, never computed on page load.

Everything is computed with a fixed number of aggregate queries (never a query per unit) and cached
per scope, date and a *fingerprint* of the tables that change a status (one query of index-backed
maxima and counts: titles, title events, warnings, stored evaluations), so a naming, withdrawal,
warning or stored run shows at once. Numbers resting on stored rows are kept STORED_CACHE_SECONDS
(10 min: only units or residents added meanwhile can be missed); numbers resting on a live evaluation
CACHE_SECONDS (1 min: it also sees facts the fingerprint does not, a new inspection say). Residents
per unit (a million-row count on a district) are kept RESIDENT_CACHE_SECONDS (10 min).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Exists, FilteredRelation, OuterRef, Q
from django.http import Http404
from django.utils.translation import get_language, gettext, gettext_noop

from wuyiqu.certification.models import Title
from wuyiqu.lib.dates import window_start
from wuyiqu.standards.evaluator import (
    EVALUATED_KINDS,
    _like_prefix,
    evaluate,
    parsed_profile,
    profile_row_in_force,
)
from wuyiqu.standards.models import Evaluation
from wuyiqu.supervision.models import MANUAL, TitleEvent, TitleEventKind, Warning, WarningStatus
from wuyiqu.units import selectors as unit_selectors
from wuyiqu.units.models import (
    HOUSEHOLD_UNIT_KINDS,
    Household,
    Resident,
    Unit,
    UnitKind,
    district_of,
    level_label_zh,
)

TITLED_KINDS = tuple(EVALUATED_KINDS)  # building, compound, group, village, community, street
DASHBOARD_KINDS = (UnitKind.DISTRICT, *TITLED_KINDS)

LEVELS: tuple[tuple[str, str], ...] = (
    # Labels stay Chinese here (they are cached); the templates translate them.
    ("building", gettext_noop("楼栋")), ("compound", gettext_noop("小区")), ("group", gettext_noop("社")),
    ("committee", gettext_noop("村/社区")), ("street", gettext_noop("街道/镇")),
)
LEVEL_OF_KIND = {"building": "building", "compound": "compound", "group": "group", "village": "committee",
                 "community": "committee", "street": "street"}
STATUSES: tuple[tuple[str, str], ...] = (
    ("named", gettext_noop("已命名")), ("warned", gettext_noop("警示中")), ("eligible", gettext_noop("达标待命名")),
    ("withdrawn", gettext_noop("已摘牌")), ("not_eligible", gettext_noop("未达标")),
)
# Not one of STATUSES (the statuses of the units taking part, counted and charted): a unit without a
# registered household below it.
NO_DATA = "no_data"
NO_DATA_LABEL = gettext_noop("暂无住户数据")
STATUS_LABELS = dict(STATUSES) | {NO_DATA: NO_DATA_LABEL}

CACHE_SECONDS = 60  # numbers of a scope+date that rest on a live evaluation (keyed by the fingerprint too)
STORED_CACHE_SECONDS = 600  # numbers that rest on stored rows: the fingerprint changes with every change
LIVE_CACHE_SECONDS = 120  # one live evaluation of a scope+date (no stored rows for the day)
RESIDENT_CACHE_SECONDS = 600  # residents per household unit: they move rarely; coverage is a share
TREND_DAYS = 30


# --- scope ----------------------------------------------------------------------------------------------


def access_dashboard_unit(user, code: str) -> Unit:
    """The unit ``code`` if the user may see it and it has a dashboard (district or a titled kind);
    Http404 otherwise — missing and forbidden alike."""
    unit = unit_selectors.access_unit_by_code(user, code)
    if unit.kind not in DASHBOARD_KINDS:
        raise Http404("unit")
    return unit


def home_unit(user) -> Unit:
    """The unit whose dashboard ``/dashboard/`` shows: the user's own; for an unscoped administrator
    the first root of the tree. Http404 when there is none."""
    if user.unit_id is not None:
        return access_dashboard_unit(user, user.unit.code)
    if unit_selectors.scope_path(user) == "/":
        root = Unit.objects.filter(parent__isnull=True).order_by("code").first()
        if root is not None:
            return root
    raise Http404("unit")


def may_see_health_lists(user) -> bool:
    from wuyiqu.health.selectors import may_see_health

    return may_see_health(user)


# --- caching --------------------------------------------------------------------------------------------

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _key(*parts: Any) -> str:
    return "dash:" + hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()


def _cached(key: str, seconds: int | Callable[[Any], int], compute: Callable[[], Any]) -> Any:
    """``compute()`` once per key and ``seconds``; concurrent requests of one process for the same key
    wait for the first instead of computing it again (20 users opening the same dashboard). One lock
    per key (computations nest: summary -> statuses -> live evaluation, always in that order, so two
    keys never wait on each other in a cycle). ``seconds`` may be a function of the value."""
    value = cache.get(key)
    if value is not None:
        return value
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        value = cache.get(key)
        if value is None:
            try:
                value = compute()
                cache.set(key, value, seconds(value) if callable(seconds) else seconds)
            finally:
                with _LOCKS_GUARD:
                    _LOCKS.pop(key, None)
    return value


def fingerprint() -> tuple:
    """Index-backed maxima/counts of the tables whose changes change a status. One query."""
    t = {m: m._meta.db_table for m in (Title, TitleEvent, Warning, Evaluation)}
    sql = (f"SELECT (SELECT MAX(id) FROM {t[Title]}), "
           f"(SELECT COUNT(*) FROM {t[Title]} WHERE withdrawn_on IS NULL), "
           f"(SELECT MAX(id) FROM {t[TitleEvent]}), (SELECT MAX(id) FROM {t[Warning]}), "
           f"(SELECT COUNT(*) FROM {t[Warning]} WHERE status = %s), (SELECT MAX(id) FROM {t[Evaluation]})")
    with connection.cursor() as cur:
        cur.execute(sql, [WarningStatus.OPEN.value])
        return tuple(cur.fetchone())


# --- live evaluation (when the day has no stored rows) --------------------------------------------------


@dataclass
class Blocked:
    """A unit failing one or two criteria, as the blockers page shows it."""

    code: str
    name: str
    kind: str
    path: str
    failed: list[tuple[str, str]]  # (criterion id, Chinese reason)
    earliest_pass_on: dt.date | None
    waits_on_open_zone: bool
    other_failures: list[str]


@dataclass
class LiveEvaluation:
    eligible: frozenset[int]
    blocked: list[Blocked]
    profile_label: str
    names: dict[str, str]  # criterion id -> Chinese name


def live_evaluation(root: Unit, on: dt.date, fp: tuple | None = None) -> LiveEvaluation:
    """ONE set-based evaluation of ``root``'s subtree on ``on`` (the evaluator of ``wuyiqu evaluate``),
    kept compact in the cache per scope and date for LIVE_CACHE_SECONDS. ProfileError when no policy
    profile is in force on ``on``."""

    def compute() -> LiveEvaluation:
        row = profile_row_in_force(on)
        profile = parsed_profile(row)
        results = evaluate(on, root=root, profile=profile)
        blocked = []
        for r in results:
            failed = [c for c in r.criteria if not c.passed]
            if 1 <= len(failed) <= 2:
                blocked.append(Blocked(r.unit.code, r.unit.name, r.unit.kind, r.unit.path,
                                       [(c.id, c.detail) for c in failed], r.earliest_pass_on,
                                       r.waits_on_open_zone, list(r.other_failures)))
        return LiveEvaluation(frozenset(r.unit.id for r in results if r.eligible), blocked,
                              f"{row.name} {row.version}", {c.id: gettext(c.name) for c in profile.criteria})

    # Keyed by the fingerprint too: a naming changes the verdicts above it (children_named); and by
    # the language: the reasons (``blocked``) are in the language the evaluation was made in.
    fp = fp if fp is not None else fingerprint()
    return _cached(_key("live", root.path, on, fp, get_language()), LIVE_CACHE_SECONDS, compute)


# --- statuses -------------------------------------------------------------------------------------------


@dataclass
class StatusMap:
    """The status of every titled unit of a scope on a day."""

    on: dt.date
    source: str  # "stored" or "live"
    rows: list[tuple[int, str, str, str]]  # (unit id, kind, path, status), by path
    named_paths: frozenset[str] = field(default_factory=frozenset)  # current titles, ancestors of the root included

    def by_path(self) -> dict[str, str]:
        return {path: status for _, _, path, status in self.rows}


def _status_of(uid: int, current: set[int], had: set[int], warned: set[int], eligible: bool,
               takes_part: bool = True) -> str:
    if uid in current:
        return "warned" if uid in warned else "named"
    if uid in had:
        return "withdrawn"
    if not takes_part:
        return NO_DATA
    return "eligible" if eligible else "not_eligible"


def participating_paths(root: Unit) -> frozenset[str]:
    """The paths of the units of ``root``'s subtree with at least one registered household below them
    (themselves included), from the household units that have one. One query (an index lookup per
    household unit)."""
    # The district named: on Citus the statement goes to its shard (a correlated subquery over the
    # distributed households beside the reference table of units is refused otherwise).
    has_household = Exists(Household.objects.filter(district_code=district_of(root.path), unit_id=OuterRef("pk")))
    paths = (Unit.objects.filter(path__startswith=root.path, kind__in=HOUSEHOLD_UNIT_KINDS)
             .filter(has_household).values_list("path", flat=True))
    out: set[str] = set()
    for path in paths:
        prefix = "/"
        for code in path.strip("/").split("/"):
            prefix += code + "/"
            out.add(prefix)
    return frozenset(out)


def compute_status_map(root: Unit, on: dt.date, fp: tuple | None = None) -> StatusMap:
    """Statuses of the titled units of ``root``'s subtree on ``on``: three queries (units with their
    stored evaluation of the day, titles, warnings open on the day), plus one live evaluation when
    the day is not stored for every unit."""
    units = list(
        Unit.objects.filter(kind__in=TITLED_KINDS, path__startswith=root.path)
        .annotate(day=FilteredRelation("evaluations", condition=Q(evaluations__on=on)))
        .order_by("path").values_list("id", "kind", "path", "day__eligible")
    )
    source = "stored"
    if any(eligible is None for *_, eligible in units):
        source = "live"
        live = live_evaluation(root, on, fp).eligible
        units = [(uid, kind, path, uid in live) for uid, kind, path, _ in units]
    current: set[int] = set()
    had: set[int] = set()
    named_paths: set[str] = set()
    # The root's ancestors lie in its district: every read below names it (one shard on Citus).
    district = district_of(root.path)
    titles = Title.objects.filter(district_code=district, named_on__lte=on).filter(
        Q(unit__path__startswith=root.path) | Q(unit__code__in=root.ancestor_codes))
    for uid, path, withdrawn_on in titles.values_list("unit_id", "unit__path", "withdrawn_on"):
        if withdrawn_on is None or withdrawn_on > on:
            current.add(uid)
            named_paths.add(path)
        else:
            had.add(uid)
    warned = set(
        Warning.objects.filter(district_code=district, unit__path__startswith=root.path, opened_on__lte=on)
        .filter(Q(status=WarningStatus.OPEN) | Q(closed_on__gt=on))
        .values_list("unit_id", flat=True).distinct()
    )
    taking_part = participating_paths(root)
    rows = [(uid, kind, path, _status_of(uid, current, had, warned, bool(eligible), path in taking_part))
            for uid, kind, path, eligible in units]
    return StatusMap(on, source, rows, frozenset(named_paths))


def status_map(root: Unit, on: dt.date, fp: tuple | None = None) -> StatusMap:
    fp = fp if fp is not None else fingerprint()
    return _cached(_key("status", root.path, on, fp), lambda m: ttl(m.source), lambda: compute_status_map(root, on, fp))


def ttl(source: str) -> int:
    """How long numbers may be kept: stored rows change only with the fingerprint (titles, warnings,
    stored runs), so long; a live evaluation also sees facts the fingerprint does not, so short."""
    return STORED_CACHE_SECONDS if source == "stored" else CACHE_SECONDS


def residents_by_unit(root: Unit) -> list[tuple[str, int]]:
    """(path of the household's unit, residents) below ``root``: one aggregate query, cached for
    RESIDENT_CACHE_SECONDS (the heaviest query of the page on a district: a million residents)."""

    def compute():
        if connection.vendor == "postgresql":
            # Unit by unit through the indexes (LATERAL, as the evaluator reads a subtree, see
            # standards.evaluator._Gather.by_unit): joined as sets, the planner scanned the city's
            # whole residents table for one district (11.7 s for 0.95 M of 30 M residents).
            t = {m: m._meta.db_table for m in (Unit, Household, Resident)}
            # The district named and joined on: one shard on Citus.
            sql = (f"SELECT u.path, c.n FROM {t[Unit]} u CROSS JOIN LATERAL (SELECT COUNT(*) AS n "
                   f"FROM {t[Household]} h JOIN {t[Resident]} r ON r.district_code = h.district_code "
                   f"AND r.household_id = h.id WHERE h.district_code = %s AND r.district_code = %s AND h.unit_id = u.id) c "
                   f"WHERE u.path LIKE %s ESCAPE '\\' AND c.n > 0")
            with connection.cursor() as cur:
                cur.execute(sql, [district_of(root.path), district_of(root.path), _like_prefix(root.path)])
                return cur.fetchall()
        return [(p, n) for p, n in Resident.objects.filter(district_code=district_of(root.path),
                                                            household__unit__path__startswith=root.path)
                .values("household__unit__path").annotate(n=Count("id")).order_by()
                .values_list("household__unit__path", "n")]

    return _cached(_key("residents", root.path), RESIDENT_CACHE_SECONDS, compute)


def _covered(path: str, named_paths: frozenset[str]) -> bool:
    """True when a unit on ``path`` (or one above it) holds a current title."""
    if not named_paths:
        return False
    prefix = "/"
    for code in path.strip("/").split("/"):
        prefix += code + "/"
        if prefix in named_paths:
            return True
    return False


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def summarise(smap: StatusMap, residents: list[tuple[str, int]]) -> dict[str, Any]:
    """Counts by level and status, the coverage of units and of residents. Over the rows only; units
    without a registered household (``no_data``) are counted apart and left out of the rest."""
    counts: dict[str, Counter] = {level: Counter() for level, _ in LEVELS}
    no_data = 0
    for _, kind, _, status in smap.rows:
        if status == NO_DATA:
            no_data += 1
            continue
        counts[LEVEL_OF_KIND[kind]][status] += 1
    totals: Counter = Counter()
    levels = []
    for level, label in LEVELS:
        c = counts[level]
        totals.update(c)
        levels.append({"key": level, "label": label, "total": sum(c.values()),
                       "counts": [{"key": s, "label": sl, "n": c[s]} for s, sl in STATUSES]})
    total = sum(totals.values())
    named = totals["named"] + totals["warned"]
    residents_total = sum(n for _, n in residents)
    residents_covered = sum(n for path, n in residents if _covered(path, smap.named_paths))
    return {
        "on": smap.on, "source": smap.source, "levels": levels, "total": total, "no_data": no_data,
        "totals": [{"key": s, "label": sl, "n": totals[s]} for s, sl in STATUSES],
        "by_status": dict(totals), "named": named,
        "unit_share": _share(named, total), "residents_total": residents_total,
        "residents_covered": residents_covered, "resident_share": _share(residents_covered, residents_total),
        "unit_pct": percent(_share(named, total)), "resident_pct": percent(_share(residents_covered, residents_total)),
    }


def dashboard_summary(root: Unit, on: dt.date, fp: tuple | None = None) -> dict[str, Any]:
    """What the dashboard shows of ``root`` on ``on`` (see the module docstring); cached per scope, date
    and fingerprint. A fixed number of queries whatever the size of the scope."""
    fp = fp if fp is not None else fingerprint()
    return _cached(_key("summary", root.path, on, fp), lambda v: ttl(v["source"]),
                   lambda: summarise(status_map(root, on, fp), residents_by_unit(root)))


# --- trend ----------------------------------------------------------------------------------------------


def trend(root: Unit, on: dt.date, days: int = TREND_DAYS, fp: tuple | None = None) -> list[dict[str, Any]]:
    """Per day of the ``days`` ending on ``on``: units evaluated, named and eligible-but-not-named, from
    the STORED evaluations; ``None`` values on a day without stored rows (a gap). Over the units taking
    part (a registered household below them, as the counts above it on the page): three queries."""
    start = window_start(on, days)

    def compute():
        taking_part = participating_paths(root)
        left_out = [uid for uid, path in Unit.objects.filter(kind__in=TITLED_KINDS, path__startswith=root.path)
                    .values_list("id", "path") if path not in taking_part]
        if connection.vendor == "postgresql":
            # Unit by unit (LATERAL, index on unit_id): joined as sets, the planner read every stored
            # row of the window in the whole city (14 million at 38 districts x 30 days, 4.6 GB) to
            # keep one district's (docs/scaling.md).
            t = {m: m._meta.db_table for m in (Unit, Evaluation)}
            sql = (f"SELECT e.on, COUNT(*), COUNT(*) FILTER (WHERE e.named), "
                   f"COUNT(*) FILTER (WHERE NOT e.named AND e.eligible) FROM {t[Unit]} u CROSS JOIN LATERAL "
                   f"(SELECT e.on, e.named, e.eligible FROM {t[Evaluation]} e WHERE e.unit_id = u.id "
                   f"AND e.district_code = %s AND e.on >= %s AND e.on <= %s OFFSET 0) e "
                   f"WHERE u.path LIKE %s ESCAPE '\\' AND u.kind = ANY(%s) AND NOT (u.id = ANY(%s)) GROUP BY e.on")
            with connection.cursor() as cur:
                # The district in the row: on Citus the whole query goes to the district's shard.
                cur.execute(sql, [district_of(root.path), start, on, _like_prefix(root.path), list(TITLED_KINDS),
                                  left_out])
                rows = [{"on": d, "n_total": n, "n_named": named, "n_eligible": eligible}
                        for d, n, named, eligible in cur.fetchall()]
        else:
            rows = (Evaluation.objects.filter(district_code=district_of(root.path), on__gte=start, on__lte=on,
                                              unit__path__startswith=root.path)
                    .exclude(unit_id__in=left_out).values("on").annotate(n_total=Count("id"), n_named=Count("id", filter=Q(named=True)),
                                           n_eligible=Count("id", filter=Q(named=False, eligible=True)))
                    .order_by())
        by_day = {r["on"]: r for r in rows}
        out = []
        for i in range(days):
            day = start + dt.timedelta(days=i)
            r = by_day.get(day)
            out.append({"on": day, "total": r["n_total"] if r else None, "named": r["n_named"] if r else None,
                        "eligible": r["n_eligible"] if r else None})
        return out

    fp = fp if fp is not None else fingerprint()
    return _cached(_key("trend", root.path, on, days, fp), STORED_CACHE_SECONDS, compute)


# --- one level of the hierarchy -------------------------------------------------------------------------


def children_status(root: Unit, on: dt.date, fp: tuple | None = None) -> dict[str, Any]:
    """``root`` and its titled children, each with its own status and the counts by status of the
    titled units of its subtree (itself included) — one level of the hierarchy picture. Cached per
    scope, date and fingerprint, as the numbers."""
    fp = fp if fp is not None else fingerprint()
    return _cached(_key("children", root.path, on, fp), lambda v: ttl(v["source"]),
                   lambda: _children_status(root, on, fp))


def _children_status(root: Unit, on: dt.date, fp: tuple) -> dict[str, Any]:
    smap = status_map(root, on, fp)
    statuses = smap.by_path()
    start = len(root.path)
    per_child: dict[str, Counter] = defaultdict(Counter)
    for _, _, path, status in smap.rows:
        if status == NO_DATA:
            continue
        if len(path) > start:
            end = path.index("/", start)
            per_child[path[: end + 1]][status] += 1
    children = []
    for child in Unit.objects.filter(parent=root, kind__in=TITLED_KINDS).order_by("code"):
        c = per_child.get(child.path, Counter())
        total = sum(c.values())
        children.append({
            "code": child.code, "name": child.display_name, "kind": child.kind, "kind_label": level_label_zh(child.kind, child.name),
            "status": statuses.get(child.path), "status_label": STATUS_LABELS.get(statuses.get(child.path), ""),
            "total": total, "below": total - 1, "counts": {s: c[s] for s, _ in STATUSES},
            "count_list": [c[s] for s, _ in STATUSES],
        })
    own = statuses.get(root.path)
    return {
        "on": on.isoformat(), "source": smap.source,
        "unit": {"code": root.code, "name": root.display_name, "kind": root.kind, "kind_label": level_label_zh(root.kind, root.name),
                 "status": own, "status_label": STATUS_LABELS.get(own, "")},
        "statuses": [{"key": s, "label": label} for s, label in STATUSES],
        "children": children,
    }


# --- what blocks the next title -------------------------------------------------------------------------


BLOCKER_LIMIT = 50  # units listed per criterion; the rest are counted (a district has thousands)


@dataclass
class BlockerGroup:
    criterion: str
    name: str
    units: list[dict[str, Any]]  # the first BLOCKER_LIMIT, by path
    by_kind: list[tuple[str, int]]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.units)


def blockers(root: Unit, on: dt.date) -> tuple[list[BlockerGroup], LiveEvaluation]:
    """Units of ``root``'s subtree failing exactly one or two criteria on ``on``, grouped by criterion
    (a unit failing two is in both groups), the largest group first. From the live evaluation (the
    evaluator knows each unit's earliest passing date; stored rows do not keep it)."""
    live = live_evaluation(root, on)
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for b in live.blocked:
        for cid, detail in b.failed:
            others = [live.names.get(o, o) for o, _ in b.failed if o != cid]
            groups[cid].append({
                "code": b.code, "name": b.name, "kind": b.kind, "kind_label": level_label_zh(b.kind, b.name),
                "detail": detail, "also": others, "failed": [(o, live.names.get(o, o), d) for o, d in b.failed],
                "earliest_pass_on": b.earliest_pass_on, "waits_on_open_zone": b.waits_on_open_zone,
                "needs_work": [live.names.get(o, o) for o in b.other_failures],
            })
    order = list(live.names)
    out = []
    for cid, units in groups.items():
        kinds = Counter(u["kind_label"] for u in units)
        out.append(BlockerGroup(cid, live.names.get(cid, cid), units[:BLOCKER_LIMIT],
                                sorted(kinds.items(), key=lambda kv: -kv[1]),
                                len(units)))
    out.sort(key=lambda g: (-g.total, order.index(g.criterion) if g.criterion in order else 99))
    return out, live


# --- reports --------------------------------------------------------------------------------------------


def criterion_names(on: dt.date) -> dict[str, str]:
    try:
        profile = parsed_profile(profile_row_in_force(on))
    except ValueError:
        return {MANUAL: gettext("人工警示")}
    # The names are data (zh-hans); the bundled profile's are in the catalogue (web/i18n_strings.py).
    return {c.id: gettext(c.name) for c in profile.criteria} | {MANUAL: gettext("人工警示")}


@dataclass
class LedgerRow:
    code: str
    name: str
    kind_label: str
    title: str
    named_on: dt.date
    withdrawn_on: dt.date | None
    withdrawn_reason: str
    status_label: str
    open_warnings: str
    warnings_total: int
    certificate_number: str


def ledger(root: Unit, on: dt.date) -> list[LedgerRow]:
    """The 无疫区 ledger (台账) of ``root``'s subtree on ``on``: every title named by then (current and
    withdrawn), with the unit's status on ``on`` and its warnings. Three queries + the status map."""
    statuses = status_map(root, on).by_path()
    names = criterion_names(on)
    open_by_title: dict[int, list[str]] = defaultdict(list)
    total_by_title: Counter = Counter()
    warnings = (Warning.objects.filter(district_code=district_of(root.path), unit__path__startswith=root.path,
                                       opened_on__lte=on).order_by("deadline", "id").values_list("title_id", "criterion", "status", "closed_on", "deadline"))
    for title_id, criterion, status, closed_on, deadline in warnings:
        total_by_title[title_id] += 1
        if status == WarningStatus.OPEN or (closed_on is not None and closed_on > on):
            open_by_title[title_id].append(f"{names.get(criterion, criterion)}（{deadline:%m-%d}前整改）")
    rows = []
    titles = (Title.objects.filter(district_code=district_of(root.path), named_on__lte=on, unit__path__startswith=root.path)
              .select_related("unit").order_by("unit__path", "named_on", "id"))
    for t in titles:
        withdrawn = t.withdrawn_on if t.withdrawn_on is not None and t.withdrawn_on <= on else None
        rows.append(LedgerRow(t.unit.code, t.unit.display_name, level_label_zh(t.unit.kind, t.unit.name), t.title,
                              t.named_on, withdrawn, t.withdrawn_reason if withdrawn else "",
                              STATUS_LABELS.get(statuses.get(t.unit.path, ""), ""),
                              "；".join(open_by_title.get(t.id, [])), total_by_title.get(t.id, 0),
                              t.certificate_number or ""))
    return rows


def weekly(root: Unit, on: dt.date) -> dict[str, Any]:
    """The weekly summary of ``root``'s subtree: the counts on ``on`` and what changed in the 7 days
    ending on ``on`` (namings, withdrawals, reinstatements, warnings opened and closed)."""
    start = window_start(on, 7)
    names = criterion_names(on)
    scoped = {"district_code": district_of(root.path), "unit__path__startswith": root.path}
    namings = [
        {"code": t.unit.code, "name": t.unit.display_name, "kind_label": level_label_zh(t.unit.kind, t.unit.name),
         "title": t.title, "on": t.named_on}
        for t in Title.objects.filter(named_on__gte=start, named_on__lte=on, **scoped).select_related("unit")
        .order_by("named_on", "unit__path")
    ]
    # A withdrawal is the title's withdrawn_on (titles withdrawn without the supervision app's event
    # too), or a withdrawal event of the week (the title may have been reinstated since).
    withdrawals: dict[int, dict[str, Any]] = {}
    for t in Title.objects.filter(withdrawn_on__gte=start, withdrawn_on__lte=on, **scoped).select_related("unit"):
        withdrawals[t.id] = {"code": t.unit.code, "name": t.unit.display_name,
                             "kind_label": level_label_zh(t.unit.kind, t.unit.name), "title": t.title, "on": t.withdrawn_on,
                             "reason": t.withdrawn_reason}
    events = (TitleEvent.objects.filter(on__gte=start, on__lte=on, **scoped).select_related("unit", "title")
              .order_by("on", "id"))
    reinstated = []
    for e in events:
        item = {"code": e.unit.code, "name": e.unit.display_name, "kind_label": level_label_zh(e.unit.kind, e.unit.name),
                "title": e.title.title, "on": e.on, "reason": e.reason}
        if e.kind == TitleEventKind.WITHDRAWN:
            withdrawals.setdefault(e.title_id, item)
        elif e.kind == TitleEventKind.REINSTATED:
            reinstated.append(item)
    warning_rows = (Warning.objects.filter(**scoped).filter(
        Q(opened_on__gte=start, opened_on__lte=on) | Q(closed_on__gte=start, closed_on__lte=on))
        .select_related("unit").order_by("opened_on", "id"))
    opened, closed = [], []
    for w in warning_rows:
        item = {"code": w.unit.code, "name": w.unit.display_name, "kind_label": level_label_zh(w.unit.kind, w.unit.name),
                "criterion": names.get(w.criterion, w.criterion), "opened_on": w.opened_on, "deadline": w.deadline,
                "closed_on": w.closed_on, "status": w.get_status_display(), "detail": w.detail}
        if start <= w.opened_on <= on:
            opened.append(item)
        if w.closed_on is not None and start <= w.closed_on <= on:
            closed.append(item)
    return {
        "start": start, "on": on, "summary": dashboard_summary(root, on),
        "namings": namings, "withdrawals": sorted(withdrawals.values(), key=lambda x: (x["on"], x["code"])),
        "reinstatements": reinstated, "warnings_opened": opened, "warnings_closed": closed,
    }
