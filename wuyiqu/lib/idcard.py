"""Chinese resident ID-card numbers (GB 11643-1999): the one normaliser and validator, and what they encode.

Every path that takes an ID number (imports, the API, forms, signing) goes through ``normalise_id_number``
and ``parse_id_number`` here — or, for millions of rows, an ``IdNumberReader``, which checks the same
things with small caches — so they all accept and refuse the same text with the same reason:

- normalised: full-width digits and ``Ｘ``/``ｘ`` become ASCII, lower-case ``x`` becomes ``X``, every
  space (also internal and full-width ones) is dropped;
- 18 characters, 17 digits then a digit or ``X``;
- the birth date exists, is not before 1900-01-01 and not after today (Asia/Shanghai);
- the 6-digit address code is one that was ever issued: the administrative division codes since 1980
  shipped by python-stdnum (``stdnum/cn/loc.dat``), withdrawn ones included — a number keeps the
  county of its first registration for life, so the county need not have existed in the birth year —
  plus 830000, the code of Taiwan residents' residence permits;
- the GB 11643 check character is right.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from functools import cache
from importlib import resources
from operator import mul
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_ZERO_SUM = 48 * sum(_WEIGHTS)  # the weighted sum of the ASCII codes minus this is that of the digits
_EARLIEST_BIRTH = "19000101"
_ZONE = ZoneInfo("Asia/Shanghai")
# Full-width digits and X (typed with a Chinese input method) and a lower-case x.
_TO_ASCII = str.maketrans({**{chr(0xFF10 + i): str(i) for i in range(10)}, "Ｘ": "X", "ｘ": "X", "x": "X"})
# Codes in use that are not division codes: 830000 is on the residence permits of Taiwan residents
# (港澳台居民居住证; 810000 and 820000, Hong Kong and Macao, are in the division list).
_EXTRA_ADDRESS_CODES = frozenset({"830000"})


class InvalidIdNumber(ValueError):
    """The text is not a valid 18-character ID-card number; the message says why in Chinese."""


@dataclass(frozen=True, slots=True)
class IdInfo:
    number: str  # normalised: ASCII digits, upper-case X, no spaces
    birth_date: dt.date
    sex: str  # "M" or "F"


def check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


@cache
def issued_address_codes() -> frozenset[str]:
    """Every 6-digit address code ever issued (python-stdnum's list of division codes since 1980)."""
    text = resources.files("stdnum").joinpath("cn/loc.dat").read_text(encoding="utf-8")
    codes = set(_EXTRA_ADDRESS_CODES)
    province = ""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key = line.split(maxsplit=1)[0]
        if not line[0].isspace():  # "50 province=…" starts a province; "  0222 county=…" is below it
            province = key
        elif len(key) == 4 and province:
            codes.add(province + key)
    return frozenset(codes)


def is_issued_address_code(code: str) -> bool:
    return code in issued_address_codes()


def normalise_id_number(raw: str | None) -> str:
    """``raw`` with full-width digits/X made ASCII, ``x`` made ``X`` and every space dropped; not checked."""
    text = raw or ""
    text = text.translate(_TO_ASCII) if not text.isascii() or "x" in text else text
    return "".join(text.split()) if not text.isalnum() else text


class IdNumberReader:
    """Checks ID numbers as ``parse_id_number`` does, fast enough for a million rows: the common valid
    number is checked on its bytes, birth dates and address codes are looked up in caches, and only a
    number that fails goes through the slow path that words the reason.

    ``today`` fixes the day a birth date may not be after; None follows the clock (a long-running
    worker crosses midnight)."""

    def __init__(self, today: dt.date | None = None):
        self._today = today.strftime("%Y%m%d") if today is not None else None
        self._day_bounds = (0.0, 0.0)
        self._day_text = ""
        self._births: dict[str, bool] = {}  # birth text -> exists and not before 1900 (~45,000 at most)
        self._codes = issued_address_codes()

    def today_text(self) -> str:
        if self._today is not None:
            return self._today
        now = time.time()
        lo, hi = self._day_bounds
        if not lo <= now < hi:  # the first call, a new day, or a test's clock moved
            local = dt.datetime.fromtimestamp(now, _ZONE)
            midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
            self._day_bounds = (midnight.timestamp(), (midnight + dt.timedelta(days=1)).timestamp())
            self._day_text = local.strftime("%Y%m%d")
        return self._day_text

    def number(self, raw: str | None) -> str:
        """The normalised number; InvalidIdNumber (a Chinese reason) when it is not valid."""
        number = normalise_id_number(raw)
        data = number.encode()
        # Non-ASCII text encodes to more than 18 bytes, so it never takes this fast path.
        if (len(data) == 18 and (data.isdigit() or (data[17] == 88 and data[:17].isdigit()))  # 88: "X"
                and _CHECK_CHARS[(sum(map(mul, data, _WEIGHTS)) - _ZERO_SUM) % 11] == number[17]
                and number[:6] in self._codes):
            birth = number[6:14]
            ok = self._births.get(birth)
            if ok is None:
                ok = _birth_exists(birth) and birth >= _EARLIEST_BIRTH
                if len(self._births) < 100_000:
                    self._births[birth] = ok
            if ok and birth <= self.today_text():
                return number
        self._refuse(number)
        raise AssertionError("unreachable: _refuse raises")  # pragma: no cover

    def info(self, raw: str | None) -> IdInfo:
        """What a valid number encodes; InvalidIdNumber otherwise."""
        number = self.number(raw)
        return IdInfo(number=number, birth_date=dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14])),
                      sex="M" if int(number[16]) % 2 else "F")

    def _refuse(self, number: str) -> None:
        """Raise the reason ``number`` (normalised) is not valid, the first check it fails in this order."""
        if len(number) != 18:
            raise InvalidIdNumber(_("身份证号应为18位，实际为%(n)s位") % {"n": len(number)})
        if not number.isascii() or not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
            if not number.isascii() and all(c.isdigit() or c == "X" for c in number):
                raise InvalidIdNumber(_("身份证号含有非法字符"))
            raise InvalidIdNumber(_("身份证号前17位应为数字，末位应为数字或X"))
        birth = number[6:14]
        if not _birth_exists(birth):
            raise InvalidIdNumber(_("身份证号中的出生日期%(date)s不存在") % {"date": birth})
        if birth < _EARLIEST_BIRTH:
            raise InvalidIdNumber(_("身份证号中的出生日期%(date)s早于1900年") % {"date": birth})
        if birth > self.today_text():
            raise InvalidIdNumber(_("身份证号中的出生日期%(date)s晚于今天") % {"date": birth})
        if number[:6] not in self._codes:
            raise InvalidIdNumber(_("身份证号前6位%(code)s不是发布过的行政区划代码（地址码）") % {"code": number[:6]})
        expected = check_digit(number[:17])
        if number[17] != expected:
            raise InvalidIdNumber(_("身份证号校验位错误（应为%(digit)s）") % {"digit": expected})


def _birth_exists(birth: str) -> bool:
    try:
        dt.date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
    except ValueError:
        return False
    return True


_LIVE = IdNumberReader()  # follows the clock


def parse_id_number(raw: str | None, *, today: dt.date | None = None) -> IdInfo:
    """Normalise and validate ``raw``; return what it encodes. Raises InvalidIdNumber with a Chinese
    reason. ``today``: the day a birth date may not be after (default: today in Asia/Shanghai)."""
    return (_LIVE if today is None else IdNumberReader(today)).info(raw)


def valid_id_number(raw: str | None, *, today: dt.date | None = None) -> str:
    """The normalised number of ``raw`` if it is valid; InvalidIdNumber otherwise."""
    return (_LIVE if today is None else IdNumberReader(today)).number(raw)


def age_on(birth_date: dt.date, on: dt.date) -> int:
    """Whole years of age on ``on``."""
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


# What a mask keeps (docs/reliability.md, "A copied database"): so little that a copy of the database
# without the keys does not rebuild the number. An ID number keeps its province (3 digits) and its
# check character; every county, birth date and sequence code stays possible (over a million
# candidates for an adult, about 45 for a child whose third birthday is stored; tests/test_privacy_attack.py).
ID_MASK_HEAD, ID_MASK_TAIL = 3, 1
# A phone keeps its carrier prefix and last 2 digits: the 6 unknown digits leave the carrier's
# blocks of the region times 100 (~40,000 in 重庆) candidates.
PHONE_MASK_HEAD, PHONE_MASK_TAIL = 3, 2


def turns_three_on(birth_date: dt.date) -> dt.date:
    """The first day ``age_on`` counts the person as 3 years old (1 March for a child born on 29 February)."""
    try:
        return birth_date.replace(year=birth_date.year + 3)
    except ValueError:
        return dt.date(birth_date.year + 3, 3, 1)


# The third birthday is the one thing the register keeps of a birth date (nucleic-acid exemption,
# SPEC §4), and only while it may still change a verdict: a child under 3, or who turned 3 less than
# this many days ago (evaluations of the past year). ``wuyiqu worker``'s daily run forgets older ones.
THIRD_BIRTHDAY_KEPT_DAYS = 366


def kept_third_birthday(birth_date: dt.date, today: dt.date) -> dt.date | None:
    """``turns_three_on(birth_date)`` when the register keeps it on ``today``, else None."""
    day = turns_three_on(birth_date)
    return day if day >= today - dt.timedelta(days=THIRD_BIRTHDAY_KEPT_DAYS) else None


def mask_id_number(number: str) -> str:
    """``500222199001011234`` -> ``500**************4``."""
    if len(number) < 8:
        return "*" * len(number)
    return number[:ID_MASK_HEAD] + "*" * (len(number) - ID_MASK_HEAD - ID_MASK_TAIL) + number[-ID_MASK_TAIL:]


def mask_phone(phone: str) -> str:
    """``13812345678`` -> ``138******78``."""
    if not phone:
        return ""
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:PHONE_MASK_HEAD] + "*" * (len(phone) - PHONE_MASK_HEAD - PHONE_MASK_TAIL) + phone[-PHONE_MASK_TAIL:]
