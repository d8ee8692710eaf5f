"""The registry: the unit tree (区 → 街道 → 村/社区 → 小区/社 → 楼栋 → 单元), households and residents."""

from __future__ import annotations

import datetime as dt

from django.db import models, transaction
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from wuyiqu.lib import crypto, dates
from wuyiqu.lib.idcard import age_on, kept_third_birthday, mask_id_number, mask_phone, parse_id_number


class UnitKind(models.TextChoices):
    DISTRICT = "district", _("区")
    STREET = "street", _("街道")
    COMMUNITY = "community", _("社区")
    VILLAGE = "village", _("村")
    COMPOUND = "compound", _("小区")
    GROUP = "group", _("社")
    BUILDING = "building", _("楼栋")
    ENTRANCE = "entrance", _("单元")


# Which kinds may sit directly under which. A building may stand in a compound, directly in a
# community or village, or in a group of a village.
ALLOWED_PARENT_KINDS: dict[str, tuple[str, ...]] = {
    UnitKind.DISTRICT: (),
    UnitKind.STREET: (UnitKind.DISTRICT,),
    UnitKind.COMMUNITY: (UnitKind.STREET,),
    UnitKind.VILLAGE: (UnitKind.STREET,),
    UnitKind.COMPOUND: (UnitKind.COMMUNITY, UnitKind.VILLAGE),
    UnitKind.GROUP: (UnitKind.VILLAGE, UnitKind.COMMUNITY),
    UnitKind.BUILDING: (UnitKind.COMPOUND, UnitKind.COMMUNITY, UnitKind.VILLAGE, UnitKind.GROUP),
    UnitKind.ENTRANCE: (UnitKind.BUILDING,),
}

# Kinds a household may belong to.
HOUSEHOLD_UNIT_KINDS = (UnitKind.BUILDING, UnitKind.ENTRANCE, UnitKind.GROUP)

# The title (称号) each kind can be named with.
TITLE_BY_KIND: dict[str, str] = {
    UnitKind.BUILDING: "无疫楼栋",
    UnitKind.COMPOUND: "无疫小区",
    UnitKind.GROUP: "无疫社",
    UnitKind.VILLAGE: "无疫村",
    UnitKind.COMMUNITY: "无疫社区",
    UnitKind.STREET: "无疫街道",
}

# Accepted spellings of each kind in imports (English code or Chinese word).
KIND_ALIASES: dict[str, str] = {k.value: k.value for k in UnitKind} | {
    "区": UnitKind.DISTRICT,
    "街道": UnitKind.STREET,
    "镇": UnitKind.STREET,
    "乡": UnitKind.STREET,
    "社区": UnitKind.COMMUNITY,
    "村": UnitKind.VILLAGE,
    "小区": UnitKind.COMPOUND,
    "社": UnitKind.GROUP,
    "村民小组": UnitKind.GROUP,
    "楼栋": UnitKind.BUILDING,
    "单元": UnitKind.ENTRANCE,
}


# The kinds' names untranslated (the msgids of UnitKind's labels).
KIND_LABELS_ZH: dict[str, str] = {"district": "区", "street": "街道", "community": "社区", "village": "村",
                                  "compound": "小区", "group": "社", "building": "楼栋", "entrance": "单元"}

# The kind `street` holds three real divisions (SPEC §2: 街道/镇/乡), told apart by the name's last
# character, as the division list names them (万东镇, 文龙街道). Plain Chinese: callers that cache the
# label translate it where they show it.
STREET_LEVEL_BY_SUFFIX = (("镇", gettext_noop("镇")), ("乡", gettext_noop("乡")))


def level_label_zh(kind: str, name: str) -> str:
    """The level a unit is called by, in Chinese: a street named …镇 is a 镇 (town), …乡 a 乡, …街道
    a 街道; every other kind its kind's name."""
    if kind == UnitKind.STREET:
        for suffix, label in STREET_LEVEL_BY_SUFFIX:
            if name.endswith(suffix):
                return label
    return KIND_LABELS_ZH.get(kind, kind)


def level_label(kind: str, name: str) -> str:
    """``level_label_zh`` in the active language."""
    return gettext(level_label_zh(kind, name))


def path_for(parent_path: str, code: str) -> str:
    """Materialised path: ``/500110/500110002/500110002015/`` — a unit's subtree is a prefix match."""
    return f"{parent_path or '/'}{code}/"


def district_of(path: str) -> str:
    """The district of a unit path: its first segment (``/500110/500110002/`` -> ``500110``), the
    code of the root of the unit's tree. The distribution column of the tables Citus distributes
    (docs/scaling.md, "Running on Citus")."""
    return path.strip("/").split("/", 1)[0]


class DistrictCodeField(models.CharField):
    """``district_code`` of a row that names a unit: the district of that unit (``district_of``),
    filled from the row's unit on save and bulk_create when left empty (writers that insert raw rows
    pass it themselves). On a Citus deployment it is the distribution column, so it is part of the
    table's primary and unique keys there; elsewhere it is an ordinary indexed column."""

    # Read by the PostgreSQL backend (wuyiqu/lib/pgbackend): a table with this column has its district
    # in its database key, so a GROUP BY lists the columns rather than the model's key alone.
    district_key = True

    def __init__(self, *args, unit_field: str = "unit", **kwargs):
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("default", "")
        self.unit_field = unit_field
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.unit_field != "unit":
            kwargs["unit_field"] = self.unit_field
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if not value:
            value = self.district_from(model_instance)
            setattr(model_instance, self.attname, value)
        return value

    def district_from(self, model_instance) -> str:
        """The district of the first unit named by ``unit_field`` — a relation (``unit``) or plain unit
        id columns, comma-separated, the first one set wins (``unit_id,scope_unit_id``: a nucleic-acid
        result's household unit, else its submitter's scope); "" when none is set."""
        for name in self.unit_field.split(","):
            name = name.strip()
            unit = getattr(model_instance, name)
            if unit is None:
                continue
            if isinstance(unit, int):
                related = next((f.related_model for f in model_instance._meta.concrete_fields
                                if f.attname == name and f.is_relation), Unit)
                if related is not Unit:  # a row of another district-keyed table (a resident's household)
                    return related._base_manager.filter(pk=unit).values_list("district_code", flat=True).first() or ""
                path = Unit.objects.filter(pk=unit).values_list("path", flat=True).first()
                return district_of(path) if path else ""
            if not isinstance(unit, Unit):
                return unit.district_code
            return district_of(unit.path)
        return ""


class DistrictMoveError(Exception):
    """A row of a district-keyed table was saved with another district than the one it was read with.
    The district is the distribution column on Citus, which no UPDATE may change: a row changes
    district by being deleted and inserted again (``units.relocation``)."""


class DistrictKeyedModel(models.Model):
    """A table keyed by district (``district_code``, a ``DistrictCodeField``): Citus's distribution
    column on a Citus deployment (docs/scaling.md, "Running on Citus"), an ordinary column elsewhere.

    ``save()`` of an existing row never writes the district (Citus refuses an UPDATE that sets its
    distribution column, even to the same value) and names it in the WHERE clause, so that the
    UPDATE is routed to the row's one shard instead of every shard. A row saved with another district
    than it was read with raises ``DistrictMoveError`` rather than quietly staying where it was."""

    class Meta:
        abstract = True

    @classmethod
    def from_db(cls, db, field_names, values, **kwargs):
        obj = super().from_db(db, field_names, values, **kwargs)
        obj._stored_district = obj.__dict__.get("district_code")
        return obj

    def _do_update(self, base_qs, using, pk_val, values, update_fields, forced_update, returning_fields):
        stored = getattr(self, "_stored_district", None)
        current = self.__dict__.get("district_code")
        if stored is not None and current is not None and current != stored:
            raise DistrictMoveError(f"{self._meta.label} {pk_val}: district {stored!r} -> {current!r}")
        district = stored if stored is not None else current
        values = [v for v in values if v[0].attname != "district_code"]
        if district:
            base_qs = base_qs.filter(district_code=district)
        return super()._do_update(base_qs, using, pk_val, values, update_fields, forced_update, returning_fields)


class DistrictForeignKey(models.ForeignKey):
    """A foreign key between two district-keyed tables whose rows always lie in the same district (a
    resident and their household, a co-signature and its application). Every join the ORM makes
    through it, either way, also says ``a.district_code = b.district_code``: on Citus that makes it a
    join on the distribution column of two co-located tables, which is pushed down to each shard
    (joined on the id alone, Citus refuses it); elsewhere it is a second, always-true equality on an
    indexed key. In the database it is, on PostgreSQL, the composite foreign key
    ``(district_code, <field>_id) → (district_code, id)`` that the migrations make (``db_constraint``
    False in the model: the single-column key, which Citus refuses between distributed tables, is not
    made); SQLite keeps the single-column key of the table's first migration."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("db_constraint", False)
        super().__init__(*args, **kwargs)

    def get_extra_restriction(self, alias, related_alias):
        here = self.model._meta.get_field("district_code")
        there = self.related_model._meta.get_field("district_code")
        return here.get_lookup("exact")(here.get_col(related_alias), there.get_col(alias))


class DistrictOneToOneField(models.OneToOneField):
    """``DistrictForeignKey`` that is one-to-one (a special population entry and its resident): the same
    join on the district both ways. The unique key is ``(district_code, <field>_id)`` on PostgreSQL
    (the migration replaces the single-column one, which Citus refuses); SQLite keeps the latter."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("db_constraint", False)
        super().__init__(*args, **kwargs)

    get_extra_restriction = DistrictForeignKey.get_extra_restriction


class Unit(models.Model):
    code = models.CharField(_("编码"), max_length=40, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    kind = models.CharField(_("类型"), max_length=12, choices=UnitKind.choices, db_index=True)
    parent = models.ForeignKey(
        "self", verbose_name=_("上级"), null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = models.CharField(_("路径"), max_length=500)
    depth = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["path"]
        indexes = [
            # varchar_pattern_ops lets PostgreSQL use the index for `path LIKE '/…/%'` whatever the collation.
            models.Index(fields=["path"], name="unit_path_prefix", opclasses=["varchar_pattern_ops"]),
            models.Index(fields=["name"], name="unit_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        """The name without the committee suffix: 文龙社区居民委员会 -> 文龙社区."""
        for suffix in ("居民委员会", "村民委员会"):
            if self.name.endswith(suffix):
                return self.name[: -len(suffix)]
        return self.name

    @property
    def level_label(self) -> str:
        """The level the unit is called by: 镇 for a town, 街道 for a street, else its kind's name."""
        return level_label(self.kind, self.name)

    @property
    def title(self) -> str | None:
        return TITLE_BY_KIND.get(self.kind)

    @property
    def ancestor_codes(self) -> list[str]:
        """Codes from the root down to the parent."""
        return [c for c in self.path.strip("/").split("/")[:-1] if c]

    def full_name(self) -> str:
        """The unit's whole path from the district, spaced: 綦江区 文龙街道 文龙社区 江畔小区 1栋 (a name
        that repeats its parent's, as 江畔小区1栋 does, loses the repetition). One query."""
        codes = self.ancestor_codes
        by_code = {u.code: u for u in Unit.objects.filter(code__in=codes)} if codes else {}
        names = [by_code[c].display_name for c in codes if c in by_code]
        own = self.display_name
        if names and own.startswith(names[-1]) and len(own) > len(names[-1]):
            own = own[len(names[-1]):]
        return " ".join([*names, own])


class Household(DistrictKeyedModel):
    code = models.CharField(_("户编码"), max_length=60)
    unit = models.ForeignKey(Unit, verbose_name=_("所属楼栋/单元/社"), on_delete=models.PROTECT, related_name="households")
    # The district of the household's unit: the distribution column on Citus (units 0008).
    district_code = DistrictCodeField()
    address = models.CharField(_("地址"), max_length=200)
    # The day the household was registered: it counts from that day on (SPEC §7 "Time"); empty: on
    # every day, as for a register being back-filled.
    registered_on = models.DateField(_("登记日期"), null=True, blank=True)

    class Meta:
        ordering = ["code"]
        # A household's code is unique within its district (Citus wants the distribution column in
        # every unique key); the generated and imported codes begin with their unit's code anyway.
        constraints = [models.UniqueConstraint(fields=["district_code", "code"], name="household_code_unique")]

    def __str__(self) -> str:
        return self.address or self.code


class HouseholdVerification(DistrictKeyedModel):
    """住户清楚、人员准确: a household's registry checked on a date. Kept in its household's district
    (units 0009)."""

    household = DistrictForeignKey(Household, on_delete=models.CASCADE, related_name="verifications")
    district_code = DistrictCodeField(unit_field="household")
    verified_on = models.DateField(_("核实日期"))
    verifier = models.CharField(_("核实人"), max_length=50, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["district_code", "household", "verified_on"],
                                    name="verification_once_a_day"),
        ]

    def __str__(self) -> str:
        return f"{self.verified_on:%Y-%m-%d} {self.verifier}".strip()


class Sex(models.TextChoices):
    MALE = "M", _("男")
    FEMALE = "F", _("女")


class ResidentQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        """Insert the residents and their entries in the city-wide directory (``ResidentDirectory``),
        in one transaction: a number registered in any district already refuses the whole batch."""
        from . import directory

        with transaction.atomic(using=self.db, savepoint=False):
            created = super().bulk_create(objs, *args, **kwargs)
            directory.register([(r.id_hash, r.district_code) for r in created])
        for r in created:
            r._stored_id_hash = r.id_hash
        return created

    def delete(self):
        """Delete the residents and take their numbers out of the directory, in one transaction."""
        from . import directory

        with transaction.atomic(using=self.db, savepoint=False):
            hashes = list(self.values_list("id_hash", flat=True))
            out = super().delete()
            directory.forget(hashes)
        return out


class Resident(DistrictKeyedModel):
    """A person on the register. ID number and phone are stored encrypted and found by keyed hash.

    Kept in the district of their household (``district_code``, units 0009: the distribution column
    on Citus). A move to a household of another district deletes the row there and inserts it, with
    the same id, in the new district, with the rows kept with the person (``units.relocation``).

    Nothing in clear rebuilds either (docs/reliability.md, "A copied database"): the masks keep 3 + 1
    and 3 + 2 characters, and of the birth date only the third birthday of a young child is kept,
    for the nucleic-acid exemption."""

    household = DistrictForeignKey(Household, verbose_name=_("户"), on_delete=models.PROTECT, related_name="residents")
    district_code = DistrictCodeField(unit_field="household")
    name = models.CharField(_("姓名"), max_length=50)
    id_enc = models.BinaryField()
    # Looked up by equality only, through the plain index below (no ``_like`` twin: 2.7 GB at 30 M
    # residents, docs/scaling.md). Unique within a district (Citus wants the distribution column in
    # every unique key): the writers look a number up city-wide before registering it (units 0009).
    id_hash = models.CharField(max_length=64)
    id_masked = models.CharField(_("身份证号"), max_length=18)
    # The day the resident turns 3 (under 3: exempt from testing), only while it can change a verdict
    # (idcard.kept_third_birthday); empty for everyone else, who is not exempt for age.
    turns_three_on = models.DateField(_("满3周岁日期"), null=True, blank=True)
    sex = models.CharField(_("性别"), max_length=1, choices=Sex.choices)
    phone_enc = models.BinaryField(null=True)
    # Not indexed: nothing looks a resident up by phone (an index and its ``_like`` twin were 3.8 GB at
    # 30 M residents, kept up on every insert). Index it with the first lookup that needs it.
    phone_hash = models.CharField(max_length=64, blank=True)
    phone_masked = models.CharField(_("电话"), max_length=20, blank=True)
    bedridden = models.BooleanField(_("卧床（免检）"), default=False)
    # The day the person arrived in ``household`` (SPEC §7 "Time", the residents column moved_on);
    # empty: they count there on every earlier day too. The households they lived in before are
    # ``PastResidence`` rows. Kept on the row itself: the evaluator reads every resident, and only
    # the few who moved need the history table.
    moved_on = models.DateField(_("迁入日期"), null=True, blank=True)

    objects = ResidentQuerySet.as_manager()

    class Meta:
        ordering = ["household_id", "id"]
        constraints = [models.UniqueConstraint(fields=["district_code", "id_hash"], name="resident_id_hash_unique")]
        indexes = [models.Index(fields=["id_hash"], name="resident_id_hash")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        """A new resident is entered in the city-wide directory in the same transaction; a number
        changed on a stored resident (``set_id_number``) changes their entry."""
        from . import directory

        adding = self._state.adding
        before = getattr(self, "_stored_id_hash", None)
        with transaction.atomic(using=kwargs.get("using"), savepoint=False):
            super().save(*args, **kwargs)
            if adding:
                directory.register([(self.id_hash, self.district_code)])
            elif before is not None and self.__dict__.get("id_hash") not in (None, before):
                directory.forget([before])
                directory.register([(self.id_hash, self.district_code)])
        self._stored_id_hash = self.__dict__.get("id_hash")

    def delete(self, *args, **kwargs):
        """A resident taken off the register (``units.actions.do_remove_resident``) leaves the directory
        in the same transaction: the number may be registered again, in any district."""
        from . import directory

        with transaction.atomic(using=kwargs.get("using"), savepoint=False):
            out = super().delete(*args, **kwargs)
            directory.forget([self.id_hash])
        return out

    @classmethod
    def from_db(cls, db, field_names, values, **kwargs):
        obj = super().from_db(db, field_names, values, **kwargs)
        obj._stored_id_hash = obj.__dict__.get("id_hash")
        return obj

    def set_id_number(self, number: str) -> None:
        c = crypto.cipher()
        self.id_enc = c.encrypt(number)
        self.id_hash = c.lookup_hash(number)
        self.id_masked = mask_id_number(number)
        self.turns_three_on = kept_third_birthday(parse_id_number(number).birth_date, dates.today())

    def set_phone(self, phone: str) -> None:
        c = crypto.cipher()
        if phone:
            self.phone_enc = c.encrypt(phone)
            self.phone_hash = c.lookup_hash(phone)
        else:
            self.phone_enc = None
            self.phone_hash = ""
        self.phone_masked = mask_phone(phone)

    def reveal_id_number(self) -> str:
        """Plain ID number. Call only through units.selectors.reveal_resident, which audits."""
        return crypto.cipher().decrypt(self.id_enc)

    def reveal_phone(self) -> str:
        return crypto.cipher().decrypt(self.phone_enc) if self.phone_enc else ""

    def born_on(self) -> dt.date:
        """The birth date, read from the encrypted number (the register keeps no birth date in clear).
        For checks and pages that already hold this resident in scope; the number is not shown."""
        n = self.reveal_id_number()
        return dt.date(int(n[6:10]), int(n[10:12]), int(n[12:14]))

    def age_on(self, day) -> int:
        """Whole years of age on ``day`` (``born_on``)."""
        return age_on(self.born_on(), day)


class ResidentDirectory(models.Model):
    """The city-wide directory of the register: which district keeps the resident with this ID number
    (``units.directory``). Its key makes an ID number unique across the districts — the residents'
    own unique key is ``(district_code, id_hash)``, Citus wanting the district in every unique key of
    a table distributed by it — and it is how a number is found without asking every district: on
    Citus it is distributed by ``id_hash`` in a co-location group of its own, so a number's entry is
    on one shard, and the person is then read from their district's shard.

    Written with the resident by every writer of the register (``Resident.save``,
    ``Resident.objects.bulk_create``, the residents import's COPY), moved with the person
    (``units.relocation``). Holds no personal data beyond the keyed hash the residents hold."""

    id_hash = models.CharField(max_length=64, primary_key=True)
    district_code = models.CharField(max_length=40)

    class Meta:
        db_table = "units_residentdirectory"

    def __str__(self) -> str:
        return f"{self.district_code}:{self.id_hash[:8]}…"


class PastResidence(DistrictKeyedModel):
    """A household a resident lived in before the current one (``Resident.household``), from
    ``from_on`` (empty: every earlier day) to ``until_on``, both inclusive. Written only by a move
    (``units.actions.move_residents``): the row closes the spell the move ends.

    Kept in the district of the household the spell was spent in (units 0009): the person may live in
    another district since, so the relation to the resident has no database key (a plain id on Citus,
    where the two rows may lie on two nodes)."""

    # No index of its own: the (resident, until_on) one below leads with it.
    resident = models.ForeignKey(Resident, on_delete=models.CASCADE, related_name="past_residences", db_index=False,
                                 db_constraint=False)
    household = DistrictForeignKey(Household, on_delete=models.PROTECT, related_name="past_residents")
    district_code = DistrictCodeField(unit_field="household")
    from_on = models.DateField(_("迁入日期"), null=True, blank=True)
    until_on = models.DateField(_("迁出前最后一天"))

    class Meta:
        ordering = ["resident_id", "until_on"]
        constraints = [
            models.CheckConstraint(condition=models.Q(from_on__isnull=True) | models.Q(until_on__gte=models.F("from_on")),
                                   name="past_residence_ends_after_start"),
        ]
        indexes = [
            # The evaluator's "who lived elsewhere on D": the spells ending on or after D, i.e. of the
            # moves made since D — none for today, the day evaluated most (units.residence).
            models.Index(fields=["until_on"], name="past_residence_until"),
            # "Where did this person live on D" (a measure's or a case's unit, one person's history).
            models.Index(fields=["resident", "until_on"], name="past_residence_resident"),
        ]

    def __str__(self) -> str:
        return f"{self.from_on or '…'}–{self.until_on}"


class SpecialTag(models.TextChoices):
    ELDERLY_ALONE = "elderly_alone", _("独居老人")
    PREGNANT = "pregnant", _("孕产妇")
    DISABLED = "disabled", _("残疾人")
    INFANT = "infant", _("婴幼儿")
    DIALYSIS = "dialysis", _("血透病人")
    CANCER = "cancer", _("肿瘤患者")
    CHRONIC = "chronic", _("慢性病患者")


SPECIAL_TAG_ALIASES: dict[str, str] = {t.value: t.value for t in SpecialTag} | {
    str(t.label): t.value for t in SpecialTag
}


class SpecialPopulationEntry(DistrictKeyedModel):
    """特殊人群台账: one line per tagged resident with needs, helper and the last review. Kept with the
    resident, in their district (units 0009): it moves with them."""

    resident = DistrictOneToOneField(Resident, on_delete=models.CASCADE, related_name="special_entry")
    district_code = DistrictCodeField(unit_field="resident")
    tags = models.CharField(_("类别"), max_length=200)  # comma-joined SpecialTag values
    needs = models.TextField(_("需求"), blank=True)
    helper = models.CharField(_("帮扶人"), max_length=50, blank=True)
    reviewed_on = models.DateField(_("复核日期"), null=True, blank=True)
    # The day the entry was registered: it counts from that day on; empty: on every day (SPEC §7).
    registered_on = models.DateField(_("登记日期"), null=True, blank=True)

    def __str__(self) -> str:
        return self.tags

    @property
    def tag_list(self) -> list[str]:
        return [t for t in self.tags.split(",") if t]

    @property
    def tag_labels(self) -> list[str]:
        return [str(SpecialTag(t).label) for t in self.tag_list if t in SpecialTag.values]


class TransferStatus(models.TextChoices):
    PENDING = "pending", _("待确认")
    APPROVED = "approved", _("已迁入")
    REFUSED = "refused", _("未同意")


class TransferRequest(models.Model):
    """A person registered outside the importer's scope, named by a residents import for one of its
    households: not moved (the import must not tell a scoped user where anyone lives), but waiting for
    a user whose scope covers both households to approve the move or refuse it (``units.transfers``).

    Its two households may lie in two districts: the table stays on the coordinator under Citus, and
    its relations to the (distributed) resident and households have no database key (Citus refuses a
    local table's foreign key to a distributed one; units 0009)."""

    resident = models.ForeignKey(Resident, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    from_household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="+", db_constraint=False)
    to_household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="+", db_constraint=False)
    moved_on = models.DateField(null=True, blank=True)  # as the import gave it (empty: the day of approval)
    requested_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=TransferStatus.choices, default=TransferStatus.PENDING)
    decided_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resident"], condition=models.Q(status="pending"),
                                    name="one_open_transfer_per_resident"),
        ]
        indexes = [models.Index(fields=["status", "requested_at"], name="transfer_queue")]

    def __str__(self) -> str:
        return f"{self.resident_id}: {self.from_household_id} → {self.to_household_id} ({self.status})"


class CrossScopeHits(models.Model):
    """How many times a user named, on one day, a person registered outside their scope (residents
    import rows that became transfer requests): capped per day (``units.transfers``)."""

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    hits = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="cross_scope_hits_once_a_day")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.day}: {self.hits}"
