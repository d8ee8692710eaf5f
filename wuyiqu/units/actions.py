"""Writes to the registry."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from wuyiqu.accounts.models import Role
from wuyiqu.accounts.visibility import REVEAL_WINDOW, REVEALS_PER_WINDOW, may_reveal
from wuyiqu.audit import actions as audit
from wuyiqu.audit.models import AuditEvent
from wuyiqu.lib import crypto, dates
from wuyiqu.lib.idcard import (
    THIRD_BIRTHDAY_KEPT_DAYS,
    kept_third_birthday,
    mask_id_number,
    mask_phone,
    parse_id_number,
)

from .generator import UnitRow, World
from .models import Household, HouseholdVerification, PastResidence, Resident, Unit, district_of, path_for
from .residence import closed_spell, move_problem

User = get_user_model()

DIVISIONS_CSV = "qijiang-divisions-2023.csv"
LINK_BATCH = 5000  # new residents' hashes per linking statement, as in a residents import batch


def read_divisions() -> list[dict[str, str]]:
    """The real 綦江区 division rows shipped with the package (code, name, kind, parent_code)."""
    with resources.files("wuyiqu.data").joinpath(DIVISIONS_CSV).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _bulk_insert_units(rows: list[UnitRow], *, batch_size: int) -> list[Unit]:
    """Insert units whose parents exist or come earlier in ``rows``; existing codes are skipped.
    One bulk insert per generation, since children need their parents' ids and paths."""
    units = {u.code: u for u in Unit.objects.only("id", "code", "path", "depth")}
    created: list[Unit] = []
    pending = [r for r in rows if r.code not in units]
    while pending:
        ready = [r for r in pending if not r.parent_code or r.parent_code in units]
        if not ready:
            raise ValueError(f"unit {pending[0].code} has an unknown parent {pending[0].parent_code}")
        batch = []
        for row in ready:
            parent = units.get(row.parent_code)
            batch.append(Unit(code=row.code, name=row.name, kind=row.kind, parent_id=parent.pk if parent else None,
                              path=path_for(parent.path if parent else "", row.code),
                              depth=parent.depth + 1 if parent else 0))
        Unit.objects.bulk_create(batch, batch_size=batch_size)
        units.update({u.code: u for u in batch})
        created.extend(batch)
        ready_codes = {r.code for r in ready}
        pending = [r for r in pending if r.code not in ready_codes]
    return created


@transaction.atomic
def do_load_divisions(*, actor=None) -> int:
    """Create the district, its streets/towns and villages/communities; existing codes are kept.
    Returns how many units were created."""
    rows = [UnitRow(r["code"], r["name"], r["kind"], r["parent_code"]) for r in read_divisions()]
    created = _bulk_insert_units(rows, batch_size=1000)
    audit.record(actor=actor, action="units.load_divisions", detail={"created": len(created)})
    return len(created)


class RevealRefused(PermissionDenied):
    """A reveal refused: the role may not, or the hourly limit is reached (the message says which)."""


def do_reveal_resident(*, actor, resident: Resident, ip: str | None = None) -> dict[str, str]:
    """The plain ID number and phone of ``resident`` (the caller got it through a scoped selector),
    with its audit row ``resident.reveal``. Raises RevealRefused for a role outside REVEAL_ROLES (no
    row: nothing was looked at) and once the actor has revealed REVEALS_PER_WINDOW in the last
    REVEAL_WINDOW: then the refusal is audited (``resident.reveal_refused``) and, the first time in
    the window, the street over the actor is told (or the administrators, above a street)."""
    if not may_reveal(actor):
        raise RevealRefused(_("您的角色不能查看完整身份证号和电话"))
    refused = False
    with transaction.atomic():
        # Lock the actor's row: two reveals at once (two tabs, a script) must not both see 29.
        User.objects.select_for_update().filter(pk=actor.pk).first()
        since = timezone.now() - REVEAL_WINDOW
        mine = AuditEvent.objects.filter(actor=actor, at__gte=since)
        if mine.filter(action="resident.reveal").count() >= REVEALS_PER_WINDOW:
            refused = True
            first = not mine.filter(action="resident.reveal_refused").exists()
            audit.record(actor=actor, action="resident.reveal_refused", target=resident, unit=resident.household.unit,
                         detail={"limit": REVEALS_PER_WINDOW, "window_minutes": int(REVEAL_WINDOW.total_seconds() // 60)},
                         ip=ip)
            if first:
                _alert_reveal_limit(actor)
        else:
            audit.record(actor=actor, action="resident.reveal", target=resident, unit=resident.household.unit,
                         detail={"fields": ["id_number", "phone"]}, ip=ip)
    if refused:
        raise RevealRefused(_("一小时内查看完整身份证号和电话已达 %(n)s 次，暂停查看；已通知街道。") % {"n": REVEALS_PER_WINDOW})
    return {"id_number": resident.reveal_id_number(), "phone": resident.reveal_phone()}


def _alert_reveal_limit(actor) -> None:
    """Tell the street staff over ``actor``'s unit (the administrators when no street is over it)."""
    from django.urls import reverse

    from wuyiqu.notifications.actions import notify

    path = actor.unit.path if actor.unit_id else "/"
    parts = path.strip("/").split("/")
    above = ["/" + "".join(p + "/" for p in parts[:i]) for i in range(1, len(parts) + 1)]
    street = User.objects.filter(role=Role.STREET_STAFF, is_active=True, unit__path__in=above).exclude(pk=actor.pk)
    recipients = list(street) or list(User.objects.filter(role=Role.ADMIN, is_active=True).exclude(pk=actor.pk))
    who = actor.display_name or actor.username
    notify(recipients, template="units.reveal_limit", params={"who": who, "username": actor.username, "n": REVEALS_PER_WINDOW},
           link=reverse("audit:events") + f"?user={actor.username}")


@transaction.atomic
def do_forget_past_third_birthdays(*, today: dt.date, actor=None) -> int:
    """Empty the kept third birthdays that can no longer change a verdict (more than
    ``THIRD_BIRTHDAY_KEPT_DAYS`` before ``today``): what is left of a birth date is kept no longer than
    needed. Returns how many were emptied; audited when any were."""
    cutoff = today - dt.timedelta(days=THIRD_BIRTHDAY_KEPT_DAYS)
    n = Resident.objects.filter(turns_three_on__lt=cutoff).update(turns_three_on=None)
    if n:
        audit.record(actor=actor, action="units.forget_third_birthdays", detail={"residents": n, "before": str(cutoff)})
    return n


@transaction.atomic
def do_load_generated_world(*, world: World, actor=None, batch_size: int = 2000) -> dict[str, int]:
    """Insert a generated world below existing units in bulk. Returns counts by kind."""
    new_units = _bulk_insert_units(world.units, batch_size=batch_size)
    units = {u.code: u for u in Unit.objects.only("id", "code", "path")}
    households = Household.objects.bulk_create(
        [Household(code=h.code, unit_id=units[h.unit_code].pk, district_code=district_of(units[h.unit_code].path),
                   address=h.address) for h in world.households],
        batch_size=batch_size,
    )
    hh_ids = {h.code: h.pk for h in households}
    hh_districts = {h.code: h.district_code for h in households}
    HouseholdVerification.objects.bulk_create(
        [HouseholdVerification(household_id=hh_ids[h.code], district_code=hh_districts[h.code],
                               verified_on=h.verified_on, verifier="网格员")
         for h in world.households if h.verified_on],
        batch_size=batch_size,
    )
    c = crypto.cipher()
    ids = [r.id_number for r in world.residents]
    id_enc = c.encrypt_many(ids)
    phone_enc = c.encrypt_many([r.phone for r in world.residents])
    residents = []
    today = dates.today()
    for r, ienc, penc in zip(world.residents, id_enc, phone_enc, strict=True):
        info = parse_id_number(r.id_number)
        residents.append(Resident(
            household_id=hh_ids[r.household_code], district_code=hh_districts[r.household_code], name=r.name,
            id_enc=ienc, id_hash=c.lookup_hash(r.id_number), id_masked=mask_id_number(r.id_number),
            turns_three_on=kept_third_birthday(info.birth_date, today), sex=info.sex,
            phone_enc=penc if r.phone else None, phone_hash=c.lookup_hash(r.phone) if r.phone else "",
            phone_masked=mask_phone(r.phone), bedridden=r.bedridden,
        ))
    Resident.objects.bulk_create(residents, batch_size=batch_size)
    linked = _link_earlier_facts([r.id_hash for r in residents], actor=actor, source="units.load_generated_world")
    counts = {"units": len(new_units), "households": len(households), "residents": len(residents)}
    audit.record(actor=actor, action="units.load_generated_world", detail={**counts, "facts_linked": linked})
    return counts


def _link_earlier_facts(hashes: list[str], *, actor, source: str) -> dict[str, int]:
    """Link the facts stored before these new residents were registered to them, in the caller's
    transaction, and re-check the units of the linked cases and measures (docs/facts.md, "Facts before
    the person"). Returns the counts for the caller's audit row."""
    from wuyiqu.health.linking import LinkedFacts, link_facts
    from wuyiqu.supervision.services import recheck_after_facts

    linked = LinkedFacts()
    for i in range(0, len(hashes), LINK_BATCH):
        linked += link_facts(hashes[i:i + LINK_BATCH])
    recheck_after_facts(linked.unit_ids, actor=actor, source=source)
    return linked.as_detail()


# --- moves (SPEC §7 "Time") ------------------------------------------------------------------------------

class MoveRefused(ValueError):
    """The move cannot be recorded. ``message`` is Chinese; ``field`` names the input."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class Move:
    """One resident into another household from ``moved_on``; ``from_household_id`` and
    ``last_moved_on`` are the resident's current household and arrival as read (and checked)."""

    resident_id: int
    from_household_id: int
    last_moved_on: dt.date | None
    to_household_id: int
    moved_on: dt.date


def move_residents(moves: Sequence[Move]) -> set[int]:
    """Record checked moves set-based: the spell each one ends becomes a ``PastResidence`` (unless it
    covered no day), the resident's household and arrival are replaced. Opens no transaction, writes
    no audit row and re-checks nothing: the callers (the residents import, ``do_move_resident``) do,
    with the units returned — every unit moved from or into, whose verdicts may change at once."""
    if not moves:
        return set()
    from wuyiqu.health.linking import rehome_results

    from .relocation import Relocation, relocate_residents

    households = {m.from_household_id for m in moves} | {m.to_household_id for m in moves}
    homes = {pk: (unit_id, district) for pk, unit_id, district in Household.objects.filter(pk__in=households)
             .values_list("pk", "unit_id", "district_code")}
    spells = []
    for m in moves:
        spell = closed_spell(last_moved_on=m.last_moved_on, moved_on=m.moved_on)
        if spell is not None:  # kept in the district of the household it was spent in
            spells.append(PastResidence(resident_id=m.resident_id, household_id=m.from_household_id,
                                        district_code=homes[m.from_household_id][1],
                                        from_on=spell[0], until_on=spell[1]))
    PastResidence.objects.bulk_create(spells, batch_size=1000)
    # A person is kept in their household's district with the rows that follow them: a move to
    # another district is a delete there and an insert here (``units.relocation``), never an UPDATE
    # of the district (Citus's distribution column). The others are updated in place, the district
    # named (one shard on Citus).
    across = {m.resident_id: Relocation(m.to_household_id, homes[m.to_household_id][1], m.moved_on) for m in moves
              if homes[m.from_household_id][1] != homes[m.to_household_id][1]}
    relocate_residents(across)
    with connection.cursor() as cur:
        cur.executemany(f"UPDATE {Resident._meta.db_table} SET household_id = %s, moved_on = %s "
                        "WHERE district_code = %s AND id = %s",
                        [(m.to_household_id, m.moved_on, homes[m.to_household_id][1], m.resident_id)
                         for m in moves if m.resident_id not in across])
    # A person's results are kept in the district they live in (NatResult's docstring): a move to
    # another district takes them along.
    rehome_results({rid: r.district_code for rid, r in across.items()})
    return {unit_id for unit_id, _district in homes.values()}


@transaction.atomic
def do_move_resident(*, actor, resident: Resident, household_code: str, moved_on: dt.date | None = None) -> Resident:
    """Move ``resident`` (read through a scoped selector) into the household ``household_code`` from
    ``moved_on`` (None: today), and re-check at once the named units of the old and the new home (a
    close contact moving into a named building withdraws it in this transaction). Returns the
    resident as moved. Refuses (MoveRefused naming the field, nothing written) a household that does
    not exist or lies outside the actor's scope, the household the person already lives in, a day in
    the future, before the person's last move or before their birth."""
    from django.utils.translation import gettext as _

    from wuyiqu.lib import dates
    from wuyiqu.supervision.services import recheck_after_facts

    from .selectors import scope_path

    today = dates.today()
    moved_on = moved_on or today
    code = (household_code or "").strip()
    # The race: two moves of the same person at once would both close the same spell; the lock makes
    # the second wait and then read the first one's household and arrival.
    # The district named: Citus locks rows of one shard only.
    locked = Resident.objects.select_for_update().filter(district_code=resident.district_code, pk=resident.pk).first()
    if locked is None:
        raise MoveRefused(_("该居民不存在"), "resident")
    target = Household.objects.select_related("unit").filter(code=code).first() if code else None
    prefix = scope_path(actor) if actor is not None else "/"
    if target is None or prefix is None or not target.unit.path.startswith(prefix):
        raise MoveRefused(_("户编码“%(c)s”不存在") % {"c": code}, "household_code")
    if target.pk == locked.household_id:
        raise MoveRefused(_("该居民已登记在户“%(c)s”") % {"c": code}, "household_code")
    problem = move_problem(last_moved_on=locked.moved_on, moved_on=moved_on, today=today, born_on=locked.born_on())
    if problem:
        raise MoveRefused(problem, "moved_on")
    old = Household.objects.select_related("unit").get(pk=locked.household_id)
    units = move_residents([Move(locked.pk, old.pk, locked.moved_on, target.pk, moved_on)])
    # Recorded on the lowest unit holding both homes: the stored verdicts of every committee outside
    # it may count the person (evaluator._stored_committees reads an event's unit so).
    common = _common_unit(old.unit.path, target.unit.path)
    audit.record(actor=actor, action="units.move_resident", target=locked, unit=common,
                 detail={"from_household": old.code, "from_unit": old.unit.code, "to_household": target.code,
                         "to_unit": target.unit.code, "moved_on": moved_on.isoformat(),
                         "last_moved_on": locked.moved_on.isoformat() if locked.moved_on else None})
    recheck_after_facts(units, actor=actor, source="units.move_resident")
    return Resident.objects.get(pk=locked.pk)  # read again: it may be kept in another district now


def _common_unit(a: str, b: str) -> Unit | None:
    """The lowest unit whose subtree holds the unit paths ``a`` and ``b`` (None: none, two districts)."""
    shared = []
    for x, y in zip(a.strip("/").split("/"), b.strip("/").split("/"), strict=False):
        if x != y:
            break
        shared.append(x)
    return Unit.objects.filter(code=shared[-1]).first() if shared else None


class KeyRotationError(Exception):
    """A stored value cannot be rotated safely; the message says which row and why (Chinese)."""


def _decrypt_for_rotation(c, pk: int, token: bytes) -> str:
    from django.utils.translation import gettext as _

    try:
        return c.decrypt(token)
    except crypto.DecryptionError as exc:
        raise KeyRotationError(
            _("id=%(pk)d 的密文无法解密（%(e)s）：它所用的密钥不在 WUYIQU_DATA_KEY 或 WUYIQU_OLD_DATA_KEYS 中")
            % {"pk": pk, "e": exc}) from None


def verified_number(c, pk: int, id_enc: bytes, id_hash: str) -> str:
    """Resident ``pk``'s ID number, decrypted, after checking that the lookup key reproduces its stored
    hash; KeyRotationError naming the resident for a key the process does not have or a wrong
    WUYIQU_LOOKUP_KEY (a rotation would then make people unfindable)."""
    from django.utils.translation import gettext as _

    number = _decrypt_for_rotation(c, pk, id_enc)
    if c.lookup_hash(number) != id_hash:
        raise KeyRotationError(
            _("居民 id=%(pk)d 的身份证号与其查找哈希不符：WUYIQU_LOOKUP_KEY 应为当初生成哈希的密钥"
              "（从未设置过时，即安装时的第一个 WUYIQU_DATA_KEY）") % {"pk": pk})
    return number


def _write_reencrypted(cursor, updates: list[tuple[bytes, bytes | None, str, int]]) -> None:
    # By (district, id): on Citus each UPDATE goes to the row's one shard.
    cursor.executemany(f"UPDATE {Resident._meta.db_table} SET id_enc = %s, phone_enc = %s "
                       "WHERE district_code = %s AND id = %s", updates)


def _lock_batch(after_pk: int, batch_size: int) -> list[tuple]:
    """The next ``batch_size`` residents after ``after_pk`` (by id), locked, their values read after the
    lock: (pk, district_code, id_enc, id_hash, phone_enc). The ids are read first and each district's
    rows locked by one statement naming the district — Citus takes a row lock (``FOR UPDATE``) on one
    shard only (docs/scaling.md, "Running on Citus"). A person moved to another district between the
    two reads (a delete and an insert: ``units.relocation``) is missing from the locks: the batch is
    read again (at most three times; a rerun of the rotation does what is left, as after a crash)."""
    for _attempt in range(3):
        batch = list(Resident.objects.filter(pk__gt=after_pk).order_by("pk")
                     .values_list("pk", "district_code")[:batch_size])
        by_district: dict[str, list[int]] = {}
        for pk, district in batch:
            by_district.setdefault(district, []).append(pk)
        rows = []
        for district in sorted(by_district):
            rows += (Resident.objects.filter(district_code=district, pk__in=by_district[district])
                     .select_for_update().values_list("pk", "district_code", "id_enc", "id_hash", "phone_enc"))
        if len(rows) == len(batch):
            break
    return sorted(rows)


@transaction.atomic
def do_reencrypt_residents(*, after_pk: int, batch_size: int, actor=None) -> tuple[int | None, int]:
    """Re-encrypt under the current data key the ID numbers and phones of the next ``batch_size``
    residents after ``after_pk`` (by id), in one transaction with its audit row. Values already under
    the current key are left as they are, so a second run (or one resumed after a crash) only does
    what is left. Returns (the last id read, or None when no resident is left; values re-encrypted).

    Refuses (KeyRotationError, nothing written in the batch) a value under a key the process does
    not have, or an ID number whose lookup hash is not the stored one (a wrong WUYIQU_LOOKUP_KEY)."""
    from django.db import connection

    c = crypto.cipher()
    # The race: an import changing a resident's phone while this batch re-encrypts the old phone
    # would lose the change. The row locks (SQLite: the IMMEDIATE write lock of the transaction)
    # make the one wait for the other; the values are read after the lock is held.
    rows = _lock_batch(after_pk, batch_size)
    if not rows:
        return None, 0
    updates = []
    values = 0
    for pk, district, id_enc, id_hash, phone_enc in rows:
        if c.is_current(id_enc) and (phone_enc is None or c.is_current(phone_enc)):
            continue
        number = verified_number(c, pk, id_enc, id_hash)
        phone = _decrypt_for_rotation(c, pk, phone_enc) if phone_enc is not None else None
        new_id = id_enc if c.is_current(id_enc) else c.encrypt(number)
        new_phone = phone_enc if phone is None or c.is_current(phone_enc) else c.encrypt(phone)
        values += (new_id is not id_enc) + (new_phone is not phone_enc)
        updates.append((new_id, new_phone, district, pk))
    if updates:
        with connection.cursor() as cursor:
            _write_reencrypted(cursor, updates)
        audit.record(actor=actor, action="keys.reencrypt", target_type="units.resident",
                     detail={"first_id": rows[0][0], "last_id": rows[-1][0], "residents": len(updates),
                             "values": values, "key_id": c.current_key_id.hex()})
    return rows[-1][0], values


@transaction.atomic
def do_reencrypt_values(*, model, field: str, after_pk: int, batch_size: int, actor=None) -> tuple[int | None, int]:
    """Re-encrypt under the current data key the ``field`` of the next ``batch_size`` rows of ``model``
    after ``after_pk`` that hold a value: the encrypted values that have no lookup hash (an account's
    phone, an import's one-time passwords and error workbook; units.keys.OTHER_ENCRYPTED). Like
    ``do_reencrypt_residents``: one transaction with its audit row, values already under the current key
    left alone, a value under a key the process does not have refused with nothing written."""
    c = crypto.cipher()
    rows = list(model.objects.filter(pk__gt=after_pk).exclude(**{field: None}).order_by("pk")
                .select_for_update().values_list("pk", field)[:batch_size])
    if not rows:
        return None, 0
    updates = [(pk, c.encrypt(_decrypt_for_rotation(c, pk, blob))) for pk, blob in rows if not c.is_current(blob)]
    for pk, blob in updates:
        model.objects.filter(pk=pk).update(**{field: blob})
    if updates:
        audit.record(actor=actor, action="keys.reencrypt", target_type=model._meta.label_lower,
                     detail={"field": field, "first_id": rows[0][0], "last_id": rows[-1][0], "rows": len(updates),
                             "values": len(updates), "key_id": c.current_key_id.hex()})
    return rows[-1][0], len(updates)


# --- taking a person off the register (issue 15) --------------------------------------------------------

class RemovalRefused(ValueError):
    """The removal cannot be recorded. ``message`` is Chinese; ``field`` names the input."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.message = message
        self.field = field


@transaction.atomic
def do_remove_resident(*, actor, resident: Resident, reason: str) -> dict[str, int]:
    """Take ``resident`` (read through a scoped selector) off the register — registered by mistake,
    died, or gone to live outside the district — with the reason, and re-check at once the named
    units of the household left. Returns how many stored facts were unlinked from the person.

    The facts stay, keyed by the person's ID hash as every fact is: a case keeps the unit it happened
    in (it counts there for its window); a measure and nucleic-acid results become unmatched (the
    person lives in no unit any more), and are linked again if the number is registered again. The
    ledger entry and the earlier residences go with the person. Refuses (RemovalRefused naming the
    field, nothing written) an empty reason or one over 200 characters."""
    from django.utils.translation import gettext as _

    from wuyiqu.health.models import Measure, NatResult, PositiveCase
    from wuyiqu.supervision.services import recheck_after_facts

    reason = (reason or "").strip()
    if not reason:
        raise RemovalRefused(_("请填写原因"), "reason")
    if len(reason) > 200:
        raise RemovalRefused(_("原因不能超过200字"), "reason")
    # The race: a move or an import changing the person while they are removed; the lock makes the
    # one wait for the other (and a second removal then finds nobody).
    locked = Resident.objects.select_for_update().select_related("household__unit").filter(
        district_code=resident.district_code, pk=resident.pk).first()
    if locked is None:
        raise RemovalRefused(_("该居民已不在登记中"), "resident")
    household = locked.household
    measure_units = set(Measure.objects.filter(resident_id=locked.pk).exclude(unit_id=None)
                        .values_list("unit_id", flat=True))
    unlinked = {
        # Each stays, unmatched, where it is kept (the person's district; NatResult's docstring).
        "measures": Measure.objects.filter(district_code=locked.district_code, resident_id=locked.pk)
        .update(resident=None, unit=None),
        "cases": PositiveCase.objects.filter(district_code=locked.district_code, resident_id=locked.pk)
        .update(resident=None),
        # Kept in the district of the person's home (NatResult's docstring): named, one shard on Citus.
        "nat_results": NatResult.objects.filter(district_code=district_of(household.unit.path),
                                                resident_id=locked.pk).update(resident_id=None),
    }
    audit.record(actor=actor, action="units.remove_resident", target=locked, unit=household.unit,
                 detail={"household": household.code, "id_masked": locked.id_masked, "reason": reason, **unlinked})
    locked.delete()
    recheck_after_facts({household.unit_id} | measure_units, actor=actor, source="units.remove_resident")
    return unlinked
