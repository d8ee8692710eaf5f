"""Kinds for people: ``residents`` and ``special-population``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from wuyiqu.health import linking
from wuyiqu.health.actions import tell_deciders
from wuyiqu.lib import crypto, dates
from wuyiqu.lib.idcard import kept_third_birthday, mask_id_number, mask_phone
from wuyiqu.units import directory, transfers
from wuyiqu.units.actions import Move, move_residents
from wuyiqu.units.models import (
    SPECIAL_TAG_ALIASES,
    Household,
    PastResidence,
    Resident,
    SpecialPopulationEntry,
    SpecialTag,
    Unit,
    district_of,
)
from wuyiqu.units.residence import move_problem

from ..bulk import insert_rows, select_in
from ..fields import bool_value, date_value, id_number_value, optional_text, phone_value, required_text
from ..registry import (
    Column,
    FileError,
    ImportContext,
    ImportKind,
    Problems,
    RowError,
    WriteCounts,
    register_kind,
)

BEDRIDDEN_WORDS = frozenset({"1", "y", "yes", "true", "是", "bedridden", "卧床", "免检", "√"})

# Labels for messages, made once (a lazy string per row costs time at a million rows).
NAME, HOUSEHOLD_CODE, EXEMPT = gettext_lazy("姓名"), gettext_lazy("户编码"), gettext_lazy("免检(卧床)")

TRANSFERS_KEY, REQUESTED_KEY, PENDING_KEY = "transfer_hashes", "transfers_requested", "transfer_rows"

RESIDENT_COPY_COLUMNS = ("household_id", "district_code", "name", "id_enc", "id_hash", "id_masked", "turns_three_on", "sex",
                         "phone_enc", "phone_hash", "phone_masked", "bedridden", "moved_on")

MOVED_UNITS_KEY = "moved_units"  # where the import keeps the units moved from and into (ctx.state)


@dataclass(slots=True)
class ResidentRowIn:
    id_number: str
    name: str
    household_code: str
    phone: str
    bedridden: bool
    birth_date: dt.date
    sex: str
    moved_on: dt.date | None = None
    id_hash: str = ""  # set in pass 1 (check), so pass 2 need not hash again


@register_kind
class ResidentsKind(ImportKind):
    """Residents by ID-card number: new numbers are added, known ones updated (name, phone,
    bedridden). Sex and, for a young child, the third birthday come from the ID number; ID and phone
    are stored encrypted.
    Facts stored earlier for a new resident's number (unmatched) are linked to them in the same
    transaction (``wuyiqu.health.linking``).

    ``moved_on`` (SPEC §7 "Time"): a known person in another household moves there from that day
    (empty: the day of the import) — the spell in the old household ends the day before, and the
    named units of both homes are re-checked in the import's transaction; a day before the person's
    last move is refused. A new person counts from ``moved_on``, or on every earlier day without it.
    For a known person in the same household, a different ``moved_on`` corrects the date of their
    first registration (refused once they have moved)."""

    name = "residents"
    label = "居民"
    batch_size = 5000
    columns = (
        Column("id_number", "身份证号", aliases=("身份证", "公民身份号码"), help="18位，末位校验码须正确"),
        Column("name", "姓名"),
        Column("household_code", "户编码", help="已登记的户编码"),
        Column("phone", "联系电话", aliases=("电话", "手机号"), required=False, help="11位手机号或固定电话，可空"),
        Column("exempt", "免检(卧床)", aliases=("免检", "卧床", "bedridden"), required=False,
               help="卧床等免于核酸检测的填“是”或“卧床”，否则留空"),
        Column("moved_on", "迁入日期", aliases=("迁入时间",), required=False,
               help="YYYY-MM-DD：迁入该户的日期；已登记居民换户时为空即导入当天，新登记居民为空即一直居住于此"),
    )

    def parse_row(self, raw, ctx):
        info = id_number_value(raw)
        moved_on = date_value(raw, "moved_on", required=False)
        if moved_on is not None:
            problem = move_problem(last_moved_on=None, moved_on=moved_on, today=_today(ctx), born_on=info.birth_date)
            if problem:
                raise RowError("moved_on", problem)
        return ResidentRowIn(
            id_number=info.number,
            name=required_text(raw, "name", NAME, max_length=50),
            household_code=required_text(raw, "household_code", HOUSEHOLD_CODE, max_length=60),
            phone=phone_value(raw),
            bedridden=bool_value(raw, "exempt", EXEMPT, true_words=BEDRIDDEN_WORDS),
            birth_date=info.birth_date,
            sex=info.sex,
            moved_on=moved_on,
        )

    def row_key(self, parsed):
        # The first 17 digits decide the number (the 18th is their check digit): a compact int key.
        return int(parsed.id_number[:17])

    packs = True

    def pack(self, r: ResidentRowIn) -> tuple:
        return (r.id_number, r.name, r.household_code, r.phone, r.bedridden, r.birth_date.toordinal(), r.sex,
                r.moved_on.toordinal() if r.moved_on else 0, r.id_hash)

    def unpack(self, p: tuple) -> ResidentRowIn:
        return ResidentRowIn(p[0], p[1], p[2], p[3], p[4], dt.date.fromordinal(p[5]), p[6],
                             dt.date.fromordinal(p[7]) if p[7] else None, p[8])

    def check(self, batch, ctx: ImportContext) -> Problems:
        hash_ = crypto.cipher().lookup_hash
        for _line, r in batch:
            r.id_hash = hash_(r.id_number)
        found = _household_paths({r.household_code for _, r in batch})
        problems: Problems = {}
        for line, r in batch:
            unit_path = found.get(r.household_code)
            if unit_path is None:
                problems[line] = RowError("household_code", _("户编码“%(c)s”不存在") % {"c": r.household_code})
            elif not ctx.in_scope(unit_path):
                problems[line] = ctx.scope_error("household_code", _("户“%(c)s”") % {"c": r.household_code})
        if ctx.scope is not None and transfers.over_cap(ctx.actor):
            # Past the day's cap every residents row of the user is refused, whatever it names: a
            # refusal only for rows naming people registered elsewhere would answer the question.
            raise FileError(transfers.refusal_message())
        if ctx.scope is not None:
            # A person registered outside the scope is neither moved nor changed from inside it, nor
            # refused (that answer told whether the number was registered elsewhere): the row becomes
            # a transfer request for a user above both (``units.transfers``), counted per user and day.
            outside = {h for (h,) in directory.resident_values(
                [r.id_hash for line, r in batch if line not in problems], not_under=ctx.scope.path)}
            if outside:
                ctx.state.setdefault(TRANSFERS_KEY, set()).update(outside)
                # A row the user asked for already (the same file again) tells nothing new: not counted,
                # and reported "unchanged" as the same row about a person new to the register would be.
                again = transfers.asked_already(outside, actor=ctx.actor)
                hits = sum(1 for line, r in batch
                           if line not in problems and r.id_hash in outside and (r.id_hash, r.household_code) not in again)
                if not transfers.count_cross_scope(actor=ctx.actor, scope=ctx.scope, hits=hits):
                    raise FileError(transfers.refusal_message())
        known = _registered({r.id_hash for line, r in batch if line not in problems})
        elsewhere = ctx.state.get(TRANSFERS_KEY, set())
        for line, r in batch:
            cur = known.get(r.id_hash)
            if cur is None or line in problems or r.id_hash in elsewhere:
                continue
            household_code, last_moved_on, has_moved = cur
            if household_code != r.household_code:
                problem = move_problem(last_moved_on=last_moved_on, moved_on=r.moved_on or _today(ctx), today=_today(ctx))
                if problem:
                    problems[line] = RowError("moved_on", problem)
            elif r.moved_on is not None and r.moved_on != last_moved_on and has_moved:
                problems[line] = RowError("moved_on", _(
                    "该居民已于%(last)s迁入户“%(c)s”，迁入日期不能改为%(d)s") % {
                    "last": last_moved_on.isoformat() if last_moved_on else "", "c": household_code,
                    "d": r.moved_on.isoformat()})
        return problems

    def write(self, batch: list[ResidentRowIn], ctx):
        c = crypto.cipher()
        households = _household_ids({r.household_code for r in batch})
        elsewhere = ctx.state.get(TRANSFERS_KEY)
        asked_counts = WriteCounts()
        if elsewhere:  # people registered outside the scope: requests, not moves (``check``)
            asked = [r for r in batch if (r.id_hash or c.lookup_hash(r.id_number)) in elsewhere]
            batch = [r for r in batch if (r.id_hash or c.lookup_hash(r.id_number)) not in elsewhere]
            asked_hashes = [r.id_hash or c.lookup_hash(r.id_number) for r in asked]
            ids = dict(directory.resident_values(asked_hashes, "pk"))
            again = transfers.asked_already(set(asked_hashes), actor=ctx.actor)  # before the new requests
            ctx.state[REQUESTED_KEY] = ctx.state.get(REQUESTED_KEY, 0) + transfers.request_transfers(
                [(ids[h], households[r.household_code], r.moved_on) for r, h in zip(asked, asked_hashes, strict=True)],
                actor=ctx.actor, scope=ctx.scope)
            ctx.state[PENDING_KEY] = ctx.state.get(PENDING_KEY, 0) + len(asked)
            # The importer is answered as for a person new to the register (no existence oracle, issue
            # 14): "created" the first time, "unchanged" when the same row comes again while it waits.
            repeated = sum(1 for r, h in zip(asked, asked_hashes, strict=True) if (h, r.household_code) in again)
            asked_counts = WriteCounts(created=len(asked) - repeated, unchanged=repeated)
            if not batch:
                return asked_counts
        hashes = [r.id_hash or c.lookup_hash(r.id_number) for r in batch]
        # Found through the city-wide directory, each district's people read on its own (one shard on
        # Citus); a number new to the register is not looked for any further.
        existing = {row[1]: row for row in directory.select_by_district(
            "SELECT r.id, r.id_hash, r.name, r.household_id, r.phone_hash, r.bedridden, r.moved_on "
            f"FROM {{numbers}} JOIN {Resident._meta.db_table} r ON r.district_code = %s AND r.id_hash = q.h", hashes)}
        new_rows: list[ResidentRowIn] = []
        new_hashes: list[str] = []
        changed: list[Resident] = []
        moves: list[Move] = []
        unchanged = 0
        for r, h in zip(batch, hashes, strict=True):
            hh = households[r.household_code]
            cur = existing.get(h)
            if cur is None:
                new_rows.append(r)
                new_hashes.append(h)
                continue
            pk, _h, name, household_id, phone_hash, bedridden, moved_on = cur
            moved_on = _as_date(moved_on)
            new_phone_hash = c.lookup_hash(r.phone) if r.phone else ""
            # Checked in pass 1: a move dated after the last one; the same household with another
            # date only for a person who never moved (the date of the first registration corrected).
            if household_id != hh:
                moves.append(Move(pk, household_id, moved_on, hh, r.moved_on or _today(ctx)))
                arrival = moved_on  # household and arrival are the move's (move_residents, below)
            else:
                arrival = r.moved_on if r.moved_on is not None else moved_on
            if (name, phone_hash, bedridden, arrival) == (r.name, new_phone_hash, r.bedridden, moved_on):
                if household_id == hh:
                    unchanged += 1
                continue
            res = Resident(pk=pk, name=r.name, bedridden=r.bedridden, moved_on=arrival)
            res.set_phone(r.phone)
            changed.append(res)
        if new_rows:
            prepared = prepare_resident_rows(new_rows, new_hashes, households, c)
            # The directory's key first: a number another import registered in another district after
            # the look-up above (both at the same moment) refuses the import before any resident is
            # written; the file can be imported again, and the row is then a transfer or an update.
            try:
                with transaction.atomic():
                    directory.insert([(row[4], row[1]) for row in prepared])
            except IntegrityError:
                raise FileError(registered_meanwhile()) from None
            insert_rows(Resident._meta.db_table, RESIDENT_COPY_COLUMNS, prepared)
            # Facts stored before these people were registered count from now on (one UPDATE per
            # fact table for the batch); the engine re-checks their units and audits the counts.
            # Known residents' facts were linked when they were written or registered.
            linked = ctx.state.setdefault(linking.STATE_KEY, linking.LinkedFacts())
            linked += linking.link_facts(new_hashes)
            # Facts another scope submitted about these people wait for a user who covers both.
            held = linking.hold_facts(new_hashes)
            ctx.state["facts_held"] = ctx.state.get("facts_held", 0) + len(held)
            tell_deciders(held)
        if changed:
            Resident.objects.bulk_update(
                changed, ["name", "bedridden", "phone_enc", "phone_hash", "phone_masked", "moved_on"], batch_size=500)
        if moves:
            # After the update above, which leaves household and arrival of the moved alone.
            ctx.state.setdefault(MOVED_UNITS_KEY, set()).update(move_residents(moves))
            ctx.state["moves"] = ctx.state.get("moves", 0) + len(moves)
        updated = len({m.resident_id for m in moves} | {r.pk for r in changed})
        asked_counts += WriteCounts(created=len(new_rows), updated=updated, unchanged=unchanged)
        return asked_counts

    def audit_detail(self, ctx: ImportContext) -> dict:
        linked = ctx.state.get(linking.STATE_KEY) or linking.LinkedFacts()
        return {"facts_linked": linked.as_detail(), "facts_held": ctx.state.get("facts_held", 0),
                "moves": ctx.state.get("moves", 0),
                "transfer_rows": ctx.state.get(PENDING_KEY, 0), "transfer_requests": ctx.state.get(REQUESTED_KEY, 0)}

    def summary_note(self, ctx: ImportContext) -> str:
        # No count of the rows that wait: the same words for every scoped import, whether any row named
        # a person registered elsewhere or not (that answer told whether a number was registered).
        return scoped_note() if ctx.scope is not None else ""


def registered_meanwhile() -> str:
    """The refusal of a residents import or form whose new person another writer registered (in any
    district) between its look-up and its write."""
    return _("有身份证号在本次导入的同时已由其他导入登记，本次未导入任何数据，请重新导入")


def scoped_note() -> str:
    """The one sentence a scoped residents import or form adds, whatever its rows name."""
    return _("身份证号已在其他辖区登记的居民计入新增，由上级核实迁入后生效")


def _today(ctx: ImportContext) -> dt.date:
    """The import's day, read once per import: every row of a file is judged against the same day."""
    day = ctx.state.get("today")
    if day is None:
        day = ctx.state["today"] = dates.today()
    return day


def _as_date(value) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _registered(hashes: set[str]) -> dict[str, tuple[str, dt.date | None, bool]]:
    """For the registered residents among ``hashes``: (household code, arrival, has moved before).
    Two statements: a person's past spells are kept in the districts they were spent in, not
    necessarily the person's (on Citus a correlated probe of them from the residents is refused)."""
    found = directory.select_by_district(
        f"SELECT r.id_hash, h.code, r.moved_on, r.id FROM {{numbers}} "
        f"JOIN {Resident._meta.db_table} r ON r.district_code = %s AND r.id_hash = q.h "
        f"JOIN {Household._meta.db_table} h ON h.district_code = r.district_code AND h.id = r.household_id", hashes)
    moved = {rid for (rid,) in select_in(
        f"SELECT DISTINCT resident_id FROM {PastResidence._meta.db_table} WHERE resident_id IN ({{}})",
        [row[3] for row in found])}
    return {h: (code, _as_date(moved_on), rid in moved) for h, code, moved_on, rid in found}


def _household_ids(codes: set[str]) -> dict[str, int]:
    return {code: pk for pk, code in select_in(
        f"SELECT id, code FROM {Household._meta.db_table} WHERE code IN ({{}})", codes)}


def _household_paths(codes: set[str]) -> dict[str, str]:
    """Household code -> the materialised path of its unit."""
    return {code: path for code, path in select_in(
        f"SELECT h.code, u.path FROM {Household._meta.db_table} h JOIN {Unit._meta.db_table} u ON u.id = h.unit_id "
        "WHERE h.code IN ({})", codes)}


def prepare_resident_rows(rows: list[ResidentRowIn], id_hashes: list[str], households: dict[str, int],
                          c: crypto.FieldCipher) -> list[tuple]:
    """The table rows (RESIDENT_COPY_COLUMNS order) for new residents: encrypted, hashed, masked."""
    id_enc = c.encrypt_many([r.id_number for r in rows])
    phones = [r.phone for r in rows if r.phone]
    phone_enc = iter(c.encrypt_many(phones))
    hash_ = c.lookup_hash
    today = dates.today()
    # A resident is kept in their household's district (units 0009): one read for the rows' households.
    districts = dict(Household.objects.filter(pk__in={households[r.household_code] for r in rows})
                     .values_list("pk", "district_code"))
    out = []
    for r, ienc, ih in zip(rows, id_enc, id_hashes, strict=True):
        phone = r.phone
        out.append((
            households[r.household_code], districts[households[r.household_code]], r.name, ienc, ih, mask_id_number(r.id_number),
            kept_third_birthday(r.birth_date, today), r.sex,
            next(phone_enc) if phone else None, hash_(phone) if phone else "", mask_phone(phone), r.bedridden,
            r.moved_on,
        ))
    return out


@dataclass(slots=True)
class SpecialRowIn:
    id_number: str
    tags: str
    needs: str
    helper: str
    reviewed_on: dt.date | None
    registered_on: dt.date | None = None


_TAG_ORDER = {t.value: i for i, t in enumerate(SpecialTag)}


@register_kind
class SpecialPopulationKind(ImportKind):
    """The special-population ledger: one entry per resident, replaced by the file's line.
    Needs and helper may be empty (the ledger is then incomplete, which the standards report).
    ``registered_on``: the entry counts from that day (SPEC §7 "Time"); empty: on every day, or for
    an entry already registered, the day it has."""

    name = "special-population"
    label = "特殊人群台账"
    columns = (
        Column("id_number", "身份证号", aliases=("身份证", "公民身份号码"), help="已登记居民的身份证号"),
        Column("tags", "类别", help="独居老人、孕产妇、残疾人、婴幼儿、血透病人、肿瘤患者、慢性病患者；多个用“、”或“;”分隔"),
        Column("needs", "需求", required=False, help="可空"),
        Column("helper", "帮扶人", required=False, help="可空"),
        Column("reviewed_on", "复核日期", required=False, help="YYYY-MM-DD，可空"),
        Column("registered_on", "登记日期", required=False, help="YYYY-MM-DD：该条台账自此日起计入；为空即一直计入"),
    )

    def parse_row(self, raw, ctx):
        info = id_number_value(raw)
        text = raw.get("tags", "")
        words = [w.strip() for w in text.replace("；", ";").replace("、", ";").replace(",", ";").replace("，", ";")
                 .split(";") if w.strip()]
        if not words:
            raise RowError("tags", _("类别不能为空"))
        tags = set()
        for w in words:
            tag = SPECIAL_TAG_ALIASES.get(w) or SPECIAL_TAG_ALIASES.get(w.lower())
            if tag is None:
                accepted = "、".join(str(t.label) for t in SpecialTag)
                raise RowError("tags", _("类别“%(w)s”无法识别，可填：%(a)s") % {"w": w, "a": accepted})
            tags.add(tag)
        return SpecialRowIn(
            id_number=info.number,
            tags=",".join(sorted(tags, key=_TAG_ORDER.__getitem__)),
            needs=optional_text(raw, "needs", gettext_lazy("需求"), max_length=2000),
            helper=optional_text(raw, "helper", gettext_lazy("帮扶人"), max_length=50),
            reviewed_on=date_value(raw, "reviewed_on", required=False, not_after=dates.today()),
            registered_on=date_value(raw, "registered_on", required=False, not_after=dates.today()),
        )

    def row_key(self, parsed):
        return int(parsed.id_number[:17])

    def check(self, batch, ctx):
        known = ctx.residents_by_id_number([r.id_number for _, r in batch])
        problems: Problems = {}
        for line, r in batch:
            ref = known.get(r.id_number)
            # Registered nowhere or outside the scope: one answer, which does not tell them apart.
            if ref is None or not ctx.in_scope(ref.unit_path):
                problems[line] = RowError("id_number", _("本辖区未找到该身份证号的居民，请先导入居民"))
        return problems

    def write(self, batch: list[SpecialRowIn], ctx):
        known = ctx.residents_by_id_number([r.id_number for r in batch])
        resident_ids = [known[r.id_number].id for r in batch]
        existing = {e.resident_id: e for e in SpecialPopulationEntry.objects.filter(resident_id__in=resident_ids)}
        new, changed = [], []
        for r, rid in zip(batch, resident_ids, strict=True):
            e = existing.get(rid)
            values = {"tags": r.tags, "needs": r.needs, "helper": r.helper, "reviewed_on": r.reviewed_on}
            if r.registered_on is not None or e is None:  # an empty date keeps the one registered
                values["registered_on"] = r.registered_on
            if e is None:  # kept in the resident's district (units 0009)
                new.append(SpecialPopulationEntry(resident_id=rid, district_code=district_of(known[r.id_number].unit_path),
                                                  **values))
            elif any(getattr(e, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(e, k, v)
                changed.append(e)
        SpecialPopulationEntry.objects.bulk_create(new, batch_size=1000)
        if changed:
            SpecialPopulationEntry.objects.bulk_update(changed, ["tags", "needs", "helper", "reviewed_on", "registered_on"],
                                                       batch_size=500)
        return WriteCounts(created=len(new), updated=len(changed), unchanged=len(batch) - len(new) - len(changed))
