"""The one meaning of "within N days", measures that cover a day, and dates parsed in Asia/Shanghai."""

import datetime as dt
import zoneinfo

import pytest

from wuyiqu.lib.dates import covers, parse_date, parse_local_datetime, window_start, within_days

D = dt.date(2022, 11, 28)


def test_within_8_days_of_d_means_d_minus_7_to_d():
    assert window_start(D, 8) == dt.date(2022, 11, 21)
    inside = [D - dt.timedelta(days=n) for n in range(8)]
    assert all(within_days(day, D, 8) for day in inside)
    assert len(inside) == 8
    assert not within_days(D - dt.timedelta(days=8), D, 8)  # D-8: one day too early
    assert not within_days(D + dt.timedelta(days=1), D, 8)  # the future is not "within"
    assert not within_days(None, D, 8)


def test_a_one_day_window_is_the_day_itself_and_shorter_ones_are_refused():
    assert within_days(D, D, 1)
    assert not within_days(D - dt.timedelta(days=1), D, 1)
    with pytest.raises(ValueError):
        window_start(D, 0)


def test_within_days_crosses_month_and_year_ends():
    assert within_days(dt.date(2022, 12, 25), dt.date(2023, 1, 1), 8)
    assert not within_days(dt.date(2022, 12, 24), dt.date(2023, 1, 1), 8)
    assert window_start(dt.date(2024, 3, 1), 2) == dt.date(2024, 2, 29)


def test_covers_counts_start_and_end_days_and_open_ends():
    start, end = dt.date(2022, 11, 20), dt.date(2022, 11, 26)
    assert covers(start, end, start)
    assert covers(start, end, end)
    assert covers(start, end, dt.date(2022, 11, 23))
    assert not covers(start, end, dt.date(2022, 11, 19))
    assert not covers(start, end, dt.date(2022, 11, 27))
    assert covers(start, None, dt.date(2030, 1, 1))  # ongoing
    assert not covers(start, None, dt.date(2022, 11, 19))


@pytest.mark.parametrize("raw, expected", [
    ("2022-11-28", D),
    (" 2022/11/28 ", D),
    ("2022-11-28 00:00:00", D),  # a spreadsheet's date cell written with a midnight time
    ("2024-02-29", dt.date(2024, 2, 29)),
])
def test_parse_date_accepts(raw, expected):
    assert parse_date(raw) == expected


@pytest.mark.parametrize("raw, reason", [
    ("2022-02-30", "日期“2022-02-30”不存在"),
    ("2023-02-29", "日期“2023-02-29”不存在"),
    ("2022-13-01", "不存在"),
    ("28.11.2022", "格式不对，应为 YYYY-MM-DD"),
    ("2022-1-5", "格式不对"),
    ("20221128", "格式不对"),
    ("2022-11-28 08:30", "格式不对"),
    ("", "日期为空"),
    ("   ", "日期为空"),
])
def test_parse_date_refuses_in_chinese(raw, reason):
    with pytest.raises(ValueError, match=reason):
        parse_date(raw)


def test_parse_local_datetime_is_aware_in_shanghai():
    at = parse_local_datetime("2022-11-28 08:30")
    assert at.tzinfo is not None
    assert at.utcoffset() == dt.timedelta(hours=8)
    assert at.astimezone(dt.UTC) == dt.datetime(2022, 11, 28, 0, 30, tzinfo=dt.UTC)
    assert parse_local_datetime("2022/11/28 08:30:15").second == 15
    assert parse_local_datetime("2022-11-28T23:59").astimezone(zoneinfo.ZoneInfo("Asia/Shanghai")).day == 28


def test_parse_local_datetime_keeps_an_explicit_offset():
    at = parse_local_datetime("2022-11-28 08:30+00:00")
    assert at.astimezone(dt.UTC).hour == 8


@pytest.mark.parametrize("raw, reason", [
    ("2022-02-30 08:00", "无效"),
    ("明天早上", "无效"),
    ("", "时间为空"),
])
def test_parse_local_datetime_refuses_in_chinese(raw, reason):
    with pytest.raises(ValueError, match=reason):
        parse_local_datetime(raw)
