"""Cell values as offices type them, brought to the one form the import fields read.

A ledger kept in Excel or WPS for years holds dates as "2022年11月28日", "2022.11.28" or an Excel
serial number (44893), digits and spaces typed full-width (２０２２), phones that Excel made numbers
(13800138000.0), and ID numbers that Excel made floats (5.00222E+17) or rounded to 15 significant
digits (500222197206180000). The first kinds are normalised here; a mangled ID number cannot be
repaired (its last digits are gone), so ``mangled_id_number`` words the refusal instead.

Every function here is pure and cheap, and the import fields call it only after their fast path
(the template's own forms) failed, so a million well-formed rows never come here.
"""

from __future__ import annotations

import datetime as dt
import re

from django.utils.translation import gettext as _

# Full-width ASCII (！ … ～) and the ideographic space to their ASCII forms.
_HALF = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_EXCEL_EPOCH = dt.date(1899, 12, 30)  # serial 1 is 1900-01-01 (Excel counts a 29 Feb 1900 that never was)
# Serials of 1950-01-01 … 2099-12-31: a 5-digit number in a date column is a date Excel shows as a number.
_SERIAL_FIRST, _SERIAL_LAST = 18264, 73050
_SERIAL = re.compile(r"([0-9]{5})(?:\.([0-9]+))?")
_CJK_DATE = re.compile(r"([0-9]{4})\s*[年./\-]\s*([0-9]{1,2})\s*[月./\-]\s*([0-9]{1,2})\s*日?")
_TIME = re.compile(r"([0-9]{1,2})\s*[:：时点]\s*([0-9]{1,2})(?:\s*[:：分]\s*([0-9]{1,2})\s*秒?)?\s*分?")
_FLOAT_E = re.compile(r"[0-9](?:\.[0-9]+)?[eE]\+?[0-9]+")
_DOT_ZERO = re.compile(r"([0-9]+)\.0+")


def halfwidth(text: str) -> str:
    """``text`` with full-width letters, digits, signs and spaces as ASCII, stripped."""
    return text.translate(_HALF).strip() if not text.isascii() else text.strip()


def excel_serial(text: str) -> tuple[dt.date, float] | None:
    """(date, fraction of the day) for an Excel serial number of 1950–2099 (``44893`` or
    ``44893.5``), None for any other text."""
    m = _SERIAL.fullmatch(text)
    if not m:
        return None
    days = int(m.group(1))
    if not _SERIAL_FIRST <= days <= _SERIAL_LAST:
        return None
    fraction = float("0." + m.group(2)) if m.group(2) else 0.0
    return _EXCEL_EPOCH + dt.timedelta(days=days), fraction


def date_text(text: str) -> str | None:
    """``YYYY-MM-DD`` for the date forms of office files — 2022年11月28日, 2022.11.28, 2022/11/28,
    2022-11-28 00:00:00, an Excel serial, any of them full-width — or None when ``text``
    is none of them (the caller words the refusal). The date is not checked to exist."""
    text = halfwidth(text)
    serial = excel_serial(text)
    if serial is not None:
        return serial[0].isoformat()
    m = _CJK_DATE.match(text)
    if m and (m.end() == len(text) or _rest_is_midnight(text[m.end():])):
        return f"{m.group(1)}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
    return None


def _rest_is_midnight(rest: str) -> bool:
    rest = rest.strip()
    t = _TIME.fullmatch(rest)
    return bool(t) and int(t.group(1)) == int(t.group(2)) == int(t.group(3) or 0) == 0


def datetime_text(text: str) -> str | None:
    """``YYYY-MM-DD HH:MM:SS`` for a local time in the forms of office files (any date form of
    ``date_text`` followed by 8:30, 08:30:00, 8时30分; an Excel serial with a fraction), or None."""
    text = halfwidth(text)
    serial = excel_serial(text)
    if serial is not None:
        day, fraction = serial
        seconds = round(fraction * 86400)
        if seconds >= 86400:
            return None
        return f"{day.isoformat()} {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    m = _CJK_DATE.match(text)
    if not m:
        return None
    t = _TIME.fullmatch(text[m.end():].strip().lstrip("T").strip())
    if not t:
        return None
    return (f"{m.group(1)}-{int(m.group(2)):02d}-{int(m.group(3)):02d} "
            f"{int(t.group(1)):02d}:{int(t.group(2)):02d}:{int(t.group(3) or 0):02d}")


def number_text(text: str) -> str:
    """A number Excel wrote as a float (``13800138000.0``) as the digits a person typed; any other
    text as it is (half-width, without spaces)."""
    text = halfwidth(text).replace(" ", "")
    m = _DOT_ZERO.fullmatch(text)
    return m.group(1) if m else text


def mangled_id_number(text: str) -> str | None:
    """Why ``text`` is an ID number that Excel has destroyed, or None when it does not look like one.

    Excel holds numbers as floats with 15 significant digits: an 18-digit number typed into a cell
    that is not 文本 is shown as 5.00222E+17 and its last three digits become 000. Neither can be
    undone, so the row is refused with what happened and how to fix it — never guessed."""
    text = halfwidth(text).replace(" ", "")
    fix = _("请在 Excel/WPS 中把该列设置为“文本”格式，再把身份证号重新粘贴或输入一次后导入")
    if _FLOAT_E.fullmatch(text):
        return _("身份证号“%(v)s”已被 Excel 当作数字变成了科学计数法，后几位已经丢失，无法还原；%(fix)s") % {
            "v": text, "fix": fix}
    m = _DOT_ZERO.fullmatch(text)
    digits = m.group(1) if m else text
    if len(digits) == 18 and digits.isdigit() and digits.endswith("000"):
        return _("身份证号“%(v)s”末尾是000且校验位不对：Excel 只保留15位有效数字，把最后三位变成了0，无法还原；%(fix)s") % {
            "v": digits, "fix": fix}
    return None


def mangled_phone(text: str) -> str | None:
    """Why ``text`` is a phone number that Excel turned into scientific notation, or None."""
    text = halfwidth(text).replace(" ", "")
    if _FLOAT_E.fullmatch(text):
        return _("电话“%(v)s”已被 Excel 变成了科学计数法；请把该列设置为“文本”格式，再把电话重新粘贴或输入一次后导入") % {
            "v": text}
    return None


# Yes/no as ledgers write them; the import fields add their own words (合格, 卧床, …).
YES_WORDS = frozenset({"1", "y", "yes", "true", "是", "有", "对", "√", "✓", "✔", "☑", "是的"})
NO_WORDS = frozenset({"0", "n", "no", "false", "否", "无", "没有", "不是", "×", "✗", "✘", "☐", ""})
