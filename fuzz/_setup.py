"""Shared by the harnesses: Django configured for the test settings (no database is touched), and a
seed corpus made by code in a temporary folder when the command line names none."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wuyiqu.settings_test")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def with_seeds(argv: list[str], name: str, seeds: Iterable[bytes]) -> list[str]:
    """``argv`` with a corpus folder of ``seeds`` appended unless it names a folder already; new
    inputs that libFuzzer finds go there too (a temporary folder, removed by the system)."""
    if any(not a.startswith("-") and Path(a).is_dir() for a in argv[1:]):
        return argv
    folder = Path(tempfile.mkdtemp(prefix=f"wuyiqu-fuzz-{name}-"))
    for i, seed in enumerate(seeds):
        (folder / f"seed-{i:03d}").write_bytes(seed)
    return [*argv, str(folder)]
