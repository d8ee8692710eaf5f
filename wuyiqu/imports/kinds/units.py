"""Kinds for the unit tree and households: ``units``, ``households``, ``verifications``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from wuyiqu.lib import dates
from wuyiqu.units.models import (
    ALLOWED_PARENT_KINDS,
    HOUSEHOLD_UNIT_KINDS,
    KIND_ALIASES,
    Household,
    HouseholdVerification,
    Unit,
    UnitKind,
    district_of,
    path_for,
)

from ..bulk import insert_rows, select_in
from ..fields import choice_value, date_value, optional_text, required_text
from ..registry import (
    Batch,
    Column,
    ImportContext,
    ImportKind,
    Problems,
    RowError,
    WriteCounts,
    register_kind,
)

KIND_HELP = "区/街道/镇/乡/社区/村/小区/社/楼栋/单元（或 district/street/community/village/compound/group/building/entrance）"


def _kind_label(kind: str) -> str:
    return str(UnitKind(kind).label)


@dataclass(slots=True)
class UnitRowIn:
    code: str
    name: str
    kind: str
    parent_code: str


@register_kind
class UnitsKind(ImportKind):
    """Units of the tree. A parent may already exist or come earlier in the same file; an existing
    unit is updated in its name only (moving a unit or changing its kind is not done by import)."""

    name = "units"
    label = "单位"
    description = "上级可以已在系统中，也可以在本文件中更靠前的行。"
    columns = (
        Column("code", "编码", help="统计用区划代码（12位）或本地编码，唯一"),
        Column("name", "名称", help="如：文龙社区居民委员会、龙湖花园、1栋"),
        Column("kind", "类型", help=KIND_HELP),
        Column("parent_code", "上级编码", aliases=("parent",), required=False, help="上级单位的编码；区可留空"),
    )

    def parse_row(self, raw, ctx):
        code = required_text(raw, "code", gettext_lazy("编码"), max_length=40)
        if any(ch.isspace() or ch == "/" for ch in code):
            raise RowError("code", _("编码不能含空格或“/”"))
        name = required_text(raw, "name", gettext_lazy("名称"), max_length=100)
        kind = choice_value(raw, "kind", gettext_lazy("类型"), KIND_ALIASES)
        parent_code = raw.get("parent_code", "")
        if not parent_code and kind != UnitKind.DISTRICT:
            raise RowError("parent_code", _("%(kind)s必须填写上级编码") % {"kind": _kind_label(kind)})
        if parent_code == code:
            raise RowError("parent_code", _("上级编码不能是自己"))
        return UnitRowIn(code, name, kind, parent_code)

    def row_key(self, parsed):
        return parsed.code

    def check(self, batch: Batch, ctx: ImportContext) -> Problems:
        # Units of this file already checked: code -> (kind, path). A units file is small (a district
        # has tens of thousands of units), so holding it is fine.
        seen: dict[str, tuple[str, str]] = ctx.state.setdefault("units", {})
        existing = ctx.units_by_code({r.code for _, r in batch} | {r.parent_code for _, r in batch})
        problems: Problems = {}
        for line, row in batch:
            try:
                seen[row.code] = self._check_one(row, existing, seen, ctx)
            except RowError as exc:
                problems[line] = exc
        return problems

    def _check_one(self, row: UnitRowIn, existing, seen, ctx) -> tuple[str, str]:
        current = existing.get(row.code)
        if row.parent_code:
            if row.parent_code in seen:
                parent_kind, parent_path = seen[row.parent_code]
            elif row.parent_code in existing:
                parent_kind, parent_path = existing[row.parent_code].kind, existing[row.parent_code].path
            else:
                raise RowError("parent_code", _("上级编码“%(c)s”不存在（上级须已在系统中或在本文件更靠前的行）")
                               % {"c": row.parent_code})
            if parent_kind not in ALLOWED_PARENT_KINDS[row.kind]:
                allowed = "、".join(_kind_label(k) for k in ALLOWED_PARENT_KINDS[row.kind]) or _("无")
                raise RowError("parent_code", _("%(kind)s的上级不能是%(pk)s（应为：%(allowed)s）") % {
                    "kind": _kind_label(row.kind), "pk": _kind_label(parent_kind), "allowed": allowed})
            if not ctx.in_scope(parent_path):
                raise ctx.scope_error("parent_code", _("上级单位“%(c)s”") % {"c": row.parent_code})
        else:
            parent_path = ""
        path = path_for(parent_path, row.code)
        if current is not None:
            if not ctx.in_scope(current.path):
                raise ctx.scope_error("code", _("单位“%(c)s”") % {"c": row.code})
            if current.kind != row.kind:
                raise RowError("kind", _("单位“%(c)s”已存在，类型为%(k)s，导入不能改变类型") % {
                    "c": row.code, "k": _kind_label(current.kind)})
            if current.path != path:
                raise RowError("parent_code", _("单位“%(c)s”已存在于另一上级之下，导入不能移动单位") % {"c": row.code})
        elif ctx.scope is not None and not row.parent_code:
            raise ctx.scope_error("parent_code", _("没有上级的单位"))
        return row.kind, path

    def write(self, batch: list[UnitRowIn], ctx: ImportContext) -> WriteCounts:
        counts = WriteCounts()
        codes = {r.code for r in batch} | {r.parent_code for r in batch if r.parent_code}
        known = {u.code: u for u in Unit.objects.filter(code__in=codes).only("id", "code", "name", "path", "depth")}
        renamed = []
        pending = []
        for r in batch:
            unit = known.get(r.code)
            if unit is None:
                pending.append(r)
            elif unit.name != r.name:
                unit.name = r.name
                renamed.append(unit)
            else:
                counts.unchanged += 1
        if renamed:
            Unit.objects.bulk_update(renamed, ["name"], batch_size=500)
            counts.updated += len(renamed)
        # Parents come first: insert generation by generation so children get their parents' ids.
        while pending:
            ready = [r for r in pending if not r.parent_code or r.parent_code in known]
            if not ready:  # pass 1 guarantees every parent exists or comes earlier
                raise RuntimeError(f"unit {pending[0].code}: parent {pending[0].parent_code} missing")
            created = []
            for r in ready:
                parent = known.get(r.parent_code) if r.parent_code else None
                created.append(Unit(code=r.code, name=r.name, kind=r.kind, parent_id=parent.pk if parent else None,
                                    path=path_for(parent.path if parent else "", r.code),
                                    depth=parent.depth + 1 if parent else 0))
            Unit.objects.bulk_create(created, batch_size=1000)
            known.update({u.code: u for u in created})
            counts.created += len(created)
            done = {r.code for r in ready}
            pending = [r for r in pending if r.code not in done]
        return counts


@dataclass(slots=True)
class HouseholdRowIn:
    code: str
    unit_code: str
    address: str
    verified_on: dt.date | None
    registered_on: dt.date | None = None


def _household_unit_problem(ref, unit_code: str, ctx: ImportContext, field: str = "unit_code") -> RowError | None:
    if ref is None:
        return RowError(field, _("单位编码“%(c)s”不存在") % {"c": unit_code})
    if ref.kind not in HOUSEHOLD_UNIT_KINDS:
        return RowError(field, _("户只能属于楼栋、单元或社，“%(c)s”是%(k)s") % {"c": unit_code, "k": _kind_label(ref.kind)})
    if not ctx.in_scope(ref.path):
        return ctx.scope_error(field, _("单位“%(c)s”") % {"c": unit_code})
    return None


@register_kind
class HouseholdsKind(ImportKind):
    """Households of a building, entrance or group; ``verified_on`` also records a verification.
    ``registered_on``: the household counts from that day (SPEC §7 "Time"); empty: on every day, or
    for a household already registered, the day it has."""

    name = "households"
    label = "住户"
    batch_size = 5000
    columns = (
        Column("code", "户编码", aliases=("household_code",), help="唯一，如 500110002015-C01-B01-101"),
        Column("unit_code", "所属单位编码", help="楼栋、单元或社的编码"),
        Column("address", "地址", help="如：龙湖花园1栋101室"),
        Column("verified_on", "核实日期", required=False, help="住户清楚、人员准确的核实日期 YYYY-MM-DD，可空"),
        Column("registered_on", "登记日期", required=False, help="YYYY-MM-DD：该户自此日起计入；为空即一直计入"),
    )

    def parse_row(self, raw, ctx):
        code = required_text(raw, "code", gettext_lazy("户编码"), max_length=60)
        unit_code = required_text(raw, "unit_code", gettext_lazy("所属单位编码"), max_length=40)
        address = required_text(raw, "address", gettext_lazy("地址"), max_length=200)
        verified_on = date_value(raw, "verified_on", required=False, not_after=dates.today())
        registered_on = date_value(raw, "registered_on", required=False, not_after=dates.today())
        if verified_on is not None and registered_on is not None and verified_on < registered_on:
            raise RowError("verified_on", _("核实日期（%(v)s）不能早于登记日期（%(r)s）") % {
                "v": verified_on.isoformat(), "r": registered_on.isoformat()})
        return HouseholdRowIn(code, unit_code, address, verified_on, registered_on)

    def row_key(self, parsed):
        return parsed.code

    def check(self, batch, ctx):
        units = ctx.units_by_code({r.unit_code for _, r in batch})
        current = ctx.households_by_code({r.code for _, r in batch})
        problems: Problems = {}
        for line, r in batch:
            err = _household_unit_problem(units.get(r.unit_code), r.unit_code, ctx)
            if err is None and r.code in current and not ctx.in_scope(current[r.code].unit_path):
                err = ctx.scope_error("code", _("户“%(c)s”") % {"c": r.code})
            if (err is None and r.code in current
                    and district_of(current[r.code].unit_path) != district_of(units[r.unit_code].path)):
                # A household is kept in its unit's district (units 0008) with its residents, their
                # verifications and facts: it does not change district. A family that moves to another
                # district is registered there as a household, and its people moved into it.
                err = RowError("unit_code", _("户“%(c)s”已登记在其他区的单位下，不能改到本区的单位“%(u)s”："
                                              "请在本区新登记一户，再把居民迁入") % {"c": r.code, "u": r.unit_code})
            if err is not None:
                problems[line] = err
        return problems

    def write(self, batch: list[HouseholdRowIn], ctx):
        hh_table, v_table = Household._meta.db_table, HouseholdVerification._meta.db_table
        units, districts = {}, {}
        for pk, code, path in select_in(f"SELECT id, code, path FROM {Unit._meta.db_table} WHERE code IN ({{}})",
                                        {r.unit_code for r in batch}):
            units[code], districts[code] = pk, district_of(path)
        existing = {code: (pk, unit_id, address, registered_on) for pk, code, unit_id, address, registered_on in select_in(
            f"SELECT id, code, unit_id, address, registered_on FROM {hh_table} WHERE code IN ({{}})",
            [r.code for r in batch])}
        new: list[tuple] = []
        changed: list[Household] = []
        for r in batch:
            cur = existing.get(r.code)
            if cur is None:
                new.append((r.code, units[r.unit_code], districts[r.unit_code], r.address, r.registered_on))
                continue
            had = dt.date.fromisoformat(cur[3]) if isinstance(cur[3], str) else cur[3]
            registered_on = r.registered_on or had  # an empty date keeps the one the household has
            if (cur[1], cur[2], had) != (units[r.unit_code], r.address, registered_on):
                changed.append(Household(pk=cur[0], code=r.code, unit_id=units[r.unit_code], address=r.address,
                                         registered_on=registered_on))
        if new:
            insert_rows(hh_table, ("code", "unit_id", "district_code", "address", "registered_on"), new)
        if changed:
            Household.objects.bulk_update(changed, ["unit_id", "address", "registered_on"], batch_size=500)
        touched = {h.code for h in changed}
        with_date = [r for r in batch if r.verified_on]
        if with_date:
            ids, hh_districts = {}, {}
            for pk, code, district in select_in(f"SELECT id, code, district_code FROM {hh_table} WHERE code IN ({{}})",
                                                [r.code for r in with_date]):
                ids[code], hh_districts[code] = pk, district
            have = set(select_in(f"SELECT household_id, verified_on FROM {v_table} WHERE household_id IN ({{}})",
                                 ids.values()))
            have = {(hid, d if isinstance(d, dt.date) else dt.date.fromisoformat(d)) for hid, d in have}
            fresh = [r for r in with_date if (ids[r.code], r.verified_on) not in have]
            if fresh:
                insert_rows(v_table, ("household_id", "district_code", "verified_on", "verifier"),
                            [(ids[r.code], hh_districts[r.code], r.verified_on, "") for r in fresh])
            touched.update(r.code for r in fresh if r.code in existing)
        return WriteCounts(created=len(new), updated=len(touched), unchanged=len(batch) - len(new) - len(touched))


@dataclass(slots=True)
class VerificationRowIn:
    household_code: str
    verified_on: dt.date
    verifier: str


def _households_check(codes: set[str], batch: Batch, ctx: ImportContext, field: str = "household_code") -> Problems:
    found = ctx.households_by_code(codes)
    problems: Problems = {}
    for line, r in batch:
        ref = found.get(r.household_code)
        if ref is None:
            problems[line] = RowError(field, _("户编码“%(c)s”不存在") % {"c": r.household_code})
        elif not ctx.in_scope(ref.unit_path):
            problems[line] = ctx.scope_error(field, _("户“%(c)s”") % {"c": r.household_code})
    return problems


@register_kind
class VerificationsKind(ImportKind):
    """Registry verifications (住户清楚、人员准确) of households, one per household and day."""

    name = "verifications"
    label = "住户核实"
    batch_size = 5000
    columns = (
        Column("household_code", "户编码", help="已登记的户编码"),
        Column("verified_on", "核实日期", help="YYYY-MM-DD"),
        Column("verifier", "核实人", required=False, help="网格员姓名"),
    )

    def parse_row(self, raw, ctx):
        return VerificationRowIn(
            required_text(raw, "household_code", gettext_lazy("户编码"), max_length=60),
            date_value(raw, "verified_on", not_after=dates.today()),
            optional_text(raw, "verifier", gettext_lazy("核实人"), max_length=50),
        )

    def row_key(self, parsed):
        return (parsed.household_code, parsed.verified_on)

    def check(self, batch, ctx):
        return _households_check({r.household_code for _, r in batch}, batch, ctx)

    def write(self, batch: list[VerificationRowIn], ctx):
        counts = WriteCounts()
        ids, hh_districts = {}, {}
        for code, pk, district in Household.objects.filter(code__in={r.household_code for r in batch}).values_list(
                "code", "pk", "district_code"):
            ids[code], hh_districts[code] = pk, district
        existing = {(v.household_id, v.verified_on): v for v in HouseholdVerification.objects.filter(
            household_id__in=set(ids.values()), verified_on__in={r.verified_on for r in batch})}
        new, changed = [], []
        for r in batch:
            v = existing.get((ids[r.household_code], r.verified_on))
            if v is None:
                new.append(HouseholdVerification(household_id=ids[r.household_code], verified_on=r.verified_on,
                                                 verifier=r.verifier, district_code=hh_districts[r.household_code]))
            elif v.verifier != r.verifier:
                v.verifier = r.verifier
                changed.append(v)
        HouseholdVerification.objects.bulk_create(new, batch_size=2000)
        if changed:
            HouseholdVerification.objects.bulk_update(changed, ["verifier"], batch_size=500)
        counts.created, counts.updated = len(new), len(changed)
        counts.unchanged = len(batch) - len(new) - len(changed)
        return counts
