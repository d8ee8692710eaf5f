"""The sign-in form (Django's, with the lock of ``wuyiqu.accounts.selectors`` in front of it), the
account form of 账号管理 and the own-password form."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.utils.translation import gettext_lazy as _

from .actions import do_record_login_failure
from .models import Role
from .permissions import AccountRefused, assignable_roles
from .selectors import LoginRefusal, login_refusal


def client_ip(request) -> str | None:
    return (request.META.get("REMOTE_ADDR") or None) if request is not None else None


class LoginForm(AuthenticationForm):
    """Refuses, without checking the password, while the name or the address is locked; counts every
    wrong password (and a name that does not exist, the same way). ``refusal`` is set when refused."""

    refusal: LoginRefusal | None = None

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        ip = client_ip(self.request)
        self.refusal = login_refusal(username=username, ip=ip)
        if self.refusal is not None:
            raise forms.ValidationError(self.refusal.message(), code="locked")
        try:
            return super().clean()
        except forms.ValidationError:
            if username is None or not password:
                raise  # a field left empty: not an attempt
            self.refusal = do_record_login_failure(username=username, ip=ip)
            if self.refusal is not None:
                raise forms.ValidationError(self.refusal.message(), code="locked") from None
            raise


class AccountForm(forms.Form):
    """An account as a manager creates or edits it; the roles offered are those the manager may give.
    The checks that need the database (scope, unit kind, a free user name) are the actions'."""

    username = forms.CharField(label=_("用户名"), max_length=150,
                               help_text=_("登录用，字母、数字和 @ . + - _；创建后不能修改"))
    display_name = forms.CharField(label=_("姓名"), max_length=50)
    phone = forms.CharField(label=_("电话"), max_length=20, required=False,
                            help_text=_("选填；加密保存，只显示部分号码"))
    role = forms.ChoiceField(label=_("角色"), choices=())
    unit = forms.CharField(label=_("所属单位编码"), max_length=32, required=False,
                           help_text=_("单位页面上显示的编码；系统管理员可留空（不限单位）"))

    def __init__(self, *args, manager, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(r, Role(r).label) for r in assignable_roles(manager)]
        if editing:
            del self.fields["username"]
            self.fields["phone"].help_text = _("留空表示不修改；填“-”表示删除")

    def add_refusal(self, refusal: AccountRefused) -> None:
        self.add_error(refusal.field if refusal.field in self.fields else None, str(refusal))


class OwnPasswordForm(PasswordChangeForm):
    """Django's own password change (old password, the new one twice, the validators' help shown)."""
