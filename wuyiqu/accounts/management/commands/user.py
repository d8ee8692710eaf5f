"""`wuyiqu user create|list|deactivate|reactivate|reset-password`: accounts from the shell (whoever
administers the machine; every change audited like the same change on the web).

    wuyiqu user create --username admin --name 系统管理员 --role admin          # the first administrator
    wuyiqu user create --username wl01 --name 张三 --role community_staff --unit 500110002015 --phone 13800000000
    wuyiqu user list [--unit 500110002] [--role street_staff] [--inactive]
    wuyiqu user deactivate wl01 [--reason 调离]
    wuyiqu user reactivate wl01
    wuyiqu user reset-password wl01
    wuyiqu user passwords --job 17     # the one-time passwords of `wuyiqu import users FILE` (task 17), once

A new account and a reset get a one-time password, printed once: the person must change it at the
next sign-in. A role belongs to a unit of its kind (a building head to a building, community staff to a
village or community, …); only an administrator may have no unit (then it sees everything).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from wuyiqu.accounts import actions
from wuyiqu.accounts.models import Role, User
from wuyiqu.accounts.permissions import AccountRefused
from wuyiqu.units.models import Unit


def _account(username: str) -> User:
    account = User.objects.select_related("unit").filter(username=username).first()
    if account is None:
        raise CommandError(f"账号“{username}”不存在")
    return account


class Command(BaseCommand):
    help = "Create, list, deactivate, reactivate accounts or reset a password (a one-time password, printed once)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create an account with a one-time password")
        create.add_argument("--username", required=True)
        create.add_argument("--name", required=True, help="the person's name (姓名)")
        create.add_argument("--role", required=True, choices=Role.values)
        create.add_argument("--unit", default="", help="code of the account's unit (empty: an administrator of everything)")
        create.add_argument("--phone", default="")
        listing = sub.add_parser("list", help="list accounts")
        listing.add_argument("--unit", default="", help="only accounts at this unit or below")
        listing.add_argument("--role", default="", choices=["", *Role.values])
        listing.add_argument("--inactive", action="store_true", help="only deactivated accounts")
        deactivate = sub.add_parser("deactivate", help="stop an account from signing in (kept for the audit)")
        deactivate.add_argument("username")
        deactivate.add_argument("--reason", default="")
        reactivate = sub.add_parser("reactivate", help="let a deactivated account sign in again")
        reactivate.add_argument("username")
        reset = sub.add_parser("reset-password", help="give an account a new one-time password")
        reset.add_argument("username")
        sheet = sub.add_parser("passwords", help="print, once, the one-time passwords of a console import of users")
        sheet.add_argument("--job", type=int, required=True, help="the import's task number (printed by wuyiqu import)")

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, "_" + action.replace("-", "_"))(**options)
        except AccountRefused as exc:
            raise CommandError(str(exc)) from None

    def _create(self, *, username: str, name: str, role: str, unit: str, phone: str, **_):
        found = None
        if unit:
            found = Unit.objects.filter(code=unit).first()
            if found is None:
                raise CommandError(f"单位编码“{unit}”不存在")
        account, password = actions.do_create_account(actor=None, username=username, display_name=name, role=role,
                                                      unit=found, phone=phone)
        where = f"{found.code} {found.name}" if found else "不限单位"
        self.stdout.write(f"账号“{account.username}”已创建：{account.get_role_display()}，{where}")
        self._password(password)

    def _list(self, *, unit: str, role: str, inactive: bool, **_):
        qs = User.objects.select_related("unit").order_by("unit__path", "role", "username")
        if unit:
            found = Unit.objects.filter(code=unit).first()
            if found is None:
                raise CommandError(f"单位编码“{unit}”不存在")
            qs = qs.filter(unit__path__startswith=found.path)
        if role:
            qs = qs.filter(role=role)
        if inactive:
            qs = qs.filter(is_active=False)
        for a in qs:
            state = "已停用" if not a.is_active else "待改密码" if a.must_change_password else "在用"
            last = f"{timezone.localtime(a.last_login):%Y-%m-%d %H:%M}" if a.last_login else "-"
            unit_text = f"{a.unit.code}\t{a.unit.name}" if a.unit else "-\t不限单位"
            self.stdout.write(f"{a.username}\t{a.display_name}\t{a.role}\t{unit_text}\t{state}\t{last}")
        if not qs.exists():
            self.stdout.write("没有符合条件的账号")

    def _deactivate(self, *, username: str, reason: str, **_):
        account = actions.do_deactivate_account(actor=None, account=_account(username), reason=reason)
        self.stdout.write(f"账号“{account.username}”已停用（记录保留，可用 wuyiqu user reactivate 重新启用）")

    def _reactivate(self, *, username: str, **_):
        account = actions.do_reactivate_account(actor=None, account=_account(username))
        self.stdout.write(f"账号“{account.username}”已重新启用")

    def _reset_password(self, *, username: str, **_):
        account = _account(username)
        password = actions.do_reset_password(actor=None, account=account)
        self.stdout.write(f"账号“{account.username}”的密码已重置")
        self._password(password)

    def _passwords(self, *, job: int, **_):
        from wuyiqu.imports.models import ImportJob

        found = ImportJob.objects.filter(pk=job, kind="users").first()
        if found is None:
            raise CommandError(f"没有编号为 {job} 的账号导入任务")
        rows = actions.do_take_password_sheet(actor=None, job=found)
        if not rows:
            raise CommandError("这次导入的一次性密码已经取过，或没有新建账号")
        self.stdout.write("用户名\t姓名\t单位编码\t一次性密码（只显示这一次；本人首次登录后必须修改）")
        for row in rows:
            self.stdout.write("\t".join(row))

    def _password(self, password: str) -> None:
        self.stdout.write("一次性密码（只显示这一次；本人首次登录后必须修改）：")
        self.stdout.write(password)
