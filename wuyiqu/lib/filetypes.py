"""What a file is, judged by its first bytes: one table for the import reader (a file that is neither
CSV nor Excel) and the upload check (a file that is not an allowed image or PDF), so that both name
a refused file the same way."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

ZIP = b"PK\x03\x04"
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # old .xls/.doc, and password-protected .xlsx

# (first bytes, what it is). Long enough not to be taken for text: a CSV may start with "MZ" or "Rar".
KNOWN = (
    (b"\x89PNG\r\n\x1a\n", gettext_noop("PNG 图片")),
    (b"\xff\xd8\xff", gettext_noop("JPEG 图片")),
    (b"GIF8", gettext_noop("GIF 图片")),
    (b"%PDF-", gettext_noop("PDF 文件")),
    (b"MZ\x90\x00", gettext_noop("Windows 程序")),
    (b"\x7fELF", gettext_noop("程序文件")),
    (b"\x1f\x8b", gettext_noop("gzip 压缩包")),
    (b"Rar!\x1a\x07", gettext_noop("RAR 压缩包")),
    (b"7z\xbc\xaf\x27\x1c", gettext_noop("7z 压缩包")),
    (OLE, gettext_noop("旧版 Office 文档")),
    (ZIP, gettext_noop("ZIP 压缩包或 Office 文档")),
)


def what_is(head: bytes, *, besides: tuple[bytes, ...] = ()) -> str | None:
    """What a file starting with ``head`` is (translated), or None when it is none of KNOWN; the
    kinds whose first bytes are in ``besides`` are left to the caller."""
    for magic, what in KNOWN:
        if magic not in besides and head.startswith(magic):
            return _(what)
    return None
