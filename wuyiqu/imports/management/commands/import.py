"""`wuyiqu import KIND FILE [--skip-invalid]`: import a CSV/XLSX file, print every bad row and a summary.

Exit status 0 when the file was imported, 1 when nothing was imported because of bad rows or a bad file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from wuyiqu.imports.models import ImportStatus
from wuyiqu.imports.registry import all_kinds
from wuyiqu.imports.services import build_template, run_import

DUPLICATES_SHOWN = 100  # repeated rows printed one by one; the rest are counted (all are on the job)


class Command(BaseCommand):
    help = "Import a CSV (UTF-8 or GBK) or XLSX file of KIND; with --template, write the XLSX template instead."

    def add_arguments(self, parser):
        parser.add_argument("kind", help="one of: " + ", ".join(all_kinds()))
        parser.add_argument("file", help="the file to import (or, with --template, the template to write)")
        parser.add_argument("--skip-invalid", action="store_true",
                            help="import the valid rows and report the others (default: import nothing if any row is bad)")
        parser.add_argument("--template", action="store_true", help="write the XLSX template of KIND to FILE")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, kind: str, file: str, skip_invalid: bool, template: bool, no_progress: bool, **options):
        if kind not in all_kinds():
            raise CommandError(f"未知的导入类型“{kind}”，可用：{'、'.join(all_kinds())}")
        path = Path(file)
        if template:
            path.write_bytes(build_template(kind))
            self.stdout.write(f"模板已写入 {path}")
            return
        if not path.is_file():
            raise CommandError(f"文件不存在：{path}")
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
            text = str(problem)
            if show:
                tqdm.write(text, file=sys.stderr)
            else:
                self.stderr.write(text)

        try:
            job = run_import(kind=kind, path=path, actor=None, skip_invalid=skip_invalid,
                             progress=progress, report=report)
        finally:
            for bar in bars.values():
                bar.close()
        if duplicates["hidden"]:
            self.stderr.write(f"另有 {duplicates['hidden']} 行重复未逐行列出（共 {job.duplicate} 行重复）")
        if job.status != ImportStatus.SUCCEEDED:
            raise CommandError(job.message, returncode=1)
        self.stdout.write(f"导入完成（{kind}，任务 {job.pk}）：{job.message}")
        self.stdout.write(
            f"created={job.created} updated={job.updated} unchanged={job.unchanged} "
            f"invalid={job.invalid} duplicate={job.duplicate} unmatched={job.unmatched}")
