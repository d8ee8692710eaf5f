"""The error workbook of an import: the refused rows as the person's own columns, plus 错误原因, the
bad cells filled red, so that they can be fixed and uploaded again (only those rows).

Built once, at the end of an import's check pass, from the file itself (its header row and the
refused rows, read again — only when there are refused rows), one sheet per imported sheet. It holds
personal data, so the job keeps it encrypted (``wuyiqu.lib.crypto``) and the page that sends it
checks the job's scope and audits the download.
"""

from __future__ import annotations

import base64
import io

from django.utils.translation import gettext as _

from wuyiqu.lib import crypto

from .headers import Layout, Table
from .parsers import LINE_BITS, table_rows

MAX_ROWS = 10_000  # refused rows written to the workbook; the job counts them all
REASON = "错误原因"  # the workbook's own column: a word in the file, like the headers (not translated)
_RED = "FFC7CE"


def _storable(value: str) -> str:
    """``value`` with the control characters a worksheet cannot hold (openpyxl refuses them: ESC, BEL…)
    shown as escapes (``\\x1b``), so that a hostile cell is shown, not a crash of the import."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return ILLEGAL_CHARACTERS_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", value) if isinstance(value, str) else value


def build(tables: list[Table], layout: Layout, refused: dict[int, list[tuple[str, str]]], total: int) -> bytes:
    """The XLSX of the rows ``refused`` {line: [(field key, message)]} of the layout's sheets."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font, PatternFill

    wb = Workbook(write_only=True)
    bad_fill = PatternFill("solid", fgColor=_RED)
    bold = Font(bold=True)
    by_index = {t.index: t for t in tables}
    written = 0
    for sheet in layout.sheets:
        lines = {line & ((1 << LINE_BITS) - 1): line for line in refused if line >> LINE_BITS == sheet.index}
        if not lines:
            continue
        ws = wb.create_sheet((sheet.name or _("错误行"))[:31])
        column_of = {k: i for i, k in sheet.positions}
        header = []
        for text in (*sheet.headers, REASON):
            cell = WriteOnlyCell(ws, value=text)
            cell.font = bold
            header.append(cell)
        ws.append(header)
        width = len(sheet.headers)
        for row_number, cells in table_rows(by_index[sheet.index]):
            line = lines.get(row_number)
            if line is None:
                continue
            problems = refused[line]
            bad = {column_of[f] for f, _m in problems if f in column_of}
            values = (cells + [""] * width)[:width]
            out = []
            for i, value in enumerate(values):
                # Text cells: an ID number stays 18 digits when the person opens the workbook again.
                cell = WriteOnlyCell(ws, value=_storable(value))
                cell.number_format = "@"
                if i in bad:
                    cell.fill = bad_fill
                out.append(cell)
            reason = WriteOnlyCell(ws, value=_storable("；".join(dict.fromkeys(m for _f, m in problems))))
            reason.fill = bad_fill
            out.append(reason)
            ws.append(out)
            written += 1
    if total > written:
        ws = wb.create_sheet(_("说明"))
        ws.append([_("共%(n)d行有错误，本表列出前%(m)d行") % {"n": total, "m": written}])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def build_encrypted(tables: list[Table], layout: Layout, refused: dict[int, list[tuple[str, str]]], total: int) -> bytes:
    """``build`` encrypted for the job's ``error_workbook``."""
    data = build(tables, layout, refused, total)
    return crypto.cipher().encrypt(base64.b64encode(data).decode("ascii"))


def decrypt(blob: bytes | memoryview) -> bytes:
    """The XLSX bytes of a job's ``error_workbook``."""
    return base64.b64decode(crypto.cipher().decrypt(blob))
