"""One fact by hand: a form's row written through the same import kind as a file's row.

A form on a phone (a case, a close contact, a household, a ledger entry, a verification …) builds the
row a file would hold — ``{column key: text}`` — and ``do_record_row`` hands it to the kind that
imports such files: its ``parse_row``, its ``check`` (with the user's scope) and its ``write``. So a
form and a file row are refused for the same reasons, in the same words, and store the same record;
there is no second validation to drift apart.

Unlike a file, a form then re-checks at once the named units in the chain of what it wrote: for the
epidemic facts as an import does (``supervision.affected``), and for the registry kinds too (a
household, a resident, a ledger entry, a verification), which a file leaves to the daily run because
an import of a whole district's register would re-evaluate the district; one row re-evaluates one
village/community at most, and only when a unit above or below is named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from wuyiqu.audit import actions as audit
from wuyiqu.lib.idcard import mask_id_number
from wuyiqu.supervision.affected import AFFECTED, FactsWritten

from .registry import ImportContext, ImportKind, RowError, ScopeError, WriteCounts, get_kind


class RowRefused(Exception):
    """The row cannot be recorded. ``field`` is the column key (the form's field), ``header`` its
    Chinese name, ``message`` the reason in Chinese; ``out_of_scope`` when what it names lies outside
    the user's scope."""

    def __init__(self, field: str, message: str, header: str = "", *, out_of_scope: bool = False):
        super().__init__(f"{header or field}：{message}" if (header or field) else message)
        self.field = field
        self.message = message
        self.header = header
        self.out_of_scope = out_of_scope

    def __str__(self) -> str:
        name = self.header or self.field
        return f"{name}：{self.message}" if name else self.message


@dataclass
class RowRecorded:
    """What ``do_record_row`` did: the kind's counts and the supervision outcome of the re-check
    (None when nothing was written and nothing re-checked)."""

    kind: str
    counts: WriteCounts
    recheck: Any = None  # wuyiqu.supervision.services.Outcome
    parsed: Any = field(default=None, repr=False)
    # Rows that wait for someone's confirmation instead of being written (the residents kind: a person
    # registered outside the scope becomes a transfer request, wuyiqu.units.transfers).
    pending: int = 0
    scoped: bool = False  # recorded by a user with a scope (the residents kind then answers alike, issue 14)

    @property
    def changed(self) -> bool:
        return bool(self.counts.created or self.counts.updated or self.pending)


def _refused(kind: ImportKind, exc: RowError) -> RowRefused:
    headers = {c.key: c.header for c in kind.columns}
    return RowRefused(exc.field, exc.message, _(headers[exc.field]) if exc.field in headers else "",
                      out_of_scope=isinstance(exc, ScopeError))


def _registry_units(kind: str, parsed: Any, ctx: ImportContext) -> set[int]:
    """The units a registry row bears on (its household's unit; for a resident who moves, also the
    household left), read before the write."""
    if kind == "households":
        return {ref.id for ref in ctx.units_by_code({parsed.unit_code}).values()}
    if kind == "verifications":
        return {ref.unit_id for ref in ctx.households_by_code({parsed.household_code}).values()}
    if kind == "special-population":
        return {ref.unit_id for ref in ctx.residents_by_id_number({parsed.id_number}).values()}
    if kind == "residents":
        units = {ref.unit_id for ref in ctx.households_by_code({parsed.household_code}).values()}
        return units | {ref.unit_id for ref in ctx.residents_by_id_number({parsed.id_number}).values()}
    return set()


def _id_number_of(kind: str, parsed: Any) -> str:
    """The ID number a parsed row is about ("" for none): masked into the audit row, never in plain."""
    if kind == "cases":  # (id_number, unit_code, reported_on, type)
        return parsed[0]
    return getattr(parsed, "id_number", "") or ""


def check_row(*, kind: str, raw: dict[str, str], scope, actor=None) -> tuple[ImportKind, ImportContext, Any]:
    """Parse and check one row as a file's row is (no write); RowRefused naming the field otherwise.
    Returns the kind, the context and the parsed row."""
    from .registry import FileError

    import_kind = get_kind(kind)
    known = {c.key for c in import_kind.columns}
    raw = {key: (raw.get(key) or "").strip() for key in known}
    ctx = ImportContext(actor=actor, scope=scope, phase="check")
    try:
        parsed = import_kind.parse_row(raw, ctx)
    except RowError as exc:
        raise _refused(import_kind, exc) from None
    try:
        problem = import_kind.check([(1, parsed)], ctx).get(1)
    except FileError as exc:  # a refusal of the whole import (the residents kind's daily cap)
        raise RowRefused("", str(exc)) from None
    if problem is not None:
        raise _refused(import_kind, problem)
    return import_kind, ctx, parsed


def do_record_row(*, kind: str, raw: dict[str, str], actor, scope, unit=None, ip: str | None = None,
                  only_new: tuple[str, str] | None = None) -> RowRecorded:
    """Record one row of import kind ``kind`` entered on a form by ``actor``, whose scope is ``scope``
    (a Unit; None: unrestricted). ``unit``: the unit the page is about (for the audit row). Returns
    what was written and the re-check of the named units in its chain, in the same transaction.

    Refuses (RowRefused, nothing written) whatever the kind refuses for a file row, with the field.
    A row that is stored already writes nothing, re-checks nothing and writes no audit row
    (``changed`` is then False: the page says so). With ``only_new`` = (field, message) a row that
    would change a stored record instead of adding one (an "add" form given a household code or an ID
    number that is registered already) is refused with that field and message. A residents row
    about a person registered outside the scope becomes a transfer request (``pending``)."""
    # Checked before the transaction: what the check counts (the residents kind's rows about people
    # registered elsewhere, units.transfers) stays counted when the row is then refused.
    from .registry import FileError

    import_kind, ctx, parsed = check_row(kind=kind, raw=raw, scope=scope, actor=actor)
    try:
        with transaction.atomic():
            return _record_checked(import_kind, ctx, parsed, kind=kind, actor=actor, unit=unit, ip=ip,
                                   only_new=only_new)
    except FileError as exc:  # the person registered by another writer meanwhile (the residents kind)
        raise RowRefused("", str(exc)) from None


def _record_checked(import_kind, ctx, parsed, *, kind: str, actor, unit, ip, only_new) -> RowRecorded:
    ctx.phase = "write"
    registry_units = _registry_units(kind, parsed, ctx) if kind not in AFFECTED or kind == "residents" else set()
    counts = import_kind.write([parsed], ctx)
    from wuyiqu.imports.kinds.people import PENDING_KEY

    out = RowRecorded(kind=kind, counts=counts, parsed=parsed, pending=ctx.state.get(PENDING_KEY, 0),
                      scoped=ctx.scope is not None)
    if only_new is not None and not counts.created:
        # (A person registered elsewhere counts as created the first time and as unchanged when the
        # same row comes again while the request waits: refused then, as a person new to the register
        # would be once registered — the same answer for both, issue 14.)
        # Raised inside the transaction: an update the kind made is rolled back with it.
        raise RowRefused(only_new[0], only_new[1], next((_(c.header) for c in import_kind.columns
                                                         if c.key == only_new[0]), ""))
    if not out.changed:
        return out
    if out.pending:
        # Nothing of the person's current home is re-checked or named: the page tells the same as for a
        # person new to the register (their new household's unit), not where they are registered.
        registry_units = {ref.unit_id for ref in ctx.households_by_code({parsed.household_code}).values()}
    facts = FactsWritten(import_kind, ctx)
    facts.add([parsed])
    from wuyiqu.supervision.services import recheck_after_facts

    out.recheck = recheck_after_facts(facts.units | registry_units, subtree_ids=facts.subtrees, actor=actor,
                                      source=f"form:{kind}")
    number = _id_number_of(kind, parsed)
    audit.record(actor=actor, action="imports.record_row", target_type=f"import:{kind}", unit=unit, ip=ip,
                 detail={"kind": kind, "created": counts.created, "updated": counts.updated,
                         "unmatched": counts.unmatched, "pending": out.pending,
                         **({"id_masked": mask_id_number(number)} if number else {}),
                         "recheck": out.recheck.as_dict() if out.recheck else None})
    return out


# --- a file's preview: confirm it, or map its columns again ----------------------------------------------


class ImportRefused(Exception):
    """The preview cannot be confirmed or mapped again; the message (Chinese) says why."""


def _locked_preview(job) -> Any:
    """``job`` locked, if it is a preview whose file is still kept; ImportRefused otherwise."""
    from .models import ImportJob, ImportStatus

    # Locked: two clicks on 确认导入 (or a confirm racing a new mapping) must queue one run, not two.
    locked = ImportJob.objects.select_for_update().filter(pk=job.pk).first()
    if locked is None or not locked.dry_run or locked.status not in (ImportStatus.PREVIEWED, ImportStatus.FAILED):
        raise ImportRefused(_("这个导入任务已不是待确认的预览（可能已确认或已过期）"))
    if not locked.stored_path:
        raise ImportRefused(_("上传的文件已删除（预览已过期或已结束），请重新上传"))
    return locked


def _queue_again(job, *, dry_run: bool) -> None:
    from .models import ImportStatus
    from .tasks import run_import_job

    job.dry_run = dry_run
    job.status = ImportStatus.PENDING
    job.rows_total = job.rows_done = job.created = job.updated = job.unchanged = 0
    job.invalid = job.duplicate = job.unmatched = 0
    job.errors, job.message, job.error_workbook, job.finished_at, job.runner = [], "", None, None, ""
    job.save()
    run_import_job.enqueue(job.pk)  # with the database queue: in this transaction, with the job


def do_confirm_import(*, job, actor, skip_invalid: bool) -> Any:
    """Import for real what ``job`` previewed, with the same mapping and sheets; when it imports, that
    mapping is remembered for the job's unit and the file's shape (next month's file maps the same
    way). The same job is queued again (all or nothing unless ``skip_invalid``). ImportRefused when the job is not a
    preview that can be confirmed (a failed one, one confirmed already, its file gone)."""
    from .models import ImportStatus

    with transaction.atomic():
        locked = _locked_preview(job)
        if locked.status != ImportStatus.PREVIEWED:
            raise ImportRefused(_("预览没有通过，不能确认导入；请先改正对应关系或文件"))
        layout = locked.layout or {}
        chosen_sheets = (locked.mapping or {}).get("sheets") or []
        columns = layout.get("mapping") or {}
        # Remembered (imports.ColumnMapping) by the run itself, in its transaction, when it imports.
        locked.mapping = {"columns": columns, "sheets": [s["name"] for s in layout.get("sheets", []) if s["name"]],
                          "remember": {"shape": layout.get("shape", ""), "sheets": chosen_sheets}}
        locked.skip_invalid = skip_invalid
        _queue_again(locked, dry_run=False)
        audit.record(actor=actor, action="imports.confirm", target=locked, unit=locked.scope,
                     detail={"kind": locked.kind, "file": locked.filename, "skip_invalid": skip_invalid,
                             "mapping": columns, "sheets": locked.mapping["sheets"]})
    return locked


def do_remap_import(*, job, actor, columns: dict[str, str], sheets: list[str] | None, skip_invalid: bool) -> Any:
    """Preview ``job``'s file again with the person's mapping {header: column key or ""} and choice of
    sheets (None: every sheet with a header). ImportRefused when the job is not a preview of a file
    still kept, or a column key is not one of the kind's."""
    from .services import mapping_of

    kind = get_kind(job.kind)
    keys = {c.key for c in kind.columns}
    for header, key in columns.items():
        if key and key not in keys:
            raise ImportRefused(_("“%(h)s”对应的字段“%(k)s”不是本类型的列") % {"h": header, "k": key})
    with transaction.atomic():
        locked = _locked_preview(job)
        locked.mapping = mapping_of(columns, sheets)
        locked.skip_invalid = skip_invalid
        _queue_again(locked, dry_run=True)
        audit.record(actor=actor, action="imports.remap", target=locked, unit=locked.scope,
                     detail={"kind": locked.kind, "file": locked.filename, "mapping": columns, "sheets": sheets or []})
    return locked
