"""The plug-in API of the import engine: a kind is a class registered under the name the CLI uses.

How to add a kind (see docs/imports.md for a worked example)::

    from wuyiqu.imports.registry import Column, ImportKind, RowError, WriteCounts, register_kind

    @register_kind
    class RiskZoneKind(ImportKind):
        name = "risk-zones"                  # `wuyiqu import risk-zones FILE`
        label = "风险区"                      # what the upload page shows
        columns = (
            Column("unit_code", "单位编码", help="楼栋/小区/村/社区的编码"),
            Column("end_on", "结束日期", required=False, help="YYYY-MM-DD，空表示仍在管控"),
        )

        def parse_row(self, raw, ctx):       # raw: {column key: stripped text}; one row, no database
            ...                              # raise RowError("end_on", "结束日期早于开始日期")
            return parsed                    # anything; it is handed back to check() and write()

        def row_key(self, parsed):           # rows with equal keys in one file are duplicates
            return (parsed.unit_code, parsed.start_on)

        def check(self, batch, ctx):         # set-based checks that need the database (pass 1)
            units = ctx.units_by_code({p.unit_code for _, p in batch})
            return {line: RowError("unit_code", "...") for line, p in batch if ...}

        def write(self, batch, ctx):         # pass 2, inside the import's one transaction
            ...
            return WriteCounts(created=n, updated=m, unchanged=k)

The engine (``wuyiqu.imports.services.run_import``) does the rest: it reads the file (CSV in UTF-8,
UTF-8 with BOM or GBK; XLSX), maps the headers, runs ``parse_row`` + ``check`` over every row in a
first streaming pass, reports every bad row with its line, field and reason, and only then — when
nothing is wrong, or with ``skip_invalid`` — runs ``write`` over the good rows in batches inside
one transaction. Kinds never open transactions, write audit rows or touch the ImportJob.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.utils.translation import gettext as _

from wuyiqu.lib import crypto


class RowError(Exception):
    """One row (or, with ``field=""``, the whole file) cannot be imported; ``message`` is Chinese."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class ScopeError(RowError):
    """A row refused because what it names lies outside the importer's scope (``scope_error``);
    the API tells it apart by this type, never by its words."""


class FileError(Exception):
    """The file as a whole cannot be read (encoding, format, headers); nothing was imported."""


@dataclass(frozen=True)
class Column:
    """One column of a kind: its English key (the SPEC §7 name), the Chinese template header,
    more accepted spellings, whether it must be present in the header row, and a hint for the template."""

    key: str
    header: str
    aliases: tuple[str, ...] = ()
    required: bool = True
    help: str = ""


@dataclass
class WriteCounts:
    """What ``write`` did with a batch. ``unmatched``: rows whose person/unit the registry does not hold
    and that the kind chose to keep aside instead of refusing."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    unmatched: int = 0

    def __iadd__(self, other: WriteCounts) -> WriteCounts:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.unmatched += other.unmatched
        return self


@dataclass(frozen=True, slots=True)
class UnitRef:
    id: int
    code: str
    kind: str
    path: str
    depth: int


@dataclass(frozen=True, slots=True)
class HouseholdRef:
    id: int
    code: str
    unit_id: int
    unit_kind: str
    unit_path: str


@dataclass(frozen=True, slots=True)
class ResidentRef:
    id: int
    id_hash: str
    household_id: int
    unit_id: int
    unit_path: str


@dataclass
class ImportContext:
    """What a kind may use while parsing, checking and writing: the actor, the scope (a Unit or None),
    a ``state`` dict the kind may keep across batches of one import (e.g. codes seen earlier in the
    file), and batched look-ups that respect nothing but the registry (scope checks are explicit)."""

    actor: Any = None
    scope: Any = None  # wuyiqu.units.models.Unit or None (no restriction: CLI, administrators)
    job: Any = None  # the ImportJob
    state: dict[str, Any] = field(default_factory=dict)
    phase: str = "check"  # "check" (pass 1) or "write" (pass 2)
    # True while the engine writes each batch as soon as pass 1 has checked it, inside the import's
    # transaction (a kind with ``writes_as_checked``, on PostgreSQL): ``write`` may then leave work
    # running on the database until ``write_done``.
    writing_ahead: bool = False

    # --- scope ---------------------------------------------------------------------------------------
    def in_scope(self, path: str) -> bool:
        """True when a unit with materialised ``path`` is inside the scope (always without a scope)."""
        return self.scope is None or path.startswith(self.scope.path)

    def scope_error(self, field_name: str, what: str) -> RowError:
        return ScopeError(field_name, _("%(what)s不在您的管辖范围内") % {"what": what})

    # --- batched look-ups (one query per call) ---------------------------------------------------
    def units_by_code(self, codes: Iterable[str]) -> dict[str, UnitRef]:
        from wuyiqu.units.models import Unit

        codes = {c for c in codes if c}
        if not codes:
            return {}
        return {
            code: UnitRef(pk, code, kind, path, depth)
            for pk, code, kind, path, depth in Unit.objects.filter(code__in=codes).values_list(
                "pk", "code", "kind", "path", "depth")
        }

    def households_by_code(self, codes: Iterable[str]) -> dict[str, HouseholdRef]:
        from wuyiqu.units.models import Household

        codes = {c for c in codes if c}
        if not codes:
            return {}
        rows = Household.objects.filter(code__in=codes).values_list("pk", "code", "unit_id", "unit__kind", "unit__path")
        return {code: HouseholdRef(pk, code, uid, ukind, upath) for pk, code, uid, ukind, upath in rows}

    def residents_by_id_number(self, numbers: Iterable[str]) -> dict[str, ResidentRef]:
        """Residents by plain (normalised) ID-card number, found through the lookup hash."""
        from wuyiqu.units import directory

        c = crypto.cipher()
        by_hash = {c.lookup_hash(n): n for n in numbers if n}
        if not by_hash:
            return {}
        # Through the city-wide directory: each district's residents read by a statement naming it.
        rows = directory.resident_values(by_hash, "pk", "household_id", "household__unit_id", "household__unit__path")
        return {by_hash[h]: ResidentRef(pk, h, hh, uid, upath) for h, pk, hh, uid, upath in rows}


Problems = dict[int, RowError]  # line number -> what is wrong with that row
Batch = list[tuple[int, Any]]  # (line number, parsed row)


class ImportKind:
    """Base class of an importable kind. Subclass, set ``name``/``label``/``columns``, implement
    ``parse_row`` and ``write``; override ``row_key`` and ``check`` when the kind needs them."""

    name: ClassVar[str]
    label: ClassVar[str]
    columns: ClassVar[tuple[Column, ...]]
    batch_size: ClassVar[int] = 2000
    description: ClassVar[str] = ""  # one line for the template's 说明 sheet

    def parse_row(self, raw: dict[str, str], ctx: ImportContext) -> Any:
        """Turn one row (column key -> stripped text, "" when empty or absent) into a parsed value.
        Raise RowError(field, Chinese message) when the row is wrong. No database access here."""
        raise NotImplementedError

    def row_key(self, parsed: Any) -> Hashable | None:
        """Rows of one file with equal keys are duplicates: the first is imported, the others reported.
        Keep keys small (an int or a short tuple): the engine holds one per row of the file."""
        return None

    def check(self, batch: Batch, ctx: ImportContext) -> Problems:
        """Set-based checks against the database for a batch of parsed rows (pass 1), e.g. that the
        referenced units exist and lie inside ``ctx.scope``. Return the rows that fail."""
        return {}

    # Optional, for kinds whose files run to millions of rows: with ``packs = True`` the engine keeps
    # the good rows of pass 1 in a temporary file (``marshal``) instead of reading and parsing the
    # file again in pass 2. ``pack`` must return ints, strs, bytes, floats, None, bools and tuples only.
    packs: ClassVar[bool] = False

    def pack(self, parsed: Any) -> tuple:
        raise NotImplementedError

    def unpack(self, packed: tuple) -> Any:
        raise NotImplementedError

    def write(self, batch: list[Any], ctx: ImportContext) -> WriteCounts:
        """Write valid parsed rows (pass 2), set-based: a few queries per batch, never one per row.
        Runs inside the import's transaction; must be idempotent (re-import updates, never doubles)."""
        raise NotImplementedError

    # Optional, for kinds whose files run to millions of rows (PostgreSQL only): with
    # ``writes_as_checked = True`` the engine opens the import's transaction once pass 1 has checked
    # the first batch and hands every checked batch to ``write`` at once (``ctx.writing_ahead``),
    # rolling all of it back if a later row is invalid; ``write`` may then start the database on a
    # batch and return while it works (the engine parses the next batch meanwhile), as long as
    # ``write_done`` waits for it. ``write_done`` is called once after the last batch
    # (``completed=True``: return the counts of the work left running) or when the import stops
    # early (``completed=False``: an error or a refusal, everything is rolled back; only wait).
    writes_as_checked: ClassVar[bool] = False

    def write_done(self, ctx: ImportContext, *, completed: bool) -> WriteCounts:
        return WriteCounts()

    def prepare(self, batch: list[Any], ctx: ImportContext) -> None:
        """With ``writes_as_checked``: called with each batch before anything that may wait for the
        database working on the last one (the supervision's look-ups, ``write``), for the kind's
        work without the database (e.g. hashing), which ``write`` then finds in ``ctx.state``."""

    def summary_note(self, ctx: ImportContext) -> str:
        """One more Chinese sentence for the job's summary, asked once after the last batch (e.g. the
        residents kind: how many rows wait for someone's confirmation); "" for none."""
        return ""

    def audit_detail(self, ctx: ImportContext) -> dict[str, Any]:
        """More detail for the import's audit row, asked once after the last batch was written (e.g.
        the residents kind: how many stored facts it linked to the new residents)."""
        return {}


_KINDS: dict[str, type[ImportKind]] = {}


def register_kind(cls: type[ImportKind]) -> type[ImportKind]:
    """Class decorator: make ``cls`` importable as ``cls.name``."""
    if not getattr(cls, "name", None) or not getattr(cls, "columns", None):
        raise TypeError(f"{cls.__name__} needs a name and columns")
    keys = [c.key for c in cls.columns]
    if len(set(keys)) != len(keys):
        raise TypeError(f"{cls.__name__} has duplicate column keys")
    if cls.name in _KINDS and _KINDS[cls.name] is not cls:
        raise ValueError(f"import kind {cls.name!r} is registered twice")
    _KINDS[cls.name] = cls
    return cls


def _autodiscover() -> None:
    """Import every installed app's ``import_kinds`` module (``wuyiqu/<app>/import_kinds.py``) so that
    its kinds register themselves, like Django's admin autodiscovery."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("import_kinds")
    import wuyiqu.imports.kinds  # noqa: F401  (the registry kinds of this app)


def get_kind(name: str) -> ImportKind:
    """An instance of the kind registered as ``name``; KeyError (with the known names) otherwise."""
    _autodiscover()
    try:
        return _KINDS[name]()
    except KeyError:
        raise KeyError(_("未知的导入类型“%(name)s”，可用：%(names)s") % {"name": name, "names": "、".join(sorted(_KINDS))}) from None


def all_kinds() -> dict[str, type[ImportKind]]:
    """Every registered kind by name."""
    _autodiscover()
    return dict(sorted(_KINDS.items()))
