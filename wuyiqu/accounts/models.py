from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from wuyiqu.lib import crypto
from wuyiqu.lib.idcard import mask_phone


class Role(models.TextChoices):
    BUILDING_HEAD = "building_head", _("楼栋长")
    GROUP_LEADER = "group_leader", _("社长")
    PROPERTY_MANAGER = "property_manager", _("物业")
    COMMUNITY_STAFF = "community_staff", _("村/社区工作人员")
    STREET_STAFF = "street_staff", _("街道工作人员")
    HEALTH_COMMISSION = "health_commission", _("区卫生健康委")
    COMMAND = "command", _("区疫情防控指挥部")
    ADMIN = "admin", _("系统管理员")


class User(AbstractUser):
    """An account, scoped to one unit: it sees and changes that unit and the units below it."""

    role = models.CharField(_("角色"), max_length=32, choices=Role.choices)
    unit = models.ForeignKey(
        "units.Unit", verbose_name=_("所属单位"), on_delete=models.PROTECT, null=True, blank=True,
        related_name="users",
    )
    display_name = models.CharField(_("姓名"), max_length=50, blank=True)
    # Encrypted like a resident's phone; only the masked form is shown.
    phone_enc = models.BinaryField(null=True, blank=True)
    phone_masked = models.CharField(_("电话"), max_length=20, blank=True)
    # Set when someone else chose the password (a new account, a reset): every page then leads to the
    # password change until the person picks their own (wuyiqu.accounts.middleware).
    must_change_password = models.BooleanField(_("下次登录须修改密码"), default=False)

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def who_parts(self) -> list[str]:
        """What the page header says of the signed-in person: name, role, unit — the role left out when
        the name already says it (an account named 系统管理员 is not "系统管理员 · 系统管理员")."""
        name, role = str(self), str(self.get_role_display())
        parts = [name] if role in ("", name) else [name, role]
        if self.unit_id:
            parts.append(self.unit.display_name)
        return parts

    def set_phone(self, phone: str) -> None:
        self.phone_enc = crypto.cipher().encrypt(phone) if phone else None
        self.phone_masked = mask_phone(phone)


class LoginFailure(models.Model):
    """One failed sign-in: the name typed (lower-cased, whether or not such an account exists) and the
    client address. Recent rows decide the lock (``wuyiqu.accounts.selectors.login_refusal``); rows
    older than a day are deleted as new failures come in."""

    username = models.CharField(max_length=150, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.username} {self.ip}"


class PasswordSheet(models.Model):
    """The one-time passwords of accounts created by an import of the ``users`` kind, for the person who
    ran it to take once (a download on the web, `wuyiqu user passwords --job N` in the shell): kept
    encrypted, deleted when taken. One row per written batch of the import."""

    job = models.ForeignKey("imports.ImportJob", on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(User, null=True, on_delete=models.CASCADE, related_name="+")  # None: the console
    content_enc = models.BinaryField()  # JSON [[username, name, unit code, password], …], encrypted
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"passwords of import {self.job_id}"
