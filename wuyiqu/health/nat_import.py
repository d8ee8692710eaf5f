"""The ``nat-results`` import kind (核酸检测结果) and the weekly partitions of its table.

A mass-testing round brings a million rows a day, so this kind is built for speed while keeping every
rule of an import (all-or-nothing, each bad row reported with its line, re-import adds nothing):

- ``parse_row`` does no database work and no hashing: the ID number is checked by
  ``lib.idcard.IdNumberReader`` (the one validator, with caches for birth dates and address codes),
  the time with ``datetime.fromisoformat``.
- ``write`` hashes the numbers (HMAC, the registry's lookup hash), streams the batch into a temporary
  staging table (PostgreSQL ``COPY``, SQLite ``executemany``) and merges it: residents matched by
  one join on ``id_hash``, then what is not stored yet inserted (PostgreSQL: an index probe per row
  behind the lock that makes writers of results take turns; Citus and SQLite: ``ON CONFLICT DO
  NOTHING``) — set-based, never a query per row. The primary key (id_hash, sampled_on, sampled_at,
  district_code) is what makes a second import of the same result add nothing; each row is written
  with the district it is kept in (NatResult's docstring: its resident's, else the submitter's
  scope's).
- On PostgreSQL a file import merges each batch while pass 1 parses the next one (the engine's
  ``writes_as_checked``; ``MergeAhead``): the database and the parser work at once, in the import's
  one transaction, rolled back whole if a later row is invalid.
- A positive result is also a positive case on its sample date (SPEC §7): it is handed to
  ``health.actions.write_cases`` (type 无症状 unless a case is already recorded that day).
- A number that matches no resident is kept (a person tested here who is not on the register) with
  resident and unit empty, and counted as unmatched. For a scoped importer (a community's staff, an
  API token) a number registered outside its scope gets the same answer: stored unmatched with the
  submitter's scope, and held for a user who covers both (``health.linking``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from wuyiqu.imports import values
from wuyiqu.imports.registry import (
    Batch,
    Column,
    ImportContext,
    ImportKind,
    Problems,
    RowError,
    WriteCounts,
    register_kind,
)
from wuyiqu.lib import crypto
from wuyiqu.lib.idcard import IdNumberReader, InvalidIdNumber, normalise_id_number
from wuyiqu.ops.citus import is_distributed
from wuyiqu.units.models import ResidentDirectory, district_of

from .linking import hold_registry_for_matching
from .models import NatResult, NatResultValue

TABLE = NatResult._meta.db_table  # health_natresult
DEFAULT_PARTITION = f"{TABLE}_default"
STAGE = "nat_stage"
SOURCE = "nat_source"
WHERE = "nat_where"  # the staged numbers' districts (``_locate``)
LOCATED = "nat_located"  # their residents (``_locate``)
DIRECTORY = ResidentDirectory._meta.db_table
_SLICE = 50_000  # staged rows per COPY write / executemany
_PARTITION_LOCK = 0x6E617470  # pg_advisory_xact_lock keys: one partition creator at a time,
_MERGE_LOCK = 0x6E617472  # one writer of results at a time

# Plain str values (not the enum members): parsed rows go through ``marshal`` (see ``packs``).
RESULT_ALIASES: dict[str, str] = {
    "negative": NatResultValue.NEGATIVE.value,
    "positive": NatResultValue.POSITIVE.value,
    "阴性": NatResultValue.NEGATIVE.value,
    "阳性": NatResultValue.POSITIVE.value,
    # A weak positive is a positive until a second test says otherwise (it is reported as a case).
    "弱阳性": NatResultValue.POSITIVE.value,
}

EARLIEST = "2020-01-01 00:00:00"  # no nucleic-acid testing for this disease before 2020

# A parsed row: (normalised ID number, local sample time "YYYY-MM-DD HH:MM:SS", result value).
NatRow = tuple[str, str, str]


# --- partitions (PostgreSQL) ---------------------------------------------------------------------

def week_start(day: dt.date) -> dt.date:
    """The Monday of ``day``'s week: partitions run Monday to Sunday."""
    return day - dt.timedelta(days=day.weekday())


def partition_name(monday: dt.date) -> str:
    return f"{TABLE}_w{monday:%Y%m%d}"


def existing_partitions() -> set[str]:
    """Names of the partitions of the results table (empty on SQLite)."""
    if connection.vendor != "postgresql":
        return set()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass", [TABLE])
        return {name for (name,) in cur.fetchall()}


def ensure_nat_partitions(first: dt.date, last: dt.date) -> list[str]:
    """Create the weekly partitions covering ``first`` … ``last`` that do not exist yet; return
    their names. Rows of those weeks already sitting in the DEFAULT partition are moved into the new
    one (PostgreSQL refuses to attach a partition whose rows the default partition holds). Each
    week is one short transaction of its own unless the caller holds one. Does nothing on SQLite."""
    if connection.vendor != "postgresql" or last < first:
        return []
    have = existing_partitions()
    wanted = []
    monday = week_start(first)
    while monday <= last:
        if partition_name(monday) not in have:
            wanted.append(monday)
        monday += dt.timedelta(days=7)
    created = []
    for monday in wanted:
        name = partition_name(monday)
        lo, hi = monday.isoformat(), (monday + dt.timedelta(days=7)).isoformat()
        with transaction.atomic(), connection.cursor() as cur:
            # Two imports may want the same week at once: the lock makes the second one wait and
            # then see the partition the first one made.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_PARTITION_LOCK])
            cur.execute("SELECT to_regclass(%s)", [name])
            if cur.fetchone()[0] is not None:
                continue
            # CREATE … (LIKE) + ATTACH rather than CREATE … PARTITION OF: ATTACH takes only a SHARE
            # UPDATE EXCLUSIVE lock on the parent, so readers and other imports are not blocked.
            cur.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
            # Only when there is something to move (rows written raw, without the week's partition):
            # on Citus the DEFAULT partition is distributed and the new table not yet, and a
            # statement that deletes from the one into the other is refused; ATTACH distributes it.
            cur.execute(f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} WHERE sampled_on >= '{lo}' "
                        f"AND sampled_on < '{hi}')")
            if cur.fetchone()[0]:
                cur.execute(
                    f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE sampled_on >= '{lo}' "
                    f"AND sampled_on < '{hi}' RETURNING *) INSERT INTO {name} SELECT * FROM moved")
            cur.execute(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM ('{lo}') TO ('{hi}')")
        created.append(name)
    return created


def ensure_weeks(known: set[dt.date], first: str, last: str) -> None:
    """``ensure_nat_partitions`` for the days ``first`` … ``last`` ("YYYY-MM-DD…"), with no query
    when every week is in ``known`` (the Mondays an import has made sure of, added to here): while
    a batch is merged ahead (``MergeAhead``) a catalog query would wait for that merge."""
    lo, hi = week_start(dt.date.fromisoformat(first[:10])), week_start(dt.date.fromisoformat(last[:10]))
    weeks = {lo + dt.timedelta(days=7 * i) for i in range((hi - lo).days // 7 + 1)}
    if weeks <= known:
        return
    ensure_nat_partitions(lo, hi + dt.timedelta(days=6))
    known |= weeks


# --- parsing (no database) -----------------------------------------------------------------------

class NatParser:
    """Checks one row's cells; keeps what it learnt in small caches (valid birth dates)."""

    def __init__(self, now: dt.datetime | None = None):
        local_now = timezone.localtime(now or timezone.now())
        self.now_text = local_now.strftime("%Y-%m-%d %H:%M:%S")
        self._ids = IdNumberReader(today=local_now.date())
        self._times: dict[str, str] = {}  # valid sample-time text -> normalised text

    def id_number(self, raw: str) -> str:
        """The normalised number (``wuyiqu.lib.idcard``, the one validator); RowError otherwise."""
        try:
            return self._ids.number(raw)
        except InvalidIdNumber as exc:
            if not normalise_id_number(raw):
                raise RowError("id_number", _("身份证号不能为空")) from None
            # A number Excel made a float or rounded: say so, and how to fix it (never guessed).
            raise RowError("id_number", values.mangled_id_number(raw) or str(exc)) from None

    def sampled_at(self, raw: str) -> str:
        """``YYYY-MM-DD HH:MM[:SS]`` (also with ``/``) -> ``YYYY-MM-DD HH:MM:SS``, a real local time
        that is not in the future."""
        text = raw.strip()
        norm = text.replace("/", "-")
        n = len(norm)
        if n == 16:
            norm += ":00"
        if not (len(norm) == 19 and norm.isascii() and norm[4] == "-" and norm[7] == "-" and norm[10] == " "
                and norm[13] == ":" and norm[16] == ":" and (norm[:4] + norm[5:7] + norm[8:10] + norm[11:13]
                                                              + norm[14:16] + norm[17:]).isdigit()):
            office = values.datetime_text(text)  # 2022年11月28日 8:30, 2022.11.28 08:30, an Excel serial
            if office and office != text:
                return self.sampled_at(office)
            if not text:
                raise RowError("sampled_at", _("采样时间不能为空"))
            raise RowError("sampled_at", _("采样时间“%(v)s”格式不对，应为 YYYY-MM-DD HH:MM[:SS]") % {"v": text})
        try:
            dt.datetime.fromisoformat(norm)
        except ValueError:
            raise RowError("sampled_at", _("采样时间“%(v)s”不存在") % {"v": text}) from None
        if norm > self.now_text:  # same fixed-width format: text order is time order
            raise RowError("sampled_at", _("采样时间“%(v)s”晚于现在") % {"v": text})
        if norm < EARLIEST:  # a mistyped year would otherwise make a partition for it
            raise RowError("sampled_at", _("采样时间“%(v)s”早于2020年，请检查年份") % {"v": text})
        return norm

    def result(self, raw: str) -> str:
        text = raw.strip()
        value = RESULT_ALIASES.get(text) or RESULT_ALIASES.get(text.lower())
        if value is None:
            plain = values.halfwidth(text).replace(" ", "")
            value = RESULT_ALIASES.get(plain) or RESULT_ALIASES.get(plain.lower())
        if value is None:
            if not text:
                raise RowError("result", _("检测结果不能为空"))
            raise RowError("result", _("检测结果“%(v)s”无法识别，可填：阴性、阳性、negative、positive") % {"v": text})
        return value

    def parse(self, id_number: str, sampled_at: str, result: str) -> NatRow:
        """One row's cells -> (number, local time text, result), or RowError naming the field."""
        # Sample times repeat heavily within a round (a testing point samples many people a
        # minute), so each distinct valid text is checked once; the cache is bounded.
        at = self._times.get(sampled_at)
        if at is None:
            at = self.sampled_at(sampled_at)
            if len(self._times) >= 100_000:
                self._times.clear()
            self._times[sampled_at] = at
        value = RESULT_ALIASES.get(result) or self.result(result)
        return (self.id_number(id_number), at, value)


# --- writing (set-based) -------------------------------------------------------------------------

class IdHasher:
    """The registry's lookup hash of ID numbers (``crypto.FieldCipher.lookup_hash``), fast.

    HMAC-SHA256 per RFC 2104 with the key's inner and outer SHA-256 states computed once and
    copied per number: with OpenSSL 3 this is about twice as fast as ``hmac.digest``, which sets
    the key up again on every call. Numbers are normalised already (``lookup_hash`` strips and
    upper-cases), so the hex digests are equal — asserted by the tests. A cache helps when a file
    (or a long API session) holds several rounds of the same people; it is bounded.
    """

    MAX_CACHED = 200_000

    def __init__(self):
        key = crypto.cipher()._hash_key
        if len(key) > 64:  # SHA-256's block size
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        self._cache: dict[str, str] = {}

    def __call__(self, number: str) -> str:
        h = self._cache.get(number)
        if h is None:
            inner = self._inner.copy()
            inner.update(number.encode())
            outer = self._outer.copy()
            outer.update(inner.digest())
            h = outer.hexdigest()
            if len(self._cache) >= self.MAX_CACHED:
                self._cache.clear()
            self._cache[number] = h
        return h

    def many(self, numbers: Iterable[str]) -> list[str]:
        """The hashes of a batch, without the cache: a round's numbers are distinct, so looking each
        up and storing it cost 40 % more than hashing it (measured on 50,000 numbers)."""
        inner, outer = self._inner, self._outer
        out = []
        append = out.append
        for number in numbers:
            i = inner.copy()
            i.update(number.encode())
            o = outer.copy()
            o.update(i.digest())
            append(o.hexdigest())
        return out


class UtcText:
    """``YYYY-MM-DD HH:MM:SS`` local -> the same in UTC, as Django stores datetimes in SQLite.

    Offsets change (if ever: Asia/Shanghai has had no daylight saving since 1991) only on whole
    hours, so the conversion is done once per local hour and the minutes and seconds are kept."""

    def __init__(self, tz):
        self.tz = tz
        self._hours: dict[str, str] = {}

    def __call__(self, local_text: str) -> str:
        hour = local_text[:13]
        prefix = self._hours.get(hour)
        if prefix is None:
            naive = dt.datetime.fromisoformat(hour + ":00:00")
            offset = naive.replace(tzinfo=self.tz).utcoffset()
            if offset % dt.timedelta(hours=1):  # a zone with a non-whole-hour offset: no shortcut
                aware = dt.datetime.fromisoformat(local_text).replace(tzinfo=self.tz)
                return aware.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            prefix = self._hours[hour] = (naive - offset).strftime("%Y-%m-%d %H")
        return prefix + local_text[13:]


def write_nat_rows(rows: Sequence[NatRow], *, hasher: IdHasher | None = None, scope=None,
                   ahead: MergeAhead | None = None) -> WriteCounts:
    """Store valid parsed rows not stored yet, set-based; positives also become positive cases.

    Returns created (new results), unchanged (already stored) and unmatched (rows whose number is
    on no resident — kept with resident and unit empty). ``scope``: the submitter's unit (None:
    unscoped); a number registered outside it counts as unmatched too and is held (module docstring).
    Opens no transaction and writes no audit row: the caller (the import engine, the API) does
    both. Rows must be distinct. ``ahead`` (PostgreSQL, inside the caller's transaction): the merge
    is left running on the database and its counts come from ``ahead.finish`` (``MergeAhead``)."""
    counts = WriteCounts()
    if not rows:
        return counts
    hasher = hasher or IdHasher()
    prepared = ahead.prepared(rows, hasher) if ahead is not None else None
    hashes = prepared.hashes if prepared is not None else hasher.many(r[0] for r in rows)
    first = min(r[1] for r in rows)[:10]
    last = max(r[1] for r in rows)[:10]
    if ahead is None:
        ensure_nat_partitions(dt.date.fromisoformat(first), dt.date.fromisoformat(last))
    else:
        ahead.ensure_partitions(first, last)
        ahead.hold_locks()
    # A scope that leaves no unit outside it (a district's laboratory) matches like no scope at all.
    outside = residents_in_scope_check(hashes, scope) if scope is not None else set()
    match_in = scope.path if outside else None
    scope_id = scope.pk if scope is not None else None
    # Where an unmatched result is kept (NatResult's docstring): the submitter's scope's district.
    stranger_district = district_of(scope.path) if scope is not None else ""
    positives = [(r, h) for r, h in zip(rows, hashes, strict=True) if r[2] == NatResultValue.POSITIVE]
    if ahead is not None:
        # The cases first: the merge then runs while the engine parses the next batch; the people
        # held wait for the last merge (their counts include the results being stored).
        if positives:
            _record_positive_cases(positives, scope)
        ahead.outside |= outside
        ahead.merge(prepared, match_in, scope_id, stranger_district, probe=not ahead.fresh(first, last))
        return counts
    if connection.vendor == "postgresql":
        created, unmatched = _merge_postgres(rows, hashes, match_in, scope_id, stranger_district)
    else:
        created, unmatched = _merge_sqlite(rows, hashes, match_in, scope_id, stranger_district)
    counts.created = created
    counts.unchanged = len(rows) - created
    counts.unmatched = unmatched
    if positives:
        _record_positive_cases(positives, scope)
    if outside:
        from .actions import hold_outside

        hold_outside(outside, scope=scope)
    return counts


def _locate(cur, match_in: str | None) -> None:
    """PostgreSQL: the residents of the staged numbers, in the temporary table ``LOCATED`` (id_hash,
    resident_id, unit_id: the household's unit, path: that unit's path), only those whose household
    lies below the path ``match_in`` when given. Through ``cur`` (either thread's, ``_match_and_insert``).

    Never a join of the whole batch with every district's registry: which district keeps each number
    is read first — the scope's own district for a scoped import (no one outside it matches), else the
    city-wide directory (``units.directory``; on Citus one entry per number on one shard) — and then
    each district's residents with a statement that names the district (on Citus routed to the one
    shard that keeps it, the batch's numbers of that district sent along)."""
    cur.execute(f"DROP TABLE IF EXISTS {WHERE}")
    cur.execute(f"DROP TABLE IF EXISTS {LOCATED}")
    if match_in is None:
        cur.execute(f"CREATE TEMP TABLE {WHERE} AS SELECT d.id_hash, d.district_code "
                    f"FROM (SELECT DISTINCT id_hash FROM {STAGE}) s "
                    f"JOIN {DIRECTORY} d ON d.id_hash = s.id_hash")
    else:
        cur.execute(f"CREATE TEMP TABLE {WHERE} AS SELECT DISTINCT id_hash, %s::text AS district_code FROM {STAGE}",
                    [district_of(match_in)])
    cur.execute(f"ANALYZE {WHERE}")
    cur.execute(f"CREATE TEMP TABLE {LOCATED} (id_hash text, resident_id bigint, unit_id bigint, path text)")
    cur.execute(f"SELECT DISTINCT district_code FROM {WHERE}")
    scoped = " AND substr(u.path, 1, %s) = %s" if match_in is not None else ""
    for (district,) in cur.fetchall():
        cur.execute(
            f"INSERT INTO {LOCATED} (id_hash, resident_id, unit_id, path) "
            "SELECT r.id_hash, r.id, h.unit_id, u.path FROM units_resident r "
            "JOIN units_household h ON h.district_code = r.district_code AND h.id = r.household_id "
            "JOIN units_unit u ON u.id = h.unit_id "
            f"WHERE r.district_code = %s AND r.id_hash IN (SELECT id_hash FROM {WHERE} WHERE district_code = %s)"
            + scoped, [district, district, *([len(match_in), match_in] if match_in is not None else [])])
    cur.execute(f"ANALYZE {LOCATED}")
    cur.execute(f"DROP TABLE {WHERE}")


def _district_sql(path: str) -> str:
    """SQL for the district (``district_of``) of the unit path expression ``path``, on both databases:
    the text between the first two slashes."""
    return f"substr({path}, 2, instr(substr({path}, 2), '/') - 1)" if connection.vendor == "sqlite" \
        else f"split_part({path}, '/', 2)"


def _hold_for_merge() -> None:
    """The locks of a writer of results, until its transaction ends (the caller's: PostgreSQL)."""
    with connection.cursor() as cur:
        # One writer of results at a time (file imports and API batches alike), until its
        # transaction ends. With that, the existence check of the merge sees every row another
        # import could have added, and a plain INSERT (in key order) replaces ON CONFLICT DO
        # NOTHING, whose speculative insertion cost a third more per row (docs/benchmarks.md).
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [_MERGE_LOCK])
    # And before matching residents: a residents import registering these people at the same
    # time either committed already or waits for this one to commit, then links (linking.py).
    hold_registry_for_matching()


def _merge_postgres(rows: Sequence[NatRow], hashes: list[str], match_in: str | None,
                    scope_id: int | None, stranger_district: str) -> tuple[int, int]:
    with transaction.atomic(), connection.cursor() as cur:
        _hold_for_merge()
        _stage(cur, _copy_text(rows, hashes))
        return _match_and_insert(cur, match_in, scope_id, stranger_district, distributed=is_distributed(TABLE))


def _copy_text(rows: Sequence[NatRow], hashes: list[str]) -> list[str]:
    """The batch as COPY text (id_hash, local time, local date, result), in slices of _SLICE rows.
    Every value is hex, digits or a fixed word: no tab, newline or backslash to escape, so the text
    is built by plain joins (the fastest way to feed COPY from Python)."""
    return ["".join([f"{h}\t{r[1]}\t{r[1][:10]}\t{r[2]}\n"
                     for r, h in zip(rows[i:i + _SLICE], hashes[i:i + _SLICE], strict=True)])
            for i in range(0, len(rows), _SLICE)]


def _stage(cur, text: list[str]) -> None:
    """The first step of a batch's merge on PostgreSQL: the batch (``text``: ``_copy_text``) into the
    staging table, through ``cur`` (Django's cursor, whose ``copy`` is psycopg's), inside the caller's transaction, which holds
    the locks of ``_hold_for_merge``. Always sent by the importing thread: from another one, each
    128 KiB psycopg sends waited for the GIL the parser holds (a COPY of 300,000 rows took 2.3 s
    instead of 0.3 s)."""
    # Enough memory to hash the residents once per batch instead of spilling to disk; only
    # for this transaction.
    cur.execute("SET LOCAL work_mem = '256MB'")
    # Session-local, reused by every batch of the import; emptied before each batch.
    cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} (id_hash text, sampled_local timestamp, "
                "sampled_on date, result text)")
    cur.execute(f"TRUNCATE {STAGE}")
    with cur.copy(f"COPY {STAGE} (id_hash, sampled_local, sampled_on, result) FROM STDIN") as copy:
        for chunk in text:
            copy.write(chunk)


def _match_and_insert(cur, match_in: str | None, scope_id: int | None, stranger_district: str, *,
                      distributed: bool = False, probe: bool = True) -> tuple[int, int]:
    """The rest of the merge of the staged batch (``_stage``), through ``cur``: Django's cursor in the
    importing thread, a psycopg cursor in ``MergeAhead``'s (which has no Django connection): match residents, insert what is not stored
    yet. ``distributed``: the table is Citus's (``ops.citus.is_distributed``, asked by the caller's
    thread). ``probe=False``: nothing of the batch can be stored yet (``MergeAhead.fresh``), every
    row is inserted without looking. Returns (created, unmatched)."""
    # The planner must know the batch's size to match residents the cheap way: an API chunk of
    # 10,000 results probes the id_hash index (~0.1 s), a file batch of 500,000 hashes the
    # whole registry once. Unanalysed, the temporary table looked big enough to hash 1,000,000
    # residents for every API chunk (0.4–1.1 s, bench/api_million.py); and at the default
    # random_page_cost of 4 (disk seeks) even an analysed 10,000 rows were hashed — the
    # registry's index pages are in memory, so the SSD cost is the honest one — for this one
    # statement: the setting is put back after it (SET LOCAL would last to the end of the
    # caller's transaction, over supervision's queries).
    cur.execute(f"ANALYZE {STAGE}")
    cur.execute("SELECT current_setting('random_page_cost'), set_config('random_page_cost', '1.1', true), "
                "current_setting('jit'), set_config('jit', 'off', true)")
    (page_cost, _set, jit, _set) = cur.fetchone()
    # Match residents with one join (index probes for a small batch, a hash for a big one),
    # into a narrow temporary table in primary-key order. No DISTINCT: the rows are distinct (the
    # engine's and the API's row key is (number, local time): the key's id_hash, sampled_on,
    # sampled_at, and district_code follows from them). The order is the index's — for hex
    # text the same in every collation — sorted byte-wise (COLLATE "C"): 0.4 s instead of 0.9 s
    # for 500,000 rows under the database's C.UTF-8 (EXPLAIN ANALYZE, docs/benchmarks.md).
    cur.execute(f"DROP TABLE IF EXISTS {SOURCE}")
    _locate(cur, match_in)
    cur.execute(
        f"""
        CREATE TEMP TABLE {SOURCE} AS
        SELECT COALESCE({_district_sql("r.path")}, %s) AS district_code,
               s.id_hash, r.resident_id, r.unit_id, s.sampled_local AT TIME ZONE %s AS sampled_at,
               s.sampled_on, s.result
        FROM {STAGE} s LEFT JOIN {LOCATED} r ON r.id_hash = s.id_hash
        ORDER BY s.id_hash COLLATE "C", s.sampled_on, s.sampled_local
        """, [stranger_district, settings.TIME_ZONE])
    cur.execute(f"DROP TABLE {LOCATED}")
    cur.execute("SELECT set_config('random_page_cost', %s, true)", [page_cost])
    columns = "district_code, id_hash, resident_id, unit_id, sampled_at, sampled_on, result, scope_unit_id"
    if distributed:
        # Citus: the rows go to their districts' shards through the coordinator and each shard
        # skips what it holds already (ON CONFLICT runs there); a per-row probe as below would
        # be a query per row to a worker, and a correlated subquery over a distributed table
        # from a table of the coordinator is refused.
        # Its row count is of the rows sent, not of those inserted: the inserted ones are counted
        # from RETURNING (one small value a new row).
        cur.execute(
            f"INSERT INTO {TABLE} ({columns}) SELECT src.district_code, src.id_hash, src.resident_id, "
            f"src.unit_id, src.sampled_at, src.sampled_on, src.result, %s FROM {SOURCE} src "
            "ON CONFLICT DO NOTHING RETURNING true", [scope_id])
        created = len(cur.fetchall())
    else:
        # Insert what is not stored yet. The LATERAL … LIMIT 1 keeps the existence check an index
        # probe per row (PostgreSQL would otherwise sort or hash the whole stored table for an
        # anti-join), and the probes and inserts go in key order, so each index page is visited
        # once. A plain INSERT: the advisory lock above rules out a concurrent writer. (JIT is off
        # for both statements: compiling the INSERT's took 0.1 s and saved nothing.)
        existence = f"""
            LEFT JOIN LATERAL (
                SELECT 1 AS stored FROM {TABLE} t
                WHERE t.district_code = src.district_code AND t.id_hash = src.id_hash
                  AND t.sampled_on = src.sampled_on AND t.sampled_at = src.sampled_at
                LIMIT 1
            ) e ON true
            WHERE e.stored IS NULL"""
        if probe:
            # The probe must enter each partition's primary key: for a week's partition analysed
            # while empty (autovacuum, between a TRUNCATE or a new week and the import) the planner
            # chose a scan of it — or of the day's rows through the (resident_id, sampled_on) index —
            # per probe, while this INSERT fills it: quadratic (a 1 M-row import did not finish in 5
            # min, 22 s otherwise; docs/benchmarks.md "Citus"). Sequential and bitmap scans are off
            # for this statement only (the staging table is scanned in full all the same).
            cur.execute("SELECT current_setting('enable_seqscan'), current_setting('enable_bitmapscan'), "
                        "set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)")
            seqscan, bitmapscan = cur.fetchone()[:2]
        cur.execute(
            f"""
            INSERT INTO {TABLE} ({columns})
            SELECT src.district_code, src.id_hash, src.resident_id, src.unit_id, src.sampled_at, src.sampled_on,
                   src.result, %s
            FROM {SOURCE} src {existence if probe else ""}
            """, [scope_id])
        created = cur.rowcount
        if probe:
            cur.execute("SELECT set_config('enable_seqscan', %s, true), set_config('enable_bitmapscan', %s, true)",
                        [seqscan, bitmapscan])
    cur.execute("SELECT set_config('jit', %s, true)", [jit])
    cur.execute(f"SELECT count(*) FROM {SOURCE} WHERE resident_id IS NULL")
    (unmatched,) = cur.fetchone()
    cur.execute(f"DROP TABLE {SOURCE}")
    return created, unmatched


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    rows: Sequence[NatRow]
    hashes: list[str]
    text: list[str]  # ``_copy_text``


class MergeAhead:
    """The merges of an import whose batches are written as pass 1 checks them
    (``ImportContext.writing_ahead``, PostgreSQL): each batch is staged by the importing thread
    (``_stage``), then matched and inserted (``_match_and_insert``, the bulk of the database's work)
    by a thread of its own on the import's connection, in the import's transaction, while the
    engine parses the next batch — the database and the parser work at once, on the two cores.
    psycopg's connection serialises its use: a query of the importing thread meanwhile (the next
    batch's positive cases, a partition to make) waits until the merge is done; merges run one at
    a time, in order. ``finish`` waits for the last one and returns the counts of them all; the
    people registered outside the scope are held then (their counts include these results)."""

    def __init__(self, scope=None, weeks: set[dt.date] | None = None):
        self.scope = scope
        self.counts = WriteCounts()
        self.outside: set[str] = set()
        self.weeks = set() if weeks is None else weeks  # Mondays whose partition is known to exist
        self._locked = False
        self._distributed = False
        self._prepared: PreparedBatch | None = None
        self._fresh: dict[dt.date, bool] = {}  # Monday -> whether its week held no result before this import
        self._pool: ThreadPoolExecutor | None = None
        self._running: tuple[int, Future] | None = None

    def ensure_partitions(self, first: str, last: str) -> None:
        ensure_weeks(self.weeks, first, last)

    def hold_locks(self) -> None:
        if not self._locked:
            _hold_for_merge()
            self._distributed = is_distributed(TABLE)  # asked here: the merge thread has no Django connection
            self._locked = True

    def prepare(self, rows: Sequence[NatRow], hasher: IdHasher) -> None:
        """A batch's hashes and COPY text, made before anything that waits for the running merge
        (``NatResultKind.prepare``), so that the parser's thread does its part while the database
        does its own."""
        hashes = hasher.many(r[0] for r in rows)
        self._prepared = PreparedBatch(rows, hashes, _copy_text(rows, hashes))

    def prepared(self, rows: Sequence[NatRow], hasher: IdHasher) -> PreparedBatch:
        batch, self._prepared = self._prepared, None
        if batch is None or batch.rows is not rows:
            self.prepare(rows, hasher)
            batch, self._prepared = self._prepared, None
        return batch

    def fresh(self, first: str, last: str) -> bool:
        """Whether every week of the days ``first`` … ``last`` held no result at all when this import
        first wrote to it. Then no row of the import can be stored already — the lock of
        ``_hold_for_merge`` keeps every other writer out until the import commits, and the rows of
        a file are distinct (the engine's row key is (number, local time), the primary key's) — and the merge inserts
        without an existence probe per row (0.9 s of the 2.8 s of an INSERT of 500,000 rows).
        Asked under the lock, before the import's first merge into the week; a week that held
        anything (a re-import, the second day of a week) is probed row by row."""
        if self._distributed:  # (Citus inserts with ON CONFLICT DO NOTHING, never probes)
            return False
        lo, hi = week_start(dt.date.fromisoformat(first[:10])), week_start(dt.date.fromisoformat(last[:10]))
        fresh = True
        for i in range((hi - lo).days // 7 + 1):
            monday = lo + dt.timedelta(days=7 * i)
            if monday not in self._fresh:
                with connection.cursor() as cur:
                    cur.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {partition_name(monday)})")
                    self._fresh[monday] = cur.fetchone()[0]
            fresh = fresh and self._fresh[monday]
        return fresh

    def merge(self, batch: PreparedBatch, match_in: str | None, scope_id: int | None, stranger_district: str, *,
              probe: bool = True) -> None:
        """Stage the batch (after the merge running, if any, is done) and start its match and insert."""
        self.wait()
        with connection.cursor() as cur:
            _stage(cur, batch.text)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nat-merge")
        pg = connection.connection  # the import's psycopg connection, in its transaction
        self._running = (len(batch.rows), self._pool.submit(_match_on, pg, match_in, scope_id, stranger_district,
                                                            self._distributed, probe))

    def wait(self) -> None:
        if self._running is None:
            return
        n, running = self._running
        self._running = None
        created, unmatched = running.result()
        self.counts.created += created
        self.counts.unchanged += n - created
        self.counts.unmatched += unmatched

    def finish(self, *, completed: bool) -> WriteCounts:
        """Wait for the last merge; with ``completed``, hold the people registered outside the
        scope and return the counts of every batch."""
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
        if completed and self.outside:
            from .actions import hold_outside

            hold_outside(self.outside, scope=self.scope)
        return self.counts


def _match_on(pg, match_in, scope_id, stranger_district, distributed, probe) -> tuple[int, int]:
    with pg.cursor() as cur:
        return _match_and_insert(cur, match_in, scope_id, stranger_district, distributed=distributed, probe=probe)


def _merge_sqlite(rows: Sequence[NatRow], hashes: list[str], match_in: str | None,
                  scope_id: int | None, stranger_district: str) -> tuple[int, int]:
    utc_text = UtcText(timezone.get_default_timezone())
    with connection.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} (id_hash text, sampled_at text, sampled_on text, "
                    "result text)")
        cur.execute(f"DELETE FROM {STAGE}")
        for i in range(0, len(rows), _SLICE):
            cur.executemany(
                f"INSERT INTO {STAGE} (id_hash, sampled_at, sampled_on, result) VALUES (%s, %s, %s, %s)",
                [(h, utc_text(r[1]), r[1][:10], r[2])
                 for r, h in zip(rows[i:i + _SLICE], hashes[i:i + _SLICE], strict=True)])
        # "WHERE true" before ON CONFLICT: SQLite's grammar needs it after a SELECT with a join.
        # SQLite materialises a joined subquery on the right of a LEFT JOIN (the whole registry, with
        # an automatic index, for every statement: 6-7 s at 1,000,000 residents); the joins chained
        # instead probe the residents' id_hash index (unique: one resident at most) per staged row.
        # ``u`` is the household's unit, present exactly when the person matched within the scope.
        scoped = " AND substr(u.path, 1, %s) = %s" if match_in is not None else ""
        # The number's district from the city-wide directory, then the person by (district, number).
        join = (f"LEFT JOIN {DIRECTORY} d ON d.id_hash = s.id_hash "
                "LEFT JOIN units_resident r ON r.district_code = d.district_code AND r.id_hash = d.id_hash "
                "LEFT JOIN units_household h ON h.district_code = r.district_code AND h.id = r.household_id "
                f"LEFT JOIN units_unit u ON u.id = h.unit_id{scoped}")
        join_params = [len(match_in), match_in] if match_in is not None else []
        cur.execute(
            f"INSERT INTO {TABLE} (district_code, id_hash, resident_id, unit_id, sampled_at, sampled_on, result, "
            f"scope_unit_id) SELECT COALESCE({_district_sql('u.path')}, %s), s.id_hash, "
            f"CASE WHEN u.id IS NULL THEN NULL ELSE r.id END, u.id, "
            f"s.sampled_at, s.sampled_on, s.result, %s FROM {STAGE} s {join} WHERE true ON CONFLICT DO NOTHING",
            [stranger_district, scope_id, *join_params])
        created = cur.rowcount
        cur.execute(f"SELECT count(*) FROM {STAGE} s {join} WHERE u.id IS NULL", join_params)
        (unmatched,) = cur.fetchone()
    return created, unmatched


def _record_positive_cases(positives: list[tuple[NatRow, str]], scope=None) -> None:
    """A positive result is a positive case (无症状) on its sample date, unless a case of that person
    on that date is recorded already (e.g. 确诊 from the cases import)."""
    from .actions import CaseRow, write_cases
    from .models import CaseType, FactSource, PositiveCase

    hashes = sorted({h for _r, h in positives})
    known: set[tuple[str, dt.date]] = set()
    for i in range(0, len(hashes), 1000):
        known.update(PositiveCase.objects.filter(id_hash__in=hashes[i:i + 1000]).values_list("id_hash", "reported_on"))
    rows = []
    for r, h in positives:
        day = dt.date.fromisoformat(r[1][:10])
        if (h, day) in known:
            continue
        known.add((h, day))
        rows.append(CaseRow(reported_on=day, case_type=CaseType.ASYMPTOMATIC, id_number=r[0]))
    if rows:
        write_cases(rows, source=FactSource.NAT, scope=scope)


# --- the import kind -----------------------------------------------------------------------------

def residents_in_scope_check(hashes: list[str], scope) -> set[str]:
    """Of ``hashes``, those held by residents OUTSIDE ``scope`` (a Unit): results about them from a
    scoped importer are stored unmatched and held (module docstring)."""
    from wuyiqu.units import directory
    from wuyiqu.units.models import Unit

    outside: set[str] = set()
    uniq = sorted(set(hashes))
    # A district's laboratory: no unit lies outside its scope, so no resident does (a 1 ms query
    # instead of matching every number of the batch).
    if not uniq or not Unit.objects.exclude(path__startswith=scope.path).exists():
        return outside
    # Through the city-wide directory; each district's people read there (one shard on Citus).
    return {h for (h,) in directory.resident_values(uniq, not_under=scope.path)}


@register_kind
class NatResultKind(ImportKind):
    name = "nat-results"
    label = "核酸检测结果"
    columns = (
        Column("id_number", "身份证号", aliases=("公民身份号码", "证件号码", "身份证号码"), help="18位身份证号"),
        Column("sampled_at", "采样时间", help="YYYY-MM-DD HH:MM[:SS]，北京时间"),
        Column("result", "检测结果", aliases=("结果",), help="阴性/阳性（negative/positive）"),
    )
    description = "一人一次采样一行。阳性结果同时记为采样当日的阳性感染者（无症状）。身份证号不在登记名册中的结果也会保存，计为“未匹配”。"
    batch_size = 500_000  # one COPY and one merge (one hash of the residents) per 500,000 rows

    def _parser(self, ctx: ImportContext) -> NatParser:
        parser = ctx.state.get("nat_parser")
        if parser is None:
            parser = ctx.state["nat_parser"] = NatParser()
        return parser

    def _hasher(self, ctx: ImportContext) -> IdHasher:
        hasher = ctx.state.get("nat_hasher")
        if hasher is None:
            hasher = ctx.state["nat_hasher"] = IdHasher()
        return hasher

    def _weeks(self, ctx: ImportContext) -> set[dt.date]:
        return ctx.state.setdefault("nat_weeks", set())

    def parse_row(self, raw: dict[str, str], ctx: ImportContext) -> NatRow:
        return self._parser(ctx).parse(raw["id_number"], raw["sampled_at"], raw["result"])

    def row_key(self, parsed: NatRow) -> int:
        # One int per row (the engine keeps one per row of the file): the number's 17 digits and
        # check character, then the 14 digits of the local sample time.
        number, at, _result = parsed
        check = 10 if number[17] == "X" else ord(number[17]) - 48
        return ((int(number[:17]) * 11 + check) * 10**14
                + int(at[:4] + at[5:7] + at[8:10] + at[11:13] + at[14:16] + at[17:19]))

    # Pass 1's good rows wait in the engine's temporary file for pass 2, which then neither reads
    # nor checks the file again. A parsed row is a tuple of three strs already.
    packs = True

    def pack(self, parsed: NatRow) -> NatRow:
        return parsed

    def unpack(self, packed: tuple) -> NatRow:
        return packed

    def check(self, batch: Batch, ctx: ImportContext) -> Problems:
        # Make the weeks' partitions now, in pass 1, outside the import's transaction: creating
        # them inside it would hold their locks for the whole import.
        # (Each week once per import: ``ensure_weeks``.)
        if batch and ctx.phase == "check":
            days = [p[1][:10] for _line, p in batch]
            ensure_weeks(self._weeks(ctx), min(days), max(days))
        # A number registered outside the importer's scope is not refused (that answer would tell
        # whether it is registered elsewhere): ``write`` stores it unmatched and holds it.
        return {}

    # PostgreSQL: each batch is merged while pass 1 parses the next one (``MergeAhead``).
    writes_as_checked = True

    def _ahead(self, ctx: ImportContext) -> MergeAhead | None:
        if not ctx.writing_ahead:
            return None
        ahead = ctx.state.get("nat_ahead")
        if ahead is None:
            ahead = ctx.state["nat_ahead"] = MergeAhead(ctx.scope, self._weeks(ctx))
        return ahead

    def prepare(self, batch: list[NatRow], ctx: ImportContext) -> None:
        ahead = self._ahead(ctx)
        if ahead is not None:
            ahead.prepare(batch, self._hasher(ctx))

    def write(self, batch: list[NatRow], ctx: ImportContext) -> WriteCounts:
        return write_nat_rows(batch, hasher=self._hasher(ctx), scope=ctx.scope, ahead=self._ahead(ctx))

    def write_done(self, ctx: ImportContext, *, completed: bool) -> WriteCounts:
        ahead = ctx.state.pop("nat_ahead", None)
        return ahead.finish(completed=completed) if ahead is not None else WriteCounts()
