"""A corpus of ledgers as street offices keep them, made by code at test time (no real people, nothing
binary committed): title rows, two-row merged headers, 序号 and blank columns, footers, one sheet per
building, office words for headers, legacy .xls (written by xlwt, a real writer), .ods, CSV in GBK,
GB18030 and Excel's "Unicode text" (UTF-16, tab-separated), and the values Excel mangles.

Each ``Ledger`` makes its file for a ``Town`` and says what importing it must give: the residents
(or other records) it creates, or the words of its refusal. Used by tests/test_import_ledgers.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import openpyxl
import xlwt
from hostile_files import valid_id

FOOTER = [["合计：3人"], ["填表人：某某    审核人：某某    填表日期：2022年11月28日"]]


@dataclass(frozen=True)
class Town:
    """Two buildings of one community, a household in each (codes of the registry)."""

    h1: str  # a household of building 1
    h2: str  # a household of building 2


@dataclass(frozen=True)
class Person:
    id_number: str
    name: str
    household: str
    phone: str = ""
    bedridden: bool = False


def people(town: Town, n: int = 3, *, start: int = 1, household: str | None = None) -> list[Person]:
    """Made-up residents: generated names and valid ID numbers, phones 1380000xxxx."""
    return [Person(valid_id(start + i, area="500222"), f"居民{start + i:03d}", household or town.h1,
                   f"1380000{start + i:04d}") for i in range(n)]


@dataclass(frozen=True)
class Ledger:
    id: str
    filename: str
    make: Callable[[Town], bytes]
    kind: str = "residents"
    expect: Callable[[Town], list[Person]] | None = None  # residents the import must leave on the register
    refused: tuple[str, ...] = ()  # words of the job's message when the file is refused as a whole
    bad_rows: tuple[tuple[int, str], ...] = ()  # (row, field) of the refused rows
    bad_says: tuple[str, ...] = ()  # words of the first refused row's message
    sheets: tuple[str, ...] = ()  # the sheets chosen (none: every sheet with a header)
    mapping: dict[str, str] = field(default_factory=dict)  # the person's mapping


# --- writers ---------------------------------------------------------------------------------------------


def xlsx(sheets: list[tuple[str, list[list]]], *, merges: dict[str, list[str]] | None = None,
         text_columns: dict[str, list[int]] | None = None) -> bytes:
    """An .xlsx written by openpyxl: sheets of rows (None: an empty cell), merged ranges per sheet."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets:
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
        for cell_range in (merges or {}).get(name, []):
            ws.merge_cells(cell_range)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def xls(sheets: list[tuple[str, list[list]]], *, merges: dict[str, list[tuple[int, int, int, int]]] | None = None) -> bytes:
    """A legacy .xls written by xlwt (BIFF8, as WPS and older Excel save it). Merges are (r1, r2, c1, c2),
    0-based; dates get a date format, like a cell a person typed a date into."""
    wb = xlwt.Workbook(encoding="utf-8")
    date_style = xlwt.easyxf(num_format_str="YYYY/MM/DD")
    for name, rows in sheets:
        ws = wb.add_sheet(name)
        merged = {(r1, c1): (r2, c2) for r1, r2, c1, c2 in (merges or {}).get(name, [])}
        covered = {(r, c) for (r1, c1), (r2, c2) in merged.items() for r in range(r1, r2 + 1)
                   for c in range(c1, c2 + 1)} - set(merged)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if (r, c) in covered or value is None:
                    continue
                if (r, c) in merged:
                    r2, c2 = merged[(r, c)]
                    ws.write_merge(r, r2, c, c2, value)
                elif isinstance(value, dt.date):
                    ws.write(r, c, value, date_style)
                else:
                    ws.write(r, c, value)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def ods(sheets: list[tuple[str, list[list]]]) -> bytes:
    """An OpenDocument spreadsheet (.ods, as LibreOffice and WPS save it): string and float cells."""
    body = []
    for name, rows in sheets:
        body.append(f'<table:table table:name="{escape(name)}">')
        for row in rows:
            body.append("<table:table-row>")
            for v in row:
                if isinstance(v, (int, float)):
                    body.append(f'<table:table-cell office:value-type="float" office:value="{v}"><text:p>{v}</text:p>'
                                "</table:table-cell>")
                elif v in (None, ""):
                    body.append("<table:table-cell/>")
                else:
                    body.append(f'<table:table-cell office:value-type="string"><text:p>{escape(v)}</text:p>'
                                "</table:table-cell>")
            body.append("</table:table-row>")
        body.append("</table:table>")
    content = ('<?xml version="1.0" encoding="UTF-8"?><office:document-content '
               'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
               'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
               "<office:body><office:spreadsheet>" + "".join(body) + "</office:spreadsheet></office:body>"
               "</office:document-content>")
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
                'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
                '<manifest:file-entry manifest:full-path="/" '
                'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                "</manifest:manifest>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def delimited(rows: list[list], *, delimiter: str = ",") -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows([["" if v is None else v for v in r]
                                                                          for r in rows])
    return buf.getvalue()


# --- the shapes -------------------------------------------------------------------------------------------

TITLE = ["文龙社区居民花名册（2022年11月）"]
OFFICE = ["序号", "姓名", "公民身份号码", "手机号", "房号"]


def office_rows(ps: list[Person]) -> list[list]:
    return [[i, p.name, p.id_number, p.phone, p.household] for i, p in enumerate(ps, start=1)]


def title_rows_and_footer(t: Town) -> bytes:
    return xlsx([("花名册", [TITLE, ["制表单位：文龙社区居委会"], OFFICE, *office_rows(people(t)), [], *FOOTER])],
                merges={"花名册": ["A1:E1"]})


def two_row_merged_header(t: Town) -> bytes:
    rows = [TITLE, ["序号", "居民信息", None, None, "户编码"], [None, "姓名", "身份证号码", "联系电话", None],
            *office_rows(people(t))]
    return xlsx([("Sheet1", rows)], merges={"Sheet1": ["A1:E1", "B2:D2", "A2:A3", "E2:E3"]})


def legacy_xls(t: Town) -> bytes:
    header = ["序号", None, "姓名", "证件号码", "联系方式", "门牌号", "备注"]  # B: a blank column
    rows = [[i, None, p.name, p.id_number, p.phone, p.household, ""] for i, p in enumerate(people(t), start=1)]
    return xls([("花名册", [TITLE, header, *rows, *FOOTER])], merges={"花名册": [(0, 0, 0, 6)]})


def xls_two_row_header(t: Town) -> bytes:
    rows = [TITLE, ["序号", "居民信息", None, None, "房号"], [None, "姓名", "公民身份号码", "手机号码", None],
            *office_rows(people(t))]
    return xls([("Sheet1", rows)], merges={"Sheet1": [(0, 0, 0, 4), (1, 1, 1, 3), (1, 2, 0, 0), (1, 2, 4, 4)]})


def one_sheet_per_building(t: Town) -> bytes:
    b1, b2 = people(t, 2), people(t, 2, start=11, household=t.h2)
    return xls([("1号楼", [["1号楼居民"], OFFICE, *office_rows(b1), ["合计：2人"]]),
                ("2号楼", [["2号楼居民"], OFFICE, *office_rows(b2), ["合计：2人"]]),
                ("说明", [["本表由网格员填写"], ["身份证号请设置为文本格式"]])])


def sheets_with_other_headers(t: Town) -> bytes:
    return xlsx([("1号楼", [OFFICE, *office_rows(people(t, 2))]),
                 ("汇总", [["楼栋", "户数", "人数", "姓名", "身份证号"], ["1号楼", 1, 2, "", ""]])])


def ods_file(t: Town) -> bytes:
    return ods([("居民", [TITLE, OFFICE, *office_rows(people(t)), *FOOTER])])


def gbk_csv(t: Town) -> bytes:
    return delimited([TITLE, OFFICE, *office_rows(people(t)), *FOOTER]).encode("gbk")


RARE = "居民䶮"  # a character of GB18030 outside GBK


def gb18030_csv(t: Town) -> bytes:
    ps = people(t)
    rows = office_rows(ps)
    rows[0][1] = RARE
    return delimited([OFFICE, *rows]).encode("gb18030")


def utf8_bom_csv(t: Town) -> bytes:
    return ("\ufeff" + delimited([TITLE, OFFICE, *office_rows(people(t))])).encode("utf-8")


def unicode_text(t: Town) -> bytes:
    """Excel's 另存为“Unicode 文本”: UTF-16 with a BOM, tab-separated."""
    return delimited([TITLE, OFFICE, *office_rows(people(t))], delimiter="\t").encode("utf-16")


def id_as_float(t: Town) -> bytes:
    rows = office_rows(people(t))
    rows[1][2] = "5.00222E+17"  # how Excel shows (and saves as CSV) an ID typed into a number cell
    return delimited([OFFICE, *rows]).encode("utf-8")


def id_rounded_by_excel(t: Town) -> bytes:
    rows = office_rows(people(t))
    rounded = int(people(t)[2].id_number[:15] + "000")  # Excel keeps 15 significant digits
    rows[2][2] = float(rounded)  # a number cell
    return xlsx([("Sheet1", [OFFICE, *rows])])


def phones_as_numbers(t: Town) -> bytes:
    ps = people(t)
    rows = office_rows(ps)
    rows[0][3] = float(ps[0].phone)  # a number cell in .xlsx
    rows[1][3] = ps[1].phone + ".0"  # a float written out as text
    return xlsx([("Sheet1", [OFFICE, *rows])])


FULL = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def full_width(t: Town) -> bytes:
    rows = office_rows(people(t))
    for row in rows:
        row[2] = row[2].translate(FULL)
        row[3] = "　" + row[3].translate(FULL)
    return delimited([OFFICE, *rows]).encode("utf-8")


def yes_no_words(t: Town) -> bytes:
    header = ["姓名", "身份证号", "户编码", "是否卧床"]
    ps = people(t, 4)
    marks = ["√", "是", "否", ""]
    return delimited([header, *[[p.name, p.id_number, p.household, m] for p, m in zip(ps, marks, strict=True)]]
                     ).encode("utf-8")


def no_header(t: Town) -> bytes:
    return xlsx([("Sheet1", [["文龙社区居民花名册"], ["甲", "乙", "丙"], ["1", "2", "3"]])])


def one_field_twice(t: Town) -> bytes:
    header = ["序号", "姓名", "身份证号码", "证件号码", "户编码"]
    return delimited([header, *[[i, p.name, p.id_number, p.id_number, p.household]
                                for i, p in enumerate(people(t), start=1)]]).encode("utf-8")


def own_words_with_mapping(t: Town) -> bytes:
    header = ["编号", "人员名", "证件", "住户"]
    return delimited([header, *[[i, p.name, p.id_number, p.household] for i, p in enumerate(people(t), start=1)]]
                     ).encode("utf-8")


def header_repeated_per_page(t: Town) -> bytes:
    ps = people(t, 4)
    rows = office_rows(ps)
    return xlsx([("Sheet1", [OFFICE, *rows[:2], OFFICE, *rows[2:]])])


def bad_rows_named_by_sheet(t: Town) -> bytes:
    b1, b2 = office_rows(people(t, 2)), office_rows(people(t, 2, start=11, household=t.h2))
    b2[1][2] = b2[1][2][:17] + ("0" if b2[1][2][17] != "0" else "1")  # a wrong check digit
    return xlsx([("1号楼", [OFFICE, *b1]), ("2号楼", [["2号楼"], OFFICE, *b2])])


def _no_phone(ps: list[Person]) -> list[Person]:
    return [Person(p.id_number, p.name, p.household) for p in ps]


def _bedridden(ps: list[Person], marks: list[bool]) -> list[Person]:
    return [Person(p.id_number, p.name, p.household, "", m) for p, m in zip(ps, marks, strict=True)]


LEDGERS = [
    Ledger("xlsx-title-rows-and-footer", "花名册.xlsx", title_rows_and_footer, expect=lambda t: people(t)),
    Ledger("xlsx-two-row-merged-header", "花名册.xlsx", two_row_merged_header, expect=lambda t: people(t)),
    Ledger("xls-blank-column-and-footer", "花名册.xls", legacy_xls, expect=lambda t: people(t)),
    Ledger("xls-two-row-merged-header", "花名册.xls", xls_two_row_header, expect=lambda t: people(t)),
    Ledger("xls-one-sheet-per-building", "各楼栋.xls", one_sheet_per_building,
           expect=lambda t: people(t, 2) + people(t, 2, start=11, household=t.h2)),
    Ledger("xls-choose-one-sheet", "各楼栋.xls", one_sheet_per_building, sheets=("2号楼",),
           expect=lambda t: people(t, 2, start=11, household=t.h2)),
    Ledger("xlsx-sheet-with-other-headers", "各楼栋.xlsx", sheets_with_other_headers,
           refused=("工作表“汇总”第1行的列标题与工作表“1号楼”不同", "“户编码”（工作表“1号楼”的E列）", "--sheet")),
    Ledger("ods-with-title-and-footer", "花名册.ods", ods_file, expect=lambda t: people(t)),
    Ledger("csv-gbk-office-words", "花名册.csv", gbk_csv, expect=lambda t: people(t)),
    Ledger("csv-gb18030-rare-name", "花名册.csv", gb18030_csv,
           expect=lambda t: [Person(p.id_number, RARE if i == 0 else p.name, p.household, p.phone)
                             for i, p in enumerate(people(t))]),
    Ledger("csv-utf8-bom-title", "花名册.csv", utf8_bom_csv, expect=lambda t: people(t)),
    Ledger("utf16-tab-separated", "花名册.txt", unicode_text, expect=lambda t: people(t)),
    Ledger("xlsx-header-repeated-per-page", "花名册.xlsx", header_repeated_per_page, expect=lambda t: people(t, 4)),
    Ledger("xlsx-phones-as-numbers", "花名册.xlsx", phones_as_numbers, expect=lambda t: people(t)),
    Ledger("csv-full-width-digits", "花名册.csv", full_width, expect=lambda t: people(t)),
    Ledger("csv-yes-no-words", "花名册.csv", yes_no_words,
           expect=lambda t: _bedridden(people(t, 4), [True, True, False, False])),
    Ledger("csv-own-words-with-a-mapping", "花名册.csv", own_words_with_mapping,
           mapping={"人员名": "name", "证件": "id_number", "住户": "household_code", "编号": ""},
           expect=lambda t: _no_phone(people(t))),
    Ledger("csv-id-as-float", "花名册.csv", id_as_float, bad_rows=((3, "id_number"),),
           bad_says=("5.00222E+17", "科学计数法", "设置为“文本”格式")),
    Ledger("xlsx-id-rounded-by-excel", "花名册.xlsx", id_rounded_by_excel, bad_rows=((4, "id_number"),),
           bad_says=("末尾是000", "15位有效数字", "设置为“文本”格式")),
    Ledger("xlsx-bad-row-named-by-sheet", "各楼栋.xlsx", bad_rows_named_by_sheet, bad_rows=((4, "id_number"),),
           bad_says=("校验位",)),
    Ledger("xlsx-no-header", "花名册.xlsx", no_header, refused=("找不到列标题行", "身份证号、姓名、户编码")),
    Ledger("csv-one-field-twice", "花名册.csv", one_field_twice,
           refused=("第1行：C列“身份证号码”和D列“证件号码”都对应“身份证号”",)),
]
