"""The .xlsx reader streams its sheets (issue 14, bounded memory): ``xlsx_convert._stream_sheet`` reads
the sheet's XML row by row with expat instead of calamine's whole-sheet grid. It must give the same
text for every kind of cell that calamine gave (the imports, their messages and the error workbook
are built on that text), read what other writers write (namespace prefixes, cells and rows without
a reference, the 1904 date system, rich and phonetic text), refuse XML with a DTD, and list the
hidden sheets without reading them."""

from __future__ import annotations

import datetime as dt
import io
import zlib
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from hostile_files import SHEET_HEAD, SHEET_TAIL, WORKBOOK_MEMBERS, _deflate, raw_zip, xlsx_from_sheet

from wuyiqu.imports import xlsx_convert


def _read(path: Path, how: str) -> tuple[list[dict], dict[str, str]]:
    """The listed sheets and each written CSV's text, through the streamed reader or calamine."""
    files: dict[str, io.StringIO] = {}

    class Keep(io.StringIO):
        def close(self):
            files[self.name] = self.getvalue()
            super().close()

    def writing(name):
        out = Keep(newline="")
        out.name = name
        return out

    with open(path, "rb") as f:
        if how == "stream":
            book = xlsx_convert._ooxml(f, 10_000)
            assert book is not None
            listed = xlsx_convert._stream_workbook(book, writing, 200)
        else:
            listed = xlsx_convert._calamine_workbook(f, writing)
    return listed, {s["name"]: files[s["file"]] for s in listed if "file" in s}


def every_kind_of_cell(path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "1号楼"
    ws.append(["身份证号", "姓名", "日期", "时间", "数", "布尔", "公式"])
    ws.append(["500110195001010008", " 居民 ", dt.date(2022, 11, 28), dt.datetime(2022, 11, 28, 7, 31),
               13800138000, True, "=1+2"])
    ws.append([5.00222198001010048e17, "a&b<c>", dt.datetime(2022, 11, 28), dt.time(7, 30, 15), 3.25, False, None])
    ws.append([500222197206180000, None, 44893, 0.5, -1.5e-7, None, "x"])
    ws["C4"].number_format = "yyyy年m月d日"
    ws["D4"].number_format = "h:mm"
    ws.append([])
    ws.append([None, None, "only C"])
    ws["H8"] = "far right"
    ws.cell(row=9, column=2, value=dt.datetime(1900, 1, 15, 12, 0))
    ws.cell(row=10, column=1, value="1.0E+2")
    ws.cell(row=11, column=1, value=12345678901234567890)
    ws.cell(row=12, column=1, value=0.1 + 0.2)
    ws.cell(row=12, column=2, value=1e-20)
    ws.cell(row=12, column=3, value=123.0)
    ws.cell(row=13, column=1, value=dt.datetime(2022, 11, 28, 7, 30, 59, 600_000))  # to the second, as calamine
    hidden = wb.create_sheet("旧数据")
    hidden.sheet_state = "hidden"
    hidden.append(["x"])
    second = wb.create_sheet("2号楼")
    second.append(["a", "b"])
    second["A5"] = "below empty rows"
    wb.create_chartsheet("图表")
    wb.save(path)


def shared_strings_workbook(path: Path) -> None:
    """xlsxwriter writes shared strings (openpyxl inline ones), rich strings and a custom date format."""
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("花名册")
    bold = wb.add_format({"bold": True})
    date = wb.add_format({"num_format": "yyyy/mm/dd"})
    not_date = wb.add_format({"num_format": '0.00"d"'})  # a "d" in quotes does not make a date
    ws.write_row(0, 0, ["姓名", "身份证号", "备注", "日期", "数"])
    for r in range(1, 30):
        ws.write_row(r, 0, [f"居民{r % 7}", f"50011019500101{r:04d}", "同上" if r % 2 else ""])
        ws.write_number(r, 3, 44893 + r, date)
        ws.write_number(r, 4, r + 0.5, not_date)
    ws.write_rich_string(30, 0, "重点", bold, "人员", " 备注 ")
    ws.write_boolean(31, 0, False)
    ws.write_formula(32, 0, '="甲"&"乙"', None, "甲乙")
    ws.write_formula(33, 0, "=1/0", None, "#DIV/0!")
    wb.close()


@pytest.mark.parametrize("make", [every_kind_of_cell, shared_strings_workbook])
def test_the_streamed_reader_gives_every_cell_the_text_calamine_gave(tmp_path, make):
    path = tmp_path / "book.xlsx"
    make(path)
    streamed, calamine = _read(path, "stream"), _read(path, "calamine")
    assert streamed == calamine
    assert streamed[1], "something was read"


def test_hidden_sheets_are_listed_and_not_read(tmp_path):
    path = tmp_path / "book.xlsx"
    every_kind_of_cell(path)
    listed, texts = _read(path, "stream")
    assert listed == [{"index": 0, "name": "1号楼", "file": "0.csv"}, {"index": 1, "name": "旧数据", "hidden": True},
                      {"index": 2, "name": "2号楼", "file": "2.csv"}]  # the chart sheet is not a sheet of rows
    assert texts["1号楼"].splitlines()[1] == "500110195001010008,居民,2022-11-28,2022-11-28 07:31:00,13800138000,是"
    assert texts["1号楼"].splitlines()[12] == "2022-11-28 07:30:59"
    assert texts["2号楼"] == "a,b\r\n\r\n\r\n\r\nbelow empty rows\r\n"


def _workbook(sheet: bytes, *, workbook_pr: str = "", shared: bytes | None = None, styles: bytes | None = None) -> bytes:
    members = dict(WORKBOOK_MEMBERS)
    members["xl/workbook.xml"] = members["xl/workbook.xml"].replace("<sheets>", f"{workbook_pr}<sheets>")
    extra = []
    for name, data in (("xl/sharedStrings.xml", shared), ("xl/styles.xml", styles)):
        if data is not None:
            extra.append((name, _deflate(data), zlib.crc32(data), len(data), 8))
    sheet_member = (_deflate(sheet), zlib.crc32(sheet), len(sheet))
    built = [(n, _deflate(t.encode()), zlib.crc32(t.encode()), len(t.encode()), 8) for n, t in members.items()]
    return raw_zip([*built, ("xl/worksheets/sheet1.xml", *sheet_member, 8), *extra])


def test_other_writers_shapes_prefixes_missing_references_1904_dates_and_phonetic_text(tmp_path):
    ns = b'xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    sheet = (b'<?xml version="1.0"?><x:worksheet ' + ns + b"><x:sheetData>"
             b'<x:row><x:c t="s"><x:v>0</x:v></x:c><x:c t="inlineStr"><x:is><x:r><x:t>A</x:t></x:r>'
             b'<x:r><x:t xml:space="preserve"> B</x:t></x:r></x:is></x:c></x:row>'
             b'<x:row r="3"><x:c r="C3" s="1"><x:v>1</x:v></x:c><x:c><x:v>42</x:v></x:c>'
             b'<x:c t="b"><x:v>1</x:v></x:c><x:c t="e"><x:v>#N/A</x:v></x:c><x:c t="d"><x:v>2022-11-28T07:30:00</x:v></x:c></x:row>'
             b"</x:sheetData></x:worksheet>")
    shared = (b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1">'
              b"<si><t>\xe7\x8e\x8b</t><rPh sb=\"0\" eb=\"1\"><t>\xe3\x83\xaf\xe3\x83\xb3</t></rPh></si></sst>")
    styles = (b'<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><cellXfs count="2">'
              b'<xf numFmtId="0"/><xf numFmtId="14"/></cellXfs></styleSheet>')
    path = tmp_path / "other.xlsx"
    path.write_bytes(_workbook(sheet, workbook_pr='<workbookPr date1904="1"/>', shared=shared, styles=styles))
    listed, texts = _read(path, "stream")
    assert listed == [{"index": 0, "name": "Sheet1", "file": "0.csv"}]
    # row 1: the shared string without its phonetic guide, the rich inline text joined; row 3: C3 is
    # serial 1 in the 1904 system (2 January 1904), D3..G3 follow without references (an error is no value).
    assert texts["Sheet1"] == "王,A B\r\n\r\n,,1904-01-02,42,是,,2022-11-28 07:30:00\r\n"


def test_xml_with_a_dtd_is_refused(tmp_path):
    sheet = (b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
             + SHEET_HEAD.split(b"?>", 1)[1] + b'<row r="1"><c r="A1" t="inlineStr"><is><t>&b;</t></is></c></row>'
             + SHEET_TAIL)
    path = tmp_path / "dtd.xlsx"
    path.write_bytes(xlsx_from_sheet(sheet))
    with pytest.raises(ValueError, match="DTD"):
        _read(path, "stream")


def test_cells_beyond_the_limits_come_out_just_over_them(tmp_path):
    cells = b"".join(b'<c r="%s1" t="inlineStr"><is><t>%s</t></is></c>' % (ref, text)
                     for ref, text in ((b"A", b"x" * 50), (b"XFD", b"far")))
    path = tmp_path / "wide.xlsx"
    path.write_bytes(xlsx_from_sheet(SHEET_HEAD + b'<row r="1">' + cells + b"</row>" + SHEET_TAIL))
    files = {}

    def writing(name):
        out = io.StringIO(newline="")
        out.close = lambda: files.setdefault(name, out.getvalue())
        return out

    with open(path, "rb") as f:
        xlsx_convert._stream_workbook(xlsx_convert._ooxml(f, 20), writing, 10)
    row = files["0.csv"].rstrip("\r\n").split(",")
    # 21 characters (one over the limit, for the reader to refuse), and column XFD kept as a mark
    # so the reader counts 16,384 columns — without holding what is in them.
    assert row[0] == "x" * 21 and len(row) == 16_384 and row[-1] == "…"
