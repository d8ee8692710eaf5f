"""Coverage-guided fuzzing of the ID-card checks (atheris, libFuzzer).

    .venv/bin/python fuzz/fuzz_idcard.py -atheris_runs=500000
    .venv/bin/python fuzz/fuzz_idcard.py -max_total_time=120

Any text goes through ``wuyiqu.lib.idcard.parse_id_number`` (the one validator) and the two import
paths built on its ``IdNumberReader`` — ``imports.fields.id_number_value`` and the nat-results
parser — which must agree with it: the same numbers accepted, the same information returned, a
RowError (never another exception) for the rest. Disagreement or another exception is a crash.
"""

from __future__ import annotations

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
    from wuyiqu.lib.idcard import InvalidIdNumber, check_digit, parse_id_number

NAT = NatParser()
SEEDS = [s.encode() for s in ("11010519491231002X", "11010519491231002x", " 500222199001011130 ",
                              "500222199002301130", "50022218800101113X", "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X", "")]


def validator(text: str):
    try:
        return parse_id_number(text)
    except InvalidIdNumber as exc:
        if "身份证号" not in str(exc):
            raise AssertionError(f"reason without the field: {exc}") from None
        return None


def check(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    text = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 30))
    info = validator(text)
    if info is not None:
        n = info.number
        if not (len(n) == 18 and n.isascii() and n[:17].isdigit() and n[17] == check_digit(n[:17])):
            raise AssertionError(f"accepted {text!r} as {n!r}")
    cleaned = text.replace(" ", "")
    expected = validator(cleaned) if cleaned else None
    try:
        got = fields.id_number_value({"id_number": text})
    except RowError:
        got = None
    if got != expected:
        raise AssertionError(f"fields.id_number_value({text!r}) = {got!r}, lib.idcard says {expected!r}")
    try:
        nat = NAT.id_number(text)
    except RowError:
        nat = None
    if nat != (info.number if info else None):
        raise AssertionError(f"NatParser.id_number({text!r}) = {nat!r}, lib.idcard says {info!r}")


def main() -> None:
    atheris.Setup(with_seeds(sys.argv, "idcard", SEEDS), check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
