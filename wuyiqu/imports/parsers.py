"""Reading import files as streams of text rows: CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) and XLSX.

Nothing here loads a whole CSV file: rows are yielded one by one, so a million-row file is read in
bounded memory (the engine reads it twice: once to check, once to write). XLSX is read with
python-calamine, whose sheet lives in compact Rust memory while the rows come out one at a time.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from django.utils.translation import gettext as _

from .registry import Column, FileError

XLSX_SUFFIXES = (".xlsx", ".xlsm")
_CHUNK = 1 << 20


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` when the whole file decodes strictly as UTF-8 (BOM or not), else ``gb18030``
    (a superset of GBK). Streams the file in chunks."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8-sig"


def _cell_text(value) -> str:
    """A spreadsheet cell as the text a person typed: 13812345678.0 -> "13812345678", dates ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d") if value.time() == dt.time() else value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S")
    return str(value).strip()


def iter_raw_rows(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, cells as stripped text) for every row of the file, the header row first
    (line 1). Line numbers are what a person sees in a spreadsheet. Raise FileError when unreadable."""
    path = Path(path)
    if path.suffix.lower() in XLSX_SUFFIXES:
        yield from _iter_xlsx(path)
    elif path.suffix.lower() == ".xls":
        raise FileError(_("不支持旧版 .xls 文件，请另存为 .xlsx 或 CSV"))
    else:
        yield from _iter_csv(path)


def _iter_csv(path: Path) -> Iterator[tuple[int, list[str]]]:
    encoding = detect_encoding(path)
    with open(path, encoding=encoding, newline="") as f:
        try:
            for line, row in enumerate(csv.reader(f), start=1):
                yield line, [c.strip() for c in row]
        except csv.Error as exc:
            raise FileError(_("CSV 文件格式错误：%(e)s") % {"e": exc}) from None


def _iter_xlsx(path: Path) -> Iterator[tuple[int, list[str]]]:
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
        sheet = workbook.get_sheet_by_index(0)
    except Exception as exc:  # calamine raises its own error types for damaged files
        raise FileError(_("无法读取 Excel 文件：%(e)s") % {"e": exc}) from None
    for line, row in enumerate(sheet.iter_rows(), start=1):
        yield line, [_cell_text(v) for v in row]


def _norm(header: str) -> str:
    """Headers compare without spaces, case, required-markers and full-width brackets."""
    h = header.replace("\ufeff", "").strip().lower()
    for ch in (" ", "*", "＊", "\u3000", "_", "-"):
        h = h.replace(ch, "")
    return h.replace("（", "(").replace("）", ")")


def map_headers(header_row: list[str], columns: tuple[Column, ...]) -> list[str | None]:
    """For each cell of the header row, the column key it names (None for an empty header).
    Raise FileError with one message naming every unknown and missing column."""
    by_name: dict[str, str] = {}
    for col in columns:
        for name in (col.key, col.header, *col.aliases):
            by_name[_norm(name)] = col.key
    keys: list[str | None] = []
    unknown: list[str] = []
    seen: set[str] = set()
    repeated: list[str] = []
    for cell in header_row:
        if not _norm(cell):
            keys.append(None)
            continue
        key = by_name.get(_norm(cell))
        if key is None:
            unknown.append(cell)
        elif key in seen:
            repeated.append(cell)
        else:
            seen.add(key)
        keys.append(key)
    missing = [c.header for c in columns if c.required and c.key not in seen]
    problems = []
    if missing:
        problems.append(_("缺少必填列：%(cols)s") % {"cols": "、".join(missing)})
    if unknown:
        problems.append(_("无法识别的列：%(cols)s") % {"cols": "、".join(unknown)})
    if repeated:
        problems.append(_("重复的列：%(cols)s") % {"cols": "、".join(repeated)})
    if problems:
        expected = "、".join(f"{c.header}({c.key})" for c in columns)
        raise FileError("；".join(problems) + "。" + _("本类型的列为：%(cols)s") % {"cols": expected})
    return keys


def iter_records(path: str | Path, columns: tuple[Column, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, {column key: text}) for every non-empty data row; every column key is
    present ("" when absent or empty). Raise FileError for an empty file or bad headers."""
    rows = iter_raw_rows(path)
    for _line, header in rows:
        if any(header):
            break
    else:
        raise FileError(_("文件是空的，第一行应为列标题"))
    keys = map_headers(header, columns)
    blank = {c.key: "" for c in columns}
    positions = [(i, k) for i, k in enumerate(keys) if k is not None]
    for line, row in rows:
        if not any(row):
            continue
        record = dict(blank)
        n = len(row)
        for i, k in positions:
            if i < n:
                record[k] = row[i]
        yield line, record
