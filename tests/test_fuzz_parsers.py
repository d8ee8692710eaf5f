"""Fuzzing (issue 9) with hypothesis: the import parsers, the ID-card and date validators and the
import fields take any input and either return a clean value or raise the project's own error —
FileError, RowError, InvalidIdNumber, ValueError with a Chinese reason — never anything else; and an
import that fails writes nothing.

Repeatable in CI: a fixed number of examples, derandomised (the same examples every run), no example
database. The coverage-guided harnesses for longer runs are in fuzz/ (atheris); what they found is
pinned below as regression tests.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import pytest
from conftest import WENLONG_COMMUNITY
from hostile_files import ZH, csv_text, fingerprint, valid_id, xlsx_rows
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from wuyiqu.imports import fields
from wuyiqu.imports.models import ImportStatus
from wuyiqu.imports.parsers import iter_raw_rows, iter_records, map_headers, open_tables, plan_tables
from wuyiqu.imports.registry import Column, FileError, RowError, get_kind
from wuyiqu.imports.services import run_import
from wuyiqu.lib import dates
from wuyiqu.lib.idcard import InvalidIdNumber, check_digit, parse_id_number
from wuyiqu.units.models import Household

FAST = settings(max_examples=300, deadline=None, derandomize=True, database=None)
SLOW = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Text that reaches the CSV reader's corners: quotes, separators, every line end, NUL, CJK, a BOM.
CSV_ALPHABET = st.sampled_from(list(',"\r\n\t \x00\ufeffaX9-/:') + ["身份证号", "姓名", "张", "号", "é", "\u3000"])
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16", "utf-16-le", "latin-1", "utf-32"])


@st.composite
def csv_bytes(draw) -> bytes:
    """Mostly text-shaped files in any of the encodings people send, sometimes raw bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=3000))
    text = draw(st.lists(CSV_ALPHABET, max_size=400).map("".join))
    if draw(st.booleans()):
        text = ",".join(ZH) + "\r\n" + text
    encoding = draw(ENCODINGS)
    return text.encode(encoding, errors="replace")


def _file(data: bytes, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return Path(name)


def _read_everything(path: Path) -> None:
    """Read ``path`` both ways, checking what comes out; FileError is the only refusal allowed."""
    lines = []
    try:
        for line, cells in iter_raw_rows(path):
            assert all(isinstance(c, str) and "\x00" not in c for c in cells)
            lines.append(line)
    except FileError as exc:
        assert str(exc) and not str(exc).isascii()  # a Chinese message
    assert lines == sorted(set(lines))
    kind = get_kind("residents")
    try:
        with open_tables(path) as tables:
            for line, record in iter_records(tables, plan_tables(tables, kind), kind.columns):
                assert set(record) == {c.key for c in kind.columns} and line >= 2
    except FileError as exc:
        assert str(exc)


@FAST
@given(csv_bytes())
def test_any_bytes_read_as_csv_give_rows_or_a_file_error(data):
    path = _file(data, ".csv")
    try:
        _read_everything(path)
    finally:
        path.unlink()


@st.composite
def damaged_xlsx(draw) -> bytes:
    """A real workbook, then cut short or with a few bytes changed (or bytes that only look like a ZIP)."""
    rows = [ZH] + [[draw(st.text(max_size=8)) for _ in ZH] for _ in range(draw(st.integers(0, 3)))]
    data = bytearray(xlsx_rows(rows))
    how = draw(st.sampled_from(["cut", "flip", "zip-head", "intact"]))
    if how == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif how == "zip-head":
        data = bytearray(b"PK\x03\x04" + draw(st.binary(max_size=200)))
    return bytes(data)


@SLOW
@given(damaged_xlsx())
def test_any_damaged_xlsx_gives_rows_or_a_file_error(data):
    path = _file(data, ".xlsx")
    try:
        _read_everything(path)
    finally:
        path.unlink()


@FAST
@given(st.lists(st.text(max_size=40), max_size=60))
def test_any_header_row_maps_or_is_refused_in_one_bounded_message(header):
    columns = (Column("id_number", "身份证号", aliases=("身份证",)), Column("name", "姓名"),
               Column("phone", "联系电话", required=False))
    try:
        keys = map_headers(header, columns)
    except FileError as exc:
        assert len(str(exc)) < 1000  # ten names at most, each cut at 30 characters
    else:
        assert len(keys) == len(header) and {"id_number", "name"} <= set(keys)


# --- the ID-card validator ------------------------------------------------------------------------------

ID_LIKE = st.one_of(
    st.text(max_size=24),
    st.text(alphabet="0123456789Xx ١２٣\u3000ßı", min_size=16, max_size=20),
    st.from_regex(r"[1-6][0-9]{5}(18|19|20)[0-9]{2}[01][0-9][0-3][0-9][0-9]{3}[0-9Xx]", fullmatch=True),
)


@FAST
@given(ID_LIKE)
def test_the_id_card_validator_returns_what_the_number_says_or_refuses_in_chinese(text):
    try:
        info = parse_id_number(text)
    except InvalidIdNumber as exc:
        assert "身份证号" in str(exc)
        return
    number = info.number
    assert len(number) == 18 and number.isascii() and number[:17].isdigit()
    assert number[17] == check_digit(number[:17])
    assert info.birth_date == dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    assert info.sex == ("M" if int(number[16]) % 2 else "F")


@FAST
@given(ID_LIKE)
def test_the_fast_id_checks_of_the_imports_agree_with_the_validator(text):
    """fields.id_number_value and the nat-results parser check the common case inline: they must
    accept exactly what lib.idcard accepts (after their own normalisation) and give its reasons."""
    from wuyiqu.health.nat_import import NatParser

    cleaned = text.replace(" ", "")
    try:
        expected = parse_id_number(cleaned) if cleaned else None
    except InvalidIdNumber:
        expected = None
    try:
        got = fields.id_number_value({"id_number": text})
    except RowError as exc:
        assert exc.field == "id_number" and expected is None
    else:
        assert got == expected
    try:
        nat = NatParser().id_number(text)
    except RowError as exc:
        assert exc.field == "id_number"
        try:
            parse_id_number(text)
        except InvalidIdNumber:
            pass
        else:
            pytest.fail(f"the nat-results parser refused {text!r}, which lib.idcard accepts")
    else:
        assert nat == parse_id_number(text).number


# --- dates and the other import fields -----------------------------------------------------------------

DATE_LIKE = st.one_of(
    st.text(max_size=25),
    st.from_regex(r"\d{4}[-/]\d{1,2}[-/]\d{1,2}( \d\d:\d\d(:\d\d)?)?", fullmatch=True),
    st.dates().map(dt.date.isoformat),
    st.datetimes().map(lambda d: d.isoformat(sep=" ")),
)


@FAST
@given(DATE_LIKE)
@example("0000/00/0٠")  # found by hypothesis: \d took Arabic-Indic digits, and the date was called "missing"
@example("２０２２-１１-２８")
def test_date_parsing_returns_a_date_or_a_chinese_reason(text):
    try:
        value = dates.parse_date(text)
    except ValueError as exc:
        message = str(exc)
        assert "日期" in message
        if "不存在" in message:  # only a well-formed date that the calendar lacks is called missing
            norm = text.strip().replace("/", "-")[:10]
            assert norm.isascii() and len(norm) == 10 and norm[4] == norm[7] == "-"
        return
    assert isinstance(value, dt.date)
    assert dates.parse_date(value.isoformat()) == value


@FAST
@given(st.dates())
def test_every_calendar_date_round_trips(day):
    assert dates.parse_date(day.isoformat()) == day
    assert dates.parse_date(day.isoformat().replace("-", "/")) == day


@FAST
@given(DATE_LIKE)
@example("0001-01-01 00:00")  # found: +08:05:43 (Shanghai's old local mean time) before year 1 in UTC
@example("9999-12-31 23:59-05:00")
def test_local_times_are_aware_and_storable_or_refused(text):
    try:
        value = fields.datetime_value({"at": text}, "at")
    except RowError as exc:
        assert exc.field == "at" and "时间" in exc.message
        return
    assert value.tzinfo is not None
    value.astimezone(dt.UTC)  # what the database layer does with it: must not overflow


@FAST
@given(st.text(max_size=30), st.sampled_from(["phone", "bool", "rate", "choice", "required", "date"]))
def test_the_other_field_parsers_return_a_value_or_a_row_error(text, which):
    raw = {"f": text}
    parse = {
        "phone": lambda: fields.phone_value(raw, "f"),
        "bool": lambda: fields.bool_value(raw, "f", "免检"),
        "rate": lambda: fields.rate_value(raw, "f", "比例"),
        "choice": lambda: fields.choice_value(raw, "f", "类型", {"high": "high", "高风险区": "high"}),
        "required": lambda: fields.required_text(raw, "f", "姓名", max_length=10),
        "date": lambda: fields.date_value(raw, "f", required=False, not_after=dt.date(2022, 11, 28)),
    }[which]
    try:
        value = parse()
    except RowError as exc:
        assert exc.field == "f" and exc.message
        return
    if which == "rate":
        assert 0 <= value <= 1
    elif which == "phone":
        assert value == "" or value.replace("-", "").isdigit()


# --- a failing import writes nothing -----------------------------------------------------------------------

MUTATIONS = ["check digit", "impossible date", "unknown household", "empty name", "nul", "stray quote",
             "bad phone"]


@st.composite
def residents_file(draw, household: str) -> tuple[bytes, str]:
    """Valid new residents of ``household`` with one row broken in one of several ways."""
    n = draw(st.integers(1, 30))
    first = draw(st.integers(100, 800))
    rows = [[valid_id(first + i), f"新人{i}", household, draw(st.sampled_from(["", "13812345678"])), ""]
            for i in range(n)]
    broken = draw(st.integers(0, n - 1))
    how = draw(st.sampled_from(MUTATIONS))
    row = rows[broken]
    if how == "check digit":
        row[0] = row[0][:17] + ("0" if row[0][17] != "0" else "1")
    elif how == "impossible date":
        row[0] = row[0][:10] + draw(st.sampled_from(["0230", "1301", "0431", "0000"])) + row[0][14:]
    elif how == "unknown household":
        row[2] = "NO-SUCH-HOUSEHOLD"
    elif how == "empty name":
        row[1] = ""
    elif how == "nul":
        row[1] = "张\x00三"
    elif how == "stray quote":
        row[1] = '"未结束'
    elif how == "bad phone":
        row[3] = draw(st.sampled_from(["12345", "+1-800-FLOWERS", "=1+1"]))
    text = csv_text(ZH, rows)
    if how == "stray quote":
        text = text.replace('"""未结束"', '"未结束')  # undo csv's quoting: a quote left open
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gbk", "utf-16"]))
    return text.encode(encoding), how


@pytest.mark.django_db
@SLOW
@given(data=st.data())
def test_a_failing_import_changes_nothing(world, tmp_path, data):
    household = Household.objects.filter(unit__path__contains=f"/{WENLONG_COMMUNITY}/").order_by("code").first()
    before = fingerprint()
    content, how = data.draw(residents_file(household.code), label="file")
    path = tmp_path / "r.csv"
    path.write_bytes(content)
    job = run_import(kind="residents", path=path)
    assert job.status == ImportStatus.FAILED, (how, job.message)
    assert job.message and (job.errors or "第" in job.message or "文件" in job.message)
    assert fingerprint() == before, how
