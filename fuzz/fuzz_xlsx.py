"""Coverage-guided fuzzing of the XLSX side of the import reader (atheris, libFuzzer).

    .venv/bin/python fuzz/fuzz_xlsx.py -max_total_time=300

Every input is written to a file named ``.xlsx`` and read as the imports read it: the content sniff,
the ZIP check before unpacking (sizes, ratios, encryption, what the members are) in this process,
then the first sheet converted in the capped child process and the CSV read back. Each input must
give rows or raise FileError; any other exception is a crash. The child makes this slow (~10 inputs
a second): calamine's own crashes are contained in the child by design, so what is fuzzed here is our
handling of them. Seeds: small workbooks made by code.
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import django_setup, with_seeds  # noqa: E402

with atheris.instrument_imports(include=["wuyiqu"]):  # before Django loads the apps, or they stay bare
    django_setup()
    from wuyiqu.imports import parsers
    from wuyiqu.imports.registry import FileError, get_kind

COLUMNS = get_kind("residents").columns
PATH = Path(tempfile.mkdtemp(prefix="wuyiqu-fuzz-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)) / "in.xlsx"


def seeds() -> list[bytes]:
    from openpyxl import Workbook

    out = []
    for rows in ([["身份证号", "姓名", "户编码"]],
                 [["身份证号", "姓名", "户编码"], ["11010519491231002X", "张三", "H1"]],
                 [[None, None], ["身份证号", "姓名", "户编码"], [11010519491231.0, True, "=1+1"]]):
        wb = Workbook()
        for row in rows:
            wb.active.append(row)
        buf = io.BytesIO()
        wb.save(buf)
        out.append(buf.getvalue())
    return out


def check(data: bytes) -> None:
    PATH.write_bytes(data)
    try:
        for line, record in parsers.records_of(PATH, COLUMNS):
            if line < 2 or any("\x00" in v for v in record.values()):
                raise AssertionError(f"bad record at line {line}")
    except FileError as exc:
        if not str(exc):
            raise AssertionError("a refusal without a message") from None


def main() -> None:
    atheris.Setup(with_seeds(sys.argv, "xlsx", seeds()), check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
