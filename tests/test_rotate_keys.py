"""`wuyiqu rotate-keys`: every encrypted value re-encrypted under the new data key, nothing lost,
batches atomic, a stopped run resumed, a wrong lookup key or an unknown key refused."""

from __future__ import annotations

import base64
import io

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, models

from wuyiqu.audit.models import AuditEvent
from wuyiqu.lib import crypto
from wuyiqu.lib.crypto import FieldCipher
from wuyiqu.units import actions as unit_actions
from wuyiqu.units.actions import KeyRotationError
from wuyiqu.units.keys import ENCRYPTED_FIELDS, key_status, rotate_keys
from wuyiqu.units.models import Resident

NEW_KEY = base64.b64encode(bytes(range(50, 82))).decode()
OTHER_KEY = base64.b64encode(bytes(range(7, 39))).decode()


def raw_values() -> dict[int, tuple[bytes, bytes | None, str, str]]:
    """id -> (id_enc, phone_enc, id_hash, phone_hash) as stored, read with plain SQL."""
    with connection.cursor() as cur:
        cur.execute("SELECT id, id_enc, phone_enc, id_hash, phone_hash FROM units_resident")
        return {pk: (bytes(i), bytes(p) if p is not None else None, ih, ph) for pk, i, p, ih, ph in cur.fetchall()}


@pytest.fixture
def before(world, settings):
    """The world's plaintexts under the test key; then the key rotated in the settings: the test key
    moved to OLD_DATA_KEYS and kept as the lookup key, NEW_KEY current."""
    first = settings.DATA_KEY
    c = crypto.cipher()
    plain = {pk: (c.decrypt(i), c.decrypt(p) if p else "") for pk, (i, p, _ih, _ph) in raw_values().items()}
    settings.OLD_DATA_KEYS = [first]
    settings.LOOKUP_KEY = first
    settings.DATA_KEY = NEW_KEY
    return plain


def assert_all_under_new_key_and_equal(plain):
    only_new = FieldCipher(NEW_KEY, (), settings.LOOKUP_KEY)  # the old key no longer needed
    stored = raw_values()
    assert set(stored) == set(plain)
    for pk, (id_enc, phone_enc, id_hash, phone_hash) in stored.items():
        number, phone = plain[pk]
        assert id_enc[:4] == only_new.current_key_id
        assert only_new.decrypt(id_enc) == number and only_new.lookup_hash(number) == id_hash
        if phone:
            assert phone_enc[:4] == only_new.current_key_id
            assert only_new.decrypt(phone_enc) == phone and only_new.lookup_hash(phone) == phone_hash
        else:
            assert phone_enc is None and phone_hash == ""


def test_rotation_re_encrypts_everything_and_loses_nothing(before):
    hashes = {pk: (ih, ph) for pk, (_i, _p, ih, ph) in raw_values().items()}
    status = key_status()
    assert status.current == 0 and status.old == len(before) + sum(1 for _n, p in before.values() if p)
    out = io.StringIO()
    call_command("rotate-keys", "--batch-size", "64", stdout=out)
    assert "旧密钥 0 个值" in out.getvalue()
    assert_all_under_new_key_and_equal(before)
    # The lookup hashes did not move: the facts keyed on them still find their people.
    assert {pk: (ih, ph) for pk, (_i, _p, ih, ph) in raw_values().items()} == hashes
    someone = Resident.objects.order_by("?").first()
    assert Resident.objects.get(id_hash=crypto.cipher().lookup_hash(before[someone.pk][0])) == someone
    batches = AuditEvent.objects.filter(action="keys.reencrypt")
    assert batches.count() == -(-len(before) // 64)
    assert sum(e.detail["residents"] for e in batches) == len(before)
    call_command("rotate-keys", "--check", stdout=io.StringIO())  # exit 0: nothing under old keys

    # Idempotent: a second run changes no byte and writes no audit row.
    stored = raw_values()
    call_command("rotate-keys", stdout=io.StringIO())
    assert raw_values() == stored and batches.count() == -(-len(before) // 64)


def test_a_run_stopped_half_way_leaves_every_value_readable_and_a_rerun_finishes(before, monkeypatch):
    writes = []
    real = unit_actions._write_reencrypted

    def crash_in_the_fourth_batch(cursor, updates):
        writes.append(len(updates))
        real(cursor, updates)  # the fourth batch's rows are written, then the process "dies"
        if len(writes) == 4:
            raise RuntimeError("killed")

    monkeypatch.setattr(unit_actions, "_write_reencrypted", crash_in_the_fourth_batch)
    with pytest.raises(RuntimeError, match="killed"):
        rotate_keys(batch_size=50)
    c = crypto.cipher()
    stored = sorted(raw_values().items())
    assert all(c.is_current(i) for _pk, (i, *_r) in stored[:150])  # three batches committed
    assert not any(c.is_current(i) for _pk, (i, *_r) in stored[150:])  # the fourth rolled back whole
    for pk, (id_enc, phone_enc, _ih, _ph) in stored:  # and everything reads, under either key
        assert (c.decrypt(id_enc), c.decrypt(phone_enc) if phone_enc else "") == before[pk]
    assert key_status().old > 0
    with pytest.raises(CommandError):
        call_command("rotate-keys", "--check", stdout=io.StringIO())

    monkeypatch.setattr(unit_actions, "_write_reencrypted", real)
    out = rotate_keys(batch_size=50)
    assert out.values == key_status().current - 150 - sum(1 for pk, _v in stored[:150] if before[pk][1])
    assert_all_under_new_key_and_equal(before)


def test_a_wrong_lookup_key_is_refused_before_anything_is_written(before, settings):
    settings.LOOKUP_KEY = OTHER_KEY
    stored = raw_values()
    with pytest.raises(CommandError, match="WUYIQU_LOOKUP_KEY"):
        call_command("rotate-keys", stdout=io.StringIO())
    assert raw_values() == stored
    assert not AuditEvent.objects.filter(action="keys.reencrypt").exists()


def test_a_value_under_a_key_the_process_lacks_is_refused_naming_the_resident(before, settings):
    victim = Resident.objects.order_by("pk")[10]
    with connection.cursor() as cur:
        cur.execute("UPDATE units_resident SET id_enc = %s WHERE id = %s",
                    [FieldCipher(OTHER_KEY).encrypt(before[victim.pk][0]), victim.pk])
    stored = raw_values()
    with pytest.raises(KeyRotationError, match=f"id={victim.pk} "):
        rotate_keys(batch_size=1000)  # the first batch holds the victim: it writes nothing
    assert raw_values() == stored
    assert key_status().unknown == 1


def test_every_binary_column_of_the_project_is_rotated():
    """A new encrypted field must be added to ENCRYPTED_FIELDS, or rotation would skip it."""
    binary = {(m, f.name) for m in apps.get_models() for f in m._meta.concrete_fields
              if isinstance(f, models.BinaryField)}
    assert binary == {(m, f) for m, fields in ENCRYPTED_FIELDS.items() for f in fields}


def test_the_command_documents_the_procedure():
    from django.core.management import load_command_class

    text = load_command_class("wuyiqu.units", "rotate-keys").create_parser("wuyiqu", "rotate-keys").format_help()
    for words in ("WUYIQU_OLD_DATA_KEYS", "WUYIQU_LOOKUP_KEY", "--check", "kill -9", "--batch-size"):
        assert words in text


def test_the_values_without_a_lookup_hash_rotate_too(world, settings):
    """An account's phone, an import's one-time passwords and its error workbook are under the data key
    too: the rotation re-encrypts them (same plaintext, new key) and a second run changes nothing."""
    from wuyiqu.accounts.models import PasswordSheet, User
    from wuyiqu.imports.models import ImportJob
    from wuyiqu.units.keys import OTHER_ENCRYPTED

    c = crypto.cipher()
    job = ImportJob.objects.create(kind="users", filename="users.xlsx", error_workbook=c.encrypt("UEsDBA=="))
    user = User.objects.create(username="keys-user", phone_enc=c.encrypt("13800138000"))
    sheet = PasswordSheet.objects.create(job=job, owner=user, content_enc=c.encrypt('[["keys-user", "x"]]'))
    plain = {(User, user.pk): "13800138000", (PasswordSheet, sheet.pk): '[["keys-user", "x"]]',
             (ImportJob, job.pk): "UEsDBA=="}
    settings.OLD_DATA_KEYS, settings.LOOKUP_KEY, settings.DATA_KEY = [settings.DATA_KEY], settings.DATA_KEY, NEW_KEY
    assert key_status().old >= 3

    rotate_keys(batch_size=2)
    only_new = FieldCipher(NEW_KEY, (), settings.LOOKUP_KEY)

    def stored():
        return {(model, pk): bytes(blob) for model, fields in OTHER_ENCRYPTED.items() for f in fields
                for pk, blob in model.objects.exclude(**{f: None}).values_list("pk", f)}

    after = stored()
    assert {key: only_new.decrypt(blob) for key, blob in after.items() if key in plain} == plain
    assert all(blob[:4] == only_new.current_key_id for blob in after.values())
    assert key_status().old == 0
    rows = AuditEvent.objects.filter(action="keys.reencrypt", target_type__in=["accounts.user", "accounts.passwordsheet",
                                                                              "imports.importjob"])
    assert {e.detail["field"] for e in rows} == {"phone_enc", "content_enc", "error_workbook"}
    count = rows.count()
    rotate_keys(batch_size=2)
    assert stored() == after and rows.count() == count
