"""Coverage-guided fuzzing of the CSV side of the import reader (atheris, libFuzzer).

    .venv/bin/python fuzz/fuzz_parsers.py -atheris_runs=200000
    .venv/bin/python fuzz/fuzz_parsers.py -max_total_time=120 [CORPUS_DIR]

Every input is written to a file named ``.csv`` and read by ``wuyiqu.imports.parsers``: the raw rows
(encoding detection, BOMs, the strict CSV reader, the limits on rows, columns and cells, NUL) and the
records of the residents kind (header mapping). Each must give rows or raise FileError with a
Chinese message; any other exception is a crash, and libFuzzer saves the input as ``crash-…``.
Without a corpus folder on the command line a seed corpus is made in a temporary folder.
"""

from __future__ import annotations

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
KEYS = {c.key for c in COLUMNS}
PATH = Path(tempfile.mkdtemp(prefix="wuyiqu-fuzz-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)) / "in.csv"

HEADER = "身份证号,姓名,户编码,联系电话,免检(卧床)\r\n"
ROW = "11010519491231002X,张三,500110002015-C01-B01-101,13812345678,\r\n"
SEEDS = [
    (HEADER + ROW).encode("utf-8"),
    (HEADER + ROW).encode("utf-8-sig"),
    (HEADER + ROW).encode("gbk"),
    (HEADER + ROW).encode("utf-16"),
    (HEADER + '"11010519491231002X","多行\n名字",H1,,是\r\n').encode(),
    (HEADER + ROW).replace("\r\n", "\r").encode(),
    b"id_number,name,household_code\n" + "1,Jos\xe9,H\n".encode("latin-1"),
    HEADER.encode() + "11010519491231002X,李四,H1,,\r\n".encode("gbk"),
    b"\x89PNG\r\n\x1a\n\x00\x00",
    b"",
]


def check(data: bytes) -> None:
    PATH.write_bytes(data)
    try:
        for _line, cells in parsers.iter_raw_rows(PATH):
            if any("\x00" in c for c in cells):
                raise AssertionError("a NUL reached a cell")
    except FileError as exc:
        if not str(exc):
            raise AssertionError("a refusal without a message") from None
    try:
        for line, record in parsers.records_of(PATH, COLUMNS):
            if set(record) != KEYS or line < 2:
                raise AssertionError(f"bad record at line {line}")
    except FileError:
        pass


def main() -> None:
    atheris.Setup(with_seeds(sys.argv, "parsers", SEEDS), check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
