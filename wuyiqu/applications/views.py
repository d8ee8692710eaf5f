"""Pages of the application workflow: the applicant's and reviewers' pages (signed in, scoped), the
poster with its QR code, and the public signing page behind the short link /s/<token> (no account)."""

from __future__ import annotations

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from wuyiqu.accounts.models import Role
from wuyiqu.lib.dates import parse_date, today
from wuyiqu.standards.criteria import shown
from wuyiqu.units import selectors as unit_selectors
from wuyiqu.web import public

from . import actions, selectors
from .models import ApplicationStatus, Attachment, AttachmentKind, ReviewDecision
from .workflow import (
    APPLICANT_ROLE,
    ROUTE,
    SIGNING_STATUSES,
    STEP_ROLE,
    SUBMITTABLE_STATUSES,
    IllegalTransition,
)


def _ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _short_url(request, app) -> str:
    return request.build_absolute_uri(reverse("applications:sign", args=[app.token]))


@login_required
@require_GET
def index(request):
    """申请: the user's own applications and the units they may apply for, and their review queue."""
    user = request.user
    context = {
        "mine": selectors.applicant_applications(user),
        "openable": selectors.openable_units(user),
        "queue": selectors.review_queue(user),
        "is_reviewer": user.role in STEP_ROLE.values(),
        "in_scope": selectors.applications_in_scope(user),
    }
    return render(request, "applications/index.html", context)


@login_required
@require_GET
def queue(request):
    """待办: applications waiting at the user's step, within their scope."""
    return render(request, "applications/queue.html", {"queue": selectors.review_queue(request.user)})


@login_required
@require_POST
def open_application(request):
    unit = unit_selectors.access_unit_by_code(request.user, request.POST.get("unit", ""))
    signed_on = None
    if request.POST.get("unit_signed_on"):
        try:
            signed_on = parse_date(request.POST["unit_signed_on"])
        except ValueError as e:
            messages.error(request, str(e))
            return redirect("applications:index")
    try:
        app = actions.do_open_application(actor=request.user, unit=unit, unit_signed_on=signed_on)
    except actions.ApplicationRefused as e:
        messages.error(request, str(e))
        return redirect("applications:index")
    return redirect("applications:detail", application_id=app.pk)


def _comparison(frozen: dict | None, live: dict) -> list[dict]:
    """Rows of criterion | at submission | today, in the profile's order."""
    # The frozen reasons were stored in zh-hans with their machine form: shown in the reader's language.
    before = {c["id"]: {**c, "detail": shown(c.get("detail", ""), c.get("form"))} for c in (frozen or {}).get("criteria", [])}
    rows = []
    for c in live["criteria"]:
        rows.append({"id": c["id"], "name": c.get("name", c["id"]), "live": c, "frozen": before.pop(c["id"], None)})
    for cid, c in before.items():  # a criterion the profile no longer has
        rows.append({"id": cid, "name": c.get("name", cid), "live": None, "frozen": c})
    return rows


@login_required
@require_GET
def detail(request, application_id: int):
    app = selectors.access_application_by_id(request.user, application_id)
    user, unit = request.user, app.unit
    live = selectors.evaluation_of(unit, today(), viewer=user)
    step_role = STEP_ROLE.get(app.status)
    route = ROUTE.get(unit.kind, ())
    lower_steps = []
    if app.status in route:
        lower_steps = [(s, ApplicationStatus(s).label) for s in route[: route.index(app.status)]]
    is_applicant_role = user.role == APPLICANT_ROLE.get(unit.kind)
    co_signed = unit.kind in actions.CO_SIGNED_KINDS
    context = {
        "app": app, "unit": unit, "live": live, "frozen": app.frozen_evaluation,
        "comparison": _comparison(app.frozen_evaluation, live),
        "steps": app.steps.filter(district_code=app.district_code).select_related("actor"),
        "attachments": app.attachments.filter(district_code=app.district_code),
        "attachment_kinds": AttachmentKind.choices,
        "route": [(s, ApplicationStatus(s).label) for s in route],
        "co_signed": co_signed,
        "signing_open": app.status in SIGNING_STATUSES,
        "can_submit": is_applicant_role and app.status in SUBMITTABLE_STATUSES,
        "can_record_paper": co_signed and app.status in SIGNING_STATUSES and (is_applicant_role or user.role == "community_staff"),
        "can_sign_unit": (not co_signed) and is_applicant_role and app.status in SIGNING_STATUSES,
        "can_review": step_role is not None and user.role == step_role,
        "lower_steps": lower_steps,
        "decisions": [(d, ReviewDecision(d).label) for d in (ReviewDecision.APPROVE, ReviewDecision.RETURN,
                                                               ReviewDecision.REJECT)],
        "today": today(),
    }
    if co_signed:
        context["progress"] = selectors.signing_progress(app)
        context["locked"] = actions.locked_households(app) if app.status in SIGNING_STATUSES else []
    else:
        context["subunits"] = selectors.subunit_overview(unit, today())
    if app.status == ApplicationStatus.RETURNED:
        # 退回: the reason heads the page (the applicant acts on it), not only in the record below.
        context["returned_step"] = (app.steps.filter(district_code=app.district_code, to_status=ApplicationStatus.RETURNED)
                                    .order_by("-decided_at", "-id").first())
    if app.status == ApplicationStatus.NAMED:
        from wuyiqu.certification.models import Title

        context["title_row"] = Title.objects.filter(district_code=app.district_code, application=app).first()
    return render(request, "applications/detail.html", context)


@login_required
@require_GET
def progress(request, application_id: int):
    """The live co-signature progress (htmx polls this every few seconds)."""
    app = selectors.access_application_by_id(request.user, application_id)
    response = render(request, "applications/_progress.html",
                      {"app": app, "progress": selectors.signing_progress(app),
                       "signing_open": app.status in SIGNING_STATUSES})
    patch_vary_headers(response, ["HX-Request"])
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def paper_sheet(request, application_id: int):
    app = selectors.access_application_by_id(request.user, application_id)
    try:
        signed_on = parse_date(request.POST.get("signed_on", ""))
    except ValueError as e:
        messages.error(request, _("签名日期：%(e)s") % {"e": e})
        return redirect("applications:detail", application_id=app.pk)
    try:
        ids = [int(h) for h in request.POST.getlist("households")]
    except ValueError:
        messages.error(request, _("住户选择有误"))
        return redirect("applications:detail", application_id=app.pk)
    try:
        created, existing, _att = actions.do_record_paper_sheet(
            actor=request.user, application=app, household_ids=ids, signed_on=signed_on,
            scan=request.FILES.get("scan"))
    except actions.ApplicationRefused as e:
        messages.error(request, str(e))
    else:
        # ``existing``: households that had signed before (online or on an earlier sheet), not recorded twice.
        text = ngettext("已登记纸质联名：新增 %(c)s 户签名", "已登记纸质联名：新增 %(c)s 户签名", created) % {"c": created}
        if existing:
            text += ngettext("；另有 %(e)s 户此前已签名，未重复登记", "；另有 %(e)s 户此前已签名，未重复登记",
                             existing) % {"e": existing}
        messages.success(request, text)
    return redirect("applications:detail", application_id=app.pk)


@login_required
@require_POST
def unlock(request, application_id: int):
    """The building head lifts a household's signing lock (a button on the application page)."""
    app = selectors.access_application_by_id(request.user, application_id)
    try:
        household_id = int(request.POST.get("household", ""))
    except ValueError:
        household_id = 0
    try:
        actions.do_lift_signing_lock(actor=request.user, application=app, household_id=household_id)
    except actions.ApplicationRefused as e:
        messages.error(request, str(e))
    else:
        messages.success(request, _("已解除锁定，该户可再次在手机上签名"))
    return redirect("applications:detail", application_id=app.pk)


@login_required
@require_POST
def add_attachment(request, application_id: int):
    app = selectors.access_application_by_id(request.user, application_id)
    try:
        actions.do_add_attachment(actor=request.user, application=app, upload=request.FILES.get("file"),
                                  kind=request.POST.get("kind", ""), note=request.POST.get("note", ""))
    except actions.ApplicationRefused as e:
        messages.error(request, str(e))
    else:
        messages.success(request, _("附件已上传"))
    return redirect("applications:detail", application_id=app.pk)


@login_required
@require_GET
def attachment(request, application_id: int, attachment_id: int):
    """An attachment, read back only through the application's scope (the files are not under any URL)."""
    app = selectors.access_application_by_id(request.user, application_id)
    try:
        att = Attachment.objects.get(district_code=app.district_code, pk=attachment_id, application=app)
    except Attachment.DoesNotExist:
        from django.http import Http404

        raise Http404("attachment") from None
    response = FileResponse(att.file.open("rb"), content_type=att.content_type)
    disposition = "inline" if att.content_type.startswith("image/") or att.content_type == "application/pdf" else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="attachment-{att.pk}.{att.file.name.rsplit(".", 1)[-1]}"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def unit_signature(request, application_id: int):
    app = selectors.access_application_by_id(request.user, application_id)
    try:
        actions.do_record_unit_signature(actor=request.user, application=app,
                                         signed_on=parse_date(request.POST.get("signed_on", "")))
    except (actions.ApplicationRefused, ValueError) as e:
        messages.error(request, str(e))
    else:
        messages.success(request, _("已登记本单位签字"))
    return redirect("applications:detail", application_id=app.pk)


@login_required
@require_POST
def submit(request, application_id: int):
    app = selectors.access_application_by_id(request.user, application_id)
    try:
        actions.do_submit_application(actor=request.user, application=app)
    except actions.ApplicationRefused as e:
        messages.error(request, str(e))
    else:
        messages.success(request, _("申请已提交"))
    return redirect("applications:detail", application_id=app.pk)


@login_required
@require_POST
def review(request, application_id: int):
    app = selectors.access_application_by_id(request.user, application_id)
    # The status the reviewer saw when the page was drawn: if it moved on meanwhile, say so.
    seen = request.POST.get("seen_status", "")
    if seen:
        app.status = seen
    decision = request.POST.get("decision", "")
    send_back_to = None
    if decision.startswith("send_back:"):
        decision, send_back_to = ReviewDecision.SEND_BACK, decision.split(":", 1)[1]
    try:
        actions.do_review_application(app, actor=request.user, decision=decision,
                                      opinion=request.POST.get("opinion", ""), send_back_to=send_back_to)
    except (actions.ApplicationRefused, IllegalTransition) as e:
        messages.error(request, str(e))
    else:
        messages.success(request, _("已办理"))
        return redirect("applications:queue")
    return redirect("applications:detail", application_id=app.pk)


def _qr_svg(url: str, scale: int = 6) -> str:
    return segno.make(url, error="m").svg_inline(scale=scale, dark="#000", light="#fff")


@login_required
@require_GET
def poster(request, application_id: int):
    """The printable poster: what the unit applies for, the QR code and the short link."""
    app = selectors.access_application_by_id(request.user, application_id)
    if not app.token:
        from django.http import Http404

        raise Http404("no signing link")
    url = _short_url(request, app)
    total = selectors.households_to_sign(app.unit).count()
    return render(request, "applications/poster.html", {"app": app, "unit": app.unit, "url": url,
                                                        "qr": _qr_svg(url, 8), "total": total})


@login_required
@require_GET
def qr_png(request, application_id: int):
    app = selectors.access_application_by_id(request.user, application_id)
    if not app.token:
        from django.http import Http404

        raise Http404("no signing link")
    import io

    buf = io.BytesIO()
    segno.make(_short_url(request, app), error="m").save(buf, kind="png", scale=10)
    return HttpResponse(buf.getvalue(), content_type="image/png")


@require_http_methods(["GET", "POST"])
def sign(request, token: str):
    """The resident's page (no account): pick the household by address, prove membership with the last
    6 characters of a member's ID-card number, sign once for the household."""
    try:
        app = selectors.application_for_signing(token)
    except Http404:  # a mistyped or stale link: a page for residents, not the staff 404
        return public.not_found(request, heading=_("链接无效"), message=_("找不到这个联名签字链接。"),
                                hint=_("请重新扫描张贴的二维码，或向楼栋长、社长、物业或社区工作人员索取链接。"))
    unit = app.unit
    context = {"app": app, "unit": unit, "households": [], "open": selectors.is_signing_open(app),
               "selected": None, "outcome": None, "error": ""}
    status = 200
    if request.method == "POST" and context["open"]:
        try:
            household_id = int(request.POST.get("household", ""))
        except ValueError:
            household_id = 0
        context["selected"] = household_id
        try:
            outcome = actions.do_sign_application(application=app, household_id=household_id,
                                                  proof=request.POST.get("proof", ""), ip=_ip(request))
        except actions.ApplicationRefused as e:
            context["error"] = str(e)
            status = 429 if isinstance(e, actions.SigningLocked) else 400
        else:
            context["outcome"] = outcome
    if context["open"] and context["outcome"] is None:  # the form is shown: the list of addresses
        context["households"] = list(selectors.households_to_sign(unit))
    else:  # signed, or signing over: how far the unit is (counts and its state, nobody's address)
        context["state"] = selectors.public_signing_state(app)
        context["applicant_role"] = Role(APPLICANT_ROLE[unit.kind]).label if unit.kind in APPLICANT_ROLE else ""
    response = render(request, "applications/sign.html", context, status=status)
    response["Cache-Control"] = "no-store"
    # The token must not leak to other sites; "same-origin" (not "no-referrer", which makes the
    # browser send Origin: null on the form post, refused by the CSRF check).
    response["Referrer-Policy"] = "same-origin"
    return response
