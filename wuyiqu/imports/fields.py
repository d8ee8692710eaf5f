"""Cell parsers for kinds: each returns a clean value or raises RowError(field, Chinese reason)."""

from __future__ import annotations

import datetime as dt
import re

from django.utils.translation import gettext as _

from wuyiqu.lib import dates
from wuyiqu.lib.idcard import IdInfo, IdNumberReader, InvalidIdNumber, normalise_id_number

from . import values
from .registry import RowError

_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"(0\d{2,3}-?)?\d{7,8}(-\d{1,6})?")
TRUE_WORDS = values.YES_WORDS | {"合格"}
FALSE_WORDS = values.NO_WORDS | {"不合格"}


def required_text(raw: dict[str, str], key: str, label: str, *, max_length: int) -> str:
    """The stripped text of a required column, at most ``max_length`` characters."""
    value = raw.get(key, "")
    if not value:
        raise RowError(key, _("%(label)s不能为空") % {"label": label})
    if len(value) > max_length:
        raise RowError(key, _("%(label)s过长（最多%(n)d个字）") % {"label": label, "n": max_length})
    return value


def optional_text(raw: dict[str, str], key: str, label: str, *, max_length: int) -> str:
    value = raw.get(key, "")
    if len(value) > max_length:
        raise RowError(key, _("%(label)s过长（最多%(n)d个字）") % {"label": label, "n": max_length})
    return value


def date_value(raw: dict[str, str], key: str, *, required: bool = True, not_after: dt.date | None = None) -> dt.date | None:
    """A ``YYYY-MM-DD`` date (also ``YYYY/MM/DD``, 2022年11月28日, 2022.11.28, an Excel serial, full-width:
    ``values.date_text``); None when optional and empty."""
    text = raw.get(key, "")
    if not text:
        if required:
            raise RowError(key, _("日期不能为空"))
        return None
    try:
        value = dates.parse_date(text)
    except ValueError as exc:
        normal = values.date_text(text)
        try:
            value = dates.parse_date(normal) if normal else None
        except ValueError:
            value = None
        if value is None:
            raise RowError(key, str(exc)) from None
    if not_after is not None and value > not_after:
        raise RowError(key, _("日期%(d)s晚于今天") % {"d": value.isoformat()})
    return value


def datetime_value(raw: dict[str, str], key: str) -> dt.datetime:
    """A local ``YYYY-MM-DD HH:MM[:SS]`` time (Asia/Shanghai), aware; the office forms of
    ``values.datetime_text`` too."""
    text = raw.get(key, "")
    try:
        return dates.parse_local_datetime(text)
    except ValueError as exc:
        normal = values.datetime_text(text)
        if normal:
            try:
                return dates.parse_local_datetime(normal)
            except ValueError:
                pass
        raise RowError(key, str(exc)) from None


def id_number_value(raw: dict[str, str], key: str = "id_number") -> IdInfo:
    """A GB 11643 ID-card number, normalised and checked by ``wuyiqu.lib.idcard`` (the one validator:
    full-width digits, spaces and a lower-case x are accepted; the birth date, address code and check
    digit are checked); RowError naming ``key`` with its Chinese reason otherwise."""
    text = raw.get(key, "")
    try:
        return _ID_READER.info(text)
    except InvalidIdNumber as exc:
        if not normalise_id_number(text):
            raise RowError(key, _("身份证号不能为空")) from None
        # A number Excel made a float or rounded: say so, and how to fix it (never guessed).
        raise RowError(key, values.mangled_id_number(text) or str(exc)) from None


_ID_READER = IdNumberReader()  # follows the clock: a birth date after today is refused


def phone_value(raw: dict[str, str], key: str = "phone") -> str:
    """An 11-digit mainland mobile (1[3-9]…) or a landline of digits and dashes; "" when empty.
    Full-width digits and Excel's ``13800138000.0`` are read as the number; scientific notation is refused."""
    text = raw.get(key, "").replace(" ", "")
    if not text:
        return ""
    if text.startswith("+86"):
        text = text[3:]
    if _MOBILE.fullmatch(text) or _LANDLINE.fullmatch(text):
        return text
    plain = values.number_text(text).replace("－", "-")
    if plain.startswith("+86"):
        plain = plain[3:]
    if _MOBILE.fullmatch(plain) or _LANDLINE.fullmatch(plain):
        return plain
    raise RowError(key, values.mangled_phone(text)
                   or _("电话“%(p)s”格式不对：应为11位手机号或固定电话（数字和-）") % {"p": text})


def choice_value(raw: dict[str, str], key: str, label: str, aliases: dict[str, str], *,
                 required: bool = True) -> str:
    """Map the cell through ``aliases`` (English codes and Chinese words -> value)."""
    text = raw.get(key, "")
    if not text:
        if required:
            raise RowError(key, _("%(label)s不能为空") % {"label": label})
        return ""
    value = aliases.get(text) or aliases.get(text.lower())
    if value is None:
        plain = values.halfwidth(text).replace(" ", "")
        value = aliases.get(plain) or aliases.get(plain.lower())
    if value is None:
        accepted = "、".join(dict.fromkeys(aliases))
        raise RowError(key, _("%(label)s“%(v)s”无法识别，可填：%(a)s") % {"label": label, "v": text, "a": accepted})
    return value


def bool_value(raw: dict[str, str], key: str, label: str, *, true_words: frozenset[str] = TRUE_WORDS) -> bool:
    """是/否, yes/no, 1/0 (and ``true_words``); empty is False."""
    text = raw.get(key, "").lower()
    if text in true_words:
        return True
    if text in FALSE_WORDS:
        return False
    plain = values.halfwidth(text).replace(" ", "").lower()
    if plain in true_words or plain in values.YES_WORDS:
        return True
    if plain in FALSE_WORDS:
        return False
    raise RowError(key, _("%(label)s“%(v)s”无法识别，应为“是”或“否”") % {"label": label, "v": raw.get(key, "")})


def rate_value(raw: dict[str, str], key: str, label: str) -> float:
    """A rate 0–1; ``95%`` is read as 0.95."""
    text = raw.get(key, "")
    if not text:
        raise RowError(key, _("%(label)s不能为空") % {"label": label})
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise RowError(key, _("%(label)s“%(v)s”不是数字") % {"label": label, "v": text}) from None
    if not 0 <= value <= 1:
        raise RowError(key, _("%(label)s应在0到1之间（或0%%到100%%）") % {"label": label})
    return value
