"""`wuyiqu api-token create|revoke|list`: API tokens for client systems (an administrator's command).

    wuyiqu api-token create --name lab --unit 500110002 --kinds nat-results --days 90
    wuyiqu api-token create --name dash --unit 500110002 --scopes units:read,evaluations:read
    wuyiqu api-token create --name oa --unit 500110002 --scopes applications:read,applications:act --acts-as carol
    wuyiqu api-token revoke --name lab
    wuyiqu api-token list

The secret is printed once, at creation; only its SHA-256 is stored.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from wuyiqu.api.actions import do_create_api_token, do_revoke_api_token
from wuyiqu.api.models import FACT_KINDS, SCOPES, ApiToken
from wuyiqu.units.models import Unit


class Command(BaseCommand):
    help = "Create, revoke or list API tokens."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token and print its secret once")
        create.add_argument("--name", required=True)
        create.add_argument("--unit", required=True, help="code of the unit the token may write facts about")
        create.add_argument("--kinds", default="", help="fact kinds it may write, comma-separated: " + ",".join(FACT_KINDS))
        create.add_argument("--scopes", default="", help="what else it may do, comma-separated: " + ",".join(SCOPES))
        create.add_argument("--acts-as", dest="acts_as", help="applications:act: username of the reviewer it acts for")
        create.add_argument("--days", type=int, default=90, help="lifetime in days (default 90)")
        revoke = sub.add_parser("revoke", help="revoke a token at once")
        revoke.add_argument("--name", required=True)
        sub.add_parser("list", help="list tokens (never their secrets)")

    def handle(self, *args, action: str, **options):
        if action == "create":
            unit = Unit.objects.filter(code=options["unit"]).first()
            if unit is None:
                raise CommandError(f"单位编码“{options['unit']}”不存在")
            kinds = [k.strip() for k in options["kinds"].split(",") if k.strip()]
            scopes = [k.strip() for k in options["scopes"].split(",") if k.strip()]
            acts_as = None
            if options.get("acts_as"):
                from wuyiqu.accounts.models import User

                acts_as = User.objects.filter(username=options["acts_as"]).select_related("unit").first()
                if acts_as is None:
                    raise CommandError(f"账号“{options['acts_as']}”不存在")
            try:
                token, secret = do_create_api_token(actor=None, name=options["name"], unit=unit, kinds=kinds,
                                                    scopes=scopes, acts_as=acts_as, days=options["days"])
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"令牌“{token.name}”已创建：单位 {unit.code} {unit.name}，类型 {','.join(token.kinds) or '无'}，"
                              f"权限 {','.join(token.scopes) or '无'}" + (f"，经办人 {acts_as.username}" if acts_as else "") + "，"
                              f"有效期至 {timezone.localtime(token.expires_at):%Y-%m-%d %H:%M}")
            self.stdout.write("密钥（只显示这一次，请妥善保存）：")
            self.stdout.write(secret)
        elif action == "revoke":
            token = ApiToken.objects.filter(name=options["name"]).first()
            if token is None:
                raise CommandError(f"令牌“{options['name']}”不存在")
            do_revoke_api_token(actor=None, token=token)
            self.stdout.write(f"令牌“{token.name}”已吊销")
        else:
            for t in ApiToken.objects.select_related("unit"):
                state = "已吊销" if t.revoked_at else ("有效" if t.is_active() else "已过期")
                self.stdout.write(f"{t.name}\t{t.prefix}…\t{t.unit.code}\t{','.join(t.kinds)}\t{','.join(t.scopes)}\t"
                                  f"{timezone.localtime(t.expires_at):%Y-%m-%d}\t{state}")
