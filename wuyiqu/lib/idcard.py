"""Chinese resident ID-card numbers (GB 11643-1999): validation and what they encode."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils.translation import gettext as _

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"


class InvalidIdNumber(ValueError):
    """The text is not a valid 18-character ID-card number; the message says why in Chinese."""


@dataclass(frozen=True, slots=True)
class IdInfo:
    number: str  # normalised: upper-case X, no spaces
    birth_date: dt.date
    sex: str  # "M" or "F"


def check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def parse_id_number(raw: str) -> IdInfo:
    """Validate ``raw`` and return what it encodes; raise InvalidIdNumber with a readable reason."""
    number = (raw or "").strip().upper()
    if len(number) != 18:
        raise InvalidIdNumber(_("身份证号应为18位，实际为%(n)s位") % {"n": len(number)})
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise InvalidIdNumber(_("身份证号前17位应为数字，末位应为数字或X"))
    if not number.isascii():
        raise InvalidIdNumber(_("身份证号含有非法字符"))
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidIdNumber(_("身份证号中的出生日期%(date)s不存在") % {"date": number[6:14]}) from None
    if birth.year < 1890:
        raise InvalidIdNumber(_("身份证号中的出生日期%(date)s不合理") % {"date": number[6:14]})
    expected = check_digit(number[:17])
    if number[17] != expected:
        raise InvalidIdNumber(_("身份证号校验位错误（应为%(digit)s）") % {"digit": expected})
    sex = "M" if int(number[16]) % 2 == 1 else "F"
    return IdInfo(number=number, birth_date=birth, sex=sex)


def age_on(birth_date: dt.date, on: dt.date) -> int:
    """Whole years of age on ``on``."""
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def mask_id_number(number: str) -> str:
    """``500222199001011234`` -> ``5002**********1234``."""
    if len(number) < 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_phone(phone: str) -> str:
    """``13812345678`` -> ``138****5678``."""
    if not phone:
        return ""
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
