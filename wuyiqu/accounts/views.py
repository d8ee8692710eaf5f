"""The sign-in page (Django's LoginView with the lock: 429 and Retry-After while refused, audit rows),
the own-password page, and 账号管理: the accounts a manager looks after (wuyiqu.accounts.permissions).
Thin: every change is an action of wuyiqu.accounts.actions; every account is reached through
``access_account_by_id`` (404 for missing and forbidden alike)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from wuyiqu.units.models import Unit
from wuyiqu.units.selectors import visible_units

from . import actions
from .forms import AccountForm, LoginForm, OwnPasswordForm, client_ip
from .models import Role
from .permissions import AccountRefused, assignable_roles, may_manage_accounts
from .selectors import access_account_by_id, login_refusal, manageable_accounts, pending_password_sheets

ACCOUNTS_PER_PAGE = 50


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "web/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        actions.do_record_login(user=form.get_user(), ip=client_ip(self.request))
        return response

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.refusal is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.refusal.retry_after())
        return response


@login_required
@require_http_methods(["GET", "POST"])
def own_password(request):
    """Everyone changes their own password here; after a reset or a new account it is the only page."""
    form = OwnPasswordForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_change_own_password(user=request.user, password=form.cleaned_data["new_password1"])
        except ValueError as exc:
            form.add_error("new_password1", str(exc))
        else:
            update_session_auth_hash(request, request.user)  # stay signed in with the new password
            messages.success(request, _("密码已修改"))
            target = request.GET.get("next", "")
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                   require_https=request.is_secure()):
                target = "web:home"
            return redirect(target)
    return render(request, "accounts/password.html", {"form": form, "forced": request.user.must_change_password},
                  status=400 if form.errors else 200)


def _manager(request):
    if not may_manage_accounts(request.user):
        raise Http404("accounts")  # as for a missing page: the role has no 账号管理
    return request.user


def _unit_from_code(manager, code: str):
    """The unit typed into the form, looked up in the manager's scope; None when left empty."""
    code = (code or "").strip()
    if not code:
        return None
    unit = visible_units(manager).filter(code=code).first()
    if unit is None:
        exists = Unit.objects.filter(code=code).exists()
        raise AccountRefused(_("单位“%(code)s”不在您的管辖范围内") % {"code": code} if exists
                             else _("没有编码为“%(code)s”的单位") % {"code": code}, "unit")
    return unit


def _phone_change(typed: str) -> str | None:
    """The edit form's phone: empty leaves it as it is (only its masked form is shown), "-" removes it."""
    typed = typed.strip()
    return None if not typed else "" if typed == "-" else typed


def _one_time(request, account, password: str, created: bool):
    response = render(request, "accounts/one_time_password.html",
                      {"account": account, "password": password, "created": created})
    response["Cache-Control"] = "no-store"  # the password is shown once; no cache may keep it
    return response


@login_required
@require_http_methods(["GET"])
def account_list(request):
    manager = _manager(request)
    query = request.GET.get("q", "").strip()[:100]
    role = request.GET.get("role", "")
    active = request.GET.get("active", "")
    accounts = manageable_accounts(manager, query=query, role=role, active=active)
    page = Paginator(accounts, ACCOUNTS_PER_PAGE).get_page(request.GET.get("page"))
    filters = request.GET.copy()
    filters.pop("page", None)
    return render(request, "accounts/list.html", {
        "page": page, "query": query, "role": role, "active": active, "filters": filters.urlencode(),
        "roles": [(r, Role(r).label) for r in assignable_roles(manager)],
        "sheets": pending_password_sheets(manager),
    })


@login_required
@require_http_methods(["GET", "POST"])
def account_create(request):
    manager = _manager(request)
    form = AccountForm(request.POST or None, manager=manager, initial={"unit": request.GET.get("unit", "")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            account, password = actions.do_create_account(
                actor=manager, username=data["username"], display_name=data["display_name"], role=data["role"],
                unit=_unit_from_code(manager, data["unit"]), phone=data["phone"])
        except AccountRefused as exc:
            form.add_refusal(exc)
        else:
            return _one_time(request, account, password, created=True)
    return render(request, "accounts/form.html", {"form": form}, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def account_detail(request, account_id: int):
    manager = _manager(request)
    account = access_account_by_id(manager, account_id)
    initial = {"display_name": account.display_name, "role": account.role,
               "unit": account.unit.code if account.unit else ""}
    form = AccountForm(request.POST or None, manager=manager, editing=True, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            actions.do_update_account(actor=manager, account=account, display_name=data["display_name"],
                                      phone=_phone_change(data["phone"]), role=data["role"],
                                      unit=_unit_from_code(manager, data["unit"]))
        except AccountRefused as exc:
            form.add_refusal(exc)
        else:
            messages.success(request, _("账号已保存"))
            return redirect("accounts:detail", account_id=account.pk)
    refusal = login_refusal(username=account.username, ip=None)
    return render(request, "accounts/detail.html", {"account": account, "form": form, "lock": refusal},
                  status=400 if form.errors else 200)


def _act(request, account_id: int, do, done: str):
    manager = _manager(request)
    account = access_account_by_id(manager, account_id)
    try:
        do(manager, account)
    except AccountRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return redirect("accounts:detail", account_id=account.pk)


@login_required
@require_POST
def account_deactivate(request, account_id: int):
    reason = request.POST.get("reason", "")
    return _act(request, account_id, lambda m, a: actions.do_deactivate_account(actor=m, account=a, reason=reason),
                _("账号已停用；它的记录保留，可随时重新启用"))


@login_required
@require_POST
def account_reactivate(request, account_id: int):
    return _act(request, account_id, lambda m, a: actions.do_reactivate_account(actor=m, account=a),
                _("账号已重新启用"))


@login_required
@require_POST
def account_unlock(request, account_id: int):
    return _act(request, account_id, lambda m, a: actions.do_unlock_login(actor=m, username=a.username),
                _("已解除登录锁定"))


@login_required
@require_POST
def account_reset_password(request, account_id: int):
    manager = _manager(request)
    account = access_account_by_id(manager, account_id)
    try:
        password = actions.do_reset_password(actor=manager, account=account)
    except AccountRefused as exc:
        messages.error(request, str(exc))
        return redirect("accounts:detail", account_id=account.pk)
    return _one_time(request, account, password, created=False)


def _sheet_xlsx(rows: list[list[str]]) -> bytes:
    import io

    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet(_("初始密码"))
    for col, header in enumerate((_("用户名"), _("姓名"), _("单位编码"), _("一次性密码"))):
        sheet.write(0, col, header)
    for r, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            sheet.write_string(r, col, value)
    sheet.set_column(0, 3, 18)
    book.close()
    return buffer.getvalue()


@login_required
@require_http_methods(["GET", "POST"])
def password_sheet(request, job_id: int):
    """The one-time passwords of the accounts an import of ``users`` created, for the person who ran it:
    one download (POST), after which they are gone."""
    from django.http import HttpResponse

    from wuyiqu.web.jobs import access_import_job_by_id

    job = access_import_job_by_id(request.user, job_id)
    if request.method == "POST":
        rows = actions.do_take_password_sheet(actor=request.user, job=job)
        if rows:
            response = HttpResponse(_sheet_xlsx(rows), content_type=(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
            response["Content-Disposition"] = f'attachment; filename="wuyiqu-passwords-{job.pk}.xlsx"'
            response["Cache-Control"] = "no-store"
            return response
        messages.info(request, _("这次导入的一次性密码已经下载过，或没有新建账号"))
        return redirect("accounts:password_sheet", job_id=job.pk)
    pending = next((n for jid, _name, n in pending_password_sheets(request.user) if jid == job.pk), 0)
    return render(request, "accounts/password_sheet.html", {"job": job, "pending": pending})
