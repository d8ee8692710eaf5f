"""GB 11643-1999 ID-card numbers: the check digit, the birth date, normalisation and masking."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wuyiqu.lib.idcard import (
    IdNumberReader,
    InvalidIdNumber,
    age_on,
    check_digit,
    issued_address_codes,
    mask_id_number,
    mask_phone,
    normalise_id_number,
    parse_id_number,
    valid_id_number,
)

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def reference_check(first17: str) -> str:
    """The standard's definition, written out independently: (12 - sum mod 11) mod 11, 10 is X."""
    value = (12 - sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11) % 11
    return "X" if value == 10 else str(value)


def test_it_computes_known_check_digits():
    # The standard's own example: weighted sum 167, 167 mod 11 = 2 -> check X.
    assert check_digit("11010519491231002") == "X"
    # Worked by hand: weighted sum 166, mod 11 = 1 -> check 0; sum 170, mod 11 = 5 -> check 7.
    assert check_digit("50022219900101113") == "0"
    assert check_digit("50022219900101123") == "7"


def test_it_parses_a_valid_number_with_birth_date_and_sex():
    info = parse_id_number("11010519491231002X")
    assert info.number == "11010519491231002X"
    assert info.birth_date == dt.date(1949, 12, 31)
    assert info.sex == "F"  # the 17th digit (2) is even
    male = parse_id_number("500222199001011130")
    assert male.birth_date == dt.date(1990, 1, 1)
    assert male.sex == "M"


def test_it_accepts_lowercase_x_and_surrounding_spaces():
    info = parse_id_number("  11010519491231002x ")
    assert info.number == "11010519491231002X"


def with_check(first17: str) -> str:
    return first17 + reference_check(first17)


@pytest.mark.parametrize("raw", [
    "１１０１０５１９４９１２３１００２Ｘ",  # full-width digits and X (a Chinese input method)
    "11010519491231002ｘ",
    "110105 19491231 002x",  # internal spaces
    "\u3000110105\u00a019491231002X\t",  # a full-width space, a no-break space, a tab
])
def test_it_normalises_full_width_digits_spaces_and_lower_case_x(raw):
    assert parse_id_number(raw).number == "11010519491231002X"
    assert normalise_id_number(raw) == "11010519491231002X"
    assert valid_id_number(raw) == "11010519491231002X"


def test_it_refuses_a_birth_date_after_today():
    number = with_check("50022220300101001")  # "born 2030"
    with pytest.raises(InvalidIdNumber, match="出生日期20300101晚于今天"):
        parse_id_number(number, today=dt.date(2022, 11, 28))
    tomorrow = with_check("50022220221129001")
    with pytest.raises(InvalidIdNumber, match="晚于今天"):
        parse_id_number(tomorrow, today=dt.date(2022, 11, 28))
    assert parse_id_number(tomorrow, today=dt.date(2022, 11, 29)).birth_date == dt.date(2022, 11, 29)


def test_a_reader_that_follows_the_clock_moves_to_the_next_day(time_machine):
    number = with_check("50022220221129001")
    time_machine.move_to(dt.datetime(2022, 11, 28, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=8))), tick=False)
    reader = IdNumberReader()
    with pytest.raises(InvalidIdNumber, match="晚于今天"):
        reader.number(number)
    time_machine.move_to(dt.datetime(2022, 11, 29, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))), tick=False)
    assert reader.number(number) == number


def test_it_refuses_a_birth_date_before_1900():
    with pytest.raises(InvalidIdNumber, match="出生日期18991231早于1900年"):
        parse_id_number(with_check("50022218991231001"))
    assert parse_id_number(with_check("50022219000101001")).birth_date == dt.date(1900, 1, 1)


@pytest.mark.parametrize("code", ["000000", "990101", "999999", "123456", "500999", "500910"])
def test_it_refuses_an_address_code_never_issued(code):
    with pytest.raises(InvalidIdNumber, match=f"前6位{code}不是发布过的行政区划代码"):
        parse_id_number(with_check(f"{code}19900101001"))


@pytest.mark.parametrize("code, born", [
    ("110103", "20150101"),  # 崇文区, withdrawn in 2010: the number keeps its first county for life
    ("500222", "19800101"),  # 綦江县 (1997-2011): born before the code existed
    ("500110", "19900101"),  # 綦江区 since 2011 (万盛区 before)
    ("810000", "19900101"),  # Hong Kong residents' residence permit
    ("830000", "19900101"),  # Taiwan residents' residence permit
])
def test_it_accepts_every_code_ever_issued_whatever_the_birth_year(code, born):
    assert parse_id_number(with_check(f"{code}{born}001")).number.startswith(code)


def test_it_refuses_a_wrong_check_digit_and_names_the_right_one():
    with pytest.raises(InvalidIdNumber, match="校验位错误（应为X）"):
        parse_id_number("110105194912310021")


def test_it_refuses_a_birth_date_that_does_not_exist():
    first17 = "50022220220230001"  # born 2022-02-30
    with pytest.raises(InvalidIdNumber, match="出生日期20220230不存在"):
        parse_id_number(first17 + reference_check(first17))


@pytest.mark.parametrize("raw, reason", [
    ("", "应为18位，实际为0位"),
    ("11010519491231002", "应为18位，实际为17位"),
    ("11010519491231002X0", "应为18位，实际为19位"),
    ("1101051949123100AX", "前17位应为数字"),
    ("11010519491231002Y", "末位应为数字或X"),
])
def test_it_refuses_bad_length_and_characters_in_chinese(raw, reason):
    with pytest.raises(InvalidIdNumber, match=reason):
        parse_id_number(raw)


def test_it_masks_numbers_and_phones():
    assert mask_id_number("500222199001011139") == "500**************9"
    assert mask_phone("13812345678") == "138******78"
    assert mask_phone("") == ""


def test_age_counts_whole_years():
    assert age_on(dt.date(1990, 11, 29), dt.date(2022, 11, 28)) == 31
    assert age_on(dt.date(1990, 11, 28), dt.date(2022, 11, 28)) == 32


bodies = st.builds(
    lambda region, birth, seq: f"{region}{birth:%Y%m%d}{seq:03d}",
    st.sampled_from(sorted(issued_address_codes())),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2022, 12, 31)),
    st.integers(0, 999),
)


@given(bodies)
def test_every_body_with_its_check_digit_parses(body):
    number = body + check_digit(body)
    assert check_digit(body) == reference_check(body)
    assert parse_id_number(number).number == number


@given(bodies, st.integers(0, 16), st.integers(1, 9))
def test_any_single_digit_change_is_caught(body, position, delta):
    number = body + check_digit(body)
    changed = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1:]
    # GB 11643's weights are all non-zero mod 11, so one changed digit always changes the check;
    # the change may also make the birth date impossible, which is refused as well.
    with pytest.raises(InvalidIdNumber):
        parse_id_number(changed)


# --- every path takes the one validator ------------------------------------------------------------------


@pytest.mark.parametrize("raw, field_error", [
    ("１１０１０５１９４９１２３１００２ｘ", None),
    (with_check("50022220300101001"), "晚于今天"),
    (with_check("00000019900101001"), "不是发布过的行政区划代码"),
    (with_check("50022218991231001"), "早于1900年"),
])
def test_the_imports_the_nat_parser_and_the_forms_accept_and_refuse_alike(raw, field_error):
    from wuyiqu.health.actions import FactRefused
    from wuyiqu.health.actions import normalise_id_number as form_number
    from wuyiqu.health.nat_import import NatParser
    from wuyiqu.imports.fields import id_number_value
    from wuyiqu.imports.registry import RowError

    paths = [lambda: id_number_value({"id_number": raw}).number, lambda: NatParser().id_number(raw),
             lambda: form_number(raw)]
    for path in paths:
        if field_error is None:
            assert path() == "11010519491231002X"
        else:
            with pytest.raises((RowError, FactRefused), match=field_error) as refused:
                path()
            assert refused.value.field == "id_number"
