"""`wuyiqu unlock-login`: lift a sign-in lock before it runs out (an administrator's command, audited).

    wuyiqu unlock-login --username alice
    wuyiqu unlock-login --ip 10.0.0.7
    wuyiqu unlock-login --list
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from wuyiqu.accounts.actions import do_unlock_login
from wuyiqu.accounts.selectors import locked_usernames


class Command(BaseCommand):
    help = "Unlock a user name or a client address locked after repeated failed sign-ins, or list the locks."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="", help="the user name to unlock")
        parser.add_argument("--ip", default="", help="the client address to unlock")
        parser.add_argument("--list", dest="show_list", action="store_true", help="list the user names locked now")

    def handle(self, *args, username: str, ip: str, show_list: bool, **options):
        if show_list:
            locked = locked_usernames()
            for name, until in locked:
                self.stdout.write(f"{name}\t锁定至 {timezone.localtime(until):%Y-%m-%d %H:%M}")
            if not locked:
                self.stdout.write("当前没有被锁定的账号")
            return
        try:
            cleared = do_unlock_login(actor=None, username=username, ip=ip)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        what = "、".join(x for x in (username and f"账号“{username}”", ip and f"地址 {ip}") if x)
        self.stdout.write(f"已解锁{what}（清除 {cleared} 次失败记录）")
