"""Reading import files as streams of text rows: CSV or tab-separated text (UTF-8 with or without
BOM, GBK/GB18030, UTF-16/32 with BOM — Excel's "Unicode text"), and spreadsheets (.xlsx, .xls, .ods).

Nothing here loads a whole CSV file: rows are yielded one by one, so a million-row file is read in
bounded memory (the engine reads it twice: once to check, once to write). A spreadsheet is converted
once to one temporary UTF-8 CSV per worksheet in a child process with a memory cap
(``xlsx_convert``), then read like CSV. Where the header is and which column feeds which field is
``headers``' business; ``iter_records`` then yields the mapped rows of every imported sheet.

Files are judged by their content, never by their name alone: a PNG named ``.xlsx``, an Excel file
named ``.csv``, a ZIP whose unpacked size or ratio is out of bounds (a "zip bomb"), a file mixing two
encodings, a NUL byte, a cell or a row longer than the limits all stop the import with one Chinese
message naming the line (and column) where there is one. The limits are settings
(``IMPORT_MAX_*``, see ``Limits`` and docs/reliability.md).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
import operator
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from wuyiqu.lib import filetypes, sealed

from . import headers, xlsx_convert
from .headers import Table
from .registry import Column, FileError

XLSX_SUFFIXES = (".xlsx", ".xlsm")
ZIP_SUFFIXES = (*XLSX_SUFFIXES, ".ods")
OLE_SUFFIXES = (".xls",)
_CHUNK = 1 << 20
_ZIP_MAGIC = (filetypes.ZIP, b"PK\x05\x06")  # a ZIP, or an empty one
_OLE_MAGIC = filetypes.OLE
_BOMS = (  # UTF-32 before UTF-16: its little-endian BOM starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
# Two CJK characters in a row as UTF-8 (three bytes each, lead E3–E9). GBK's common characters have
# lead bytes B0–D7, so this almost never occurs inside GBK text: in a file that is not UTF-8 as a
# whole, a line that has it and decodes as UTF-8 was written in UTF-8 — the file mixes encodings.
_UTF8_CJK_PAIR = re.compile(rb"(?:[\xe3-\xe9][\x80-\xbf]{2}){2}")
_LONGEST_LINE = 16 << 20  # bytes without a line end that the encoding check holds before refusing
_ZIP_RATIO_FROM = 1 << 20  # members smaller than this may compress as well as they like


@dataclass(frozen=True, slots=True)
class Limits:
    """What an import file may hold; from the ``IMPORT_MAX_*`` settings unless given."""

    file_bytes: int
    rows: int
    columns: int
    cell_chars: int
    xlsx_unpacked_bytes: int
    xlsx_ratio: int
    xlsx_memory_bytes: int
    xlsx_seconds: int
    empty_rows: int = 100_000

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            file_bytes=settings.IMPORT_MAX_UPLOAD_BYTES,
            rows=settings.IMPORT_MAX_ROWS,
            columns=settings.IMPORT_MAX_COLUMNS,
            cell_chars=settings.IMPORT_MAX_CELL_CHARS,
            xlsx_unpacked_bytes=settings.IMPORT_XLSX_MAX_UNPACKED_BYTES,
            xlsx_ratio=settings.IMPORT_XLSX_MAX_RATIO,
            xlsx_memory_bytes=settings.IMPORT_XLSX_MAX_MEMORY_BYTES,
            xlsx_seconds=settings.IMPORT_XLSX_MAX_SECONDS,
            empty_rows=settings.IMPORT_MAX_EMPTY_ROWS,
        )

    @property
    def line_bytes(self) -> int:
        """The longest line a CSV may have: every column full, quoted, in 3-byte characters. The csv
        module holds a whole line and a list of all its cells, so a longer line (200 MiB of commas is
        200 million empty cells, 3.4 GiB) is refused before it is parsed."""
        return max(self.columns * (self.cell_chars + 3) * 3, 1 << 16)


# --- what the file is ---------------------------------------------------------------------------------


def _what_else(head: bytes) -> str | None:
    """What a file that is neither CSV nor XLSX is (ZIP and old Office files are judged apart)."""
    return filetypes.what_is(head, besides=(filetypes.ZIP, filetypes.OLE))


def sniff_format(path: Path) -> str:
    """``"xlsx"``, ``"ods"``, ``"xls"`` or ``"csv"``, judged by the content; FileError when the content
    is something else or disagrees with the file's extension."""
    with sealed.open_plain(path) as f:
        head = f.read(16)
    if not head:
        raise FileError(_("文件是空的，第一行应为列标题"))
    suffix = path.suffix.lower()
    if head.startswith(_OLE_MAGIC):
        if suffix not in OLE_SUFFIXES:
            raise FileError(_("文件内容是旧版 Excel (.xls) 或加密的 Office 文件，但扩展名是“%(suffix)s”；如果是 Excel 文件，请使用 .xls 扩展名")
                            % {"suffix": suffix or _("无")})
        return "xls"
    other = _what_else(head)
    if other:
        raise FileError(_("文件内容是%(what)s，不是 CSV 或 Excel (.xlsx/.xls/.ods) 文件") % {"what": other})
    is_zip = head.startswith(_ZIP_MAGIC)
    if suffix in ZIP_SUFFIXES and not is_zip:
        raise FileError(_("文件扩展名是 %(suffix)s，但内容不是 Excel 文件（不是 ZIP 格式）；如果是 CSV，请使用 .csv 扩展名")
                        % {"suffix": suffix})
    if suffix in OLE_SUFFIXES:
        raise FileError(_("文件扩展名是 %(suffix)s，但内容不是旧版 Excel (.xls) 文件；请用 Excel 或 WPS 打开后另存为 .xlsx 或 CSV")
                        % {"suffix": suffix})
    if is_zip and suffix not in ZIP_SUFFIXES:
        raise FileError(_("文件内容是 ZIP 压缩包（Excel 文件就是这种格式），但扩展名是“%(suffix)s”；如果是 Excel 文件，请使用 .xlsx 扩展名")
                        % {"suffix": suffix or _("无")})
    if is_zip:
        return "ods" if suffix == ".ods" else "xlsx"
    return "csv"


# --- CSV: the encoding ----------------------------------------------------------------------------------


def _line_at(data: bytes, pos: int, newline: bytes) -> int:
    return data.count(newline, 0, pos) + 1


def detect_encoding(path: Path) -> str:
    """The codec to read the CSV ``path`` with: ``utf-16``/``utf-32`` after their BOM, ``utf-8-sig``
    when the whole file decodes strictly as UTF-8 (BOM or not), else ``gb18030`` (a superset of GBK)
    when it decodes strictly as that and no line of it is UTF-8. Streams the file in chunks.
    FileError (naming the line) for a file that is neither, or that mixes UTF-8 and GBK lines."""
    with sealed.open_plain(path) as f:
        head = f.read(4)
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec
    first_bad = _first_non_utf8_line(path)
    if first_bad is None:
        return "utf-8-sig"
    _check_gb18030(path, first_bad)
    return "gb18030"


def _newline_of(chunk: bytes) -> bytes:
    """``\\n`` unless the file uses old Mac line ends (``\\r`` alone), for counting lines."""
    return b"\r" if b"\n" not in chunk and b"\r" in chunk else b"\n"


def _first_non_utf8_line(path: Path) -> int | None:
    """The line of the first byte that is not UTF-8, or None when the whole file is UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    lines_before = 0
    newline = None
    with sealed.open_plain(path) as f:
        while chunk := f.read(_CHUNK):
            newline = newline or _newline_of(chunk)
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return lines_before + _line_at(chunk, max(exc.start, 0), newline)
            lines_before += chunk.count(newline)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return lines_before + 1
    return None


def _check_gb18030(path: Path, first_bad: int) -> None:
    """FileError unless the file decodes as GB18030 and has no UTF-8 line. Works on whole lines (no
    GB18030 character contains a line-end byte) so that a line can be tried as UTF-8 on its own."""
    lines_before = 0
    carry = b""
    newline = None
    with sealed.open_plain(path) as f:
        while True:
            chunk = f.read(_CHUNK)
            data = carry + chunk
            if not data:
                return
            newline = newline or _newline_of(data)
            cut = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1 if chunk else len(data)
            if cut == 0:  # no line end yet: keep reading (a line longer than a chunk)
                if len(data) > _LONGEST_LINE:
                    raise FileError(_("第%(line)d行超过 %(size)s 还没有换行，不是正常的表格文件")
                                    % {"line": lines_before + 1, "size": filesizeformat(_LONGEST_LINE)})
                carry = data
                continue
            part, carry = data[:cut], data[cut:]
            try:
                part.decode("gb18030")
            except UnicodeDecodeError as exc:
                start, end = _line_around(part, exc.start)
                if _is_utf8_text(part[start:end]):
                    raise _mixed(lines_before + _line_at(part, start, newline), first_bad) from None
                hint = _("（文件含有 NUL 字节，可能是没有 BOM 的 UTF-16 编码）") if b"\x00" in part else ""
                raise FileError(
                    _("无法识别文件的编码（第%(line)d行既不是 UTF-8 也不是 GBK）%(hint)s：请用 Excel 或 WPS 另存为“CSV UTF-8”或 .xlsx")
                    % {"line": lines_before + _line_at(part, exc.start, newline), "hint": hint}) from None
            for match in _UTF8_CJK_PAIR.finditer(part):
                start, end = _line_around(part, match.start())
                if _is_utf8_text(part[start:end]):
                    raise _mixed(lines_before + _line_at(part, start, newline), first_bad)
            lines_before += part.count(newline)
            if not chunk:
                return


def _line_around(data: bytes, pos: int) -> tuple[int, int]:
    """(start, end) of the line of ``data`` that holds byte ``pos``."""
    start = max(data.rfind(b"\n", 0, pos), data.rfind(b"\r", 0, pos)) + 1
    ends = [i for i in (data.find(b"\n", pos), data.find(b"\r", pos)) if i >= 0]
    return start, min(ends, default=len(data))


def _is_utf8_text(line: bytes) -> bool:
    """True for a line that decodes as UTF-8 and holds non-ASCII text (so it was written as UTF-8)."""
    try:
        return not line.decode("utf-8").isascii()
    except UnicodeDecodeError:
        return False


def _mixed(utf8_line: int, other_line: int) -> FileError:
    return FileError(
        _("文件混用了不同的编码：第%(utf8)d行是 UTF-8，第%(other)d行不是（可能是 GBK）；请把整个文件另存为同一种编码（推荐“CSV UTF-8”）")
        % {"utf8": utf8_line, "other": other_line})


# --- CSV: the rows --------------------------------------------------------------------------------------


def _csv_error(exc: csv.Error, line: int, limits: Limits) -> FileError:
    text = str(exc)
    if "field larger than field limit" in text:  # the csv module's own limit (131,072), above ours
        return FileError(_("第%(line)d行有一个单元格超过上限%(max)d个字符，未导入") % {"line": line, "max": limits.cell_chars})
    if "end of data" in text:
        return FileError(_("第%(line)d行的引号没有结束（引号不配对），从这里到文件末尾都成了一个单元格") % {"line": line})
    if "expected after" in text:
        return FileError(_("第%(line)d行：引号结束后应紧跟逗号（引号不配对）") % {"line": line})
    return FileError(_("第%(line)d行 CSV 格式错误：%(e)s") % {"line": line, "e": text})


def _used_width(row: list[str]) -> int:
    n = len(row)
    while n and not row[n - 1]:
        n -= 1
    return n


def _iter_csv(path: Path, limits: Limits, encoding: str, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """(line, stripped cells) of every row; the checks of ``limits`` applied row by row."""
    # NUL bytes: PostgreSQL cannot store them in text. Look for one only where the bytes say there is.
    check_nul = encoding in ("utf-16", "utf-32") or _has_nul(path)
    max_cols, max_chars, max_rows, max_empty = limits.columns, limits.cell_chars, limits.rows, limits.empty_rows
    data_rows = empty_rows = first_empty = 0
    line = 0
    with sealed.open_text(path, encoding) as f:
        reader = csv.reader(f, strict=True, delimiter=delimiter)
        try:
            for line, row in enumerate(reader, start=1):
                if len(row) > max_cols and _used_width(row) > max_cols:
                    raise FileError(_("第%(line)d行有%(n)d列，超过上限%(max)d列")
                                    % {"line": line, "n": _used_width(row), "max": max_cols})
                if sum(map(len, row)) > max_chars:
                    for column, cell in enumerate(row, start=1):
                        if len(cell) > max_chars:
                            # (no count: a spreadsheet's cell comes cut at one character over the limit)
                            raise FileError(_("第%(line)d行第%(col)d列的单元格超过上限%(max)d个字符")
                                            % {"line": line, "col": column, "max": max_chars})
                if check_nul:
                    for column, cell in enumerate(row, start=1):
                        if "\x00" in cell:
                            raise FileError(
                                _("第%(line)d行第%(col)d列含有空字符（NUL），这不是正常的文本；文件可能是 UTF-16 编码（无 BOM）或不是 CSV 文件")
                                % {"line": line, "col": column})
                cells = [c.strip() for c in row]
                if any(cells):
                    data_rows += 1
                    if data_rows > max_rows + 1:  # + 1: the header row
                        raise FileError(_("文件超过%(max)d行的上限，未导入；请分成几个文件") % {"max": max_rows})
                else:
                    # Rows of only commas cost a parse each and import nothing: counted, and refused
                    # beyond the limit instead of read to the end of a file made of them.
                    empty_rows += 1
                    first_empty = first_empty or line
                    if empty_rows > max_empty:
                        raise FileError(
                            _("文件中的空行（只有逗号或空格的行）超过%(max)d行（从第%(first)d行起），未导入：这不是正常的表格；请删除空行，或只选中有数据的区域另存后重新导入")
                            % {"max": max_empty, "first": first_empty})
                yield line, cells
        except csv.Error as exc:
            raise _csv_error(exc, line + 1, limits) from None
        except UnicodeDecodeError:  # checked before; the file changed while we read it
            raise FileError(_("文件在导入过程中被修改（第%(line)d行）") % {"line": line + 1}) from None


def check_line_lengths(path: Path, limits: Limits) -> None:
    """FileError naming the line when a line of ``path`` is longer than ``limits.line_bytes``. Streams
    the bytes with C-speed searches per chunk: a line too long is refused once that much is read."""
    longest = limits.line_bytes
    inside = re.compile(rb"[^\r\n]{%d}" % (longest + 1)) if longest < _CHUNK else None
    run = 0  # bytes of the line the previous chunks ended in
    lines_before = 0
    with sealed.open_plain(path) as f:
        while chunk := f.read(_CHUNK):
            newline = _newline_of(chunk)
            first, last = chunk.find(newline), chunk.rfind(newline)
            if run + (len(chunk) if first < 0 else first) > longest:
                bad_line = lines_before + 1
            elif inside is not None and (match := inside.search(chunk)):
                bad_line = lines_before + chunk.count(newline, 0, match.start()) + 1
            else:
                lines_before += chunk.count(newline)
                run = run + len(chunk) if first < 0 else len(chunk) - last - 1
                continue
            raise FileError(
                _("第%(line)d行超过 %(size)s 还没有换行（一行最多%(cols)d列、每格%(chars)d个字符），不是正常的表格文件，未导入")
                % {"line": bad_line, "size": filesizeformat(longest), "cols": limits.columns, "chars": limits.cell_chars})


def _has_nul(path: Path) -> bool:
    with sealed.open_plain(path) as f:
        while chunk := f.read(_CHUNK):
            if b"\x00" in chunk:
                return True
    return False


# --- XLSX -----------------------------------------------------------------------------------------------


def check_xlsx_container(path: Path, limits: Limits, *, ods: bool = False) -> None:
    """Refuse, before anything unpacks it, an XLSX (or, with ``ods``, an ODS) that is not a readable
    ZIP of a workbook, is encrypted, or whose members would unpack to more than the limits (declared
    sizes and ratios: the ZIP readers used here stop at a member's declared size, so a lie about it
    is an error, not a bomb)."""
    try:
        with sealed.open_plain(path) as f, zipfile.ZipFile(f) as zf:
            members = zf.infolist()
    except Exception:  # damaged input: BadZipFile, NotImplementedError (an unknown version, found by fuzz/), …
        raise FileError(_("Excel 文件已损坏或不完整（无法作为 .xlsx 打开）；请重新保存后再上传")) from None
    names = {m.filename for m in members}
    if ods:
        if "content.xml" not in names:
            raise FileError(_("文件是 ZIP 压缩包，但不是 OpenDocument 表格 (.ods) 文件"))
    elif "[Content_Types].xml" not in names or not any(n.startswith("xl/") for n in names):
        raise FileError(_("文件是 ZIP 压缩包，但不是 Excel (.xlsx) 文件"))
    if any(m.flag_bits & 0x1 for m in members):
        raise FileError(_("Excel 文件已加密：请去掉密码后再上传"))
    unpacked = sum(m.file_size for m in members)
    if unpacked > limits.xlsx_unpacked_bytes:
        raise FileError(_("Excel 文件解压后有 %(size)s，超过上限 %(limit)s（可能是“压缩炸弹”），未读取；大文件请用 CSV")
                        % {"size": filesizeformat(unpacked), "limit": filesizeformat(limits.xlsx_unpacked_bytes)})
    for m in members:
        if m.file_size > _ZIP_RATIO_FROM and m.file_size > limits.xlsx_ratio * max(m.compress_size, 1):
            raise FileError(
                _("Excel 文件中的 %(name)s 压缩比为 %(ratio)d:1，超过上限 %(max)d:1（可能是“压缩炸弹”），未读取")
                % {"name": m.filename[:80], "ratio": m.file_size // max(m.compress_size, 1), "max": limits.xlsx_ratio})


last_conversion: dict[str, int | None] = {"peak_rss_bytes": None}  # the last child's, for tests and bench/


def convert_sheets(path: Path, target_dir: Path, limits: Limits, *, kind: str = "xlsx") -> list[dict]:
    """Write the visible worksheets of the spreadsheet ``path`` to ``target_dir`` as UTF-8 CSV, in a
    child process limited to ``limits.xlsx_memory_bytes`` of address space and ``limits.xlsx_seconds``.
    Returns [{"index", "name", "file"}]. FileError when it fails."""
    command = [sys.executable, "-m", "wuyiqu.imports.xlsx_convert", str(path), str(target_dir),
               str(limits.xlsx_memory_bytes), f"--columns={limits.columns}", f"--cell-chars={limits.cell_chars}"]
    # The child has no data key: it gets the keys it needs on its standard input (never in its
    # arguments, which other processes can read): the upload's file key when the upload is sealed,
    # and a new key to seal the CSVs it writes (lib/sealed.py).
    source_key = sealed.file_key(path) if sealed.is_sealed(path) else b""
    target_key, target_wrapped = sealed.new_file_key()
    keys = b"\n".join(k.hex().encode() for k in (source_key, target_key, target_wrapped)) + b"\n"
    try:
        done = subprocess.run(command, input=keys, capture_output=True, timeout=limits.xlsx_seconds, check=False,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    except subprocess.TimeoutExpired:
        raise FileError(_("读取 Excel 文件超过 %(n)d 秒，已停止；请改用 CSV 或分成几个文件") % {"n": limits.xlsx_seconds}) from None
    if done.returncode == 0:
        peak = re.search(rb"peak_rss_kib=(\d+)", done.stdout)
        last_conversion["peak_rss_bytes"] = int(peak.group(1)) * 1024 if peak else None
        with open(target_dir / "sheets.json", encoding="utf-8") as f:
            return json.load(f)
    if done.returncode == xlsx_convert.EXIT_TOO_LARGE:
        raise FileError(_("Excel 文件过大：%(what)s，读取时会超过内存的上限，未导入；请另存为 CSV 或分成几个文件")
                        % {"what": done.stderr.decode("utf-8", "replace").strip()[:100]})
    if done.returncode == xlsx_convert.EXIT_UNREADABLE:
        detail = done.stderr.decode("utf-8", "replace").strip()[:200]
        if kind == "xls":
            raise FileError(_("无法读取旧版 .xls 文件（文件损坏、已加密或不是 Excel 文件）：%(e)s；请用 Excel 或 WPS 打开后另存为 .xlsx")
                            % {"e": detail})
        raise FileError(_("无法读取 Excel 文件（文件损坏或格式不对）：%(e)s") % {"e": detail})
    # Killed by the allocator (SIGABRT) or MemoryError. An .xls or .ods sheet is held whole (calamine
    # builds it as one dense grid, sized by the furthest cell: one cell in IV65536 of an .xls is 16
    # million cells); an .xlsx is streamed and gets here only through something like a huge XML tag.
    if kind in ("xls", "ods"):
        raise FileError(
            _("读取 .%(kind)s 文件所需的内存超过上限 %(limit)s（这种格式要把整张工作表读入内存：工作表太大，或范围过大，例如远处有一个单元格），未导入；请另存为 .xlsx（逐行读取）或 CSV 后导入")
            % {"kind": kind, "limit": filesizeformat(limits.xlsx_memory_bytes)})
    raise FileError(_("读取 Excel 文件所需的内存超过上限 %(limit)s，未导入；请改用 CSV 或分成几个文件")
                    % {"limit": filesizeformat(limits.xlsx_memory_bytes)})


# --- reading --------------------------------------------------------------------------------------------


def detect_delimiter(path: Path, encoding: str) -> str:
    """``"\t"`` for tab-separated text (Excel's "Unicode text" is UTF-16 with tabs), else ``","``:
    judged on the first lines, by which of the two separates more cells there."""
    try:
        with sealed.open_text(path, encoding) as f:
            sample = f.read(64 * 1024)
    except UnicodeDecodeError:  # a chunk cut inside a character: the first lines are enough
        return ","
    lines = [line for line in sample.splitlines()[:50] if line.strip()]
    tabs = sum(line.count("\t") for line in lines)
    commas = sum(line.count(",") for line in lines)
    return "\t" if tabs > commas else ","


class Tables(list):
    """The tables of a file, and the names of the workbook's hidden sheets (not imported: a hidden
    sheet in a ledger is usually old data; the preview and ``wuyiqu import`` say they were left out)."""

    hidden: list[str] = []


@contextlib.contextmanager
def open_tables(path: str | Path, limits: Limits | None = None) -> Iterator[list[Table]]:
    """The file as tables to stream rows from, as often as needed: the CSV/TSV file itself, or one
    temporary UTF-8 CSV per visible worksheet of an .xlsx/.xls/.ods (sealed, in a private directory
    removed on exit). Either is read through ``sealed.open_plain``: a sealed upload is decrypted as
    it is read, never written out. FileError
    when the file is too large, is not what its name says, or (spreadsheets) is a zip bomb or
    unreadable."""
    path = Path(path)
    limits = limits or Limits.from_settings()
    try:
        size = sealed.plain_size(path)
    except OSError:
        raise FileError(_("文件不存在或无法读取：%(name)s") % {"name": path.name}) from None
    except sealed.SealError:
        raise FileError(_("上传的文件无法解密（数据密钥已更换或文件已损坏），未导入；请重新上传")) from None
    if size > limits.file_bytes:
        raise FileError(_("文件太大（%(size)s），上限为 %(limit)s") % {"size": filesizeformat(size),
                                                                    "limit": filesizeformat(limits.file_bytes)})
    kind = sniff_format(path)
    if kind == "csv":
        check_line_lengths(path, limits)
        encoding = detect_encoding(path)
        yield [Table(0, "", path, encoding, detect_delimiter(path, encoding))]
        return
    if kind != "xls":
        check_xlsx_container(path, limits, ods=kind == "ods")
    target = Path(tempfile.mkdtemp(prefix="wuyiqu-sheets-"))
    try:
        sheets = convert_sheets(path, target, limits, kind=kind)
        tables = Tables(Table(s["index"], s["name"], target / s["file"], "utf-8") for s in sheets if "file" in s)
        tables.hidden = [s["name"] for s in sheets if s.get("hidden")]
        if not tables:
            if tables.hidden:
                raise FileError(_("Excel 文件中没有可见的工作表（已隐藏的工作表不导入：%(names)s）；请在 Excel 或 WPS 中取消隐藏后重新上传")
                                % {"names": "、".join(tables.hidden[:10])})
            raise FileError(_("Excel 文件中没有可见的工作表"))
        yield tables
    finally:
        shutil.rmtree(target, ignore_errors=True)


@contextlib.contextmanager
def readable(path: str | Path, limits: Limits | None = None) -> Iterator[tuple[Path, str]]:
    """The first table of the file as (CSV path, encoding), for as long as the block runs (see
    ``open_tables``)."""
    with open_tables(path, limits) as tables:
        yield Path(tables[0].path), tables[0].encoding


def records_of(path: str | Path, columns: tuple[Column, ...], *, kind_name: str = "",
               mapping: dict | None = None, sheets=None, limits: Limits | None = None
               ) -> Iterator[tuple[int, dict[str, str]]]:
    """Every data row of the file as (line, {column key: text}): the file opened, its header found
    and mapped (``headers.plan``), its sheets read (``iter_records``). FileError when unreadable."""
    limits = limits or Limits.from_settings()
    with open_tables(path, limits) as tables:
        layout = headers.plan(tables, lambda t: first_rows(t, limits), kind_name=kind_name, columns=columns,
                              mapping=mapping, sheets=sheets, gbk=any(t.encoding == "gb18030" for t in tables))
        yield from iter_records(tables, layout, columns, limits=limits)


def iter_raw_rows(path: str | Path, limits: Limits | None = None, *,
                  encoding: str | None = None, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, cells as stripped text) for every row of the file (its first sheet), from
    line 1. Line numbers are what a person sees in a spreadsheet. Raise FileError when unreadable.
    ``encoding``: the file is a CSV already judged by ``open_tables`` (no second look at its content)."""
    limits = limits or Limits.from_settings()
    if encoding is not None:
        yield from _iter_csv(Path(path), limits, encoding, delimiter)
        return
    with open_tables(path, limits) as tables:
        yield from _iter_csv(tables[0].path, limits, tables[0].encoding, tables[0].delimiter)


def table_rows(table: Table, limits: Limits | None = None) -> Iterator[tuple[int, list[str]]]:
    """Every row of ``table`` as (line, stripped cells)."""
    return _iter_csv(Path(table.path), limits or Limits.from_settings(), table.encoding, table.delimiter)


def first_rows(table: Table, limits: Limits | None = None) -> list[tuple[int, list[str]]]:
    """The first non-empty rows of ``table``, enough to find its header and show a few data rows;
    the rest of the file is not read."""
    out = []
    for line, cells in table_rows(table, limits):
        if any(cells):
            out.append((line, cells))
            if len(out) >= headers.SEARCH_ROWS + headers.SAMPLE_ROWS + 2:
                break
    return out


def plan_tables(tables: list[Table], kind, *, mapping: dict | None = None, sheets=None,
                limits: Limits | None = None) -> headers.Layout:
    """The header and column mapping of ``tables`` for ``kind`` (``headers.plan``)."""
    limits = limits or Limits.from_settings()
    return headers.plan(tables, lambda t: first_rows(t, limits), kind_name=kind.name, columns=kind.columns,
                        mapping=mapping, sheets=sheets, gbk=any(t.encoding == "gb18030" for t in tables))


LINE_BITS = 21  # a row's number in an import: (sheet index << LINE_BITS) | row — Excel has 1,048,576 rows
LINE_MASK = (1 << LINE_BITS) - 1


def map_headers(header_row: list[str], columns: tuple[Column, ...]) -> list[str | None]:
    """For each cell of the header row, the column key it names (None for a column not imported),
    through the kind's words (``headers.Dictionary``). FileError naming a missing required column or
    a field named twice."""
    dictionary = headers.Dictionary("", columns)
    keys = [dictionary.lookup(h) or None for h in header_row]
    sheet = headers.SheetLayout(0, "", 1, 1, tuple(header_row), tuple(keys))
    headers._check_sheet(headers.Layout([sheet]), sheet, columns, False)
    return keys


def iter_records(tables: list[Table], layout: headers.Layout, columns: tuple[Column, ...], *,
                 limits: Limits | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line, {column key: text}) for every data row of the layout's sheets, in order; every
    column key is present ("" when absent or empty). ``line`` is the row number for the first sheet
    and ``(sheet index << LINE_BITS) | row`` for the others. Footer rows (合计…, 填表人…) that leave a
    required column empty and repeats of the header row are left out."""
    limits = limits or Limits.from_settings()
    by_index = {t.index: t for t in tables}
    blank = {c.key: "" for c in columns}
    required = [c.key for c in columns if c.required]
    # One C call per row (a million rows go through here): the required cells, to see if one is empty.
    required_cells = operator.itemgetter(*required) if len(required) > 1 else (
        (lambda r, k=required[0]: (r[k],)) if required else (lambda r: ("x",)))
    for sheet in layout.sheets:
        offset = sheet.index << LINE_BITS
        header = list(sheet.headers)
        positions = sheet.positions
        last = sheet.header_line
        for line, row in table_rows(by_index[sheet.index], limits):
            if line <= last or not any(row):
                continue
            record = dict(blank)
            n = len(row)
            for i, k in positions:
                if i < n:
                    record[k] = row[i]
            if row == header or ("" in required_cells(record) and headers.is_footer(row)):
                continue
            yield offset | line, record


# Kept for callers that format one spreadsheet cell (tests, the converter).
_cell_text = xlsx_convert.cell_text
