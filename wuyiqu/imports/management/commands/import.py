"""`wuyiqu import KIND FILE [--skip-invalid] [--mapping FILE] [--sheet NAME] [--preview]`: import a
CSV/TSV, .xlsx, .xls or .ods file; print the mapping of its columns, every bad row and a summary.

Exit status 0 when the file was imported (or previewed), 1 when nothing was imported because of bad
rows or a bad file.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from wuyiqu.imports.headers import IGNORE, Layout, column_letter, sheet_row
from wuyiqu.imports.models import ImportStatus
from wuyiqu.imports.registry import all_kinds
from wuyiqu.imports.services import build_template, run_import

DUPLICATES_SHOWN = 100  # repeated rows printed one by one; the rest are counted (all are on the job)


def terminal_safe(text: str) -> str:
    """``text`` with every control character (C0 but the tab, DEL, C1) and every bidirectional
    override shown as an escape (``\\x1b``, ``\\u202e``): a cell of the file quoted in a message must
    not move the cursor, clear the screen, retitle the window or reorder what the operator reads."""
    return "".join(ch if not _hidden(ch) else (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
                   for ch in text)


def _hidden(ch: str) -> bool:
    code = ord(ch)
    return (code < 0x20 and ch != "\t") or 0x7F <= code < 0xA0 or unicodedata.bidirectional(ch) in _BIDI_CONTROLS


_BIDI_CONTROLS = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}


class Command(BaseCommand):
    help = ("Import a CSV/TSV (UTF-8, GBK/GB18030, UTF-16), XLSX, XLS or ODS file of KIND; with --template, "
            "write the XLSX template instead.")

    def add_arguments(self, parser):
        parser.add_argument("kind", help="one of: " + ", ".join(all_kinds()))
        parser.add_argument("file", help="the file to import (or, with --template, the template to write)")
        parser.add_argument("--skip-invalid", action="store_true",
                            help="import the valid rows and report the others (default: import nothing if any row is bad)")
        parser.add_argument("--template", action="store_true", help="write the XLSX template of KIND to FILE")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        parser.add_argument("--mapping", metavar="FILE",
                            help='a JSON file {"file header": "column key" or "" (not imported), …}, used before '
                                 "the dictionary of office words (the mapping printed by an earlier run is this format)")
        parser.add_argument("--sheet", action="append", metavar="NAME",
                            help="import only this sheet of a workbook (repeat for several); default: every sheet "
                                 "with a header, which must all name the same columns")
        parser.add_argument("--preview", action="store_true",
                            help="check every row and print what would be created/updated/unchanged; write nothing")

    def handle(self, *args, kind: str, file: str, skip_invalid: bool, template: bool, no_progress: bool,
               mapping: str | None = None, sheet: list[str] | None = None, preview: bool = False, **options):
        if kind not in all_kinds():
            raise CommandError(f"未知的导入类型“{kind}”，可用：{'、'.join(all_kinds())}")
        path = Path(file)
        if template:
            path.write_bytes(build_template(kind))
            self.stdout.write(f"模板已写入 {path}")
            return
        if not path.is_file():
            raise CommandError(f"文件不存在：{path}")
        columns = _read_mapping(mapping) if mapping else None
        bars: dict[str, tqdm] = {}
        show = not no_progress and sys.stderr.isatty()

        def progress(phase: str, done: int, total: int) -> None:
            if not show:
                return
            bar = bars.get(phase)
            if bar is None:
                for other in bars.values():
                    other.close()
                bar = bars[phase] = tqdm(desc="检查" if phase == "check" else "写入", unit="行", total=total or None,
                                         file=sys.stderr, mininterval=0.5, dynamic_ncols=True)
            if total and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        duplicates = {"shown": 0, "hidden": 0}

        def report(problem) -> None:
            # Every invalid row is printed (SPEC §7); repeated rows only up to DUPLICATES_SHOWN, then
            # counted: a file of a million copies of one row would otherwise print a million lines.
            if problem.duplicate:
                if duplicates["shown"] >= DUPLICATES_SHOWN:
                    duplicates["hidden"] += 1
                    return
                duplicates["shown"] += 1
            text = terminal_safe(str(problem))
            if show:
                tqdm.write(text, file=sys.stderr)
            else:
                self.stderr.write(text)

        try:
            job = run_import(kind=kind, path=path, actor=None, skip_invalid=skip_invalid,
                             progress=progress, report=report, mapping=columns, sheets=sheet, dry_run=preview,
                             planned=lambda layout: self.print_mapping(layout, kind))
        finally:
            for bar in bars.values():
                bar.close()
        if duplicates["hidden"]:
            self.stderr.write(f"另有 {duplicates['hidden']} 行重复未逐行列出（共 {job.duplicate} 行重复）")
        if job.status == ImportStatus.PREVIEWED:
            self.stdout.write(terminal_safe(job.message))
            self.stdout.write(
                f"created={job.created} updated={job.updated} unchanged={job.unchanged} "
                f"invalid={job.invalid} duplicate={job.duplicate} unmatched={job.unmatched} (preview, nothing written)")
            return
        if job.status != ImportStatus.SUCCEEDED:
            raise CommandError(terminal_safe(job.message), returncode=1)
        self.stdout.write(f"导入完成（{kind}，任务 {job.pk}）：{terminal_safe(job.message)}")
        self.stdout.write(
            f"created={job.created} updated={job.updated} unchanged={job.unchanged} "
            f"invalid={job.invalid} duplicate={job.duplicate} unmatched={job.unmatched}")

    def print_mapping(self, layout: Layout, kind: str) -> None:
        """The header found in each sheet and the field each column feeds, then the same as --mapping JSON."""
        labels = {c.key: c.header for c in all_kinds()[kind].columns}
        for sheet in layout.sheets:
            self.stdout.write(terminal_safe(f"{sheet_row(sheet.name, sheet.header_line)}是列标题，数据从第{sheet.header_line + 1}行起："))
            for i, (header, key) in enumerate(zip(sheet.headers, sheet.keys, strict=True)):
                if header.strip():
                    target = f"{labels[key]} ({key})" if key else "不导入"
                    self.stdout.write(terminal_safe(f"  {column_letter(i)}列 {header} → {target}"))
        for name, why in layout.skipped:
            self.stdout.write(terminal_safe(f"未导入工作表“{name}”：{why}"))
        self.stdout.write(terminal_safe("对应关系（可存为文件，用 --mapping 指定）：" + json.dumps(layout.mapping, ensure_ascii=False)))


def _read_mapping(path: str) -> dict[str, str]:
    """{header: key or ""} from a JSON file; CommandError when it is not one."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise CommandError(f"无法读取对应关系文件 {path}：{exc}") from None
    if isinstance(data, dict) and isinstance(data.get("columns"), dict):
        data = data["columns"]
    if not isinstance(data, dict) or not all(isinstance(k, str) and (v is None or isinstance(v, str))
                                             for k, v in data.items()):
        raise CommandError(f'对应关系文件 {path} 应为 JSON 对象：{{"文件中的列标题": "列名"或""（不导入）, …}}')
    return {k: v or IGNORE for k, v in data.items()}
