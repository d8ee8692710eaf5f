"""Uploaded scans, photos and documents, judged by their content — never by their name or the
browser's Content-Type: JPEG, PNG or PDF, not empty, at most ``settings.ATTACHMENT_MAX_BYTES``.

The type found here is the one stored and sent back (with ``X-Content-Type-Options: nosniff``), so a
page named ``scan.pdf`` that is really HTML is refused here, and a file that passes is only ever
served as the image or PDF its first bytes say it is.
"""

from __future__ import annotations

from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from wuyiqu.lib import filetypes

# (first bytes, content type, extension)
ALLOWED = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"%PDF-", "application/pdf", "pdf"),
)
HEAD_BYTES = 512
_MARKUP = (b"<!doctype", b"<html", b"<script", b"<svg", b"<?xml", b"<body", b"<iframe")


class UploadRefused(ValueError):
    """The uploaded file is refused; the message (Chinese) names the file and says why."""


def sniff(head: bytes) -> tuple[str, str] | None:
    """(content type, extension) for a file starting with ``head``, or None when it is none of ALLOWED."""
    for magic, content_type, ext in ALLOWED:
        if head.startswith(magic):
            return content_type, ext
    return None


def describe(head: bytes) -> str | None:
    """What a refused file looks like instead (translated), or None when it is nothing we know."""
    known = filetypes.what_is(head)
    if known:
        return known
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith(_MARKUP):
        return _("网页或脚本（HTML/SVG/XML）")
    return None


def _shown(name: str | None) -> str:
    name = (name or "").replace("\n", " ").replace("\r", " ")
    return name if len(name) <= 60 else name[:57] + "…"


def check_upload(upload, *, max_bytes: int) -> tuple[str, str]:
    """(content type, extension) of ``upload`` by its first bytes; the upload is left at its start.
    UploadRefused when it is missing, empty, larger than ``max_bytes`` or not JPEG, PNG or PDF."""
    if upload is None:
        raise UploadRefused(_("请选择要上传的文件"))
    name = _shown(upload.name)
    size = upload.size
    if size == 0:
        raise UploadRefused(_("文件“%(name)s”是空的，不是 JPEG、PNG 或 PDF 文件") % {"name": name})
    if size is not None and size > max_bytes:
        raise UploadRefused(_("文件“%(name)s”有 %(size)s，超过上限 %(max)s")
                            % {"name": name, "size": filesizeformat(size), "max": filesizeformat(max_bytes)})
    upload.seek(0)
    head = upload.read(HEAD_BYTES)
    upload.seek(0)
    if not head:
        raise UploadRefused(_("文件“%(name)s”是空的，不是 JPEG、PNG 或 PDF 文件") % {"name": name})
    found = sniff(head)
    if found is None:
        what = describe(head)
        if what:
            raise UploadRefused(_("文件“%(name)s”不是 JPEG、PNG 或 PDF 文件（按内容判断，它是%(what)s）")
                                % {"name": name, "what": what})
        raise UploadRefused(_("文件“%(name)s”不是 JPEG、PNG 或 PDF 文件（按内容判断，不看文件名）") % {"name": name})
    return found
