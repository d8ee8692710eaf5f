"""Key rotation of the encrypted personal fields (``wuyiqu rotate-keys``; docs/reliability.md).

What is encrypted: ``Resident.id_enc`` and ``Resident.phone_enc``, and the values without a lookup hash
of OTHER_ENCRYPTED (an account's phone, an import's one-time passwords and error workbook) — together
ENCRYPTED_FIELDS; a test checks that no other binary column exists. What rotates: the data key. What does not: the lookup key
(WUYIQU_LOOKUP_KEY), whose hashes are also the only identity of facts about unregistered people.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from wuyiqu.accounts.models import PasswordSheet, User
from wuyiqu.imports.models import ImportJob
from wuyiqu.lib import crypto

from .actions import do_reencrypt_residents, do_reencrypt_values, verified_number
from .models import Resident

OTHER_ENCRYPTED = {User: ("phone_enc",), PasswordSheet: ("content_enc",), ImportJob: ("error_workbook",)}
ENCRYPTED_FIELDS = {Resident: ("id_enc", "phone_enc"), **OTHER_ENCRYPTED}
LOOKUP_SAMPLE = 200  # residents whose hash is checked before anything is written


@dataclass
class KeyStatus:
    """How many stored values each key encrypted: ``current``, ``old`` (a key of
    WUYIQU_OLD_DATA_KEYS) and ``unknown`` (a key this process does not have)."""

    current: int = 0
    old: int = 0
    unknown: int = 0
    by_key: Counter = field(default_factory=Counter)  # key id (hex) -> values


def key_status(batch_size: int = 5000) -> KeyStatus:
    """Count the stored encrypted values by key, reading them in batches (nothing is decrypted)."""
    c = crypto.cipher()
    status = KeyStatus()
    for model, fields in ENCRYPTED_FIELDS.items():
        last = 0
        while True:
            rows = list(model.objects.filter(pk__gt=last).order_by("pk").values_list("pk", *fields)[:batch_size])
            if not rows:
                break
            last = rows[-1][0]
            for row in rows:
                for blob in row[1:]:
                    if blob is None:
                        continue
                    kid = bytes(blob[:4])
                    status.by_key[kid.hex()] += 1
                    if c.is_current(blob):
                        status.current += 1
                    elif kid in c.key_ids:
                        status.old += 1
                    else:
                        status.unknown += 1
    return status


def check_lookup_key(sample: int = LOOKUP_SAMPLE) -> None:
    """Raise KeyRotationError unless the lookup key reproduces the stored hashes of a sample of
    residents (spread over the table): a rotation with the wrong WUYIQU_LOOKUP_KEY would make every
    person unfindable, so it is refused before anything is written."""
    c = crypto.cipher()
    total = Resident.objects.count()
    if not total:
        return
    step = max(1, total // sample)
    ids = list(Resident.objects.order_by("pk").values_list("pk", flat=True)[::step][:sample])
    for pk, id_enc, id_hash in Resident.objects.filter(pk__in=ids).values_list("pk", "id_enc", "id_hash"):
        verified_number(c, pk, id_enc, id_hash)


@dataclass
class RotationOutcome:
    batches: int = 0
    values: int = 0
    last_id: int = 0


def rotate_keys(*, batch_size: int = 2000, actor=None,
                after_batch: Callable[[RotationOutcome], None] | None = None) -> RotationOutcome:
    """Re-encrypt every stored value that is not under the current data key, ``batch_size``
    residents per transaction (each committed with its audit row before the next starts). A run
    stopped anywhere — an error, a kill — leaves every value readable (the old keys still decrypt)
    and a second run does only what is left. Raises KeyRotationError before writing anything when
    the lookup key is wrong, and in the batch (which then writes nothing) for an undecryptable value."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    check_lookup_key()
    out = RotationOutcome()
    while True:
        last, values = do_reencrypt_residents(after_pk=out.last_id, batch_size=batch_size, actor=actor)
        if last is None:
            break
        out.batches += 1
        out.values += values
        out.last_id = last
        if after_batch is not None:
            after_batch(out)
    for model, fields in OTHER_ENCRYPTED.items():
        for name in fields:
            after = 0
            while True:
                last, values = do_reencrypt_values(model=model, field=name, after_pk=after, batch_size=batch_size,
                                                   actor=actor)
                if last is None:
                    break
                after = last
                out.values += values
                out.batches += values > 0
    return out
