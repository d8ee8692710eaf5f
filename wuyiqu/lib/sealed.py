"""Files encrypted at rest ("sealed"), written and read back as streams.

Uploads (import files, attachments, inspection photos) and the temporary CSV of an XLSX import are
written sealed: nothing of their content is on disk in clear, and ``open_plain`` reads them back
as an ordinary seekable binary file, so readers (the CSV reader, ``zipfile``, calamine) need not
know. A file that is not sealed (an operator's file given to ``wuyiqu import``) is opened as it is.

Format::

    MAGIC (8 bytes) | length of the wrapped key (2 bytes, big-endian) | wrapped key | nonce prefix (8 bytes)
    then chunks: AES-256-GCM of each CHUNK bytes of the content under the file key,
                 nonce = prefix | chunk number (4 bytes, big-endian),
                 associated data = b"\\x01" for the last chunk, b"\\x00" for the others

Every file has its own random key; the header holds it encrypted under the data key
(``wuyiqu.lib.crypto``, so an old data key still opens it after a rotation). A chunk moved, altered or
cut off does not authenticate: the last chunk is always present (possibly empty) and marked.

No Django at import time: the XLSX child process (``wuyiqu.imports.xlsx_convert``) uses this module
with keys its parent hands it, and starts in a fraction of a second.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"WYQSEAL1"
CHUNK = 1 << 16
TAG = 16
_PREFIX = 8
FILE_MODE = 0o600


class SealError(Exception):
    """A sealed file cannot be opened: its key is unknown here, or it was altered or cut off."""


# --- keys ---------------------------------------------------------------------------------------------


def new_file_key() -> tuple[bytes, bytes]:
    """(key, wrapped): a fresh file key and the same key encrypted under the data key."""
    from wuyiqu.lib.crypto import cipher

    key = AESGCM.generate_key(bit_length=256)
    return key, cipher().encrypt(key.hex())


def unwrap_with_data_key(wrapped: bytes) -> bytes:
    """The file key inside ``wrapped``; SealError when no data key of this process opens it."""
    from wuyiqu.lib.crypto import DecryptionError, cipher

    try:
        return bytes.fromhex(cipher().decrypt(wrapped))
    except (DecryptionError, ValueError):
        raise SealError("the file was sealed under a data key this process does not have") from None


# --- writing ------------------------------------------------------------------------------------------


class SealedWriter(io.RawIOBase):
    """A write-only binary file that seals what is written to it. ``close()`` writes the last chunk:
    a writer not closed (a crash) leaves a file that does not open, never a readable half."""

    def __init__(self, out: BinaryIO, key: bytes, wrapped: bytes):
        super().__init__()
        self._out = out
        self._aead = AESGCM(key)
        self._prefix = os.urandom(_PREFIX)
        self._index = 0
        self._buffer = bytearray()
        out.write(MAGIC + len(wrapped).to_bytes(2, "big") + wrapped + self._prefix)

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._buffer += data
        # Keep at least one byte back: the last chunk is only known at close.
        while len(self._buffer) > CHUNK:
            self._emit(bytes(self._buffer[:CHUNK]), last=False)
            del self._buffer[:CHUNK]
        return len(data)

    def _emit(self, plain: bytes, *, last: bool) -> None:
        nonce = self._prefix + self._index.to_bytes(4, "big")
        self._out.write(self._aead.encrypt(nonce, plain, b"\x01" if last else b"\x00"))
        self._index += 1

    def close(self) -> None:
        if not self.closed:
            try:
                self._emit(bytes(self._buffer), last=True)
                self._buffer.clear()
                self._out.close()
            finally:
                super().close()


def create(path: str | Path, *, key: bytes | None = None, wrapped: bytes | None = None) -> SealedWriter:
    """A SealedWriter for the new file ``path`` (mode 0600; an existing file is an error). Without
    ``key`` a new file key is made under the data key (needs Django's settings)."""
    if key is None or wrapped is None:
        key, wrapped = new_file_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    return SealedWriter(os.fdopen(fd, "wb", buffering=CHUNK), key, wrapped)


def seal(path: str | Path, chunks: Iterable[bytes]) -> Path:
    """Write ``chunks`` to the new file ``path`` sealed under a new key (mode 0600). A failure
    removes the partial file. Returns the path."""
    path = Path(path)
    out = create(path)  # FileExistsError before anything is written: never remove another's file
    try:
        with out:
            for chunk in chunks:
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


# --- reading ------------------------------------------------------------------------------------------


def is_sealed(path: str | Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def _read_header(f: BinaryIO) -> tuple[bytes, bytes, int]:
    """(wrapped key, nonce prefix, header length) of the sealed file ``f`` (positioned at 0)."""
    head = f.read(len(MAGIC) + 2)
    if len(head) < len(MAGIC) + 2 or not head.startswith(MAGIC):
        raise SealError("not a sealed file")
    n = int.from_bytes(head[len(MAGIC):], "big")
    wrapped = f.read(n)
    prefix = f.read(_PREFIX)
    if len(wrapped) != n or len(prefix) != _PREFIX:
        raise SealError("the sealed file is cut off")
    return wrapped, prefix, len(MAGIC) + 2 + n + _PREFIX


class _SealedReader(io.RawIOBase):
    """The content of a sealed file, seekable, decrypted a chunk at a time."""

    def __init__(self, f: BinaryIO, key_for: Callable[[bytes], bytes]):
        super().__init__()
        self._f = f
        try:
            wrapped, self._prefix, self._start = _read_header(f)
            self._aead = AESGCM(key_for(wrapped))
            body = os.fstat(f.fileno()).st_size - self._start
        except BaseException:
            f.close()
            raise
        if body < TAG:
            f.close()
            raise SealError("the sealed file is cut off")
        self._chunks = -(-body // (CHUNK + TAG))
        self.size = body - self._chunks * TAG
        self._pos = 0
        self._cached = -1
        self._plain = b""
        self.name = getattr(f, "name", "")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def _chunk(self, index: int) -> bytes:
        if index != self._cached:
            self._f.seek(self._start + index * (CHUNK + TAG))
            data = self._f.read(CHUNK + TAG)
            last = index == self._chunks - 1
            try:
                self._plain = self._aead.decrypt(self._prefix + index.to_bytes(4, "big"), data,
                                                 b"\x01" if last else b"\x00")
            except Exception:
                raise SealError(f"chunk {index} of the sealed file does not authenticate") from None
            self._cached = index
        return self._plain

    def readinto(self, buffer) -> int:
        if self._pos >= self.size:
            return 0
        index, offset = divmod(self._pos, CHUNK)
        plain = self._chunk(index)
        n = min(len(buffer), len(plain) - offset)
        buffer[:n] = plain[offset:offset + n]
        self._pos += n
        return n

    def fileno(self) -> int:  # pragma: no cover - readers must not get at the ciphertext by descriptor
        raise io.UnsupportedOperation("a sealed file has no descriptor of its content")

    def close(self) -> None:
        if not self.closed:
            self._f.close()
        super().close()


def open_plain(path: str | Path, *, key_for: Callable[[bytes], bytes] | None = None,
               buffer_size: int = CHUNK) -> BinaryIO:
    """The content of ``path`` as a seekable binary file: decrypted when the file is sealed, the file
    itself otherwise. ``key_for(wrapped)`` gives the file key (default: unwrap it with the data key).
    SealError when a sealed file cannot be opened."""
    f = open(path, "rb", buffering=0)
    if f.read(len(MAGIC)) != MAGIC:
        f.close()
        return open(path, "rb", buffering=buffer_size)
    f.seek(0)
    return io.BufferedReader(_SealedReader(f, key_for or unwrap_with_data_key), buffer_size=buffer_size)


def open_text(path: str | Path, encoding: str, **kwargs) -> io.TextIOWrapper:
    """``open_plain`` as text (``newline=""`` for the csv module)."""
    return io.TextIOWrapper(open_plain(path, **kwargs), encoding=encoding, newline="")


def plain_size(path: str | Path, *, key_for: Callable[[bytes], bytes] | None = None) -> int:
    """The size of the content of ``path`` (sealed or not)."""
    with open_plain(path, key_for=key_for) as f:
        return f.seek(0, io.SEEK_END)


def rewrap(path: str | Path) -> bool:
    """Put the file key of the sealed file ``path`` under the current data key if it is under an old
    one (after ``WUYIQU_DATA_KEY`` was rotated); the content is not touched, a copy with the new header
    replaces the file. Returns whether it did. SealError when no key of this process opens it."""
    from wuyiqu.lib.crypto import cipher

    path = Path(path)
    with open(path, "rb") as f:
        wrapped, prefix, start = _read_header(f)
        if cipher().is_current(wrapped):
            return False
        new_wrapped = cipher().encrypt(unwrap_with_data_key(wrapped).hex())
        partial = path.with_name(path.name + ".rewrap")
        partial.unlink(missing_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "wb") as out:
            out.write(MAGIC + len(new_wrapped).to_bytes(2, "big") + new_wrapped + prefix)
            while block := f.read(CHUNK + TAG):
                out.write(block)
    partial.replace(path)
    return True


def file_key(path: str | Path) -> bytes:
    """The file key of the sealed file ``path`` (for a child process that has no data key)."""
    with open(path, "rb") as f:
        wrapped, _prefix, _n = _read_header(f)
    return unwrap_with_data_key(wrapped)
