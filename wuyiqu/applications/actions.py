"""Writes of applications (SPEC §1, §5): opening one, household co-signatures (online from a phone and
paper sheets with their scan), the applicant's submission with the frozen self-assessment, and the
review chain up to naming. Each ``do_…`` is atomic, locks the application it transitions and writes
one audit row; notifications go out on commit."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import Http404
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from wuyiqu.audit import actions as audit
from wuyiqu.lib import uploads
from wuyiqu.lib.dates import today
from wuyiqu.lib.idcard import normalise_id_number
from wuyiqu.units.models import TITLE_BY_KIND, Household, Resident, Unit, district_of

from . import selectors
from .models import (
    OPEN_STATUSES,
    UNIT_SIGNED_KINDS,
    Application,
    ApplicationStatus,
    Attachment,
    AttachmentKind,
    CoSignature,
    ReviewDecision,
    ReviewStep,
    SignatureAttempt,
    SignatureSource,
)
from .workflow import (
    APPLICANT_ROLE,
    REVIEW_DECISIONS,
    ROUTE,
    SIGNING_STATUSES,
    STEP_ROLE,
    SUBMITTABLE_STATUSES,
    target_status,
)

# Units whose households co-sign (楼栋/社/小区); a village, community or street signs its application
# itself (经村（社区）签字申请).
CO_SIGNED_KINDS = ("building", "group", "compound")
SELF_SIGNED_KINDS = UNIT_SIGNED_KINDS


class SignatureRefused(ValueError):
    """A co-signature that cannot be recorded; ``message`` is Chinese."""


@dataclass(frozen=True, slots=True)
class PaperSignature:
    unit_id: int
    unit_kind: str
    household_id: int
    signed_on: dt.date
    district_code: str  # the unit's (``district_of``)


@dataclass(frozen=True, slots=True)
class UnitSignature:
    unit_id: int
    unit_kind: str
    signed_on: dt.date
    district_code: str  # the unit's


@dataclass
class SignaturesWritten:
    created: int = 0
    existing: int = 0
    drafts_opened: int = 0


def open_applications_for(unit_ids_kinds: dict[int, str], districts: dict[int, str]) -> tuple[dict[int, Application], int]:
    """The open application of each unit for its title, opening a draft where there is none.
    Locks the open applications found (two imports of one sheet must not open two drafts; the
    partial unique constraint one_open_application_per_title backs this up): one query per district
    of the units (``districts``: unit id → district code; Citus routes a row lock only to one
    shard). Returns them by unit id and how many drafts were opened."""
    found = {
        a.unit_id: a
        for district in sorted(set(districts.values()))
        for a in Application.objects.select_for_update().filter(
            district_code=district, unit_id__in=list(unit_ids_kinds), status__in=[s.value for s in OPEN_STATUSES])
        if a.title == TITLE_BY_KIND.get(unit_ids_kinds[a.unit_id])
    }
    drafts = [Application(unit_id=uid, district_code=districts[uid], title=TITLE_BY_KIND[kind],
                          status=ApplicationStatus.DRAFT)
              for uid, kind in unit_ids_kinds.items() if uid not in found]
    for app in drafts:  # few; each needs its id back on every database
        app.save()
        found[app.unit_id] = app
    return found, len(drafts)


def applications_under_review(unit_ids_kinds: dict[int, str]) -> dict[int, str]:
    """The units of ``unit_ids_kinds`` whose open application for their title is under review (no
    longer collecting signatures), with its status's label."""
    return {a.unit_id: _status_label(a.status)
            for a in Application.objects.filter(unit_id__in=list(unit_ids_kinds),
                                                status__in=[s.value for s in OPEN_STATUSES])
            if a.title == TITLE_BY_KIND.get(unit_ids_kinds[a.unit_id]) and a.status not in SIGNING_STATUSES}


def _signing_applications(unit_ids_kinds: dict[int, str], districts: dict[int, str]) -> tuple[dict[int, Application], int]:
    """``open_applications_for``, refusing (SignatureRefused, Chinese, naming the unit) when one of
    them is already under review: its frozen self-assessment must not change under the reviewers."""
    apps, opened = open_applications_for(unit_ids_kinds, districts)
    for app in apps.values():
        if app.status not in SIGNING_STATUSES:
            raise SignatureRefused(_("“%(name)s”的申请已在审核中（%(status)s），不能再登记联名或签字") % {
                "name": Unit.objects.get(pk=app.unit_id).name, "status": _status_label(app.status)})
    return apps, opened


def write_unit_signatures(rows: list[UnitSignature]) -> SignaturesWritten:
    """Record the own signature (签字申请) of villages, communities and streets on their open
    applications (a draft is opened where there is none), set-based: the `signatures` import's rows
    with an empty household. A unit whose application is signed already keeps its first date.
    SignatureRefused when an application is already under review."""
    out = SignaturesWritten()
    if not rows:
        return out
    apps, out.drafts_opened = _signing_applications({r.unit_id: r.unit_kind for r in rows},
                                                    {r.unit_id: r.district_code for r in rows})
    for r in rows:
        app = apps[r.unit_id]
        if app.unit_signed_on is not None:
            out.existing += 1
            continue
        app.unit_signed_on = r.signed_on
        app.save(update_fields=["unit_signed_on"])
        out.created += 1
    return out


def write_paper_signatures(rows: list[PaperSignature]) -> SignaturesWritten:
    """Record paper co-signatures set-based (callers: the import kind inside its transaction, and
    ``do_record_paper_signatures``). A household that signed already is left as it is.
    SignatureRefused when an application is already under review."""
    out = SignaturesWritten()
    if not rows:
        return out
    apps, out.drafts_opened = _signing_applications({r.unit_id: r.unit_kind for r in rows},
                                                    {r.unit_id: r.district_code for r in rows})
    wanted = {(apps[r.unit_id].pk, r.household_id): (r.signed_on, r.district_code) for r in rows}
    existing = set(CoSignature.objects.filter(
        district_code__in={r.district_code for r in rows},
        application_id__in={k[0] for k in wanted}, household_id__in={k[1] for k in wanted},
    ).values_list("application_id", "household_id"))
    new = [CoSignature(application_id=a, household_id=h, district_code=district, signed_on=d,
                       source=SignatureSource.PAPER)
           for (a, h), (d, district) in wanted.items() if (a, h) not in existing]
    CoSignature.objects.bulk_create(new)
    out.created, out.existing = len(new), len(wanted) - len(new)
    return out


@transaction.atomic
def do_record_paper_signatures(*, actor, unit, households, signed_on: dt.date) -> SignaturesWritten:
    """Record a paper co-signature sheet of ``unit`` (a building, group or compound): one signature
    per household of ``households`` (each must lie below ``unit``) on its open application.
    Raises SignatureRefused (Chinese) and records nothing when a household is not below the unit."""
    if unit.kind not in CO_SIGNED_KINDS:
        raise SignatureRefused(_("“%(name)s”不收集住户联名（村、社区由本单位签字申请）") % {"name": unit.name})
    outside = [h.code for h in households if not h.unit.path.startswith(unit.path)]
    if outside:
        raise SignatureRefused(_("住户 %(households)s 不属于“%(name)s”") % {
            "households": pgettext("列举分隔", "、").join(outside[:5]), "name": unit.name})
    written = write_paper_signatures(
        [PaperSignature(unit.pk, unit.kind, h.pk, signed_on, district_of(unit.path)) for h in households])
    audit.record(actor=actor, action="applications.paper_signatures", target=unit, unit=unit,
                 detail={"created": written.created, "existing": written.existing, "signed_on": signed_on.isoformat()})
    return written


# --- opening, signing, attachments, submission, review -------------------------------------------------

# The proof of membership is the last PROOF_LENGTH characters of a member's ID-card number: the day of
# birth, the sequence code and the check character, which a stranger cannot look up (docs/applications.md,
# "Co-signing"). A household is locked after FAILURES_PER_HOUSEHOLD wrong proofs on an application and
# stays locked until the building head lifts the lock, at most MAX_LIFTS times: a stranger gets at most
# LIFETIME_TRIES guesses per household over the application's whole life (tests/test_applications_proof_odds.py
# computes the chance on realistic numbers). A client address failing FAILURES_PER_IP times within the
# window is locked on every household for the window.
PROOF_LENGTH = 6
FAILURES_PER_HOUSEHOLD = 5
MAX_LIFTS = 2
LIFETIME_TRIES = FAILURES_PER_HOUSEHOLD * (MAX_LIFTS + 1)
FAILURES_PER_IP = 20
FAILURE_WINDOW = dt.timedelta(minutes=15)
SCAN_MAX_BYTES = settings.ATTACHMENT_MAX_BYTES  # the type is judged on the content: wuyiqu.lib.uploads


class ApplicationRefused(ValueError):
    """An application write that cannot be done; the message is Chinese and names what to fix."""


class ReviewConflict(ApplicationRefused):
    """Someone else moved the application on while this reviewer was deciding."""


class SigningLocked(ApplicationRefused):
    """Too many wrong proofs for the household (until the building head lifts the lock) or from the
    client address within the window."""


def _status_label(status: str) -> str:
    return str(ApplicationStatus(status).label) if status in ApplicationStatus.values else status


def _in_scope(user, unit: Unit) -> bool:
    from wuyiqu.units.selectors import scope_path

    prefix = scope_path(user)
    return prefix is not None and unit.path.startswith(prefix)


def _ancestor_paths(unit: Unit) -> list[str]:
    parts = [p for p in unit.path.strip("/").split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def _link(application: Application) -> str:
    return reverse("applications:detail", args=[application.pk])


def _notify_step(application: Application, unit: Unit, status: str) -> None:
    """Tell the people who act at ``status`` for ``unit``: the role of the step, scoped to a unit on
    the unit's path (street staff of the street containing it, the district's health commission…)."""
    from wuyiqu.accounts.models import User
    from wuyiqu.notifications.actions import notify

    role = STEP_ROLE.get(status)
    if role is None:
        return
    users = User.objects.filter(role=role, is_active=True, unit__path__in=_ancestor_paths(unit))
    notify(users, template="application.step", params={"unit": unit.name, "title": application.title, "status": status},
           link=_link(application), topic=step_topic(application))


def step_topic(application: Application) -> str:
    """The topic of the to-dos (待办) of an application's current step: closed when it moves on."""
    return f"application:{application.pk}:step"


def _close_step(application: Application) -> None:
    """The step the application was waiting at is done: its to-dos leave the reviewers' inboxes."""
    from wuyiqu.notifications.actions import close_topic

    close_topic(step_topic(application))


def _notify_applicant(application: Application, template: str, params: dict) -> None:
    from wuyiqu.notifications.actions import notify

    if application.applicant_id:
        notify([application.applicant], template=template, params=params, link=_link(application))


def _lock(application: Application) -> Application:
    # The district named: Citus routes a row lock only to one shard. (An instance built by hand from
    # an id and a unit has none: its unit's.)
    district = application.district_code or Application._meta.get_field("district_code").district_from(application)
    return Application.objects.select_for_update().get(district_code=district, pk=application.pk)


@transaction.atomic
def do_open_application(*, actor, unit: Unit, unit_signed_on: dt.date | None = None) -> Application:
    """Open ``unit``'s application for its title, with ``actor`` as applicant: a building head for a
    building, a group leader for a 社, a property manager for a compound, community staff for their
    village/community (who may record the committee's own signature date), street staff for a street.
    A draft that a paper-sheet import opened without an applicant is taken over. Refuses (Chinese) a
    wrong role, a unit that holds its title, and a second open application for the title."""
    from wuyiqu.certification.models import Title

    title = TITLE_BY_KIND.get(unit.kind)
    if title is None or unit.kind not in APPLICANT_ROLE:
        raise ApplicationRefused(_("“%(name)s”这类单位没有称号，不能申请") % {"name": unit.name})
    if not _in_scope(actor, unit):
        raise Http404("unit")
    if actor.role != APPLICANT_ROLE[unit.kind]:
        from wuyiqu.accounts.models import Role

        raise PermissionDenied(_("%(title)s由%(role)s申请") % {"title": _(title), "role": Role(APPLICANT_ROLE[unit.kind]).label})
    if unit_signed_on is not None:
        if unit.kind in CO_SIGNED_KINDS:
            raise ApplicationRefused(_("楼栋、社、小区由住户联名，不需要本单位签字日期"))
        if unit_signed_on > today():
            raise ApplicationRefused(_("签字日期不能晚于今天"))
    district = district_of(unit.path)
    if Title.objects.filter(district_code=district, unit=unit, withdrawn_on__isnull=True).exists():
        raise ApplicationRefused(_("“%(name)s”已持有%(title)s称号，无需再申请") % {"name": unit.name, "title": _(title)})
    # Two applicants pressing "open" at once: the lock serialises them on the existing draft; when
    # there is none, the partial unique index one_open_application_per_title refuses the second.
    existing = (Application.objects.select_for_update()
                .filter(district_code=district, unit=unit, title=title, status__in=[s.value for s in OPEN_STATUSES])
                .first())
    if existing is not None:
        if existing.applicant_id is not None:
            raise ApplicationRefused(_("“%(name)s”已有一份进行中的%(title)s申请（%(status)s），同一称号只能有一份") % {
                "name": unit.name, "title": _(title), "status": existing.status_label})
        existing.applicant = actor
        existing.token = existing.token or secrets.token_urlsafe(16)
        fields = ["applicant", "token"]
        if unit_signed_on is not None:
            existing.unit_signed_on = unit_signed_on
            fields.append("unit_signed_on")
        existing.save(update_fields=fields)
        app = existing
    else:
        try:
            with transaction.atomic():
                app = Application.objects.create(
                    unit=unit, title=title, status=ApplicationStatus.DRAFT, applicant=actor,
                    unit_signed_on=unit_signed_on,
                    token=secrets.token_urlsafe(16) if unit.kind in CO_SIGNED_KINDS else None)
        except IntegrityError:
            raise ApplicationRefused(_("“%(name)s”已有一份进行中的%(title)s申请，同一称号只能有一份") % {
                "name": unit.name, "title": _(title)}) from None
    audit.record(actor=actor, action="applications.open", target=app, unit=unit,
                 detail={"title": title, "unit_signed_on": unit_signed_on.isoformat() if unit_signed_on else None})
    return app


@transaction.atomic
def do_record_unit_signature(*, actor, application: Application, signed_on: dt.date) -> Application:
    """经村（社区）签字申请: record the date the village/community (or street) signed its own
    application. Only its applicant role, while the applicant holds the application."""
    app = _lock(application)
    unit = app.unit
    if not _in_scope(actor, unit):
        raise Http404("application")
    if unit.kind in CO_SIGNED_KINDS:
        raise ApplicationRefused(_("楼栋、社、小区由住户联名，不需要本单位签字日期"))
    if actor.role != APPLICANT_ROLE.get(unit.kind):
        raise PermissionDenied(_("只有申请单位的工作人员可以登记签字"))
    if app.status not in SIGNING_STATUSES:
        raise ApplicationRefused(_("申请已在审核中（%(status)s），不能再改签字日期") % {"status": _status_label(app.status)})
    if signed_on > today():
        raise ApplicationRefused(_("签字日期不能晚于今天"))
    app.unit_signed_on = signed_on
    app.save(update_fields=["unit_signed_on"])
    audit.record(actor=actor, action="applications.unit_signature", target=app, unit=unit,
                 detail={"signed_on": signed_on.isoformat()})
    return app


@dataclass(frozen=True)
class SignOutcome:
    created: bool  # False: the household had signed already (本户已签名)
    household: Household


def normalise_proof(proof: str) -> str:
    """Full-width digits, spaces and a lower-case x, as every ID number is read (lib.idcard)."""
    return normalise_id_number(proof)


def proof_matches(id_numbers, proof: str) -> bool:
    """Whether ``proof`` is the last ``PROOF_LENGTH`` characters (an x taken as X) of one of the members'
    ``id_numbers`` (plain). Every member is compared, so timing does not tell which one matched."""
    wanted = normalise_proof(proof)
    if len(wanted) != PROOF_LENGTH:
        return False
    matched = False
    for number in id_numbers:
        tail = (number or "")[-PROOF_LENGTH:].upper()
        if len(tail) == PROOF_LENGTH:
            matched |= hmac.compare_digest(tail.encode(), wanted.encode())
    return matched


def _proof_matches(household: Household, proof: str) -> bool:
    """``proof_matches`` against the household's members. The numbers are decrypted here only to be
    compared — never shown, kept or logged — so this is not a reveal (units.selectors.reveal_resident)."""
    from wuyiqu.lib import crypto

    if len(normalise_proof(proof)) != PROOF_LENGTH:
        return False
    c = crypto.cipher()
    blobs = Resident.objects.filter(household=household).values_list("id_enc", flat=True)
    return proof_matches((c.decrypt(b) for b in blobs), proof)


@dataclass(frozen=True)
class HouseholdLock:
    """The lock state of a household on an application: wrong proofs since the last lift, all of them,
    and whether it is locked (until lifted) and may still be lifted."""

    failures: int
    lifetime: int

    @property
    def locked(self) -> bool:
        return self.failures >= FAILURES_PER_HOUSEHOLD or self.lifetime >= LIFETIME_TRIES

    @property
    def liftable(self) -> bool:
        return self.locked and self.lifetime < LIFETIME_TRIES


def household_lock(application: Application, household_id: int) -> HouseholdLock:
    rows = SignatureAttempt.objects.filter(district_code=application.district_code, application=application,
                                           household_id=household_id)
    return HouseholdLock(failures=rows.filter(lifted_at__isnull=True).count(), lifetime=rows.count())


def _recent_failures_from(ip: str | None, now) -> int:
    return SignatureAttempt.objects.filter(ip=ip, created_at__gte=now - FAILURE_WINDOW).count() if ip else 0


def _signing_managers(app: Application, unit: Unit) -> list:
    """Who is told about a locked household and may lift it: the applicant and the users of the
    applicant's role scoped to the unit (the building head, group leader or property manager)."""
    from wuyiqu.accounts.models import User

    role = APPLICANT_ROLE.get(unit.kind)
    users = list(User.objects.filter(role=role, is_active=True, unit__path__in=_ancestor_paths(unit))) if role else []
    if app.applicant_id and app.applicant_id not in {u.pk for u in users}:
        users.append(app.applicant)
    return users


def do_sign_application(*, application: Application, household_id: int, proof: str,
                        ip: str | None = None) -> SignOutcome:
    """A resident co-signs for their household from the public page. ``proof`` is the last 6 characters
    of a member's ID-card number. Signing again is harmless (``created`` False). Raises
    ApplicationRefused (Chinese) when signing is closed, the household is not of this unit, the proof
    is wrong (the failure is kept), the household is locked (``FAILURES_PER_HOUSEHOLD`` wrong proofs
    since the building head last lifted the lock) or the address failed too often recently. The
    wrong proof that locks the household tells the building head (audited ``applications.signing_locked``)."""
    refusal: ApplicationRefused | None = None
    with transaction.atomic():
        # Lock the application: a signature must not slip in while the applicant submits (the
        # frozen evaluation would not show it), and the failure counts below are read consistently.
        app = _lock(application)
        unit = Unit.objects.get(pk=app.unit_id)
        if app.status not in SIGNING_STATUSES:
            raise ApplicationRefused(_("该申请已提交审核，联名已结束"))
        household = Household.objects.filter(pk=household_id, unit__path__startswith=unit.path).first()
        if household is None:
            raise ApplicationRefused(_("请从列表中选择本户的地址"))
        now = timezone.now()
        lock = household_lock(app, household.pk)
        if lock.locked:
            raise SigningLocked(_("本户验证失败次数过多，已锁定；请联系楼栋长（社长、物业）解除锁定，或登记纸质联名表"))
        by_ip = _recent_failures_from(ip, now)
        if by_ip >= FAILURES_PER_IP:
            raise SigningLocked(_("验证失败次数过多，已暂时锁定，请15分钟后再试，或请楼栋长登记纸质联名表"))
        if not _proof_matches(household, proof or ""):
            SignatureAttempt.objects.create(application=app, household=household, ip=ip, created_at=now)
            left = min(FAILURES_PER_HOUSEHOLD - lock.failures, LIFETIME_TRIES - lock.lifetime,
                       FAILURES_PER_IP - by_ip) - 1
            if HouseholdLock(lock.failures + 1, lock.lifetime + 1).locked:
                refusal = SigningLocked(_("验证未通过，本户已锁定；已通知楼栋长（社长、物业），请联系其解除锁定，或登记纸质联名表"))
                _tell_household_locked(app, unit, household, ip)
            elif left <= 0:
                refusal = SigningLocked(_("验证未通过，已暂时锁定，请15分钟后再试，或请楼栋长登记纸质联名表"))
            else:
                refusal = ApplicationRefused(ngettext(
                    "验证未通过：请输入本户任一成员登记的身份证号的后6位。还可尝试 %(n)s 次",
                    "验证未通过：请输入本户任一成员登记的身份证号的后6位。还可尝试 %(n)s 次", left) % {"n": left})
        else:
            signature, created = _insert_signature(app, household, today(), SignatureSource.ONLINE)
            if created:
                audit.record(actor=None, action="applications.sign", target=signature, unit=unit,
                             detail={"household": household.code, "source": "online"}, ip=ip)
            return SignOutcome(created, household)
    raise refusal  # after the block above committed the failed attempt


def _tell_household_locked(app: Application, unit: Unit, household: Household, ip: str | None) -> None:
    from wuyiqu.notifications.actions import notify

    audit.record(actor=None, action="applications.signing_locked", target=app, unit=unit, ip=ip,
                 detail={"household": household.code})
    notify(_signing_managers(app, unit), template="application.signing_locked",
           params={"unit": unit.name, "household": household.address or household.code}, link=_link(app))


@transaction.atomic
def do_lift_signing_lock(*, actor, application: Application, household_id: int) -> HouseholdLock:
    """The building head (the applicant's role for the unit, or community staff) lifts a household's
    lock on the application: its wrong proofs so far no longer count towards the lock. Refuses a
    household not locked, one whose lock was lifted ``MAX_LIFTS`` times already (then only a paper
    sheet signs for it), and a household not below the unit. One audit row; returns the new state."""
    app = _lock(application)
    unit = Unit.objects.get(pk=app.unit_id)
    _check_applicant(actor, app, unit)
    household = Household.objects.filter(pk=household_id, unit__path__startswith=unit.path).first()
    if household is None:
        raise ApplicationRefused(_("该户不在本申请的单位内"))
    lock = household_lock(app, household.pk)
    if not lock.locked:
        raise ApplicationRefused(_("该户未被锁定"))
    if not lock.liftable:
        raise ApplicationRefused(_("该户已解除锁定%(n)d次，不能再解除；请登记纸质联名表") % {"n": MAX_LIFTS})
    lifted = SignatureAttempt.objects.filter(district_code=app.district_code, application=app, household=household,
                                             lifted_at__isnull=True).update(
        lifted_at=timezone.now(), lifted_by=actor)
    audit.record(actor=actor, action="applications.signing_unlock", target=app, unit=unit,
                 detail={"household": household.code, "failures": lifted, "lifetime": lock.lifetime})
    return household_lock(app, household.pk)


def locked_households(application: Application) -> list[tuple[Household, HouseholdLock]]:
    """The households locked on ``application`` with their lock state (two queries)."""
    from django.db.models import Count, Q

    rows = (SignatureAttempt.objects.filter(district_code=application.district_code, application=application)
            .values("household_id")
            .annotate(lifetime=Count("id"), failures=Count("id", filter=Q(lifted_at__isnull=True))))
    states = {r["household_id"]: HouseholdLock(failures=r["failures"], lifetime=r["lifetime"]) for r in rows}
    locked = {hid: s for hid, s in states.items() if s.locked}
    households = Household.objects.filter(pk__in=locked).order_by("code")
    return [(h, locked[h.pk]) for h in households]


def _insert_signature(app: Application, household: Household, signed_on: dt.date, source: str):
    """(signature, created). The application row is locked by the caller, so no other signature of
    this household can be inserted meanwhile; the unique constraint is the backstop."""
    existing = CoSignature.objects.filter(district_code=app.district_code, application=app, household=household).first()
    if existing is not None:
        return existing, False
    return CoSignature.objects.create(application=app, household=household, signed_on=signed_on, source=source), True


def check_upload(upload) -> tuple[str, str, bytes]:
    """(content type, extension, bytes) of an uploaded scan or photo, judged by its first bytes
    (JPEG, PNG or PDF). ApplicationRefused (Chinese) when it is empty, too large or of another type."""
    if upload is None:
        raise ApplicationRefused(_("请上传纸质联名表的扫描件或照片"))
    try:
        content_type, ext = uploads.check_upload(upload, max_bytes=SCAN_MAX_BYTES)
    except uploads.UploadRefused as exc:
        raise ApplicationRefused(str(exc)) from None
    data = upload.read(SCAN_MAX_BYTES + 1)
    if len(data) > SCAN_MAX_BYTES:  # the size the client declared was not the size it sent
        raise ApplicationRefused(_("文件“%(name)s”超过上限 %(mb)s MB") % {"name": upload.name, "mb": SCAN_MAX_BYTES // (1024 * 1024)})
    return content_type, ext, data


def _store_attachment(app: Application, *, actor, upload, kind: str, note: str = "") -> Attachment:
    from django.core.files.base import ContentFile

    content_type, ext, data = check_upload(upload)
    att = Attachment(application=app, kind=kind, original_name=(upload.name or "")[-200:], content_type=content_type,
                     size=len(data), sha256=hashlib.sha256(data).hexdigest(), note=note[:200], uploaded_by=actor)
    att.file.save(f"scan.{ext}", ContentFile(data), save=False)
    att.save()
    return att


def _check_applicant(actor, app: Application, unit: Unit) -> None:
    """The applicant's role for the unit, or community staff of the village/community above it (who
    keep the registry and may record a paper sheet for a building). Http404 outside the scope."""
    from wuyiqu.accounts.models import Role

    if not _in_scope(actor, unit):
        raise Http404("application")
    if actor.role != APPLICANT_ROLE.get(unit.kind) and actor.role != Role.COMMUNITY_STAFF:
        raise PermissionDenied(_("只有申请人或村/社区工作人员可以办理"))


@transaction.atomic
def do_record_paper_sheet(*, actor, application: Application, household_ids: list[int], signed_on: dt.date,
                          scan) -> tuple[int, int, Attachment]:
    """A paper co-signature sheet (纸质联名表): one signature per household of ``household_ids`` on the
    application, with the sheet's scan stored as an attachment. Returns (created, already signed,
    attachment). Refuses (Chinese) and records nothing for a household not below the unit, a date
    in the future, a missing or bad scan, or an application no longer collecting signatures."""
    app = _lock(application)
    unit = app.unit
    _check_applicant(actor, app, unit)
    if unit.kind not in CO_SIGNED_KINDS:
        raise ApplicationRefused(_("“%(name)s”不收集住户联名（村、社区由本单位签字申请）") % {"name": unit.name})
    if app.status not in SIGNING_STATUSES:
        raise ApplicationRefused(_("申请已在审核中（%(status)s），不能再登记联名") % {"status": _status_label(app.status)})
    if signed_on > today():
        raise ApplicationRefused(_("签名日期不能晚于今天"))
    ids = sorted({int(h) for h in household_ids})
    if not ids:
        raise ApplicationRefused(_("请勾选在纸质联名表上签名的住户"))
    households = list(Household.objects.filter(pk__in=ids, unit__path__startswith=unit.path))
    if len(households) != len(ids):
        raise ApplicationRefused(ngettext("有 %(n)s 户不属于“%(name)s”", "有 %(n)s 户不属于“%(name)s”",
                                          len(ids) - len(households)) % {"n": len(ids) - len(households), "name": unit.name})
    attachment = _store_attachment(app, actor=actor, upload=scan, kind=AttachmentKind.PAPER_SHEET,
                                   note=f"纸质联名表 {len(households)} 户 {signed_on.isoformat()}")
    signed = set(CoSignature.objects.filter(district_code=app.district_code, application=app, household_id__in=ids)
                 .values_list("household_id", flat=True))
    CoSignature.objects.bulk_create([
        CoSignature(application=app, household=h, signed_on=signed_on, source=SignatureSource.PAPER)
        for h in households if h.pk not in signed])
    created = len(households) - len(signed)
    audit.record(actor=actor, action="applications.paper_sheet", target=app, unit=unit,
                 detail={"created": created, "existing": len(signed), "signed_on": signed_on.isoformat(),
                         "attachment": attachment.pk, "sha256": attachment.sha256})
    return created, len(signed), attachment


@transaction.atomic
def do_add_attachment(*, actor, application: Application, upload, kind: str, note: str = "") -> Attachment:
    """附件 (photos, documents) added by the applicant while they hold the application."""
    app = _lock(application)
    _check_applicant(actor, app, app.unit)
    if app.status not in SUBMITTABLE_STATUSES:
        raise ApplicationRefused(_("申请已在审核中（%(status)s），不能再添加附件") % {"status": _status_label(app.status)})
    if kind not in AttachmentKind.values:
        raise ApplicationRefused(_("附件类别不对"))
    att = _store_attachment(app, actor=actor, upload=upload, kind=kind, note=note)
    audit.record(actor=actor, action="applications.attachment", target=att, unit=app.unit,
                 detail={"application": app.pk, "kind": kind, "sha256": att.sha256, "size": att.size})
    return att


def _unnamed_buildings(unit: Unit) -> list[Unit]:
    from wuyiqu.certification.models import Title

    named = Title.objects.filter(district_code=district_of(unit.path), unit__path__startswith=unit.path,
                                 withdrawn_on__isnull=True,
                                 named_on__lte=today()).values("unit_id")
    return list(Unit.objects.filter(path__startswith=unit.path, kind="building").exclude(pk__in=named).order_by("code"))


def _actor_name(actor) -> str:
    return (getattr(actor, "display_name", "") or actor.get_username())[:100]


@transaction.atomic
def do_submit_application(*, actor, application: Application) -> Application:
    """The applicant submits (申请): the self-assessment on today must pass every criterion — the
    co-signature criterion included, which the households' signatures complete — and a compound's
    buildings must all be named. The full evaluation is frozen on the application with the list of its
    attachments, and the application goes to the first review step of its route. Refuses (Chinese),
    changing nothing, listing what fails."""
    app = _lock(application)
    unit = app.unit
    if not _in_scope(actor, unit):
        raise Http404("application")
    if actor.role != APPLICANT_ROLE.get(unit.kind):
        raise PermissionDenied(_("只有申请人可以提交"))
    if app.status not in SUBMITTABLE_STATUSES:
        raise ApplicationRefused(_("申请当前状态为“%(status)s”，不能提交") % {"status": _status_label(app.status)})
    if unit.kind == "compound":
        missing = _unnamed_buildings(unit)
        if missing:
            raise ApplicationRefused(ngettext("小区内还有 %(n)s 栋楼未获无疫楼栋称号：%(names)s",
                                              "小区内还有 %(n)s 栋楼未获无疫楼栋称号：%(names)s", len(missing)) % {
                "n": len(missing), "names": pgettext("列举分隔", "、").join(u.name for u in missing)})
    on = today()
    with translation.override(settings.LANGUAGE_CODE):  # frozen on the application: stored in Chinese
        evaluation = selectors.evaluation_of(unit, on, forms=True)
    failed = [c for c in evaluation["criteria"] if not c["passed"]]
    if failed:
        raise ApplicationRefused(_("自评未全部达标，不能提交：%(list)s") % {
            "list": pgettext("分句分隔", "；").join(f"{c['name']}：{c['detail']}" for c in failed)})
    evaluation["attachments"] = [
        {"id": a.pk, "kind": a.kind, "name": a.original_name, "content_type": a.content_type, "size": a.size,
         "sha256": a.sha256, "uploaded_at": a.uploaded_at.isoformat()}
        for a in Attachment.objects.filter(district_code=app.district_code, application=app)]
    if unit.kind in CO_SIGNED_KINDS:
        progress = selectors.signing_progress(app)
        evaluation["signatures"] = {"signed": progress.signed, "total": progress.total}
    evaluation["frozen_at"] = timezone.now().isoformat()
    from_status = app.status
    app.status = target_status(unit.kind, from_status, ReviewDecision.SUBMIT)
    app.submitted_at = timezone.now()
    app.frozen_evaluation = evaluation
    if app.applicant_id is None:
        app.applicant = actor
    app.save(update_fields=["status", "submitted_at", "frozen_evaluation", "applicant"])
    ReviewStep.objects.create(application=app, actor=actor, actor_name=_actor_name(actor), actor_role=actor.role,
                              decided_at=app.submitted_at, decision=ReviewDecision.SUBMIT, opinion="",
                              from_status=from_status, to_status=app.status, evaluation=None)
    audit.record(actor=actor, action="applications.submit", target=app, unit=unit,
                 detail={"from": from_status, "to": app.status})
    _close_step(app)
    _notify_step(app, unit, app.status)
    return app


@transaction.atomic
def do_review_application(application: Application, *, actor, decision: str, opinion: str,
                          send_back_to: str | None = None) -> Application:
    """One reviewer's decision at the application's current step: approve (to the next step, or —
    by the command — naming the unit), return for correction to the applicant (退回), reject, or send
    back to a lower step. Always with a written opinion. ``application`` carries the status the
    reviewer saw. Http404 when the unit is outside the actor's scope; PermissionDenied when the
    actor's role does not act at this step; ReviewConflict when someone else decided meanwhile;
    ApplicationRefused / IllegalTransition (Chinese) for anything else the table refuses, and for a
    naming while the unit does not meet the whole standard on the day (符合条件的…命名: every criterion
    of its level, the co-signatures included — a case since it applied, a failed inspection)."""
    opinion = (opinion or "").strip()
    seen_status = application.status
    # Two reviewers pressing approve at once: the second blocks here until the first commits, then
    # reads the new status and is told that someone else handled it — never a double transition.
    app = _lock(application)
    unit = app.unit
    if not _in_scope(actor, unit):
        raise Http404("application")
    if app.status != seen_status:
        raise ReviewConflict(_("申请已被他人处理，当前状态为“%(status)s”") % {"status": _status_label(app.status)})
    role = STEP_ROLE.get(app.status)
    if role is None:
        raise ApplicationRefused(_("申请当前状态为“%(status)s”，不在审核环节") % {"status": _status_label(app.status)})
    if actor.role != role:
        from wuyiqu.accounts.models import Role

        raise PermissionDenied(_("“%(status)s”由%(role)s办理") % {"status": _status_label(app.status), "role": Role(role).label})
    if decision not in REVIEW_DECISIONS:
        raise ApplicationRefused(_("请选择审核决定"))
    if not opinion:
        raise ApplicationRefused(_("请填写意见（通过、退回、不予通过都须签注意见）"))
    to_status = target_status(unit.kind, app.status, decision, send_back_to)
    on = today()
    naming = to_status == ApplicationStatus.NAMED
    if naming:
        # A fact about the unit being written right now (a positive result) re-checks the named
        # units in its own transaction: wait for it to commit, so that the evaluation below sees
        # it — or make it wait for this naming, and then withdraw the new title (locks.py).
        from wuyiqu.supervision.locks import hold_for_naming

        hold_for_naming(unit.path)
    with translation.override(settings.LANGUAGE_CODE):  # kept on the review step: stored in Chinese
        seen = selectors.evaluation_of(unit, on)
    if naming:
        failing = [c for c in seen["criteria"] if not c["passed"]]
        if failing:
            # The policy names units that meet the standard: named now, a failing warn criterion
            # would open a warning the same day and a revoke one withdraw the title at once.
            raise ApplicationRefused(_("“%(name)s”%(date)s未全部达标，不能命名：%(failing)s。可退回或不予通过") % {
                "name": unit.name, "date": on.isoformat(),
                "failing": "；".join(f"{c['name']}：{c['detail']}" for c in failing)})
    from_status = app.status
    app.status = to_status
    app.save(update_fields=["status"])
    step = ReviewStep.objects.create(
        application=app, actor=actor, actor_name=_actor_name(actor), actor_role=actor.role,
        decided_at=timezone.now(), decision=decision, opinion=opinion, from_status=from_status,
        to_status=to_status, evaluation=seen)
    detail = {"decision": decision, "from": from_status, "to": to_status, "step": step.pk}
    title = None
    if to_status == ApplicationStatus.NAMED:
        from wuyiqu.certification.actions import do_name_unit

        title = do_name_unit(actor=actor, application=app)
        detail["certificate"] = title.certificate_number
    audit.record(actor=actor, action="applications.review", target=app, unit=unit, detail=detail)
    _close_step(app)  # this step is done: its to-dos leave every reviewer's inbox
    _notify_review(app, unit, to_status, from_status, opinion, title)
    return app


def _notify_review(app: Application, unit: Unit, to_status: str, from_status: str, opinion: str, title) -> None:
    """The notifications of a review decision (stored in zh-hans, shown in the reader's language)."""
    if to_status in STEP_ROLE:
        _notify_step(app, unit, to_status)
    base = {"unit": unit.name, "title": app.title}
    if to_status == ApplicationStatus.RETURNED:
        _notify_applicant(app, "application.returned", base | {"step": from_status, "opinion": opinion})
    elif to_status == ApplicationStatus.REJECTED:
        _notify_applicant(app, "application.rejected", base | {"step": from_status, "opinion": opinion})
    elif title is not None:
        _notify_applicant(app, "application.named", base | {"number": title.certificate_number})


def route_of(application: Application) -> tuple[str, ...]:
    return ROUTE.get(application.unit.kind, ())
