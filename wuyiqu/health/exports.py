"""Excel exports of the health lists (xlsxwriter), safe to open in a spreadsheet."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence

from django.http import HttpResponse

# A cell starting with one of these is read as a formula by Excel/WPS (CSV/formula injection, e.g. a
# resident named "=HYPERLINK(...)"); a leading quote makes it plain text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """``value`` as it is safe to put in a cell: text starting like a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def xlsx_bytes(sheet: str, header: Sequence[str], rows: Sequence[Sequence]) -> bytes:
    """One sheet: a bold header row, then ``rows``; dates as dates, text neutralised and never a formula."""
    import xlsxwriter

    out = io.BytesIO()
    wb = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                   "strings_to_numbers": False})
    ws = wb.add_worksheet(sheet[:31])
    bold = wb.add_format({"bold": True})
    date_format = wb.add_format({"num_format": "yyyy-mm-dd"})
    for c, title in enumerate(header):
        ws.write_string(0, c, title, bold)
        ws.set_column(c, c, max(10, len(title) * 2 + 4))
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if isinstance(value, dt.date):
                ws.write_datetime(r, c, dt.datetime(value.year, value.month, value.day), date_format)
            elif value is None or value == "":
                ws.write_blank(r, c, None)
            else:
                ws.write_string(r, c, str(neutralise(value)))
    ws.freeze_panes(1, 0)
    wb.close()
    return out.getvalue()


def xlsx_response(filename: str, sheet: str, header: Sequence[str], rows: Sequence[Sequence]) -> HttpResponse:
    response = HttpResponse(
        xlsx_bytes(sheet, header, rows),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
