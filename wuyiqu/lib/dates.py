"""Dates in Asia/Shanghai and the one meaning of "within N days" used everywhere."""

from __future__ import annotations

import datetime as dt
import re

from django.utils import timezone
from django.utils.translation import gettext as _


def today() -> dt.date:
    """The local date (Asia/Shanghai) now."""
    return timezone.localdate()


def window_start(on: dt.date, days: int) -> dt.date:
    """First day of the N-day window ending on ``on``: within 8 days of D means D-7 … D."""
    if days < 1:
        raise ValueError("a window has at least one day")
    return on - dt.timedelta(days=days - 1)


def within_days(day: dt.date | None, on: dt.date, days: int) -> bool:
    """True when ``day`` is one of the ``days`` days ending on ``on``."""
    return day is not None and window_start(on, days) <= day <= on


def covers(start: dt.date, end: dt.date | None, on: dt.date) -> bool:
    """A measure from ``start`` to ``end`` (None: ongoing) covers ``on`` when start <= on <= end."""
    return start <= on and (end is None or on <= end)


def parse_date(raw: str) -> dt.date:
    """Parse ``YYYY-MM-DD`` (also ``YYYY/MM/DD``); raise ValueError with a reason (Chinese by default)."""
    text = (raw or "").strip()
    if not text:
        raise ValueError(_("日期为空"))
    norm = text.replace("/", "-")
    if len(norm) > 10 and norm[10:].strip() in ("00:00", "00:00:00"):
        norm = norm[:10]  # a date cell that a spreadsheet wrote out with a midnight time
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", norm):  # not \d: it matches ٢ and ２ too
        raise ValueError(_("日期“%(date)s”格式不对，应为 YYYY-MM-DD") % {"date": text})
    try:
        return dt.date.fromisoformat(norm)
    except ValueError:
        raise ValueError(_("日期“%(date)s”不存在") % {"date": text}) from None


def parse_local_datetime(raw: str) -> dt.datetime:
    """Parse ``YYYY-MM-DD HH:MM[:SS]`` as Asia/Shanghai local time; aware result."""
    text = (raw or "").strip().replace("/", "-").replace("T", " ")
    if not text:
        raise ValueError(_("时间为空"))
    try:
        naive = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(_("时间“%(time)s”无效，应为 YYYY-MM-DD HH:MM[:SS]") % {"time": raw}) from None
    if not 1900 <= naive.year <= 2100:  # year 1 in Shanghai is year 0 in UTC: the database cannot store it
        raise ValueError(_("时间“%(time)s”的年份%(year)s不合理") % {"time": raw, "year": naive.year})
    if naive.tzinfo is not None:
        return naive
    return timezone.make_aware(naive, timezone.get_default_timezone())
