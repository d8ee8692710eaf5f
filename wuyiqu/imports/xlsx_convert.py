"""The worksheets of a spreadsheet (.xlsx, .xls, .ods) written out as UTF-8 CSV files, run in a
child process.

    python -m wuyiqu.imports.xlsx_convert SOURCE TARGET_DIR MEMORY_BYTES [--plain] < KEYS

SOURCE may be sealed (wuyiqu.lib.sealed) and the CSVs are written sealed, with the keys the parent
writes on standard input (see ``main``); ``--plain`` reads and writes plain files (tests, by hand). It
writes ``TARGET_DIR/0.csv``, ``1.csv``, … (one per visible worksheet, in the workbook's order) and
``TARGET_DIR/sheets.json``: ``[{"index": 0, "name": "1号楼", "file": "0.csv"}, …]``.

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
import json
import os
import sys
from decimal import Decimal

EXIT_UNREADABLE = 2
EXIT_MEMORY = 3


def cell_text(value) -> str:
    """A spreadsheet cell as the text a person typed: 13812345678.0 -> "13812345678", dates ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        if value.is_integer():
            # Beyond 15 digits a float's last digits are noise (5.0022219800101e17 is
            # 500222198001010048 exactly): show the 15 significant digits Excel keeps and shows,
            # so a mangled ID number reads 500222198001010000 and is refused as such.
            return str(int(Decimal(f"{value:.15g}"))) if abs(value) >= 1e15 else str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d") if value.time() == dt.time() else value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S")
    return str(value).strip()


def convert(source: str, target_dir: str, keys: tuple[bytes, bytes, bytes] | None = None) -> None:
    """Write every row of every visible worksheet of ``source`` to ``target_dir`` (trailing empty
    cells dropped, and the empty rows after a sheet's last row with data: a sheet formatted down to
    row 1,048,576 is not a million empty rows) and the list of them to ``sheets.json``. Rows come out from the sheet's first
    row, so line N of a CSV is row N of its sheet. One sheet is held at a time.
    ``keys``: (the source's file key, or b"" when it is not sealed; the key and the wrapped key to
    seal the CSVs with), see wuyiqu.lib.sealed; None: plain files."""
    import io

    from python_calamine import CalamineWorkbook

    from wuyiqu.lib import sealed

    listed = []
    if keys is None:
        source_file = open(source, "rb")
    else:
        source_key, target_key, target_wrapped = keys
        source_file = sealed.open_plain(source, key_for=lambda _wrapped: source_key)
    with source_file as f:
        book = CalamineWorkbook.from_filelike(f)
        for index, meta in enumerate(book.sheets_metadata):
            if "WorkSheet" not in str(meta.typ) or "Visible" != str(meta.visible).rsplit(".", 1)[-1]:
                continue  # chart sheets, macro sheets and hidden sheets are not part of the ledger
            name = f"{index}.csv"
            sheet = book.get_sheet_by_index(index)
            target = os.path.join(target_dir, name)
            # Each CSV gets its own random nonce prefix (sealed.SealedWriter), so one key serves them all.
            raw = open(target, "wb", buffering=0) if keys is None else sealed.create(target, key=target_key,
                                                                                      wrapped=target_wrapped)
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
            del sheet
            listed.append({"index": index, "name": meta.name, "file": name})
    with open(os.path.join(target_dir, "sheets.json"), "w", encoding="utf-8") as out:
        json.dump(listed, out, ensure_ascii=False)


def _keys_from_stdin() -> tuple[bytes, bytes, bytes]:
    """The three keys the parent writes on standard input, one hex line each."""
    lines = sys.stdin.buffer.read().decode().splitlines()
    source, target, wrapped = (bytes.fromhex(x.strip()) for x in (lines + ["", "", ""])[:3])
    return source, target, wrapped


def main(argv: list[str]) -> int:
    source, target_dir, memory = argv[1], argv[2], int(argv[3])
    keys = _keys_from_stdin() if len(argv) < 5 or argv[4] != "--plain" else None
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort must not leave a core file behind
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    try:
        convert(source, target_dir, keys)
    except MemoryError:
        return EXIT_MEMORY
    except BaseException as exc:  # calamine's errors, and a Rust panic (PanicException is a BaseException)
        print(f"{type(exc).__name__}: {exc}"[:500], file=sys.stderr)
        return EXIT_UNREADABLE
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
