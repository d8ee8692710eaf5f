"""Hostile files for the import tests, made by code at test time (nothing binary is committed), and
the fingerprint of the database that shows a refused import changed nothing.

Used by tests/test_reliability_hostile_imports.py, tests/test_fuzz_parsers.py and bench/hostile_imports.py.
"""

from __future__ import annotations

import csv
import hashlib
import io
import struct
import zlib
from collections.abc import Iterable

from django.apps import apps

from wuyiqu.lib.idcard import check_digit

ZH = ["身份证号", "姓名", "户编码", "联系电话", "免检(卧床)"]
HOUSEHOLD_HEADER = ["户编码", "所属单位编码", "地址", "核实日期"]
# The attempt itself is recorded (a failed job and its audit row); sign-ins touch the session.
BOOKKEEPING = {"imports.ImportJob", "audit.AuditEvent", "sessions.Session"}


def valid_id(n: int, birth: str = "19800101", area: str = "500110") -> str:
    first17 = f"{area}{birth}{n:03d}"
    return first17 + check_digit(first17)


def bad_check_digit(n: int) -> str:
    good = valid_id(n)
    return good[:17] + ("0" if good[17] != "0" else "1")


def csv_text(header: list[str], rows: Iterable[list[str]], *, lineterminator: str = "\r\n") -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=lineterminator)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


# --- the database's fingerprint -------------------------------------------------------------------------


def _plain(value):
    return bytes(value) if isinstance(value, memoryview) else value


def fingerprint(exclude: set[str] = BOOKKEEPING) -> dict[str, str]:
    """{table: "rows:sha256 of every row in key order"} for every model's table but ``exclude``."""
    out = {}
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.label in exclude or meta.proxy or not meta.managed:
            continue
        fields = [f.attname for f in meta.concrete_fields]
        digest = hashlib.sha256()
        n = 0
        for row in model._base_manager.order_by("pk").values_list(*fields).iterator(chunk_size=5000):
            digest.update(repr(tuple(_plain(v) for v in row)).encode())
            n += 1
        out[meta.db_table] = f"{n}:{digest.hexdigest()}"
    return out


# --- ZIP / XLSX built by hand ---------------------------------------------------------------------------


def _dos_time() -> tuple[int, int]:
    return (0, (2022 - 1980) << 9 | 1 << 5 | 1)


def raw_zip(members: list[tuple[str, bytes, int, int, int]], *, needs_version: int = 20) -> bytes:
    """A ZIP from already-deflated members: (name, raw deflate data, CRC-32, declared unpacked size,
    method 8). Sizes are written as given, so a member may lie about its unpacked size; the central
    directory says ``needs_version`` is needed to extract (20: version 2.0)."""
    out = io.BytesIO()
    central = io.BytesIO()
    t, d = _dos_time()
    for name, data, crc, size, method in members:
        offset = out.tell()
        encoded = name.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, t, d, crc, len(data), size,
                              len(encoded), 0))
        out.write(encoded)
        out.write(data)
        central.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, needs_version, 0, method, t, d, crc, len(data),
                                  size, len(encoded), 0, 0, 0, 0, 0, offset))
        central.write(encoded)
    start = out.tell()
    out.write(central.getvalue())
    count = len(members)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central.getvalue()), start, 0))
    return out.getvalue()


def _deflate(data: bytes) -> bytes:
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    return co.compress(data) + co.flush()


WORKBOOK_MEMBERS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '</Types>'),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        '</Relationships>'),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
        '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '</Relationships>'),
}
SHEET_HEAD = b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
SHEET_TAIL = b"</sheetData></worksheet>"


def inline_row(row: int, cells: list[str], columns: list[str] | None = None) -> bytes:
    from xml.sax.saxutils import escape

    refs = columns or [chr(ord("A") + i) for i in range(len(cells))]
    inner = "".join(f'<c r="{ref}{row}" t="inlineStr"><is><t>{escape(v)}</t></is></c>' for ref, v in zip(refs, cells, strict=True))
    return f'<row r="{row}">{inner}</row>'.encode()


def xlsx_from_sheet(sheet: bytes | None = None, *, sheet_member: tuple[bytes, int, int] | None = None,
                    extra: list[tuple[str, bytes, int, int, int]] = (), needs_version: int = 20) -> bytes:
    """A minimal workbook whose first sheet is the XML ``sheet`` (or the raw deflated ``sheet_member``:
    (data, CRC, declared size)), with ``extra`` members appended."""
    members = [(name, _deflate(text.encode()), zlib.crc32(text.encode()), len(text.encode()), 8)
               for name, text in WORKBOOK_MEMBERS.items()]
    if sheet_member is None:
        sheet_member = (_deflate(sheet), zlib.crc32(sheet), len(sheet))
    data, crc, size = sheet_member
    members.append(("xl/worksheets/sheet1.xml", data, crc, size, 8))
    return raw_zip(members + list(extra), needs_version=needs_version)


def xlsx_rows(rows: list[list[str]], *, needs_version: int = 20) -> bytes:
    return xlsx_from_sheet(SHEET_HEAD + b"".join(inline_row(i, r) for i, r in enumerate(rows, start=1)) + SHEET_TAIL,
                           needs_version=needs_version)


def repeated_deflate(prefix: bytes, block: bytes, times: int, suffix: bytes) -> tuple[bytes, int, int]:
    """(raw deflate data, CRC-32, size) of prefix + block × times + suffix, made without compressing
    every copy: after a full flush the compressor starts afresh, so each copy deflates to the same bytes."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = co.compress(prefix) + co.flush(zlib.Z_FULL_FLUSH)
    copy = co.compress(block) + co.flush(zlib.Z_FULL_FLUSH)
    tail = co.compress(suffix) + co.flush()
    crc = zlib.crc32(prefix)
    for _ in range(times):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(suffix, crc)
    return head + copy * times + tail, crc, len(prefix) + len(block) * times + len(suffix)


def bomb_by_ratio(megabytes: int = 64) -> bytes:
    """An XLSX whose sheet unpacks to ``megabytes`` MiB of rows from about 1/400 of that."""
    block = inline_row(2, ["A" * 1000]) * 1000
    block = block + b" " * ((1 << 20) - len(block) % (1 << 20))
    data, crc, size = repeated_deflate(SHEET_HEAD + inline_row(1, ["身份证号"]), block, megabytes, SHEET_TAIL)
    return xlsx_from_sheet(sheet_member=(data, crc, size))


def bomb_by_size(members: int = 600) -> bytes:
    """An XLSX with ``members`` extra parts of 1 MiB each (none compressed enough to trip the ratio
    check on its own) that together unpack past the default 512 MiB."""
    block = (b"<x>" + b"0123456789abcdef" * 64 + b"</x>\n") * 1000
    block = block[: (1 << 20)]
    data = _deflate_fresh(block)
    crc = zlib.crc32(block)
    extra = [(f"xl/media/part{i}.xml", data, crc, len(block), 8) for i in range(members)]
    return xlsx_from_sheet(SHEET_HEAD + inline_row(1, ["身份证号"]) + SHEET_TAIL, extra=extra)


def _deflate_fresh(data: bytes) -> bytes:
    co = zlib.compressobj(1, zlib.DEFLATED, -15)
    return co.compress(data) + co.flush()


def lying_sizes(megabytes: int = 32) -> bytes:
    """An XLSX whose sheet declares 200 bytes unpacked but unpacks to ``megabytes`` MiB."""
    block = inline_row(2, ["B" * 1000]) * 1000
    data, crc, _size = repeated_deflate(SHEET_HEAD + inline_row(1, ["身份证号"]), block, megabytes, SHEET_TAIL)
    return xlsx_from_sheet(sheet_member=(data, crc, 200))


def far_cell(header: list[str]) -> bytes:
    """A few KB: the header in row 1 and one cell in XFD1048576, the last cell a sheet can have."""
    return xlsx_from_sheet(SHEET_HEAD + inline_row(1, header) + inline_row(1048576, ["x"], ["XFD"]) + SHEET_TAIL)


PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
