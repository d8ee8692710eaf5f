"""Encryption at rest for ID-card numbers and phones, and the keyed hashes that find them.

A ciphertext is: key id (4 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext and tag.
The key id lets old keys keep decrypting while `wuyiqu rotate-keys` re-encrypts under the new one.
Lookup hashes are HMAC-SHA256 under a key derived from the lookup key, so equal numbers match
without the database ever holding the number itself.

The lookup key is WUYIQU_LOOKUP_KEY, or the data key when that is not set (an installation's
first key). It does not rotate with the data key: the hash is the only identity of a fact about a
person who is not on the register (a nucleic-acid result, a case, a measure), and part of the
natural key of those rows, so it cannot be recomputed without the number, which such rows do not
hold (docs/reliability.md, Personal data).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(Exception):
    """The ciphertext was made with a key this process does not have, or was altered."""


def _decode_key(b64: str, name: str) -> bytes:
    try:
        key = base64.b64decode(b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{name} is not valid base64") from None
    if len(key) != 32:
        raise ImproperlyConfigured(f"{name} must decode to 32 bytes, not {len(key)}")
    return key


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"wuyiqu-key-id" + key).digest()[:4]


class FieldCipher:
    """Encrypts and hashes personal fields under one current key and any number of old ones."""

    def __init__(self, current_b64: str, old_b64: list[str] | tuple[str, ...] = (), lookup_b64: str = ""):
        current = _decode_key(current_b64, "WUYIQU_DATA_KEY")
        self._current_id = _key_id(current)
        self._current = AESGCM(hashlib.sha256(b"wuyiqu-enc" + current).digest())
        self._by_id = {self._current_id: self._current}
        for i, b64 in enumerate(old_b64):
            old = _decode_key(b64, f"WUYIQU_OLD_DATA_KEYS[{i}]")
            self._by_id[_key_id(old)] = AESGCM(hashlib.sha256(b"wuyiqu-enc" + old).digest())
        # The hash key comes from the lookup key, which outlives data keys (see the module docstring):
        # without WUYIQU_LOOKUP_KEY it is the data key, as on an installation that never rotated.
        lookup = _decode_key(lookup_b64, "WUYIQU_LOOKUP_KEY") if lookup_b64 else current
        self._hash_key = hmac.new(lookup, b"wuyiqu-lookup", hashlib.sha256).digest()

    @property
    def current_key_id(self) -> bytes:
        return self._current_id

    @property
    def key_ids(self) -> frozenset[bytes]:
        """Ids of every key this cipher decrypts with (the current one and the old ones)."""
        return frozenset(self._by_id)

    @property
    def lookup_fingerprint(self) -> str:
        """A short public fingerprint of the hash key: equal fingerprints, equal lookup hashes."""
        return hashlib.sha256(b"wuyiqu-lookup-fingerprint" + self._hash_key).hexdigest()[:16]

    def is_current(self, blob: bytes | memoryview) -> bool:
        """True when ``blob`` was encrypted under the current key (rotate-keys leaves it alone)."""
        return bytes(blob[:4]) == self._current_id

    def encrypt(self, plaintext: str) -> bytes:
        nonce = os.urandom(12)
        return self._current_id + nonce + self._current.encrypt(nonce, plaintext.encode(), None)

    def encrypt_many(self, plaintexts: list[str]) -> list[bytes]:
        """Encrypt a batch; one call for the nonces keeps bulk imports fast."""
        nonces = os.urandom(12 * len(plaintexts))
        enc = self._current.encrypt
        kid = self._current_id
        out = []
        for i, p in enumerate(plaintexts):
            n = nonces[12 * i : 12 * i + 12]
            out.append(kid + n + enc(n, p.encode(), None))
        return out

    def decrypt(self, blob: bytes | memoryview) -> str:
        blob = bytes(blob)
        aead = self._by_id.get(blob[:4])
        if aead is None:
            raise DecryptionError("ciphertext made with an unknown key")
        try:
            return aead.decrypt(blob[4:16], blob[16:], None).decode()
        except Exception:
            raise DecryptionError("ciphertext does not authenticate") from None

    def lookup_hash(self, value: str) -> str:
        """Hex HMAC of the normalised value; equal inputs give equal hashes."""
        # hmac.digest is the one-shot C path: the same value as hmac.new(...).hexdigest(), twice as fast.
        return hmac.digest(self._hash_key, value.strip().upper().encode(), "sha256").hex()


@lru_cache(maxsize=1)
def _cipher_for(current: str, old: tuple[str, ...], lookup: str) -> FieldCipher:
    return FieldCipher(current, old, lookup)


def cipher() -> FieldCipher:
    """The process's cipher, built from settings (rebuilt if tests override the keys)."""
    return _cipher_for(settings.DATA_KEY, tuple(settings.OLD_DATA_KEYS), getattr(settings, "LOOKUP_KEY", ""))
