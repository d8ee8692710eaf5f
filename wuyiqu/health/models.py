"""Epidemic facts about people and units, each dated.

Every fact row carries ``unit``: the lowest unit it belongs to (the resident's household unit when
it was recorded, or the unit it was recorded on). The standards engine aggregates facts by the
units' paths, so it never walks people one by one. A fact whose ID number matches no resident is
kept with ``resident`` empty and ``unit`` empty (reported as unmatched; it counts for no unit).

``scope_unit`` is the unit whose subtree its submitter (a scoped account's import or form, an API
token) was restricted to; empty for an unscoped submitter (the console, an administrator). An
unmatched fact attaches later only to a person registered inside that subtree; about anyone else it
waits as ``HeldFacts`` for a street or health-commission user who covers both (docs/facts.md).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from wuyiqu.units.models import DistrictCodeField, DistrictForeignKey, DistrictKeyedModel


class FactSource(models.TextChoices):
    IMPORT = "import", _("导入")
    API = "api", _("接口")
    FORM = "form", _("录入")
    NAT = "nat", _("核酸阳性")


class CaseType(models.TextChoices):
    CONFIRMED = "confirmed", _("确诊")
    ASYMPTOMATIC = "asymptomatic", _("无症状")


class PersonFact(DistrictKeyedModel):
    """A fact about a person, kept (``district_code``, health 0006: the distribution column on Citus)
    in the district of its resident — and moved along when the person moves to another district
    (``units.relocation``) — else, unmatched, in the district of its unit, else of its submitter's
    scope ("" for an unscoped submitter), as the nucleic-acid results are (NatResult's docstring);
    linking moves it into its person's district."""

    resident = DistrictForeignKey("units.Resident", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    district_code = DistrictCodeField(unit_field="resident,unit,scope_unit")
    unit = models.ForeignKey("units.Unit", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    id_hash = models.CharField(max_length=64, blank=True, db_index=True)
    id_masked = models.CharField(max_length=18, blank=True)
    source = models.CharField(max_length=8, choices=FactSource.choices, default=FactSource.IMPORT)
    # No index: read only with ``id_hash`` (linking, the held-facts queue), which is indexed.
    scope_unit = models.ForeignKey("units.Unit", null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class PositiveCase(PersonFact):
    """阳性感染者 (确诊/无症状), on a resident or on a unit."""

    reported_on = models.DateField(_("报告日期"), db_index=True)
    case_type = models.CharField(_("类型"), max_length=14, choices=CaseType.choices)

    class Meta:
        constraints = [
            # Re-importing the same case adds nothing. Two partial keys, because the unit of an
            # unmatched person's case is NULL and NULLs never collide in a unique index: a case on a
            # person is keyed by the person, a case on a unit (empty id_hash) by the unit.
            models.UniqueConstraint(fields=["district_code", "id_hash", "reported_on", "case_type"], name="case_once",
                                    condition=~models.Q(id_hash="")),
            models.UniqueConstraint(fields=["district_code", "unit", "reported_on", "case_type"], name="unit_case_once",
                                    condition=models.Q(id_hash="")),
            models.CheckConstraint(condition=~models.Q(id_hash="") | models.Q(unit__isnull=False),
                                   name="case_on_person_or_unit"),
        ]

    def __str__(self) -> str:
        return f"{self.get_case_type_display()} {self.reported_on}"


class MeasureKind(models.TextChoices):
    CLOSE_CONTACT = "close_contact", _("密接")
    HOME_QUARANTINE = "home_quarantine", _("居家隔离")
    RETURNEE = "returnee", _("重点疫区来綦返綦人员")


class Measure(PersonFact):
    """A management measure on a person from ``start_on`` to ``end_on`` inclusive.

    For a returnee ``start_on`` is the arrival and ``end_on`` the end of control. Ending early or
    extending goes through health.actions (a MeasureChange row with the reason), never an edit."""

    kind = models.CharField(_("类别"), max_length=16, choices=MeasureKind.choices)
    start_on = models.DateField(_("开始日期"))
    end_on = models.DateField(_("结束日期"))
    origin = models.CharField(_("来源地"), max_length=100, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["district_code", "kind", "id_hash", "start_on"], name="measure_once"),
            models.CheckConstraint(condition=models.Q(end_on__gte=models.F("start_on")), name="measure_ends_after_start"),
            models.CheckConstraint(condition=~models.Q(id_hash=""), name="measure_on_person"),
        ]
        # "Under measure on D" is start_on <= D <= end_on: the index is entered at end_on >= D, which
        # skips the long tail of finished measures (see docs/facts.md).
        indexes = [models.Index(fields=["kind", "end_on", "start_on"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.start_on}–{self.end_on}"


class MeasureChange(DistrictKeyedModel):
    """One early end or extension of a measure: the old and new end date, why, and who. Kept with its
    measure, in its district (health 0006)."""

    measure = DistrictForeignKey(Measure, on_delete=models.CASCADE, related_name="changes")
    district_code = DistrictCodeField(unit_field="measure")
    old_end_on = models.DateField()
    new_end_on = models.DateField()
    reason = models.CharField(max_length=200)
    actor = models.ForeignKey("accounts.User", null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.old_end_on} → {self.new_end_on}"


class ZoneType(models.TextChoices):
    HIGH = "high", _("高风险区")
    TEMPORARY = "temporary", _("临时管控区")


class RiskZone(DistrictKeyedModel):
    """高风险区 / 临时管控区 on a unit from ``start_on`` to ``end_on`` inclusive (empty: ongoing).

    It counts for the unit, every unit below it and every unit above it (SPEC §4 no_risk_zone). Kept
    in its unit's district (health 0006)."""

    unit = models.ForeignKey("units.Unit", on_delete=models.PROTECT, related_name="risk_zones")
    district_code = DistrictCodeField()
    zone_type = models.CharField(_("类型"), max_length=10, choices=ZoneType.choices)
    start_on = models.DateField(_("开始日期"))
    end_on = models.DateField(_("结束日期"), null=True, blank=True)  # empty: ongoing
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["district_code", "unit", "zone_type", "start_on"], name="zone_once"),
            models.CheckConstraint(
                condition=models.Q(end_on__isnull=True) | models.Q(end_on__gte=models.F("start_on")),
                name="zone_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_zone_type_display()} {self.start_on}–{self.end_on or ''}"


class NatResultValue(models.TextChoices):
    NEGATIVE = "negative", _("阴性")
    POSITIVE = "positive", _("阳性")


class NatResult(models.Model):
    """核酸检测 result: one sample of one person (by ID hash), matched to a resident when registered.

    On PostgreSQL the table is partitioned by RANGE (``sampled_on``), one partition per ISO week
    plus a DEFAULT one (migration 0003_nat_partitions; ``nat_import.ensure_nat_partitions`` adds the
    weeks an import needs). PostgreSQL requires every unique key of a partitioned table to contain
    the partition key, so the primary key is the natural key (id_hash, sampled_on, sampled_at) —
    which is also what makes a re-import add nothing — and there is no surrogate ``id``: nothing
    points at a result, and a sequence would only cost time on every one of millions of rows. The
    same composite key works unchanged on SQLite (an ordinary table there).

    ``district_code`` (migration 0005) is the district the row is kept in — the distribution column
    on Citus, where the table is distributed by it, partitions and all, co-located with the stored
    evaluations (``wuyiqu citus distribute``; docs/scaling.md, "Running on Citus"), so it is in the
    primary key (id_hash, sampled_on, sampled_at, district_code) on every database — last, so that
    the lookups by ID hash (linking, a person's page, the held facts) still enter the key by its
    first column. A district's reads name the district (routing on Citus) and find its rows through
    its residents' ids and the (resident_id, sampled_on) index. A matched result
    is kept in the district of its resident's household: where it was recorded, and moved along
    (``health.linking.move_results``) when the person moves to another district, so that a
    district's participation reads its own shard. An unmatched result is kept in its submitter's
    scope's district ("" for an unscoped submitter: the console, an administrator, a city-wide
    laboratory) — the only district where it may be linked without a decision (``health.linking``) —
    and moved to its person's district when it is linked. A Citus distribution value is never
    updated in place: every change of district is a delete and an insert.
    """

    pk = models.CompositePrimaryKey("id_hash", "sampled_on", "sampled_at", "district_code")
    # The database's default "" (an unscoped stranger's) keeps raw loaders that leave the column out
    # working (bench/); every writer of the product names the district.
    district_code = DistrictCodeField(unit_field="unit_id,scope_unit_id", db_default="")
    id_hash = models.CharField(max_length=64)
    resident_id = models.BigIntegerField(null=True)  # no FK: a partitioned fact table stays cheap to load
    unit_id = models.BigIntegerField(null=True)
    sampled_at = models.DateTimeField(_("采样时间"))
    sampled_on = models.DateField(_("采样日期"))  # local date of sampled_at, the partition key
    result = models.CharField(_("结果"), max_length=8, choices=NatResultValue.choices)
    scope_unit_id = models.BigIntegerField(null=True)  # the submitter's scope (see the module docstring)

    class Meta:
        indexes = [
            # "The latest test of each resident within N days": entered per resident, the newest
            # sampled_on first; with the partition pruning on sampled_on only the window's weeks
            # are searched. (Participation over all units scans the window's partitions instead.)
            models.Index(fields=["resident_id", "sampled_on"]),
        ]

    def __str__(self) -> str:
        return f"{self.sampled_on} {self.get_result_display()}"


class HeldStatus(models.TextChoices):
    PENDING = "pending", _("待确认")
    CONFIRMED = "confirmed", _("已确认")
    DISCARDED = "discarded", _("已作废")


class HeldFacts(DistrictKeyedModel):
    """Facts submitted from one scope about a person who is registered outside it: not attached to
    them, waiting for a street or health-commission user whose scope covers both the submitter's scope
    and the person's household to confirm (attach) or discard (delete) them. One open row per person
    and submitting scope; the counts are what was held when the row was made or last topped up. Kept
    with the resident, in their district (health 0006), and moved along with them."""

    id_hash = models.CharField(max_length=64)
    resident = DistrictForeignKey("units.Resident", on_delete=models.CASCADE, related_name="+")
    district_code = DistrictCodeField(unit_field="resident")
    scope_unit = models.ForeignKey("units.Unit", on_delete=models.PROTECT, related_name="+")
    results = models.PositiveIntegerField(default=0)
    cases = models.PositiveIntegerField(default=0)
    measures = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=HeldStatus.choices, default=HeldStatus.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["district_code", "id_hash", "scope_unit"], condition=models.Q(status="pending"),
                                    name="held_facts_open_once"),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="held_facts_queue")]

    def __str__(self) -> str:
        return f"{self.resident_id} ← {self.scope_unit_id} ({self.status})"
