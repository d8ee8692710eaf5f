"""The `users` import: many accounts at once from the Excel template (username, name, phone, role, unit
code), with the same all-or-nothing row report as every other kind. Each row is checked like an account
made on the web (wuyiqu.accounts.permissions: a role the importer may give, a unit in their scope of the
kind the role belongs to, a free user name). Each new account gets a one-time password, which must be
changed at the first sign-in; the passwords go to a PasswordSheet that the importer takes once."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models.functions import Lower
from django.utils.translation import gettext as _

from wuyiqu.imports import fields
from wuyiqu.imports.registry import Column, ImportKind, RowError, ScopeError, WriteCounts, register_kind
from wuyiqu.lib import crypto
from wuyiqu.units.models import Unit

from .actions import one_time_password
from .models import PasswordSheet, Role, User
from .permissions import AccountRefused, check_assignment

# The words accepted in the 角色 column: the codes, the labels and the names people use.
ROLE_WORDS: dict[str, str] = {
    **{r: r for r in Role.values},
    **{str(label): value for value, label in (
        (Role.BUILDING_HEAD, "楼栋长"), (Role.GROUP_LEADER, "社长"), (Role.PROPERTY_MANAGER, "物业"),
        (Role.COMMUNITY_STAFF, "村/社区工作人员"), (Role.COMMUNITY_STAFF, "社区工作人员"),
        (Role.COMMUNITY_STAFF, "村工作人员"), (Role.COMMUNITY_STAFF, "网格员"),
        (Role.STREET_STAFF, "街道工作人员"), (Role.HEALTH_COMMISSION, "区卫生健康委"), (Role.HEALTH_COMMISSION, "卫健委"),
        (Role.COMMAND, "区疫情防控指挥部"), (Role.COMMAND, "指挥部"), (Role.ADMIN, "系统管理员"))},
}


@dataclass(slots=True, frozen=True)
class UserRow:
    username: str
    name: str
    phone: str
    role: str
    unit_code: str


@register_kind
class UsersKind(ImportKind):
    name = "users"
    label = "账号"
    description = ("每行一个账号：用户名、姓名、电话（选填）、角色、所属单位编码。只能创建您可管理的角色，单位须在您的"
                   "管辖范围内且与角色相符（楼栋长→楼栋，社长→社，物业→小区，村/社区工作人员→村或社区）。"
                   "每个新账号得到一次性密码，导入后在“账号管理”中下载（只能下载一次），本人首次登录须修改。")
    batch_size = 500
    columns = (
        Column("username", "用户名", aliases=("账号",), help="字母、数字和 @ . + - _"),
        Column("name", "姓名", aliases=("display_name",)),
        Column("phone", "电话", aliases=("手机", "手机号"), required=False, help="选填：11位手机号或固定电话"),
        Column("role", "角色", help="楼栋长、社长、物业、村/社区工作人员、街道工作人员…（或英文代码）"),
        Column("unit_code", "单位编码", aliases=("所属单位编码",), help="账号所属单位的编码"),
    )

    def parse_row(self, raw, ctx):
        username = fields.required_text(raw, "username", _("用户名"), max_length=150)
        try:
            User.username_validator(username)
        except ValidationError:
            raise RowError("username", _("用户名“%(u)s”只能包含字母、数字和 @ . + - _") % {"u": username}) from None
        return UserRow(username, fields.required_text(raw, "name", _("姓名"), max_length=50),
                       fields.phone_value(raw, "phone"), fields.choice_value(raw, "role", _("角色"), ROLE_WORDS),
                       fields.required_text(raw, "unit_code", _("单位编码"), max_length=40))

    def row_key(self, parsed):
        return parsed.username.lower()  # the sign-in lock counts names case-blind: so do duplicates

    def check(self, batch, ctx):
        units = {u.code: u for u in Unit.objects.filter(code__in={p.unit_code for _l, p in batch})}
        taken = {u.username.lower(): u for u in User.objects.annotate(lower=Lower("username")).filter(
            lower__in=[p.username.lower() for _l, p in batch])}
        problems = {}
        for line, p in batch:
            unit = units.get(p.unit_code)
            existing = taken.get(p.username.lower())
            if unit is None:
                problems[line] = RowError("unit_code", _("单位编码“%(c)s”不存在") % {"c": p.unit_code})
            elif not ctx.in_scope(unit.path):
                problems[line] = ctx.scope_error("unit_code", _("单位“%(c)s”") % {"c": p.unit_code})
            elif existing is not None and not self._same(existing, p, unit):
                problems[line] = RowError("username", _("用户名“%(u)s”已被使用") % {"u": p.username})
            else:
                try:
                    check_assignment(ctx.actor, role=p.role, unit=unit)
                except AccountRefused as exc:
                    field = "unit_code" if exc.field == "unit" else exc.field or "role"
                    kind = ScopeError if "管辖" in str(exc) else RowError
                    problems[line] = kind(field, str(exc))
        return problems

    @staticmethod
    def _same(account: User, p: UserRow, unit) -> bool:
        # The same file imported again: the account it made is left as it is (no new password).
        return account.username == p.username and account.role == p.role and account.unit_id == unit.pk

    def write(self, batch, ctx):
        units = {u.code: u for u in Unit.objects.filter(code__in={p.unit_code for p in batch})}
        existing = set(User.objects.filter(username__in=[p.username for p in batch]).values_list("username", flat=True))
        new, issued = [], []
        for p in batch:
            if p.username in existing:
                continue
            password = one_time_password()
            account = User(username=p.username, display_name=p.name, role=p.role, unit=units[p.unit_code],
                           is_staff=p.role == Role.ADMIN, must_change_password=True)
            account.set_phone(p.phone)
            account.set_password(password)
            new.append(account)
            issued.append([p.username, p.name, p.unit_code, password])
        User.objects.bulk_create(new)
        if issued:
            PasswordSheet.objects.create(job=ctx.job, owner=ctx.actor if getattr(ctx.actor, "pk", None) else None,
                                         content_enc=crypto.cipher().encrypt(json.dumps(issued, ensure_ascii=False)))
            ctx.state.setdefault("usernames", []).extend(row[0] for row in issued)
        return WriteCounts(created=len(new), unchanged=len(batch) - len(new))

    def audit_detail(self, ctx):
        return {"usernames": ctx.state.get("usernames", [])}
