"""The reports of a scope as Excel (xlsxwriter) and printable PDF (reportlab, in the embedded CJK subset
of ``wuyiqu.lib.pdffont``): the 无疫区 ledger (台账) and the weekly summary (周报).

Excel: every text cell is written with ``write_string`` after ``health.exports.neutralise`` (a cell
starting with =, +, -, @, tab or CR gets a leading quote), and the workbook is opened with
``strings_to_formulas`` off, so a unit named "=1+1" stays text. Counts we computed are numbers.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

from wuyiqu.health.exports import neutralise
from wuyiqu.lib.pdffont import cjk_font

from .selectors import LedgerRow

LEDGER_HEADER = ("单位编码", "单位名称", "层级", "称号", "命名日期", "摘牌日期", "摘牌原因", "当日状态",
                 "未整改警示", "警示次数", "证书编号")


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def ledger_table(rows: Sequence[LedgerRow]) -> list[list[Any]]:
    return [[r.code, r.name, r.kind_label, r.title, r.named_on, r.withdrawn_on, r.withdrawn_reason, r.status_label,
             r.open_warnings, r.warnings_total, r.certificate_number] for r in rows]


def weekly_sections(data: dict[str, Any]) -> list[tuple[str, Sequence[str], list[list[Any]]]]:
    """The weekly summary as (section title, header, rows)."""
    s = data["summary"]
    counts_header = ["层级", *[t["label"] for t in s["totals"]], "合计"]
    counts = [[lv["label"], *[c["n"] for c in lv["counts"]], lv["total"]] for lv in s["levels"]]
    counts.append(["合计", *[t["n"] for t in s["totals"]], s["total"]])
    share = f"{s['unit_share'] * 100:.1f}%" if s["unit_share"] is not None else "—"
    rshare = f"{s['resident_share'] * 100:.1f}%" if s["resident_share"] is not None else "—"
    changes = [
        ["新命名", len(data["namings"])], ["摘牌", len(data["withdrawals"])],
        ["恢复称号", len(data["reinstatements"])], ["新发警示", len(data["warnings_opened"])],
        ["关闭警示", len(data["warnings_closed"])],
        ["单位命名覆盖率", f"{s['named']}/{s['total']}（{share}）"],
        ["居民覆盖率（居住在已命名单位）", f"{s['residents_covered']}/{s['residents_total']}（{rshare}）"],
        # Units with no registered household below them: not in the counts above nor in the coverage.
        ["尚无登记住户、暂不参评的单位", s.get("no_data", 0)],
    ]
    return [
        (f"各层级状态（{data['on'].isoformat()}）", counts_header, counts),
        (f"本周变化（{data['start'].isoformat()} 至 {data['on'].isoformat()}）", ["项目", "数量"], changes),
        ("新命名", ["单位编码", "单位名称", "层级", "称号", "命名日期"],
         [[x["code"], x["name"], x["kind_label"], x["title"], x["on"]] for x in data["namings"]]),
        ("摘牌", ["单位编码", "单位名称", "层级", "称号", "摘牌日期", "原因"],
         [[x["code"], x["name"], x["kind_label"], x["title"], x["on"], x["reason"]] for x in data["withdrawals"]]),
        ("恢复称号", ["单位编码", "单位名称", "层级", "称号", "日期", "原因"],
         [[x["code"], x["name"], x["kind_label"], x["title"], x["on"], x["reason"]] for x in data["reinstatements"]]),
        ("新发警示", ["单位编码", "单位名称", "标准", "警示日期", "整改期限", "状态"],
         [[x["code"], x["name"], x["criterion"], x["opened_on"], x["deadline"], x["status"]]
          for x in data["warnings_opened"]]),
        ("关闭警示", ["单位编码", "单位名称", "标准", "警示日期", "关闭日期", "状态"],
         [[x["code"], x["name"], x["criterion"], x["opened_on"], x["closed_on"], x["status"]]
          for x in data["warnings_closed"]]),
    ]


# --- Excel ----------------------------------------------------------------------------------------------


def _workbook(out):
    import xlsxwriter

    return xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                     "strings_to_numbers": False})


def _write_row(ws, r: int, row: Sequence[Any], fmt=None) -> None:
    for c, value in enumerate(row):
        if value is None or value == "":
            ws.write_blank(r, c, None, fmt)
        elif isinstance(value, int | float):
            ws.write_number(r, c, value, fmt)
        else:  # text (dates as YYYY-MM-DD text): never a formula
            ws.write_string(r, c, str(neutralise(_cell_text(value))), fmt)


def ledger_xlsx(title: str, rows: Sequence[LedgerRow]) -> bytes:
    out = io.BytesIO()
    wb = _workbook(out)
    ws = wb.add_worksheet("台账")
    bold = wb.add_format({"bold": True})
    _write_row(ws, 0, [title], bold)
    _write_row(ws, 1, LEDGER_HEADER, bold)
    for i, row in enumerate(ledger_table(rows), start=2):
        _write_row(ws, i, row)
    for c, width in enumerate((16, 24, 8, 10, 12, 12, 30, 10, 36, 8, 16)):
        ws.set_column(c, c, width)
    ws.freeze_panes(2, 0)
    wb.close()
    return out.getvalue()


def weekly_xlsx(title: str, data: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    wb = _workbook(out)
    ws = wb.add_worksheet("周报")
    bold = wb.add_format({"bold": True})
    _write_row(ws, 0, [title], bold)
    r = 2
    for section, header, rows in weekly_sections(data):
        _write_row(ws, r, [section], bold)
        _write_row(ws, r + 1, header, bold)
        r += 2
        for row in rows or [["（无）"]]:
            _write_row(ws, r, row)
            r += 1
        r += 1
    ws.set_column(0, 0, 18)
    ws.set_column(1, 8, 14)
    wb.close()
    return out.getvalue()


# --- PDF ------------------------------------------------------------------------------------------------


def _styles():
    font = cjk_font()
    return {
        "title": ParagraphStyle("t", fontName=font, fontSize=16, leading=22, spaceAfter=4),
        "sub": ParagraphStyle("s", fontName=font, fontSize=9, leading=12, textColor=colors.HexColor("#5b6675")),
        "h": ParagraphStyle("h", fontName=font, fontSize=12, leading=16, spaceBefore=8, spaceAfter=4),
        "cell": ParagraphStyle("c", fontName=font, fontSize=8, leading=10, wordWrap="CJK"),
    }


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[float], styles) -> LongTable:
    """A table that repeats its header on every page. Short cells are plain strings (fast: a ledger
    of thousands of rows); only cells too long for their column become wrapping Paragraphs."""
    from xml.sax.saxutils import escape

    font = cjk_font()
    # About how many CJK characters of 8 pt fit in each column.
    fits = [max(2, int((w - 6) / 8.2)) for w in widths]

    def cell(value, col):
        text = _cell_text(value)
        return Paragraph(escape(text), styles["cell"]) if len(text) > fits[col] else text

    data = [[cell(h, c) for c, h in enumerate(header)]] + [[cell(v, c) for c, v in enumerate(row)] for row in rows]
    table = LongTable(data, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), font, 8, 10),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#9aa5b1")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef2f7")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]))
    return table


def _document(title: str, subtitle: str, flow: list, pagesize) -> bytes:
    from xml.sax.saxutils import escape

    styles = _styles()
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=pagesize, leftMargin=12 * mm, rightMargin=12 * mm, topMargin=12 * mm,
                            bottomMargin=14 * mm, title=title, author="无疫区创建与监督",
                            initialFontName=cjk_font())  # not Helvetica: no font goes unembedded
    story = [Paragraph(escape(title), styles["title"]), Paragraph(escape(subtitle), styles["sub"]), Spacer(1, 4 * mm)]

    def footer(canvas, doc_):
        canvas.saveState()
        canvas.setFont(cjk_font(), 8)
        canvas.drawRightString(pagesize[0] - 12 * mm, 7 * mm, f"第 {doc_.page} 页")
        canvas.restoreState()

    doc.build(story + flow, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()


def ledger_pdf(title: str, subtitle: str, rows: Sequence[LedgerRow]) -> bytes:
    styles = _styles()
    size = landscape(A4)
    widths = [w * mm for w in (26, 40, 13, 18, 20, 20, 40, 18, 45, 12, 21)]
    flow = [_table(LEDGER_HEADER, ledger_table(rows), widths, styles)] if rows else [
        Paragraph("（尚无命名的单位）", styles["cell"])]
    return _document(title, subtitle, flow, size)


def weekly_pdf(title: str, subtitle: str, data: dict[str, Any]) -> bytes:
    styles = _styles()
    usable = A4[0] - 24 * mm
    flow: list = []
    for section, header, rows in weekly_sections(data):
        flow.append(Paragraph(section, styles["h"]))
        if rows:
            flow.append(_table(header, rows, [usable / len(header)] * len(header), styles))
        else:
            flow.append(Paragraph("（无）", styles["cell"]))
    return _document(title, subtitle, flow, A4)
