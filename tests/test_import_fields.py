"""Cell parsers of the import engine (pure, no database)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wuyiqu.imports import values
from wuyiqu.imports.fields import bool_value, date_value, id_number_value, phone_value, rate_value
from wuyiqu.imports.parsers import _cell_text, map_headers
from wuyiqu.imports.registry import Column, FileError, RowError
from wuyiqu.lib.idcard import InvalidIdNumber, check_digit, parse_id_number


def _outcome(fn, text):
    try:
        return fn(text)
    except (RowError, InvalidIdNumber) as exc:
        return ("error", str(exc))


@given(st.dates(min_value=dt.date(1880, 1, 1), max_value=dt.date(2030, 12, 31)),
       st.integers(0, 999), st.sampled_from("0123456789X"), st.booleans())
def test_fast_id_check_agrees_with_the_reference(birth, seq, last, make_valid):
    # The import's inline check must accept and refuse exactly what wuyiqu.lib.idcard does, with its
    # reason — except for a number Excel rounded (…000), whose reason says so.
    first17 = f"500110{birth:%Y%m%d}{seq:03d}"
    number = first17 + (check_digit(first17) if make_valid else last)
    ours, ref = _outcome(lambda t: id_number_value({"id_number": t}), number), _outcome(parse_id_number, number)
    if values.mangled_id_number(number) and isinstance(ref, tuple):
        assert isinstance(ours, tuple) and "末尾是000" in ours[1]
    else:
        assert ours == ref


@given(st.text(alphabet="0123456789Xx -", max_size=20))
def test_fast_id_check_agrees_on_any_text(text):
    ours = _outcome(lambda t: id_number_value({"id_number": t}), text)
    ref = _outcome(parse_id_number, text.replace(" ", ""))
    if values.mangled_id_number(text) and isinstance(ref, tuple):  # 18 digits ending 000: the reason says Excel did it
        assert isinstance(ours, tuple) and "Excel" in ours[1]
    elif text.replace(" ", ""):
        assert ours == ref
    else:
        assert ours == ("error", "身份证号不能为空")


@pytest.mark.parametrize("phone", ["13812345678", "023-48612345", "48612345", "+8613812345678", "023-48612345-801"])
def test_phones_accepted(phone):
    assert phone_value({"phone": phone}) == phone.removeprefix("+86")


@pytest.mark.parametrize("phone", ["12812345678", "1381234567", "138123456789", "abc", "023/48612345"])
def test_phones_refused(phone):
    with pytest.raises(RowError) as e:
        phone_value({"phone": phone})
    assert e.value.field == "phone" and "格式不对" in e.value.message


def test_dates():
    assert date_value({"d": "2022/11/20"}, "d") == dt.date(2022, 11, 20)
    assert date_value({"d": ""}, "d", required=False) is None
    with pytest.raises(RowError, match="不存在"):
        date_value({"d": "2022-02-30"}, "d")
    with pytest.raises(RowError, match="晚于今天"):
        date_value({"d": "2099-01-01"}, "d", not_after=dt.date(2022, 11, 28))


def test_bools_and_rates():
    assert bool_value({"b": "是"}, "b", "x") and not bool_value({"b": ""}, "b", "x")
    with pytest.raises(RowError):
        bool_value({"b": "也许"}, "b", "x")
    assert rate_value({"r": "95%"}, "r", "x") == pytest.approx(0.95)
    with pytest.raises(RowError):
        rate_value({"r": "1.2"}, "r", "x")


def test_spreadsheet_cells_come_back_as_typed_text():
    assert _cell_text(13812345678.0) == "13812345678"
    assert _cell_text(dt.datetime(2022, 11, 20)) == "2022-11-20"
    assert _cell_text(dt.datetime(2022, 11, 20, 8, 30)) == "2022-11-20 08:30:00"
    assert _cell_text(None) == "" and _cell_text(0.95) == "0.95"


def test_headers_match_chinese_english_and_aliases_loosely():
    cols = (Column("id_number", "身份证号", aliases=("身份证",)), Column("phone", "联系电话", required=False))
    assert map_headers(["\ufeff身份证号*", " PHONE "], cols) == ["id_number", "phone"]
    assert map_headers(["身份证", ""], cols) == ["id_number", None]
    with pytest.raises(FileError, match="重复的列"):
        map_headers(["身份证号", "id_number"], cols)
    with pytest.raises(FileError, match="缺少必填列：身份证号"):
        map_headers(["联系电话"], cols)
