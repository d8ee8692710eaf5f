"""The worksheets of a spreadsheet (.xlsx, .xls, .ods) written out as UTF-8 CSV files, run in a
child process.

    python -m wuyiqu.imports.xlsx_convert SOURCE TARGET_DIR MEMORY_BYTES [--plain] [--columns=N] [--cell-chars=N] < KEYS

SOURCE may be sealed (wuyiqu.lib.sealed) and the CSVs are written sealed, with the keys the parent
writes on standard input (see ``main``); ``--plain`` reads and writes plain files (tests, by hand). It
writes ``TARGET_DIR/0.csv``, ``1.csv``, … (one per visible worksheet, in the workbook's order) and
``TARGET_DIR/sheets.json``: ``[{"index": 0, "name": "1号楼", "file": "0.csv"}, …]``.

Why a child: python-calamine builds the sheet as one dense grid in Rust, sized by the furthest cell.
A 5 KB file with one cell in A1 and one in XFD1048576 asks for 16384 × 1048576 cells (512 GiB) and
the allocator aborts the whole process (SIGABRT), which would take a web or task worker down with it.
Here the child limits its own address space (RLIMIT_AS) before loading calamine, so such a file kills
only the child, and the parent reports it (``wuyiqu.imports.parsers``). The parent then streams the
CSV for both passes of the import instead of parsing the XLSX twice.

No Django here: the child starts in a fraction of a second. Exit status: 0 written, 2 calamine could
not read the file (the reason on stderr), 3 out of memory.
"""

from __future__ import annotations

import array
import csv
import datetime as dt
import json
import os
import sys
from decimal import Decimal

EXIT_UNREADABLE = 2
EXIT_MEMORY = 3
EXIT_TOO_LARGE = 4


def cell_text(value) -> str:
    """A spreadsheet cell as the text a person typed: 13812345678.0 -> "13812345678", dates ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        if value.is_integer():
            # Beyond 15 digits a float's last digits are noise (5.0022219800101e17 is
            # 500222198001010048 exactly): show the 15 significant digits Excel keeps and shows,
            # so a mangled ID number reads 500222198001010000 and is refused as such.
            return str(int(Decimal(f"{value:.15g}"))) if abs(value) >= 1e15 else str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d") if value.time() == dt.time() else value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S")
    return str(value).strip()


# --- XLSX, streamed ----------------------------------------------------------------------------------

_MAIN_NS_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_FEED = 1 << 16  # bytes of XML handed to expat at a time
# Number formats that show a date or time: Excel's built-in ids (with the East Asian ones: 27–36,
# 50–58 are "yyyy年m月d日" and the like in a Chinese Excel), as calamine judges them.
_BUILTIN_DATE_FORMATS = frozenset([*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59), *range(71, 82)])
MAX_ROW = 1_048_576  # the last row of an Excel sheet
MAX_COLUMN = 16_383  # its last column (XFD), counted from 0
_MAX_NUMBER_FORMATS = 10_000  # Excel allows about 250 per workbook
_MAX_CELL_STYLES = 1_000_000  # Excel allows 64,000
SHARED_STRINGS_BUDGET = 256 << 20  # bytes the shared strings may take in memory (text + 4 per string)
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)
_EXCEL_EPOCH_1904 = dt.datetime(1904, 1, 1)


class SheetTooLarge(Exception):
    """A part of a workbook that would take more memory than the reader allows (refused, exit 4)."""


def _local(name: str) -> str:
    """An element's name without its namespace prefix (``x:c`` → ``c``): some writers use prefixes."""
    return name.rpartition(":")[2]


def _parser(start=None, end=None, text=None):
    """An expat parser that refuses a DTD (no entity declarations, so no "billion laughs")."""
    from xml.parsers import expat

    p = expat.ParserCreate()
    p.buffer_text = True
    p.buffer_size = _FEED

    def no_dtd(*_args):
        raise ValueError("XML with a DTD is not a spreadsheet part")

    p.StartDoctypeDeclHandler = no_dtd
    p.EntityDeclHandler = no_dtd
    if start:
        p.StartElementHandler = start
    if end:
        p.EndElementHandler = end
    if text:
        p.CharacterDataHandler = text
    return p


def _feed(parser, member) -> None:
    while chunk := member.read(_FEED):
        parser.Parse(chunk, False)
    parser.Parse(b"", True)


def _is_date_format(code: str) -> bool:
    """A custom number format shows a date or time when it has y, m, d, h or s outside quotes, escapes
    and brackets (``[Red]``, ``[$-804]``; ``[h]`` is a duration, treated as a time)."""
    quoted = bracket = escaped = False
    for ch in code:
        if escaped:
            escaped = False
        elif quoted:
            quoted = ch != '"'
        elif bracket:
            if ch == "]":
                bracket = False
            elif ch in "hHsS":
                return True
        elif ch == '"':
            quoted = True
        elif ch == "\\" or ch == "_" or ch == "*":
            escaped = True
        elif ch == "[":
            bracket = True
        elif ch in "yYmMdDhHsSeE" and ch not in "eE":
            return True
        elif ch == ";":
            return False  # the format of positive numbers decides
    return False


def _serial_text(value: float, epoch: dt.datetime) -> str:
    """A date serial as the text calamine gave it: a time of day below 1, a date when it has no time,
    else date and time (rounded to the millisecond, then shown to the second)."""
    days = value + 1 if epoch is _EXCEL_EPOCH and value < 60 else value  # Excel's 29 February 1900 that never was
    try:
        moment = epoch + dt.timedelta(milliseconds=round(days * 86_400_000))
    except (OverflowError, ValueError):
        return cell_text(value)
    if 0 <= value < 1:
        return moment.strftime("%H:%M:%S")
    return cell_text(moment)


class _Workbook:
    """The parts of an .xlsx that a sheet needs: its sheets (name, visibility, part), which cell styles
    are dates, the 1904 flag and the shared strings (held compactly: UTF-8 in one buffer)."""

    def __init__(self, zf, cell_chars: int):
        self.zf = zf
        self.cell_chars = cell_chars
        self.names = {i.filename: i.filename for i in zf.infolist()}
        self.names.update({k.lower(): v for k, v in list(self.names.items())})
        book = self._office_document()
        self.base = book.rpartition("/")[0]
        rels = self._relationships(f"{self.base}/_rels/{book.rpartition('/')[2]}.rels" if self.base else
                                   f"_rels/{book}.rels")
        self.sheets = []  # (name, state, part or None)
        self.date1904 = False
        self._read_workbook(book, rels)
        self.date_styles = bytearray()
        self._read_styles(rels)
        self.text = bytearray()
        self.ends = array.array("I")  # offset after each string (4 bytes each: text held ≤ 4 GiB)
        self._read_shared_strings(rels)
        self.view = memoryview(self.text)

    def member(self, name: str):
        found = self.names.get(name) or self.names.get(name.lower())
        return self.zf.open(found) if found else None

    def _target(self, target: str) -> str:
        if target.startswith("/"):
            return target[1:]
        parts = []
        for piece in f"{self.base}/{target}".split("/") if self.base else target.split("/"):
            if piece == "..":
                if parts:
                    parts.pop()
            elif piece and piece != ".":
                parts.append(piece)
        return "/".join(parts)

    def _relationships(self, name: str) -> dict[str, tuple[str, str]]:
        """{id: (type's last word, target)} of a ``.rels`` part."""
        out = {}

        def start(tag, attrs):
            if _local(tag) == "Relationship" and "Id" in attrs:
                out[attrs["Id"]] = (attrs.get("Type", "").rpartition("/")[2], attrs.get("Target", ""))
                if len(out) > 100_000:
                    raise SheetTooLarge("关系（.rels）超过100000条")

        member = self.member(name)
        if member is not None:
            with member:
                _feed(_parser(start), member)
        return out

    def _office_document(self) -> str:
        for kind, target in self._relationships("_rels/.rels").values():
            if kind == "officeDocument":
                return target.lstrip("/")
        return "xl/workbook.xml"

    def _read_workbook(self, book: str, rels) -> None:
        def start(tag, attrs):
            tag = _local(tag)
            if tag == "sheet":
                rid = next((v for k, v in attrs.items() if _local(k) == "id"), "")
                kind, target = rels.get(rid, ("", ""))
                part = self._target(target) if kind == "worksheet" and target else None
                self.sheets.append((attrs.get("name", ""), attrs.get("state", "visible"), part))
                if len(self.sheets) > 10_000:
                    raise SheetTooLarge("工作表超过10000个")
            elif tag == "workbookPr":
                self.date1904 = attrs.get("date1904", "0").lower() in ("1", "true")

        member = self.member(book)
        if member is None:
            raise ValueError("the workbook part is missing")
        with member:
            _feed(_parser(start), member)

    def _part(self, rels, kind: str, default: str):
        for k, target in rels.values():
            if k == kind:
                return self.member(self._target(target))
        return self.member(default)

    def _read_styles(self, rels) -> None:
        custom: dict[int, bool] = {}  # the workbook's own number formats: is it a date?
        counted = [0]
        inside = []

        def start(tag, attrs):
            tag = _local(tag)
            if tag == "numFmt":
                counted[0] += 1
                if counted[0] > _MAX_NUMBER_FORMATS:
                    raise SheetTooLarge(f"数字格式超过{_MAX_NUMBER_FORMATS}个")
                try:
                    custom[int(attrs.get("numFmtId", "-1"))] = _is_date_format(attrs.get("formatCode", ""))
                except ValueError:
                    pass
            elif tag == "cellXfs":
                inside.append(True)
            elif tag == "xf" and inside:
                if len(self.date_styles) >= _MAX_CELL_STYLES:
                    raise SheetTooLarge(f"单元格样式超过{_MAX_CELL_STYLES}个")
                try:
                    fmt = int(attrs.get("numFmtId", "0"))
                except ValueError:
                    fmt = 0
                self.date_styles.append(custom[fmt] if fmt in custom else fmt in _BUILTIN_DATE_FORMATS)

        def end(tag):
            if _local(tag) == "cellXfs":
                inside.clear()

        member = self._part(rels, "styles", f"{self.base}/styles.xml")
        if member is not None:
            with member:
                _feed(_parser(start, end), member)

    def _read_shared_strings(self, rels) -> None:
        text, ends = self.text, self.ends
        cap = self.cell_chars + 1  # one over the limit: the reader refuses the cell
        state = {"in": False, "skip": 0, "parts": [], "size": 0}
        parts = state["parts"]

        def start(tag, attrs):
            tag = _local(tag)
            if tag == "t":
                state["in"] = not state["skip"]
            elif tag == "rPh":  # a phonetic guide (furigana): not part of the text
                state["skip"] += 1

        def end(tag):
            tag = _local(tag)
            if tag == "t":
                state["in"] = False
            elif tag == "rPh":
                state["skip"] -= 1
            elif tag == "si":
                value = "".join(parts)
                parts.clear()
                state["size"] = 0
                text.extend(value[:cap].encode("utf-8"))
                ends.append(len(text))
                if len(text) + 4 * len(ends) > SHARED_STRINGS_BUDGET:
                    raise SheetTooLarge(f"共享字符串表（工作表中的文字）超过 {SHARED_STRINGS_BUDGET / 2**20:.4g} MB")

        def chars(data):
            if state["in"] and state["size"] <= cap:
                parts.append(data)
                state["size"] += len(data)

        member = self._part(rels, "sharedStrings", f"{self.base}/sharedStrings.xml")
        if member is not None:
            with member:
                _feed(_parser(start, end, chars), member)

    def shared(self, index: str) -> str:
        try:
            i = int(index)
        except ValueError:
            return ""
        if not 0 <= i < len(self.ends):
            return ""
        return str(self.view[self.ends[i - 1] if i else 0:self.ends[i]], "utf-8")


_COLUMNS: dict[str, int] = {}


def _column(ref: str) -> int:
    """The 0-based column of a cell reference (``AB12`` → 27); -1 when there is none."""
    letters = ref.rstrip("0123456789")
    col = _COLUMNS.get(letters)
    if col is None:
        col = 0
        for ch in letters.upper():
            if not "A" <= ch <= "Z":
                return -1
            col = col * 26 + ord(ch) - 64
        col -= 1
        if len(_COLUMNS) < 20_000:
            _COLUMNS[letters] = col
    return col


def _stream_sheet(book: _Workbook, part: str, writer, out, *, columns: int) -> None:
    """Write the rows of the worksheet ``part`` through ``writer`` (a csv writer on ``out``), row N
    of the sheet on line N; cells beyond ``columns`` written as "…" (such a row is refused by the
    reader, which counts them), each cell at most ``book.cell_chars`` + 1 characters. Holds one row at a time.
    (The handlers run for every cell of a million-row sheet: their state is in closure variables.)"""
    cap = book.cell_chars + 1
    width = columns + 1
    epoch = _EXCEL_EPOCH_1904 if book.date1904 else _EXCEL_EPOCH
    date_styles = book.date_styles
    n_styles = len(date_styles)
    shared = book.shared
    line = written = 0  # the row being read; the last row written
    col = -1
    kind = "n"
    style = 0
    collect = False
    size = 0
    skip = 0
    row: list[str] = []
    parts: list[str] = []
    column_of = _column
    writerow = writer.writerow

    def start(tag, attrs):
        nonlocal col, kind, style, collect, size, line, skip
        if ":" in tag:
            tag = _local(tag)
        if tag == "c":
            ref = attrs.get("r")
            col = column_of(ref) if ref else col + 1
            if col < 0:
                col = len(row)
            kind = attrs.get("t", "n")
            s = attrs.get("s")
            style = int(s) if s and s.isdigit() else 0
            parts.clear()
            size = 0
        elif tag == "v" or (tag == "t" and not skip):
            collect = True
        elif tag == "row":
            r = attrs.get("r")
            number = int(r) if r and r.isdigit() else line + 1
            if number > MAX_ROW:
                raise ValueError(f"row {number} is beyond the last row a sheet can have ({MAX_ROW})")
            line = number if number > written else written + 1  # rows out of order: kept in the order they come
            row.clear()
            col = -1
        elif tag == "rPh":  # a phonetic guide (furigana): not part of the text
            skip += 1

    def end(tag):
        nonlocal collect, written, skip
        if ":" in tag:
            tag = _local(tag)
        if tag == "c":
            if not parts:
                return
            at = col
            raw = parts[0] if len(parts) == 1 else "".join(parts)
            if kind == "s":
                value = shared(raw).strip()
            elif kind == "n":
                try:
                    number = float(raw)
                except ValueError:
                    value = raw.strip()
                else:
                    value = (_serial_text(number, epoch) if style < n_styles and date_styles[style]
                             else cell_text(number))
            elif kind == "b":
                value = "是" if raw.strip() in ("1", "true") else "否" if raw.strip() else ""
            elif kind == "d":
                try:
                    value = cell_text(dt.datetime.fromisoformat(raw.strip()))
                except ValueError:
                    value = raw.strip()
            elif kind == "e":
                return  # #N/A, #DIV/0!…: an error is no value (calamine gave an empty cell too)
            else:  # str, inlineStr
                value = raw.strip()
            if not value:
                return
            if at >= width:
                value = "…"  # beyond the column limit the row is refused: its cells need not be kept
                if at > MAX_COLUMN:
                    raise ValueError(f"column {at + 1} is beyond the last column a sheet can have")
            elif len(value) > cap:
                value = value[:cap]
            n = len(row)
            if at == n:
                row.append(value)
            else:
                if at > n:
                    row.extend([""] * (at - n + 1))
                row[at] = value
        elif tag == "v" or tag == "t":
            collect = False
        elif tag == "row":
            while row and not row[-1]:
                row.pop()
            if row:
                gap = line - written - 1  # empty rows before this one: written now, dropped at the end
                if gap > 0:
                    out.write("\r\n" * gap)
                writerow(row)
                written = line
        elif tag == "rPh":
            skip -= 1

    def chars(data):
        nonlocal size
        if collect and size <= cap:
            parts.append(data)
            size += len(data)

    member = book.member(part)
    if member is None:
        raise ValueError(f"the worksheet part {part} is missing")
    with member:
        _feed(_parser(start, end, chars), member)


def convert(source: str, target_dir: str, keys: tuple[bytes, bytes, bytes] | None = None, *,
            columns: int = 200, cell_chars: int = 10_000) -> None:
    """Write every row of every visible worksheet of ``source`` to ``target_dir`` (trailing empty
    cells dropped, and the empty rows after a sheet's last row with data: a sheet formatted down to
    row 1,048,576 is not a million empty rows) and the list of the sheets to ``sheets.json``
    (hidden ones listed with ``"hidden": true`` and no file). Rows come out from the sheet's first
    row, so line N of a CSV is row N of its sheet.

    An .xlsx is streamed (``_stream_sheet``: one row in memory at a time, the shared strings held
    compactly); an .xls or .ods is read by calamine, one sheet at a time (a whole sheet in memory:
    the address-space cap bounds it). ``columns`` and ``cell_chars``: the reader's limits — a row
    keeps at most one cell beyond them and a cell one character beyond, enough for the parent to
    refuse it with its usual message.
    ``keys``: (the source's file key, or b"" when it is not sealed; the key and the wrapped key to
    seal the CSVs with), see wuyiqu.lib.sealed; None: plain files."""
    import io

    from wuyiqu.lib import sealed

    if keys is None:
        source_file = open(source, "rb")
    else:
        source_key, target_key, target_wrapped = keys
        source_file = sealed.open_plain(source, key_for=lambda _wrapped: source_key)

    def writing(name: str):
        target = os.path.join(target_dir, name)
        # Each CSV gets its own random nonce prefix (sealed.SealedWriter), so one key serves them all.
        raw = open(target, "wb", buffering=0) if keys is None else sealed.create(target, key=target_key,
                                                                                  wrapped=target_wrapped)
        return io.TextIOWrapper(io.BufferedWriter(raw, 1 << 16), encoding="utf-8", newline="")

    with source_file as f:
        book = _ooxml(f, cell_chars)
        listed = _stream_workbook(book, writing, columns) if book else _calamine_workbook(f, writing)
    with open(os.path.join(target_dir, "sheets.json"), "w", encoding="utf-8") as out:
        json.dump(listed, out, ensure_ascii=False)


def _ooxml(f, cell_chars: int) -> _Workbook | None:
    """The .xlsx workbook in ``f``, or None when ``f`` is not one (an .xls, an .ods)."""
    import zipfile

    if not zipfile.is_zipfile(f):
        return None
    f.seek(0)
    zf = zipfile.ZipFile(f)
    names = set(zf.namelist())
    if "[Content_Types].xml" not in names and "content.xml" in names:
        return None  # OpenDocument
    return _Workbook(zf, cell_chars)


def _stream_workbook(book: _Workbook, writing, columns: int) -> list[dict]:
    listed = []
    for index, (sheet_name, state, part) in enumerate(book.sheets):
        if part is None:
            continue  # chart sheets, dialog and macro sheets are not part of the ledger
        if state != "visible":
            listed.append({"index": index, "name": sheet_name, "hidden": True})
            continue
        name = f"{index}.csv"
        with writing(name) as out:
            _stream_sheet(book, part, csv.writer(out), out, columns=columns)
        listed.append({"index": index, "name": sheet_name, "file": name})
    return listed


def _calamine_workbook(f, writing) -> list[dict]:
    """An .xls or .ods through calamine, which holds one whole sheet at a time."""
    from python_calamine import CalamineWorkbook

    f.seek(0)
    listed = []
    book = CalamineWorkbook.from_filelike(f)
    for index, meta in enumerate(book.sheets_metadata):
        if "WorkSheet" not in str(meta.typ):
            continue  # chart sheets and macro sheets are not part of the ledger
        if "Visible" != str(meta.visible).rsplit(".", 1)[-1]:
            listed.append({"index": index, "name": meta.name, "hidden": True})
            continue
        name = f"{index}.csv"
        sheet = book.get_sheet_by_index(index)
        with writing(name) as out:
            writer = csv.writer(out)
            empty = 0  # empty rows not written yet: written before the next row with data, dropped at the end
            for row in sheet.iter_rows():
                cells = [cell_text(v) for v in row]
                while cells and not cells[-1]:
                    cells.pop()
                if not cells:
                    empty += 1
                    continue
                if empty:
                    out.write("\r\n" * empty)
                    empty = 0
                writer.writerow(cells)
        del sheet
        listed.append({"index": index, "name": meta.name, "file": name})
    return listed


def _keys_from_stdin() -> tuple[bytes, bytes, bytes]:
    """The three keys the parent writes on standard input, one hex line each."""
    lines = sys.stdin.buffer.read().decode().splitlines()
    source, target, wrapped = (bytes.fromhex(x.strip()) for x in (lines + ["", "", ""])[:3])
    return source, target, wrapped


def main(argv: list[str]) -> int:
    source, target_dir, memory = argv[1], argv[2], int(argv[3])
    flags = argv[4:]
    keys = None if "--plain" in flags else _keys_from_stdin()
    limits = dict(a[2:].split("=", 1) for a in flags if a.startswith("--") and "=" in a)
    columns, cell_chars = int(limits.get("columns", 200)), int(limits.get("cell-chars", 10_000))
    global SHARED_STRINGS_BUDGET
    SHARED_STRINGS_BUDGET = int(limits.get("strings-bytes", SHARED_STRINGS_BUDGET))
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort must not leave a core file behind
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    try:
        convert(source, target_dir, keys, columns=columns, cell_chars=cell_chars)
    except MemoryError:
        return EXIT_MEMORY
    except SheetTooLarge as exc:
        print(str(exc)[:200], file=sys.stderr)
        return EXIT_TOO_LARGE
    except BaseException as exc:  # calamine's errors, and a Rust panic (PanicException is a BaseException)
        print(f"{type(exc).__name__}: {exc}"[:500], file=sys.stderr)
        return EXIT_UNREADABLE
    print(f"peak_rss_kib={_peak_rss_kib()}")
    return 0


def _peak_rss_kib() -> int:
    """This process's peak resident memory since it started this program, in KiB: VmHWM belongs to the
    program's own memory map, where ``ru_maxrss`` also counts the parent's pages at the fork."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    sys.exit(main(sys.argv))
