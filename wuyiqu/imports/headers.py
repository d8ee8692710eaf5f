"""Finding the header of a ledger as offices keep it, and mapping its columns to a kind's fields.

A community's file is rarely our template: a title row or two above the header ("文龙社区居民花名册
（2022年11月）"), a header over two rows with merged cells ("居民信息" over "姓名 | 身份证号码"), a
序号 column, blank columns, a footer ("合计：326人", "填表人：…"), one sheet per building. Here:

- ``find_header(rows, …)`` looks at the first ``SEARCH_ROWS`` rows of a sheet only (a million-row
  file costs nothing more) and picks the row — or the pair of rows — whose cells name the most of
  the kind's fields, through the office words of ``office_words`` and the user's own mapping;
- ``plan(tables, …)`` does that for every sheet: sheets without a header (a 说明 sheet) are left
  out, the others must name the same fields (or the user picks the sheets), every required field
  must be there and no field twice — otherwise one FileError naming the sheet, row and column;
- ``Layout`` is the result: per sheet, where the header is and which column feeds which field; the
  mapping as {header text: field key} to show, change, remember and pass back (``--mapping``);
- ``is_footer`` tells a footer row from a data row (asked only of rows that miss a required field).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from . import office_words
from .registry import Column, FileError

SEARCH_ROWS = 20  # the header is looked for in this many non-empty rows from the top of a sheet
SAMPLE_ROWS = 5  # data rows kept per column to show beside the mapping
IGNORE = ""  # the field of a column that is not imported, in a mapping
_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]|【[^】]*】")
FOOTER_WORDS = ("合计", "总计", "小计", "共计", "累计", "填表人", "填报人", "审核人", "制表人", "制表", "统计人",
                "填表日期", "填报日期", "填报单位", "负责人", "签字", "签名", "盖章", "备注", "说明", "注:", "注：")


def normalise(header: str) -> str:
    """Headers compare without spaces, line breaks, case, required-markers, ``_``/``-``, a trailing
    colon, with full-width brackets as ASCII."""
    h = header.replace("\ufeff", "").strip().lower()
    for ch in (" ", "*", "＊", "\u3000", "_", "-", "\n", "\r", "\t"):
        h = h.replace(ch, "")
    h = h.replace("（", "(").replace("）", ")").rstrip(":：")
    return h


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: the column as a spreadsheet names it."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


class Dictionary:
    """Header word -> field key for one kind: the user's mapping first, then the kind's columns
    (template header, English key, aliases), then the office words of the kind and the common ones."""

    def __init__(self, kind_name: str, columns: tuple[Column, ...], mapping: dict[str, str | None] | None = None):
        self.columns = columns
        self.keys = {c.key for c in columns}
        self.by_word: dict[str, str] = {}
        for col in columns:
            for word in (col.key, col.header, *col.aliases):
                self.by_word.setdefault(normalise(word), col.key)
        for col in columns:
            for word in office_words.words_for(kind_name, col.key):
                self.by_word.setdefault(normalise(word), col.key)
        self.chosen: dict[str, str] = {}  # the user's mapping (normalised header -> key or IGNORE)
        for header, key in (mapping or {}).items():
            key = key or IGNORE
            if key != IGNORE and key not in self.keys:
                raise FileError(_("对应关系中的“%(h)s”对应的字段“%(k)s”不是本类型的列；本类型的列为：%(cols)s")
                                % {"h": header, "k": key, "cols": describe_columns(columns)})
            self.chosen[normalise(header)] = key

    def lookup(self, header: str) -> str | None:
        """The field key ``header`` names, IGNORE when the user said not to import it, None when unknown."""
        norm = normalise(header)
        if not norm:
            return None
        if norm in self.chosen:
            return self.chosen[norm]
        key = self.by_word.get(norm)
        if key is None:
            stripped = _BRACKETED.sub("", norm)
            if stripped and stripped != norm:
                key = self.chosen.get(stripped) or self.by_word.get(stripped)
        return key


def describe_columns(columns: tuple[Column, ...]) -> str:
    return "、".join(f"{c.header}({c.key})" for c in columns)


@dataclass(frozen=True)
class SheetLayout:
    """One sheet (or the CSV file) of an import: where its header is and what each column feeds."""

    index: int  # the sheet's position in the workbook (0 for CSV)
    name: str  # the sheet's name ("" for CSV)
    first_line: int  # the header's first row (the row above ``header_line`` for a two-row header)
    header_line: int  # the header's last row; data starts below it
    headers: tuple[str, ...]  # the header text of every column
    keys: tuple[str | None, ...]  # the field key of every column (None: not imported)
    samples: tuple[tuple[str, ...], ...] = ()  # the first data rows, as read

    @property
    def positions(self) -> list[tuple[int, str]]:
        return [(i, k) for i, k in enumerate(self.keys) if k]

    def where(self) -> str:
        return sheet_row(self.name, self.header_line)


def sheet_row(sheet: str, line: int) -> str:
    """“工作表“1号楼”第3行” (or “第3行” for a CSV file)."""
    if sheet:
        return _("工作表“%(sheet)s”第%(line)d行") % {"sheet": sheet, "line": line}
    return _("第%(line)d行") % {"line": line}


@dataclass
class Layout:
    """How a file's sheets map to a kind's fields: the sheets imported, in order, and those left out."""

    sheets: list[SheetLayout]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (sheet name, why it is left out)
    all_sheets: tuple[str, ...] = ()  # every sheet of the workbook (empty for CSV)

    @property
    def mapping(self) -> dict[str, str]:
        """{header text: field key or "" (not imported)} over the imported sheets, for people and files."""
        out: dict[str, str] = {}
        for sheet in self.sheets:
            for header, key in zip(sheet.headers, sheet.keys, strict=True):
                if header.strip():
                    out.setdefault(header.strip(), key or IGNORE)
        return out

    @property
    def shape(self) -> str:
        """What identifies "the same kind of file" next month: the first imported sheet's headers."""
        first = self.sheets[0]
        text = "\x1f".join(normalise(h) for h in first.headers if normalise(h))
        return hashlib.sha256(text.encode()).hexdigest()

    def names_sheets(self) -> bool:
        """Whether messages name the sheet: more than one sheet, or not the workbook's first."""
        return len(self.all_sheets) > 1

    def as_json(self) -> dict:
        return {
            "sheets": [{"index": s.index, "name": s.name, "first_line": s.first_line, "header_line": s.header_line,
                        "headers": list(s.headers), "keys": [k or IGNORE for k in s.keys],
                        "samples": [list(r) for r in s.samples]} for s in self.sheets],
            "skipped": [list(s) for s in self.skipped],
            "all_sheets": list(self.all_sheets),
            "mapping": self.mapping,
            "shape": self.shape,
        }


@dataclass(frozen=True)
class _Candidate:
    score: tuple[int, int, int]
    first_line: int
    header_line: int
    headers: tuple[str, ...]
    keys: tuple[str | None, ...]


def _score(headers: list[str], dictionary: Dictionary, required: set[str]) -> tuple[tuple[int, int], tuple]:
    keys = tuple(dictionary.lookup(h) or None for h in headers)
    found = {k for k in keys if k}
    return (len(found & required), len(found)), keys


def _two_rows(top: list[str], bottom: list[str], dictionary: Dictionary) -> list[str]:
    """The header of a two-row header: the lower cell where it names a field ("姓名" under the merged
    "居民信息"), else the upper one (a cell merged over both rows, like 序号), else both joined."""
    out = []
    for i in range(max(len(top), len(bottom))):
        up = top[i] if i < len(top) else ""
        down = bottom[i] if i < len(bottom) else ""
        if down and dictionary.lookup(down) is not None:
            out.append(down)
        elif up and dictionary.lookup(up) is not None:
            out.append(up)
        else:
            out.append(down or up)
    return out


def find_header(rows: list[tuple[int, list[str]]], dictionary: Dictionary) -> _Candidate | None:
    """The best header among the first rows ``rows`` [(line, cells)], or None when no row names a
    field. A two-row header wins only when it names more fields than its lower row alone."""
    required = {c.key for c in dictionary.columns if c.required}
    best: _Candidate | None = None
    rows = [r for r in rows if any(r[1])][:SEARCH_ROWS]
    for n, (line, cells) in enumerate(rows):
        (req, found), keys = _score(cells, dictionary, required)
        if found:
            cand = _Candidate((found, req, 1), line, line, tuple(cells), keys)
            if best is None or cand.score > best.score:
                best = cand
        if n + 1 < len(rows) and rows[n + 1][0] == line + 1:
            pair = _two_rows(cells, rows[n + 1][1], dictionary)
            (req2, found2), keys2 = _score(pair, dictionary, required)
            cand = _Candidate((found2, req2, 0), line, line + 1, tuple(pair), keys2)
            if found2 and (best is None or cand.score > best.score):
                best = cand
    return best


def is_footer(cells: list[str]) -> bool:
    """A footer or note row under the data: its first non-empty cell starts with 合计, 填表人, 审核人, 备注 …"""
    for cell in cells:
        if cell:
            return cell.replace(" ", "").startswith(FOOTER_WORDS)
    return False


@dataclass(frozen=True)
class Table:
    """One sheet to read: its CSV text (a converted sheet, or the CSV file itself)."""

    index: int
    name: str
    path: object  # pathlib.Path
    encoding: str
    delimiter: str = ","


def plan(tables: list[Table], first_rows, *, kind_name: str, columns: tuple[Column, ...],
         mapping: dict[str, str | None] | None = None, sheets: Iterable[str] | None = None,
         gbk: bool = False) -> Layout:
    """The Layout of ``tables`` for the kind, or FileError naming the sheet, row and column.

    ``first_rows(table)`` gives a table's first rows [(line, cells)] (only those are read here).
    ``mapping``: {header: field key or ""/None} chosen by the user, before the dictionary.
    ``sheets``: the names of the sheets to import (None: every sheet with a header)."""
    dictionary = Dictionary(kind_name, columns, mapping)
    names = tuple(t.name for t in tables if t.name)
    wanted = list(sheets) if sheets else None
    if wanted:
        unknown = [s for s in wanted if s not in names]
        hidden = [s for s in unknown if s in getattr(tables, "hidden", ())]
        if hidden:
            raise FileError(_("工作表“%(s)s”已隐藏，未导入；要导入它，请在 Excel 或 WPS 中取消隐藏后重新上传") % {"s": "、".join(hidden)})
        if unknown:
            raise FileError(_("文件中没有工作表“%(s)s”；工作表有：%(all)s") % {"s": "、".join(unknown), "all": "、".join(names)})
    found: list[SheetLayout] = []
    skipped: list[tuple[str, str]] = [(name, _("已隐藏（隐藏的工作表通常是旧数据；要导入它，请取消隐藏后重新上传）")) for name in getattr(tables, "hidden", ())]
    misses: list[tuple[Table, _Candidate | None]] = []
    for table in tables:
        if wanted is not None and table.name not in wanted:
            skipped.append((table.name, _("未选择")))
            continue
        rows = first_rows(table)
        cand = find_header(rows, dictionary)
        if cand is None or (cand.score[0] < 2 and len(tables) > 1 and wanted is None):
            misses.append((table, cand))
            skipped.append((table.name, _("找不到列标题") if any(any(c) for _l, c in rows) else _("空工作表")))
            continue
        samples = tuple(tuple(cells) for line, cells in rows if line > cand.header_line and any(cells)
                        and not is_footer(cells))[:SAMPLE_ROWS]
        found.append(SheetLayout(table.index, table.name, cand.first_line, cand.header_line, cand.headers, cand.keys,
                                 samples))
    if not found:
        # A single sheet with a header of one field (another kind's file) is judged below, for its message.
        partial = [(t, c) for t, c in misses if c is not None]
        if len(partial) == 1 or (partial and len(tables) == 1):
            t, c = partial[0]
            found.append(SheetLayout(t.index, t.name, c.first_line, c.header_line, c.headers, c.keys))
            skipped = [s for s in skipped if s[0] != t.name]
        else:
            empty = all(not any(any(cells) for _l, cells in first_rows(t)) for t in tables)
            if empty:
                raise FileError(_("文件是空的，第一行应为列标题"))
            where = _("前%(n)d行") % {"n": SEARCH_ROWS}
            error = FileError(
                _("%(where)s中找不到列标题行（应含有%(cols)s等列）%(gbk)s；请检查文件是否选错了导入类型，或在对应关系中指定各列")
                % {"where": (_("工作表“%(s)s”的") % {"s": tables[0].name} if len(tables) == 1 and tables[0].name
                             else "") + where,
                   "cols": "、".join(c.header for c in columns if c.required),
                   "gbk": _("（文件按 GBK 编码读取；如果列名是乱码，请另存为“CSV UTF-8”）") if gbk else ""})
            # For the page where the person maps the columns: the first row of the first sheet as its header.
            for t in tables:
                rows = [r for r in first_rows(t) if any(r[1])]
                if rows:
                    line, cells = rows[0]
                    samples = tuple(tuple(c) for _l, c in rows[1:1 + SAMPLE_ROWS])
                    error.layout = Layout([SheetLayout(t.index, t.name, line, line, tuple(cells),
                                                       (None,) * len(cells), samples)], [], names)
                    break
            raise error
    layout = Layout(found, skipped, names)
    try:
        _check_agreement(layout, columns, explicit=wanted is not None)
        for sheet in found:
            _check_sheet(layout, sheet, columns, gbk)
    except FileError as exc:
        exc.layout = layout  # what was found, for the page where the person fixes the mapping
        raise
    return layout


def _where(layout: Layout, sheet: SheetLayout, line: int) -> str:
    return sheet_row(sheet.name if layout.names_sheets() else "", line)


def _check_sheet(layout: Layout, sheet: SheetLayout, columns: tuple[Column, ...], gbk: bool) -> None:
    labels = {c.key: c.header for c in columns}
    first_at: dict[str, int] = {}
    for i, key in enumerate(sheet.keys):
        if not key:
            continue
        if key in first_at:
            j = first_at[key]
            raise FileError(
                _("%(where)s：%(a)s列“%(ha)s”和%(b)s列“%(hb)s”都对应“%(field)s”（重复的列）；请把其中一列改为“不导入”（命令行用 --mapping）")
                % {"where": _where(layout, sheet, sheet.header_line), "a": column_letter(j), "ha": sheet.headers[j],
                   "b": column_letter(i), "hb": sheet.headers[i], "field": labels[key]})
        first_at[key] = i
    missing = [c.header for c in columns if c.required and c.key not in first_at]
    if missing:
        unknown = [h for h, k in zip(sheet.headers, sheet.keys, strict=True) if h.strip() and not k]
        text = _("%(where)s的列标题中缺少必填列：%(cols)s") % {"where": _where(layout, sheet, sheet.header_line),
                                                      "cols": "、".join(missing)}
        if unknown:
            text += _("；无法识别的列：%(cols)s") % {"cols": _listed(unknown)}
        text += "。" + _("本类型的列为：%(cols)s") % {"cols": describe_columns(columns)}
        if gbk:
            text += _("（文件按 GBK 编码读取；如果列名是乱码，请另存为“CSV UTF-8”）")
        raise FileError(text)


def _check_agreement(layout: Layout, columns: tuple[Column, ...], *, explicit: bool) -> None:
    """Without a choice of sheets, every imported sheet must name the fields of the first."""
    if explicit or len(layout.sheets) < 2:
        return
    labels = {c.key: c.header for c in columns}
    first = layout.sheets[0]
    want = {k: i for i, k in enumerate(first.keys) if k}
    for sheet in layout.sheets[1:]:
        have = {k: i for i, k in enumerate(sheet.keys) if k}
        if set(have) == set(want):
            continue
        extra = [f"{column_letter(i)}列“{sheet.headers[i]}”" for k, i in have.items() if k not in want]
        lacking = [f"“{labels[k]}”（{_('工作表“%(s)s”的%(c)s列') % {'s': first.name, 'c': column_letter(i)}}）"
                   for k, i in want.items() if k not in have]
        parts = []
        if extra:
            parts.append(_("多出%(cols)s") % {"cols": "、".join(extra)})
        if lacking:
            parts.append(_("缺少%(cols)s") % {"cols": "、".join(lacking)})
        raise FileError(
            _("%(where)s的列标题与工作表“%(first)s”不同：%(diff)s；请统一各工作表的列标题，或只选择要导入的工作表（命令行用 --sheet）")
            % {"where": sheet_row(sheet.name, sheet.header_line), "first": first.name, "diff": "，".join(parts)})


def _listed(names: list[str], most: int = 10) -> str:
    shown = "、".join(n if len(n) <= 30 else n[:30] + "…" for n in names[:most])
    if len(names) > most:
        shown += _("等%(n)d个") % {"n": len(names)}
    return shown
