"""Field encryption (AES-GCM with a key id) and the keyed lookup hashes of ID numbers and phones."""

import base64

import pytest
from django.core.exceptions import ImproperlyConfigured

from wuyiqu.lib import crypto
from wuyiqu.lib.crypto import DecryptionError, FieldCipher

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes(range(100, 132))).decode()
NUMBER = "11010519491231002X"


def test_it_round_trips_text():
    c = FieldCipher(KEY_A)
    assert c.decrypt(c.encrypt(NUMBER)) == NUMBER
    assert c.decrypt(memoryview(c.encrypt("文龙社区 13812345678"))) == "文龙社区 13812345678"
    assert [c.decrypt(b) for b in c.encrypt_many(["a", "", "13812345678"])] == ["a", "", "13812345678"]


def test_the_ciphertext_does_not_contain_the_text_and_each_one_is_different():
    c = FieldCipher(KEY_A)
    blobs = [c.encrypt(NUMBER) for _ in range(3)] + c.encrypt_many([NUMBER, NUMBER])
    assert len(set(blobs)) == 5  # a random nonce per encryption
    assert all(NUMBER.encode() not in b for b in blobs)
    assert all(b[:4] == c.current_key_id for b in blobs)


def test_the_lookup_hash_is_stable_and_normalised():
    c = FieldCipher(KEY_A)
    h = c.lookup_hash(NUMBER)
    assert h == FieldCipher(KEY_A).lookup_hash(NUMBER)  # another process with the same key
    assert c.lookup_hash(" 11010519491231002x ") == h
    assert c.lookup_hash("110105194912310021") != h
    assert FieldCipher(KEY_B).lookup_hash(NUMBER) != h  # keyed: another key gives another hash
    assert len(h) == 64 and NUMBER not in h


def test_an_old_key_still_decrypts_after_rotation():
    old = FieldCipher(KEY_A)
    blob = old.encrypt(NUMBER)
    rotated = FieldCipher(KEY_B, [KEY_A])
    assert rotated.decrypt(blob) == NUMBER
    assert rotated.encrypt(NUMBER)[:4] == FieldCipher(KEY_B).current_key_id != blob[:4]


def test_a_tampered_ciphertext_is_refused():
    c = FieldCipher(KEY_A)
    blob = bytearray(c.encrypt(NUMBER))
    blob[-1] ^= 1
    with pytest.raises(DecryptionError, match="does not authenticate"):
        c.decrypt(bytes(blob))
    with pytest.raises(DecryptionError):
        c.decrypt(c.encrypt(NUMBER)[:20])  # truncated


def test_a_ciphertext_under_an_unknown_key_is_refused():
    blob = FieldCipher(KEY_A).encrypt(NUMBER)
    with pytest.raises(DecryptionError, match="unknown key"):
        FieldCipher(KEY_B).decrypt(blob)


@pytest.mark.parametrize("bad, reason", [
    ("not base64!", "WUYIQU_DATA_KEY is not valid base64"),
    (base64.b64encode(b"x" * 16).decode(), "WUYIQU_DATA_KEY must decode to 32 bytes, not 16"),
])
def test_a_bad_key_is_refused_with_the_variable_named(bad, reason):
    with pytest.raises(ImproperlyConfigured, match=reason):
        FieldCipher(bad)


def test_a_bad_old_key_is_named_by_position():
    with pytest.raises(ImproperlyConfigured, match=r"WUYIQU_OLD_DATA_KEYS\[1\]"):
        FieldCipher(KEY_A, [KEY_B, "short"])


def test_the_process_cipher_follows_the_settings(settings):
    settings.DATA_KEY = KEY_A
    settings.OLD_DATA_KEYS = []
    blob = crypto.cipher().encrypt(NUMBER)
    settings.DATA_KEY = KEY_B
    settings.OLD_DATA_KEYS = [KEY_A]
    assert crypto.cipher().current_key_id == FieldCipher(KEY_B).current_key_id
    assert crypto.cipher().decrypt(blob) == NUMBER


def test_the_lookup_hash_stays_when_the_data_key_rotates_with_the_lookup_key_kept():
    before = FieldCipher(KEY_A)  # an installation that never set WUYIQU_LOOKUP_KEY
    after = FieldCipher(KEY_B, [KEY_A], KEY_A)  # rotated: the first data key kept as the lookup key
    assert after.lookup_hash(NUMBER) == before.lookup_hash(NUMBER)
    assert after.lookup_fingerprint == before.lookup_fingerprint
    assert FieldCipher(KEY_B).lookup_fingerprint != before.lookup_fingerprint
    assert after.key_ids == {before.current_key_id, after.current_key_id}
    assert after.is_current(after.encrypt(NUMBER)) and not after.is_current(before.encrypt(NUMBER))


def test_a_bad_lookup_key_is_refused_with_the_variable_named():
    with pytest.raises(ImproperlyConfigured, match="WUYIQU_LOOKUP_KEY must decode to 32 bytes"):
        FieldCipher(KEY_A, (), base64.b64encode(b"x" * 8).decode())
