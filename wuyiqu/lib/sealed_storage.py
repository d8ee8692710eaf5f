"""The default file storage: Django's file system storage below MEDIA_ROOT, every file sealed.

Attachments of applications (scans of paper co-signature sheets carry residents' names and
signatures) and photos of inspections are personal data: they are written sealed under the data
key (``wuyiqu.lib.sealed``, mode 0600, folders 0700) and read back decrypted, so the scoped views
that serve them see the original bytes and a copy of ``uploads/`` without the keys shows nothing.
"""

from __future__ import annotations

import os

from django.core.files import File
from django.core.files.storage import FileSystemStorage

from wuyiqu.lib import sealed


class SealedStorage(FileSystemStorage):
    def __init__(self, **kwargs):
        kwargs.setdefault("file_permissions_mode", sealed.FILE_MODE)
        kwargs.setdefault("directory_permissions_mode", 0o700)
        super().__init__(**kwargs)

    def _open(self, name, mode="rb"):
        if "w" in mode or "a" in mode or "+" in mode:
            raise ValueError("a sealed file is written once, through save()")
        return File(sealed.open_plain(self.path(name)), name)

    def _save(self, name, content):
        """Write ``content`` sealed to a new file ``name`` (a name that exists gets another one)."""
        while True:
            full = self.path(name)
            os.makedirs(os.path.dirname(full), mode=self.directory_permissions_mode, exist_ok=True)
            try:
                content.seek(0)
            except (AttributeError, OSError, ValueError):
                pass
            try:
                sealed.seal(full, content.chunks() if hasattr(content, "chunks") else iter([content.read()]))
            except FileExistsError:  # another upload took the name meanwhile
                name = self.get_available_name(name)
                continue
            return str(name).replace("\\", "/")

    def size(self, name):
        return sealed.plain_size(self.path(name))
