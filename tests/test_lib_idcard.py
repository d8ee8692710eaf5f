"""GB 11643-1999 ID-card numbers: the check digit, the birth date, normalisation and masking."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wuyiqu.lib.idcard import (
    InvalidIdNumber,
    age_on,
    check_digit,
    mask_id_number,
    mask_phone,
    parse_id_number,
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
    assert mask_id_number("500222199001011139") == "5002**********1139"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("") == ""


def test_age_counts_whole_years():
    assert age_on(dt.date(1990, 11, 29), dt.date(2022, 11, 28)) == 31
    assert age_on(dt.date(1990, 11, 28), dt.date(2022, 11, 28)) == 32


bodies = st.builds(
    lambda region, birth, seq: f"{region:06d}{birth:%Y%m%d}{seq:03d}",
    st.integers(110000, 659999),
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
