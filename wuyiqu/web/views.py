"""Server-rendered pages. Thin: check input, call a selector or action, render. Every page that
shows personal data gets its object through a scoped selector, so a unit outside the user's scope
is a 404, never a 403 that would confirm it exists."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from wuyiqu.accounts.visibility import may_reveal, sees_people
from wuyiqu.certification.selectors import title_statuses
from wuyiqu.imports.services import fail_interrupted
from wuyiqu.lib import dates
from wuyiqu.units import selectors
from wuyiqu.units.models import HOUSEHOLD_UNIT_KINDS, HouseholdVerification

from . import jobs, navigation
from .entry import HOUSEHOLD_FORMS, UNIT_FORMS
from .forms import ImportForm
from .permissions import can_import, can_record

HOUSEHOLDS_PER_PAGE = 30
LEDGER_PER_PAGE = 100


def _ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _render_maybe_partial(request, full: str, partial: str, context: dict):
    """The partial for htmx, the whole page otherwise; caches keep the two apart (Vary)."""
    response = render(request, partial if _is_htmx(request) else full, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_GET
def home(request):
    """The user's own unit page; an unscoped administrator lands on the root of the tree."""
    user = request.user
    top = user.unit if user.unit_id else selectors.visible_units(user).order_by("depth", "code").first()
    if top is None:
        return render(request, "web/home.html", {})
    return redirect("web:unit", code=top.code)


@login_required
@require_GET
def unit_detail(request, code: str):
    unit = selectors.access_unit_by_code(request.user, code)
    recorder = can_record(request.user)
    overview = selectors.unit_overview(request.user, unit)
    statuses = title_statuses([unit.pk, *(c["unit"].pk for c in overview["children"])])
    for child in overview["children"]:
        child["status"] = statuses.get(child["unit"].pk)
    context = {"unit": unit, **overview, "status": statuses.get(unit.pk),
               "unit_links": navigation.unit_links(request.user, unit), "today": dates.today(),
               "can_reveal": may_reveal(request.user),
               "can_record": recorder, "record_forms": [
                   (kind, spec.title) for kind, spec in UNIT_FORMS.items()
                   if recorder and (kind not in HOUSEHOLD_FORMS or unit.kind in HOUSEHOLD_UNIT_KINDS)]}
    if unit.kind in HOUSEHOLD_UNIT_KINDS:
        # A subquery per household, not a join grouped by it: on PostgreSQL the household's primary key
        # is (district_code, id) (units 0008), so grouping by its id alone no longer covers its columns.
        latest = (HouseholdVerification.objects.filter(district_code=OuterRef("district_code"), household=OuterRef("pk"))
                  .order_by("-verified_on").values("verified_on")[:1])
        households = selectors.households_below(unit).annotate(last_verified_on=Subquery(latest))
        page = Paginator(households, HOUSEHOLDS_PER_PAGE).get_page(request.GET.get("page"))
        context["households_page"] = page
    return render(request, "web/unit.html", context)


@login_required
@require_GET
def unit_search(request):
    query = request.GET.get("q", "").strip()[:100]
    context = {"query": query, "results": selectors.search_units(request.user, query)}
    return _render_maybe_partial(request, "web/search.html", "web/_search_results.html", context)


@login_required
@require_GET
def household_detail(request, code: str):
    household = selectors.access_household_by_code(request.user, code)
    context = {
        "household": household,
        "unit": household.unit,
        "breadcrumb": selectors.breadcrumb_for(request.user, household.unit),
        "residents": list(household.residents.select_related("special_entry")),
        "last_verification": household.verifications.order_by("-verified_on").first(),
        "can_record": can_record(request.user), "today": dates.today(), "can_reveal": may_reveal(request.user),
    }
    return render(request, "web/household.html", context)


@login_required
@require_POST
def resident_reveal(request, resident_id: int):
    """Show one resident's full ID number and phone; the selector writes the audit row."""
    resident = selectors.access_resident_by_id(request.user, resident_id)
    revealed = selectors.reveal_resident(request.user, resident.pk, ip=_ip(request))
    context = {"resident": resident, "revealed": revealed}
    response = _render_maybe_partial(request, "web/resident_revealed.html", "web/_resident_row.html", context)
    response["Cache-Control"] = "no-store"  # a full ID number must not stay in any cache
    return response


@login_required
@require_GET
def special_population_ledger(request, code: str):
    unit = selectors.access_unit_by_code(request.user, code)
    context = {"unit": unit, "breadcrumb": selectors.breadcrumb_for(request.user, unit)}
    if not sees_people(request.user):
        # Volunteer roles: how many of each kind and how many entries lack something, never who (SPEC §1).
        context["summary"] = selectors.special_population_summary(unit)
        return render(request, "web/ledger.html", context)
    entries = selectors.view_special_population(request.user, unit, ip=_ip(request))
    context["page"] = Paginator(entries, LEDGER_PER_PAGE).get_page(request.GET.get("page"))
    context.update({"can_record": can_record(request.user), "today": dates.today()})
    return render(request, "web/ledger.html", context)


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _import_unit(request, code: str):
    unit = selectors.access_unit_by_code(request.user, code)  # 404 outside the scope
    if not can_import(request.user):
        raise PermissionDenied(_("您的角色不能导入数据"))
    return unit


@login_required
@require_http_methods(["GET", "POST"])
def import_start(request, code: str):
    unit = _import_unit(request, code)
    if request.method == "POST" and _declared_length(request) > settings.IMPORT_MAX_UPLOAD_BYTES + 64 * 1024:
        # Refuse before Django reads (and spools to disk) hundreds of megabytes we would throw away.
        return HttpResponse(_("文件太大，上限为 %(limit)s") % {"limit": filesizeformat(settings.IMPORT_MAX_UPLOAD_BYTES)},
                            status=413, content_type="text/plain; charset=utf-8")
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        job = jobs.start_import(
            kind=form.cleaned_data["kind"], upload=form.cleaned_data["file"], actor=request.user, scope=unit,
            skip_invalid=form.cleaned_data["skip_invalid"],
        )
        return redirect("web:import_job", job_id=job.pk)
    context = {"unit": unit, "breadcrumb": selectors.breadcrumb_for(request.user, unit), "form": form,
               "kinds": form.fields["kind"].choices, "recent_jobs": jobs.recent_jobs(request.user, unit)}
    return render(request, "web/import.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def import_template(request, code: str, kind: str):
    _import_unit(request, code)
    content = jobs.template_for(kind)  # Http404 for an unknown kind
    response = HttpResponse(
        content, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response["Content-Disposition"] = f'attachment; filename="wuyiqu-{kind}.xlsx"'
    return response


@login_required
@require_GET
def import_job(request, job_id: int):
    job = jobs.access_import_job_by_id(request.user, job_id)
    fail_interrupted(job)  # a job whose process was killed reads as failed, not as running for ever
    context = {"job": job, **jobs.describe_job(job, request.user)}
    return _render_maybe_partial(request, "web/import_job.html", "web/_import_job_status.html", context)


@login_required
@require_POST
def import_confirm(request, job_id: int):
    """The preview's form: confirm the import, or preview again with the person's mapping and sheets."""
    job = jobs.access_import_job_by_id(request.user, job_id)
    if not can_import(request.user):
        raise PermissionDenied(_("您的角色不能导入数据"))
    try:
        jobs.confirm_or_remap(job=job, actor=request.user, post=request.POST)
    except jobs.ImportRefused as exc:
        context = {"job": job, **jobs.describe_job(job, request.user), "refused": str(exc)}
        return render(request, "web/import_job.html", context, status=409)
    return redirect("web:import_job", job_id=job.pk)


@login_required
@require_GET
def import_error_workbook(request, job_id: int):
    """The refused rows as the person's own columns plus 错误原因 (XLSX), audited."""
    job, data = jobs.error_workbook_for(request.user, job_id)
    response = HttpResponse(data, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response["Content-Disposition"] = f'attachment; filename="wuyiqu-errors-{job.pk}.xlsx"'
    response["Cache-Control"] = "no-store"
    return response
