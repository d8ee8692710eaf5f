"""Coverage-guided fuzzing of the dates and the other import fields (atheris, libFuzzer).

    .venv/bin/python fuzz/fuzz_fields.py -atheris_runs=500000
    .venv/bin/python fuzz/fuzz_fields.py -max_total_time=120

Any text goes through ``wuyiqu.lib.dates.parse_date`` (a date, or ValueError with a Chinese reason
that calls a date missing only when it is well-formed), ``imports.fields.datetime_value`` (an aware
time the database can store, or RowError), the nat-results sample time, and the phone, yes/no,
rate, choice and text fields (a value or RowError). Anything else is a crash.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import django_setup, with_seeds  # noqa: E402

with atheris.instrument_imports(include=["wuyiqu"]):  # before Django loads the apps, or they stay bare
    django_setup()
    from wuyiqu.health.nat_import import NatParser
    from wuyiqu.imports import fields
    from wuyiqu.imports.registry import RowError
    from wuyiqu.lib import dates

NAT = NatParser()
SEEDS = [s.encode() for s in ("2022-11-28", "2022/2/30", "2022-13-01", "2022-11-28 08:30", "0001-01-01 00:00",
                              "2022-11-28T08:30+05:00", "95%", "13812345678", "+86 138 1234 5678", "是", "")]
PARSERS = (
    lambda raw: fields.phone_value(raw, "f"),
    lambda raw: fields.bool_value(raw, "f", "免检"),
    lambda raw: fields.rate_value(raw, "f", "比例"),
    lambda raw: fields.choice_value(raw, "f", "类型", {"high": "high", "高风险区": "high"}),
    lambda raw: fields.required_text(raw, "f", "姓名", max_length=20),
    lambda raw: fields.date_value(raw, "f", required=False, not_after=dt.date(2022, 11, 28)),
)


def check(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    which = fdp.ConsumeIntInRange(0, len(PARSERS) - 1)
    text = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))
    try:
        day = dates.parse_date(text)
    except ValueError as exc:
        if "不存在" in str(exc):
            norm = text.strip().replace("/", "-")[:10]
            if not (norm.isascii() and len(norm) == 10):
                raise AssertionError(f"{text!r} called a missing date") from None
    else:
        if dates.parse_date(day.isoformat()) != day:
            raise AssertionError(f"{text!r} does not round-trip")
    try:
        at = fields.datetime_value({"at": text}, "at")
    except RowError:
        pass
    else:
        if at.tzinfo is None:
            raise AssertionError(f"{text!r} gave a naive time")
        at.astimezone(dt.UTC)
    try:
        NAT.sampled_at(text)
    except RowError:
        pass
    try:
        PARSERS[which]({"f": text})
    except RowError:
        pass


def main() -> None:
    atheris.Setup(with_seeds(sys.argv, "fields", SEEDS), check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
