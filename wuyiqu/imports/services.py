"""Running an import: two streaming passes over the file and one transaction.

Pass 1 (check) parses every row, runs the kind's set-based checks, finds duplicates, counts rows and
collects every problem with its line. If any row is invalid and ``skip_invalid`` is false, nothing
is written. Pass 2 (write) reads the file again and hands the good rows to the kind's ``write`` in
batches, all inside ONE transaction with the audit row, so an error or a crash half-way leaves the
database exactly as it was.

The ImportJob row is the progress a web page polls (``rows_done``/``rows_total``/``status``). While
pass 2 holds the write transaction those counters are written through a second connection on
PostgreSQL (SQLite allows one writer, so there the counters move again at commit; pass
``progress=`` to follow the rows in-process).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import marshal
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from wuyiqu.audit import actions as audit
from wuyiqu.lib.idcard import mask_id_number, mask_phone
from wuyiqu.supervision.affected import FactsWritten

from . import errorbook, headers, storage
from .models import ColumnMapping, ImportJob, ImportStatus
from .parsers import LINE_BITS, LINE_MASK, Table, iter_records, open_tables, plan_tables
from .registry import Batch, FileError, ImportContext, ImportKind, RowError, WriteCounts, get_kind

log = logging.getLogger(__name__)

ERRORS_KEPT = 1000  # problems stored on the job; all of them go to ``report``
PROGRESS_EVERY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int  # the import's line: the row, plus the sheet's index << LINE_BITS (parsers.iter_records)
    field: str  # the column key ("" for the whole row)
    message: str
    duplicate: bool = False
    header: str = ""  # the column's header, for people (the file's own where there is one)
    sheet: str = ""  # the sheet's name when the file has more than one

    @property
    def row(self) -> int:
        """The row number a person sees in the sheet."""
        return self.line & LINE_MASK

    def as_dict(self) -> dict[str, Any]:
        out = {"line": self.row, "field": self.field, "header": self.header, "message": self.message}
        if self.sheet:
            out["sheet"] = self.sheet
        return out

    def __str__(self) -> str:
        where = headers.sheet_row(self.sheet, self.row) if self.line else _("文件")
        name = self.header or self.field
        return f"{where} {name}：{self.message}" if name else f"{where}：{self.message}"


Progress = Callable[[str, int, int], None]  # (phase "check"/"write", rows done, rows total or 0)
Report = Callable[[RowProblem], None]


class _JobProgress:
    """Writes rows_done/rows_total of the job at most once a second, never inside the caller's
    transaction: outside one it uses the default connection (autocommit); inside one, on PostgreSQL,
    a private second connection so that the poller sees the counters before the commit."""

    def __init__(self, job: ImportJob, callback: Progress | None):
        self.job = job
        self.callback = callback
        self._last = 0.0
        self._side = None

    def __call__(self, phase: str, done: int, total: int, *, force: bool = False) -> None:
        if self.callback:
            self.callback(phase, done, total)
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_EVERY_SECONDS:
            return
        self._last = now
        self.job.rows_done, self.job.rows_total = done, total
        if not connection.in_atomic_block:
            ImportJob.objects.filter(pk=self.job.pk).update(rows_done=done, rows_total=total)
        elif connection.vendor == "postgresql":
            try:
                if self._side is None:
                    default = connections[DEFAULT_DB_ALIAS]
                    self._side = type(default)(dict(default.settings_dict), alias="imports_progress")
                    with self._side.cursor() as cur:
                        # The job's row may be locked by the transaction the import runs in (a
                        # confirmation that queued it, run at once by the immediate task backend):
                        # wait briefly, never for ever — the counters then move at the commit.
                        cur.execute("SET lock_timeout = '200ms'")
                with self._side.cursor() as cur:
                    cur.execute(f"UPDATE {ImportJob._meta.db_table} SET rows_done = %s, rows_total = %s WHERE id = %s",
                                [done, total, self.job.pk])
            except Exception:  # progress is a courtesy; never let it break the import
                log.warning("could not write import progress", exc_info=True)

    def close(self) -> None:
        if self._side is not None:
            self._side.close()
            self._side = None


def create_job(*, kind: str, filename: str, actor=None, scope=None, skip_invalid: bool = False,
               stored_path: str = "", dry_run: bool = False, mapping: dict | None = None) -> ImportJob:
    """A pending job (for the web page, which creates it, starts a thread and polls it). ``dry_run``:
    a preview; ``mapping``: {"columns": {header: key or ""}, "sheets": [names]} (``mapping_of``)."""
    return ImportJob.objects.create(
        kind=kind, filename=filename, stored_path=stored_path, skip_invalid=skip_invalid,
        created_by=actor if (actor is not None and getattr(actor, "is_authenticated", False)) else None,
        scope=scope, status=ImportStatus.PENDING, dry_run=dry_run, mapping=mapping or {},
    )


def mapping_of(columns: dict[str, str | None] | None = None, sheets: list[str] | None = None) -> dict:
    """The job's ``mapping`` for a choice of columns and sheets (either may be empty)."""
    out: dict[str, Any] = {}
    if columns:
        out["columns"] = {str(h): (k or headers.IGNORE) for h, k in columns.items()}
    if sheets:
        out["sheets"] = list(sheets)
    return out


def _batches(kind: ImportKind, ctx: ImportContext, tables: list[Table], layout: headers.Layout,
             skip_lines: set[int] | None, problems: list[RowProblem] | None) -> Iterator[Batch]:
    """Parsed rows of the file in batches of kind.batch_size. In pass 1 (``problems`` given) rows that
    do not parse are added to ``problems``; in pass 2 lines in ``skip_lines`` are left out."""
    batch: Batch = []
    size = kind.batch_size
    parse = kind.parse_row
    for line, raw in iter_records(tables, layout, kind.columns):
        if skip_lines and line in skip_lines:
            continue
        try:
            parsed = parse(raw, ctx)
        except RowError as exc:
            if problems is None:  # pass 1 saw this row valid: the file changed between the passes
                raise FileError(_("文件在导入过程中被修改（第%(line)d行）") % {"line": line & LINE_MASK}) from None
            problems.append(RowProblem(line, exc.field, exc.message))
            continue
        batch.append((line, parsed))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_import(*, kind: str, path: str | Path, actor=None, scope=None, skip_invalid: bool = False,
               progress: Progress | None = None, report: Report | None = None,
               job: ImportJob | None = None, filename: str | None = None,
               mapping: dict[str, str | None] | None = None, sheets: list[str] | None = None,
               dry_run: bool = False, planned: Callable[[headers.Layout], None] | None = None) -> ImportJob:
    """Import ``path`` as ``kind`` on behalf of ``actor`` (None: the console), restricted to the
    subtree of ``scope`` (a Unit; None: everything). Returns the finished ImportJob: status
    ``succeeded`` with the counts, or ``failed`` with ``message`` and ``errors`` (nothing written);
    with ``dry_run`` every row is checked and written in a transaction that is rolled back, and the
    job ends ``previewed`` with the counts it would have.

    ``mapping``: {header: field key or "" (not imported)} before the dictionary of office words;
    ``sheets``: the names of the sheets to import (default: every sheet with a header). Without a
    mapping, an import for a unit uses the mapping remembered for that unit and file shape.
    ``progress(phase, done, total)`` is called as rows go by; ``report(problem)`` once for every
    invalid or duplicate row; ``planned(layout)`` once the header and mapping are found. ``job``: a
    pending job made by ``create_job`` (the web page's task), whose mapping and dry_run are used;
    otherwise one is created. Unknown kinds raise KeyError before any job exists.
    """
    import_kind = get_kind(kind)
    path = Path(path)
    if job is None:
        job = create_job(kind=kind, filename=filename or path.name, actor=actor, scope=scope,
                         skip_invalid=skip_invalid, stored_path="", dry_run=dry_run,
                         mapping=mapping_of(mapping, sheets))
    chosen = job.mapping or {}
    skip_invalid = job.skip_invalid
    job.status = ImportStatus.RUNNING
    job.started_at = timezone.now()
    job.runner = current_runner()
    job.error_workbook = None
    job.save(update_fields=["status", "started_at", "runner", "error_workbook"])
    tracker = _JobProgress(job, progress)
    try:
        # A spreadsheet is turned into temporary CSVs once here (both passes read those); a bad file stops here.
        with open_tables(path) as tables:
            try:
                layout = _plan(import_kind, tables, scope, chosen.get("columns"), chosen.get("sheets"))
            except FileError as exc:
                if getattr(exc, "layout", None) is not None:
                    job.layout = layout_json(exc.layout, import_kind)
                raise
            job.layout = layout_json(layout, import_kind)
            job.save(update_fields=["layout"])
            if planned is not None:
                planned(layout)
            return _Run(import_kind, job, tables, layout, actor, scope, skip_invalid, tracker, report).run()
    except FileError as exc:
        return _finish_failed(job, actor, str(exc))
    except Exception as exc:
        log.exception("import %s of %s failed", kind, path)
        _finish_failed(job, actor, _("导入出错，未导入任何数据：%(e)s") % {"e": exc})
        raise
    finally:
        tracker.close()
        if not awaits_person(job):
            storage.discard(job)  # a web upload is kept only while its job runs (or waits for the person)


def awaits_person(job: ImportJob) -> bool:
    """Whether ``job`` is a preview the person may still confirm or map again (its upload is kept):
    previewed, or failed for its header or mapping (a layout was found to correct)."""
    return job.dry_run and (job.status == ImportStatus.PREVIEWED
                            or (job.status == ImportStatus.FAILED and bool(job.layout)))


def _plan(kind: ImportKind, tables: list[Table], scope, columns: dict | None, sheets: list[str] | None) -> headers.Layout:
    """The layout to import with: the person's mapping; else, for a unit, a mapping confirmed earlier
    for a file of this shape; else the dictionary's."""
    if columns or scope is None:
        return plan_tables(tables, kind, mapping=columns, sheets=sheets)
    for remembered in ColumnMapping.objects.filter(unit=scope, kind=kind.name).order_by("-updated_at")[:20]:
        try:
            layout = plan_tables(tables, kind, mapping=remembered.columns, sheets=sheets or remembered.sheets or None)
        except FileError:
            continue
        if layout.shape == remembered.shape:
            layout.remembered = True
            return layout
    return plan_tables(tables, kind, sheets=sheets)


_ID_LIKE = re.compile(r"[0-9０-９]{17}[0-9Xx０-９Ｘｘ]|[0-9]\.[0-9]+[eE]\+?1[4-7]|[0-9]{15,18}(?:\.0+)?")
_PHONE_LIKE = re.compile(r"1[3-9][0-9]{9}(?:\.0+)?")


def _masked(cell: str, key: str | None) -> str:
    """A sample cell as the confirming page may show it: ID numbers and phones masked, in any column."""
    text = cell.strip()
    if key == "id_number" or _ID_LIKE.fullmatch(text):
        return mask_id_number(text)
    if key == "phone" or _PHONE_LIKE.fullmatch(text):
        return mask_phone(text)
    return text[:60]


def layout_json(layout: headers.Layout, kind: ImportKind) -> dict:
    """``layout.as_json()`` with the sample cells masked, the fields' labels and whether the mapping
    was a remembered one: what the job keeps for the page that confirms the mapping."""
    data = layout.as_json()
    for sheet in data["sheets"]:
        keys = sheet["keys"]
        sheet["samples"] = [[_masked(c, keys[i] if i < len(keys) else None) for i, c in enumerate(row)]
                            for row in sheet["samples"]]
        sheet["letters"] = [headers.column_letter(i) for i in range(len(sheet["headers"]))]
    data["fields"] = [{"key": c.key, "label": c.header, "required": c.required} for c in kind.columns]
    data["remembered"] = bool(getattr(layout, "remembered", False))
    return data


class _Run:
    """One import: the problems found so far and the two passes."""

    def __init__(self, kind: ImportKind, job: ImportJob, tables: list[Table], layout: headers.Layout, actor, scope,
                 skip_invalid: bool, tracker: _JobProgress, report: Report | None):
        self.kind, self.job, self.tables, self.layout, self.actor = kind, job, tables, layout, actor
        self.skip_invalid, self.tracker, self.report = skip_invalid, tracker, report
        self.ctx = ImportContext(actor=actor, scope=scope, job=job, phase="check")
        self.headers = {c.key: c.header for c in kind.columns}
        # Messages name the file's own header of a column (身份证号码) and, in a workbook of several
        # sheets, the sheet.
        self.own_headers = {s.index: {k: s.headers[i] for i, k in s.positions} for s in layout.sheets}
        self.sheet_names = {s.index: s.name for s in layout.sheets} if layout.names_sheets() else {}
        # The problems stored on the job: invalid rows first, so that a file refused for one bad row
        # among thousands of duplicates still shows that row; duplicates fill what room is left.
        self.kept: list[RowProblem] = []
        self.kept_duplicates: list[RowProblem] = []
        self.skip_lines: set[int] = set()
        self.invalid = self.duplicate = self.rows_total = 0
        self.refused: dict[int, list[tuple[str, str]]] = {}  # line -> [(field, message)], for the error workbook

    def note(self, problem: RowProblem) -> None:
        index = problem.line >> LINE_BITS
        header = problem.header
        if problem.field and not header:
            header = self.own_headers.get(index, {}).get(problem.field) or self.headers.get(problem.field, problem.field)
        problem = RowProblem(problem.line, problem.field, problem.message, problem.duplicate, header,
                             self.sheet_names.get(index, ""))
        if problem.duplicate:
            self.duplicate += 1
        else:
            self.invalid += 1
            if len(self.refused) < errorbook.MAX_ROWS or problem.line in self.refused:
                self.refused.setdefault(problem.line, []).append((problem.field, problem.message))
        self.skip_lines.add(problem.line)
        kept = self.kept_duplicates if problem.duplicate else self.kept
        if len(kept) < ERRORS_KEPT:
            kept.append(problem)
        if self.report:
            self.report(problem)

    def run(self) -> ImportJob:
        if self.kind.writes_as_checked and connection.vendor == "postgresql":
            return self.run_writing_as_checked()
        # Kinds that pack keep pass 1's good rows in a temporary file, so pass 2 need not parse again.
        spill = _Spill() if self.kind.packs else None
        try:
            self.check(spill)
            if self.checked():
                return _finish_failed(self.job, self.actor, self.refusal())
            if spill is not None:
                unpack = self.kind.unpack
                return self.write([unpack(p) for p in marshal.loads(data)] for data in spill.read_all())
            return self.write([parsed for _line, parsed in b]
                              for b in _batches(self.kind, self.ctx, self.tables, self.layout, self.skip_lines, None))
        finally:
            if spill is not None:
                spill.close()

    def checked(self) -> bool:
        """After pass 1: the job's counts and problems (and error workbook) set; whether the import
        is refused (an invalid row, without ``skip_invalid``, not a preview)."""
        job = self.job
        job.rows_total, job.invalid, job.duplicate = self.rows_total, self.invalid, self.duplicate
        kept = self.kept + self.kept_duplicates[:ERRORS_KEPT - len(self.kept)]
        job.errors = [p.as_dict() for p in sorted(kept, key=lambda p: p.line)]
        if self.refused:
            job.error_workbook = errorbook.build_encrypted(self.tables, self.layout, self.refused, self.invalid)
        return bool(self.invalid and not self.skip_invalid and not job.dry_run)

    def refusal(self) -> str:
        return _("共%(n)d行有错误，未导入任何数据；请改正后重新导入，或选择跳过错误行") % {"n": self.invalid}

    def writing(self) -> bool:
        """Whether pass 1's good rows may still be written (or kept for pass 2): no invalid row so
        far, or ``skip_invalid``, or a preview."""
        return bool(self.skip_invalid or self.job.dry_run or not self.invalid)

    def run_writing_as_checked(self) -> ImportJob:
        """The two passes at once, for kinds with ``writes_as_checked`` on PostgreSQL: each batch's
        good rows go to ``write`` as soon as pass 1 has checked them, inside the import's one
        transaction — opened at the first batch to write, after that batch's ``check`` (which may
        make what the writes need outside it, e.g. partitions) — so that the database works on a
        batch while the next one is parsed. A row found invalid later (without ``skip_invalid``)
        stops the writes and rolls every one of them back: nothing is written, as when pass 2 never
        starts; an error, a crash or a kill anywhere rolls back the same way."""
        job, kind, ctx = self.job, self.kind, self.ctx
        ahead = _WrittenAsChecked(kind, ctx)
        try:
            with ExitStack() as stack:  # the transaction, entered by the first write
                ahead.stack = stack
                self.check(None, ahead.write)
                if self.checked():
                    raise _Refused
                ahead.begin()  # (no row to write: the job and its audit row still commit together)
                ahead.counts += kind.write_done(ctx, completed=True)
                if ahead.written != self.rows_total - self.invalid - self.duplicate:
                    raise FileError(_("文件在导入过程中被修改（行数不一致）"))
                self.tracker("write", ahead.written, ahead.written)
                if job.dry_run:
                    raise _Preview
                return self.finish(ahead.counts, ahead.facts)
        except _Refused:  # raised through the transaction: every batch written is rolled back
            return _finish_failed(job, self.actor, self.refusal())
        except _Preview:
            return self.finish_preview(ahead.counts)

    def check(self, spill, write: Callable[[list[Any]], None] | None = None) -> None:
        """Pass 1: parse and check every row, find duplicates, count; write nothing — unless
        ``write`` is given, which then gets each batch's good rows as soon as they are checked
        (``run_writing_as_checked``)."""
        kind, ctx = self.kind, self.ctx
        keys: dict[Any, int] = {}  # row key -> first line, for duplicates
        parse_problems: list[RowProblem] = []
        for batch in _batches(kind, ctx, self.tables, self.layout, None, parse_problems):
            self.rows_total += len(batch) + len(parse_problems)
            for p in parse_problems:
                self.note(p)
            parse_problems.clear()
            found = kind.check(batch, ctx)
            for line, parsed in batch:
                err = found.get(line)
                if err is not None:
                    self.note(RowProblem(line, err.field, err.message))
                    continue
                key = kind.row_key(parsed)
                if key is not None:
                    first = keys.setdefault(key, line)
                    if first != line:
                        self.note(RowProblem(line, "", _("与第%(first)d行重复，已跳过") % {"first": first},
                                             duplicate=True))
            if spill is not None and self.writing():
                spill.write(marshal.dumps([kind.pack(parsed) for line, parsed in batch if line not in self.skip_lines]))
            if write is not None and self.writing():
                rows = [parsed for line, parsed in batch if line not in self.skip_lines]
                if rows:
                    write(rows)
            self.tracker("check", self.rows_total, 0)
        self.rows_total += len(parse_problems)  # unparsable rows after the last batch
        for p in parse_problems:
            self.note(p)
        self.tracker("check", self.rows_total, self.rows_total, force=True)

    def write(self, batches: Iterator[list[Any]]) -> ImportJob:
        """Pass 2: the good rows in one transaction, with the job's counts and the audit row."""
        job, kind, ctx = self.job, self.kind, self.ctx
        ctx.phase = "write"
        counts = WriteCounts()
        good = self.rows_total - self.invalid - self.duplicate
        done = 0
        facts = FactsWritten(kind, ctx)  # supervision: the units these facts bear on (none for registry kinds)
        try:
            with transaction.atomic():
                for rows in batches:
                    counts += kind.write(rows, ctx)
                    facts.add(rows)
                    done += len(rows)
                    self.tracker("write", done, good)
                if done != good:
                    raise FileError(_("文件在导入过程中被修改（行数不一致）"))
                if job.dry_run:
                    raise _Preview  # everything written is rolled back: the counts are what a preview shows
                return self.finish(counts, facts)
        except _Preview:
            return self.finish_preview(counts)

    def finish(self, counts: WriteCounts, facts: FactsWritten) -> ImportJob:
        """The import's last writes, inside its transaction: the rechecks, the job, the audit row."""
        job, kind, ctx = self.job, self.kind, self.ctx
        facts.recheck(actor=self.actor, source=f"import:{job.kind}")  # withdraw/warn in this transaction
        remember = (job.mapping or {}).get("remember")
        if remember and job.scope_id and remember.get("shape"):
            # A mapping the person confirmed on the preview: next month's file of this shape maps the same way.
            ColumnMapping.objects.update_or_create(
                unit_id=job.scope_id, kind=job.kind, shape=remember["shape"],
                defaults={"columns": job.mapping.get("columns", {}), "sheets": remember.get("sheets", []),
                          "updated_by": self.actor if getattr(self.actor, "is_authenticated", False) else None})
        job.created, job.updated, job.unchanged, job.unmatched = (
            counts.created, counts.updated, counts.unchanged, counts.unmatched)
        # The write phase's progress counted the good rows only: the job keeps every row of the file.
        job.rows_done = job.rows_total = self.rows_total
        job.status = ImportStatus.SUCCEEDED
        job.finished_at = timezone.now()
        job.message = "，".join(filter(None, [summary(job), kind.summary_note(ctx)]))
        job.save()
        audit.record(actor=self.actor, action="imports.run", target=job, unit=job.scope,
                     detail={"kind": job.kind, "file": job.filename, "status": job.status, **counts_of(job),
                             **kind.audit_detail(ctx)})
        return job

    def finish_preview(self, counts: WriteCounts) -> ImportJob:
        """After the rolled-back writes of a preview: the job with the counts it would have, ``previewed``."""
        job = self.job
        job.created, job.updated, job.unchanged, job.unmatched = (
            counts.created, counts.updated, counts.unchanged, counts.unmatched)
        # The write phase's progress counted the good rows only: the job keeps every row of the file.
        job.rows_done = job.rows_total = self.rows_total
        job.status = ImportStatus.PREVIEWED
        job.finished_at = timezone.now()
        note = self.kind.summary_note(self.ctx)
        job.message = _("预览（尚未导入）：%(s)s") % {"s": "，".join(filter(None, [summary(job), note]))}
        job.save()
        audit.record(actor=self.actor, action="imports.preview", target=job, unit=job.scope,
                     detail={"kind": job.kind, "file": job.filename, "status": job.status, **counts_of(job)})
        return job


class _WrittenAsChecked:
    """The writes of ``_Run.run_writing_as_checked``: opens the transaction (in ``stack``) at the
    first batch, hands each batch to the kind, counts."""

    def __init__(self, kind: ImportKind, ctx: ImportContext):
        self.kind, self.ctx = kind, ctx
        self.stack: ExitStack | None = None
        self.counts = WriteCounts()
        self.facts = FactsWritten(kind, ctx)
        self.written = 0
        self.open = False

    def begin(self) -> None:
        if self.open:
            return
        self.stack.enter_context(transaction.atomic())
        # Runs before the transaction is left (the stack unwinds in reverse): on the way out after
        # an error or a refusal, what ``write`` left running is waited for first, then rolled back.
        self.stack.callback(self._stop)
        self.open = True
        self.ctx.writing_ahead = True

    def write(self, rows: list[Any]) -> None:
        self.begin()
        # The kind's work without the database first, while it may still work on the last batch.
        self.kind.prepare(rows, self.ctx)
        # Before ``write``, which may leave the database busy with this batch: the units the facts
        # bear on are read from the registry, not from what is being written.
        self.facts.add(rows)
        self.counts += self.kind.write(rows, self.ctx)
        self.written += len(rows)

    def _stop(self) -> None:
        try:
            self.kind.write_done(self.ctx, completed=False)  # nothing left after a completed one
        except Exception:
            log.warning("import %s: the write left running failed", self.kind.name, exc_info=True)
        finally:
            self.ctx.writing_ahead = False


class _Preview(Exception):
    """Raised inside a preview's transaction after the last batch, to roll every write back."""


class _Refused(Exception):
    """Raised inside the transaction of ``run_writing_as_checked`` when pass 1 found an invalid row:
    every batch written so far is rolled back."""


class _Spill:
    """A temporary file of records (pass 1's good rows), each sealed with a key that lives only in
    this object: the rows of an import are never on disk in clear, not even while it runs, and what
    a killed process leaves in the file system's free blocks cannot be read."""

    def __init__(self):
        self._file = tempfile.TemporaryFile(prefix="wuyiqu-import-")
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))
        self._count = 0

    def write(self, data: bytes) -> None:
        sealed_data = self._aead.encrypt(self._count.to_bytes(12, "big"), data, None)
        self._count += 1
        self._file.write(len(sealed_data).to_bytes(8, "little"))
        self._file.write(sealed_data)

    def read_all(self) -> Iterator[bytes]:
        self._file.seek(0)
        for index in range(self._count):
            size = int.from_bytes(self._file.read(8), "little")
            yield self._aead.decrypt(index.to_bytes(12, "big"), self._file.read(size), None)

    def close(self) -> None:
        self._file.close()


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), "" without /proc, None when
    there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except FileNotFoundError:
        if not os.path.exists("/proc/self/stat"):  # no /proc: ask the kernel whether the pid exists
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            except PermissionError:
                return ""
            return ""
        return None
    except (OSError, IndexError):
        return ""


def current_runner() -> str:
    """This process as a job records it: host, pid and start time (a pid used again later by
    another process is not taken for the importer)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid) or ''}"


def runner_gone(runner: str) -> bool:
    """Whether the process ``runner`` (``current_runner()`` of the importer) no longer runs. Only a
    process on this host can be checked: another host's runner is taken as alive."""
    try:
        host, pid, start = runner.rsplit(":", 2)
        pid_number = int(pid)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    now = _process_start(pid_number)
    return now is None or bool(start and now and now != start)


def fail_interrupted(job: ImportJob) -> bool:
    """Mark ``job`` failed if it is running but its process is gone (killed, the machine restarted):
    an import writes in one transaction, so nothing of it was written. Returns whether it did."""
    if job.status != ImportStatus.RUNNING or not job.runner or not runner_gone(job.runner):
        return False
    with transaction.atomic():
        locked = (ImportJob.objects.select_for_update().filter(pk=job.pk, status=ImportStatus.RUNNING,
                                                              runner=job.runner).first())
        if locked is None:
            return False
        _finish_failed(locked, None, _("导入进程已中断，未导入任何数据；请重新导入"))
    job.refresh_from_db()
    storage.discard(job)
    return True


def fail_interrupted_jobs() -> int:
    """``fail_interrupted`` for every running job of this host (the worker at its start)."""
    host = socket.gethostname() + ":"
    return sum(fail_interrupted(job) for job in
               ImportJob.objects.filter(status=ImportStatus.RUNNING, runner__startswith=host))


PREVIEW_KEPT = dt.timedelta(hours=24)  # a preview not confirmed within this is ended and its upload removed


def expire_previews(now: dt.datetime | None = None) -> int:
    """End the previews nobody confirmed within PREVIEW_KEPT (failed, audited, their sealed upload
    deleted); returns how many. Run on schedule: by ``wuyiqu worker`` at its start and every minute
    with its daily schedule (``ops.schedule``), and whenever a web import stores a new upload (so a
    site without a scheduling worker expires them too). Each job is locked and looked at again, so
    two processes expiring at once end it once."""
    cutoff = (now or timezone.now()) - PREVIEW_KEPT
    due = ImportJob.objects.filter(dry_run=True, finished_at__lt=cutoff).exclude(stored_path="")
    ended = 0
    for pk in list(due.values_list("pk", flat=True)[:1000]):
        with transaction.atomic():
            job = due.select_for_update(skip_locked=True).filter(pk=pk).first()
            if job is None:
                continue  # confirmed, mapped again or expired by another process meanwhile
            if job.status == ImportStatus.PREVIEWED:
                fail_job(job, None, _("预览后%(h)d小时内未确认导入，已过期，上传的文件已删除；请重新上传") % {"h": 24})
            else:
                storage.discard(job)
            ended += 1
    return ended


def fail_job(job: ImportJob, actor, message: str) -> ImportJob:
    """Mark ``job`` failed with ``message`` without running it (audited like any failed import); its
    upload is removed."""
    _finish_failed(job, actor, message)
    storage.discard(job)
    return job


def _finish_failed(job: ImportJob, actor, message: str) -> ImportJob:
    job.status = ImportStatus.FAILED
    job.finished_at = timezone.now()
    job.message = message
    job.created = job.updated = job.unchanged = job.unmatched = 0
    job.save()
    audit.record(actor=actor, action="imports.run", target=job, unit=job.scope,
                 detail={"kind": job.kind, "file": job.filename, "status": job.status, "message": message,
                         **counts_of(job)})
    return job


def counts_of(job: ImportJob) -> dict[str, int]:
    return {k: getattr(job, k) for k in ("rows_total", "created", "updated", "unchanged", "invalid", "duplicate",
                                         "unmatched")}


def summary(job: ImportJob) -> str:
    """One Chinese line: 新增 12，更新 3，未变 0，错误 1，重复 2."""
    parts = [
        _("共%(n)d行") % {"n": job.rows_total},
        _("新增%(n)d") % {"n": job.created},
        _("更新%(n)d") % {"n": job.updated},
        _("未变%(n)d") % {"n": job.unchanged},
        _("错误%(n)d") % {"n": job.invalid},
        _("重复%(n)d") % {"n": job.duplicate},
    ]
    if job.unmatched:
        parts.append(_("未匹配%(n)d") % {"n": job.unmatched})
    return "，".join(parts)


def build_template(kind: str) -> bytes:
    """The XLSX template of ``kind``: one header row with the Chinese headers (required ones marked
    in the comment), a comment per header with its hint and English alias, and a 说明 sheet."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill

    k = get_kind(kind)
    wb = Workbook()
    ws = wb.active
    ws.title = k.label[:31]
    bold = Font(bold=True)
    required_fill = PatternFill("solid", fgColor="FFF2CC")
    for i, col in enumerate(k.columns, start=1):
        cell = ws.cell(row=1, column=i, value=col.header)
        cell.font = bold
        if col.required:
            cell.fill = required_fill
        note = ("必填。" if col.required else "选填。") + (col.help or "") + f"（英文列名：{col.key}）"
        cell.comment = Comment(note, "wuyiqu")
        ws.column_dimensions[cell.column_letter].width = max(12, len(col.header) * 2 + 4)
    ws.freeze_panes = "A2"
    info = wb.create_sheet("说明")
    info.append(["列标题", "英文列名", "必填", "说明"])
    for cell in info[1]:
        cell.font = bold
    for col in k.columns:
        info.append([col.header, col.key, "是" if col.required else "否", col.help])
    if k.description:
        info.append([])
        info.append([k.description])
    info.append([])
    info.append(["第一张工作表的第一行是列标题，从第二行起每行一条记录。也可以保存为 CSV（UTF-8 或 GBK）上传。"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
