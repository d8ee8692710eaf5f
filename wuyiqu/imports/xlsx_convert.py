"""The first sheet of an XLSX file written out as UTF-8 CSV, run in a child process.

    python -m wuyiqu.imports.xlsx_convert SOURCE.xlsx TARGET.csv MEMORY_BYTES [--plain] < KEYS

SOURCE may be sealed (wuyiqu.lib.sealed) and TARGET is written sealed, with the keys the parent
writes on standard input (see ``main``); ``--plain`` reads and writes plain files (tests, by hand).

Why a child: python-calamine builds the sheet as one dense grid in Rust, sized by the furthest cell.
A 5 KB file with one cell in A1 and one in XFD1048576 asks for 16384 × 1048576 cells (512 GiB) and
the allocator aborts the whole process (SIGABRT), which would take a web or task worker down with it.
Here the child limits its own address space (RLIMIT_AS) before loading calamine, so such a file kills
only the child, and the parent reports it (``wuyiqu.imports.parsers``). The parent then streams the
CSV for both passes of the import instead of parsing the XLSX twice.

No Django here: the child starts in a fraction of a second. Exit status: 0 written, 2 calamine could
not read the file (the reason on stderr), 3 out of memory.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys

EXIT_UNREADABLE = 2
EXIT_MEMORY = 3


def cell_text(value) -> str:
    """A spreadsheet cell as the text a person typed: 13812345678.0 -> "13812345678", dates ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d") if value.time() == dt.time() else value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S")
    return str(value).strip()


def convert(source: str, target: str, keys: tuple[bytes, bytes, bytes] | None = None) -> None:
    """Write every row of the first sheet of ``source`` to ``target`` (trailing empty cells dropped, and
    the empty rows after the last row with data: a sheet formatted down to row 1,048,576 is not a
    million empty rows). Rows come out from the sheet's first row, so line N of the CSV is row N of
    the spreadsheet.
    ``keys``: (the source's file key, or b"" when it is not sealed; the key and the wrapped key to
    seal ``target`` with), see wuyiqu.lib.sealed; None: plain files."""
    import io

    from python_calamine import CalamineWorkbook

    from wuyiqu.lib import sealed

    if keys is None:
        with open(source, "rb") as f:
            sheet = CalamineWorkbook.from_filelike(f).get_sheet_by_index(0)
        raw = open(target, "wb", buffering=0)
    else:
        source_key, target_key, target_wrapped = keys
        with sealed.open_plain(source, key_for=lambda _wrapped: source_key) as f:
            sheet = CalamineWorkbook.from_filelike(f).get_sheet_by_index(0)
        raw = sealed.create(target, key=target_key, wrapped=target_wrapped)
    with io.TextIOWrapper(io.BufferedWriter(raw, 1 << 16), encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        empty = 0  # empty rows not written yet: written before the next row with data, dropped at the end
        for row in sheet.iter_rows():
            cells = [cell_text(v) for v in row]
            while cells and not cells[-1]:
                cells.pop()
            if not cells:
                empty += 1
                continue
            if empty:
                out.write("\r\n" * empty)
                empty = 0
            writer.writerow(cells)


def _keys_from_stdin() -> tuple[bytes, bytes, bytes]:
    """The three keys the parent writes on standard input, one hex line each."""
    lines = sys.stdin.buffer.read().decode().splitlines()
    source, target, wrapped = (bytes.fromhex(x.strip()) for x in (lines + ["", "", ""])[:3])
    return source, target, wrapped


def main(argv: list[str]) -> int:
    source, target, memory = argv[1], argv[2], int(argv[3])
    keys = _keys_from_stdin() if len(argv) < 5 or argv[4] != "--plain" else None
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort must not leave a core file behind
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    try:
        convert(source, target, keys)
    except MemoryError:
        return EXIT_MEMORY
    except BaseException as exc:  # calamine's errors, and a Rust panic (PanicException is a BaseException)
        print(f"{type(exc).__name__}: {exc}"[:500], file=sys.stderr)
        return EXIT_UNREADABLE
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
