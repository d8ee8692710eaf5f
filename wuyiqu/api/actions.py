"""Writes of the API: tokens (create, revoke) and fact batches.

A fact batch is written by the SAME import kinds as the files (``wuyiqu.imports.registry``): each
record goes through the kind's ``parse_row``, the batch through its ``check`` (with the token's unit
as the scope) and ``write``. So a record is refused for exactly the reasons a file row would be, in
the same words. Unlike a file, a batch is not all-or-nothing: the valid records are written and
each refused one comes back with its index and reason, because a laboratory system sending results
as they come needs to know which ones to correct, not to resend the others.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from wuyiqu.audit import actions as audit
from wuyiqu.imports.registry import ImportContext, RowError, ScopeError, WriteCounts, get_kind
from wuyiqu.supervision.affected import FactsWritten

from .models import ACT_SCOPE, FACT_KINDS, SCOPES, ApiBatch, ApiToken

SECRET_PREFIX = "wyq_"
MAX_RECORDS = 10_000


class ApiError(Exception):
    """A refusal with its HTTP status and the one error shape: code, Chinese message, fields."""

    def __init__(self, status: int, code: str, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "fields": self.fields}


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- tokens ----------------------------------------------------------------------------------------

@transaction.atomic
def do_create_api_token(*, actor, name: str, unit, kinds: list[str] | None = None, days: int,
                        scopes: list[str] | None = None, acts_as=None) -> tuple[ApiToken, str]:
    """A new token; returns it and its secret, which is shown once and stored only hashed.

    ``kinds``: the fact kinds it may write; ``scopes``: what else it may read or do (SCOPES). A token
    with ``applications:act`` acts as the account ``acts_as``: at that account's review step (its
    role), on applications below both the token's unit and the account's own scope.
    Raises ValueError (Chinese) for an empty or taken name, unknown kinds or scopes, a token that may
    do nothing, a bad lifetime, or an ``acts_as`` missing, not a reviewer, or not covering the unit."""
    from wuyiqu.applications.workflow import STEP_ROLE

    kinds = list(dict.fromkeys(kinds or []))
    scopes = list(dict.fromkeys(scopes or []))
    name = (name or "").strip()
    if not name:
        raise ValueError(_("令牌名称不能为空"))
    if ApiToken.objects.filter(name=name).exists():
        raise ValueError(_("令牌名称“%(n)s”已被使用") % {"n": name})
    unknown = [k for k in kinds if k not in FACT_KINDS]
    if unknown:
        raise ValueError(_("数据类型无效：%(k)s；可用：%(all)s") % {"k": "、".join(unknown), "all": "、".join(FACT_KINDS)})
    unknown = [k for k in scopes if k not in SCOPES]
    if unknown:
        raise ValueError(_("权限无效：%(k)s；可用：%(all)s") % {"k": "、".join(unknown), "all": "、".join(SCOPES)})
    if not kinds and not scopes:
        raise ValueError(_("令牌至少需要一种数据类型或一项权限"))
    if not 1 <= days <= 366:
        raise ValueError(_("有效天数应在1到366之间"))
    role = ""
    if ACT_SCOPE in scopes:
        if acts_as is None:
            raise ValueError(_("审核权限（applications:act）须指定经办人账号"))
        if acts_as.role not in STEP_ROLE.values() or not acts_as.is_active:
            raise ValueError(_("经办人“%(u)s”不是在职的审核人员") % {"u": acts_as.username})
        if acts_as.unit_id is None or not unit.path.startswith(acts_as.unit.path):
            raise ValueError(_("令牌单位不在经办人“%(u)s”的管辖范围内") % {"u": acts_as.username})
        role = acts_as.role
    elif acts_as is not None:
        raise ValueError(_("只有审核权限（applications:act）的令牌需要经办人"))
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name, token_hash=hash_secret(secret), prefix=secret[:10], unit=unit, kinds=kinds, scopes=scopes,
        role=role, acts_as=acts_as,
        created_by=actor if (actor is not None and actor.is_authenticated) else None,
        expires_at=timezone.now() + dt.timedelta(days=days),
    )
    audit.record(actor=actor, action="api.token_create", target=token, unit=unit,
                 detail={"name": name, "kinds": token.kinds, "scopes": scopes, "role": role,
                         "acts_as": acts_as.username if acts_as else "", "expires_at": token.expires_at.isoformat()})
    return token, secret


@transaction.atomic
def do_revoke_api_token(*, actor, token: ApiToken) -> ApiToken:
    """Revoke at once; revoking a revoked token changes nothing (and writes no audit row)."""
    # Locked: a revocation racing a rename/another revocation must not write two audit rows.
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(actor=actor, action="api.token_revoke", target=token, unit=token.unit, detail={"name": token.name})
    return token


def authenticate(header: str) -> ApiToken:
    """The active token named by an ``Authorization: Bearer <secret>`` header; ApiError 401 otherwise."""
    scheme, _sep, secret = (header or "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise ApiError(401, "unauthenticated", _("缺少令牌：请在 Authorization 头中提供 Bearer 令牌"))
    token = ApiToken.objects.select_related("unit").filter(token_hash=hash_secret(secret)).first()
    if token is None:
        raise ApiError(401, "invalid_token", _("令牌无效"))
    if token.revoked_at is not None:
        raise ApiError(401, "token_revoked", _("令牌已吊销"))
    if timezone.now() >= token.expires_at:
        raise ApiError(401, "token_expired", _("令牌已过期"))
    return token


# --- fact batches ----------------------------------------------------------------------------------

@dataclass
class BatchOutcome:
    received: int = 0
    counts: WriteCounts = field(default_factory=WriteCounts)
    errors: list[dict[str, Any]] = field(default_factory=list)
    replayed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "accepted": self.received - len(self.errors),
            "created": self.counts.created,
            "updated": self.counts.updated,
            "unchanged": self.counts.unchanged,
            "unmatched": self.counts.unmatched,
            "rejected": len(self.errors),
            "errors": self.errors,
            "replayed": self.replayed,
        }


def _cell(value: Any) -> str:
    """A JSON value as the text a file cell would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and "\x00" not in value:  # a NUL no database text column holds
        return value.strip()
    raise TypeError


def _record_error(index: int, code: str, message: str, field_name: str = "") -> dict[str, Any]:
    return {"index": index, "code": code, "message": message, "fields": {field_name: message} if field_name else {}}


def do_submit_fact_batch(*, token: ApiToken, kind: str, batch_key: str, records: list[dict[str, Any]],
                         ip: str | None = None) -> BatchOutcome:
    """Write a batch of facts of ``kind`` on behalf of ``token``; one audit row.

    Refuses (ApiError) a kind the token may not write (403) or that the API does not know (404),
    and a batch that is empty or too large (400). A batch_key seen before returns the first answer
    and writes nothing. Refused records come back one by one in ``errors``; nothing is written for
    them. Re-sending records that are stored already adds nothing (the kinds are idempotent)."""
    if kind not in FACT_KINDS:
        raise ApiError(404, "unknown_kind", _("未知的数据类型“%(k)s”，可用：%(all)s") % {"k": kind, "all": "、".join(FACT_KINDS)},
                       {"kind": kind})
    if kind not in token.kinds:
        raise ApiError(403, "kind_not_allowed", _("此令牌无权写入“%(k)s”") % {"k": kind}, {"kind": kind})
    batch_key = (batch_key or "").strip()
    if not batch_key or len(batch_key) > 100 or "\x00" in batch_key:
        raise ApiError(400, "invalid_batch_key", _("batch_key 不能为空，最长100个字符"), {"batch_key": _("必填")})
    if not records:
        raise ApiError(400, "empty_batch", _("records 不能为空"), {"records": _("至少一条")})
    if len(records) > MAX_RECORDS:
        raise ApiError(400, "batch_too_large", _("一批最多%(n)d条记录") % {"n": MAX_RECORDS}, {"records": str(len(records))})

    stored = ApiBatch.objects.filter(token=token, kind=kind, batch_key=batch_key).first()
    if stored is not None:
        return _replay(token, kind, batch_key, stored, ip)

    import_kind = get_kind(kind)
    known = {c.key for c in import_kind.columns}
    ctx = ImportContext(actor=None, scope=token.unit, job=None, phase="check")
    outcome = BatchOutcome(received=len(records))
    parsed: list[tuple[int, Any]] = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            outcome.errors.append(_record_error(index, "invalid_record", _("每条记录应为一个对象")))
            continue
        # A name can be anything a client sends, a NUL included, which the stored answer (jsonb) and the
        # audit row cannot hold: names are quoted with NUL shown escaped, each at most 40 characters.
        extra = sorted(str(name).replace("\x00", "\\x00")[:40] for name in set(record) - known)
        if extra:
            outcome.errors.append(_record_error(index, "unknown_field", _("无法识别的字段：%(f)s；本类型的字段为：%(k)s") % {
                "f": "、".join(extra), "k": "、".join(c.key for c in import_kind.columns)}, extra[0]))
            continue
        try:
            raw = {key: _cell(record.get(key)) for key in known}
        except TypeError:
            outcome.errors.append(_record_error(index, "invalid_record", _("字段值应为文字或数字")))
            continue
        try:
            parsed.append((index, import_kind.parse_row(raw, ctx)))
        except RowError as exc:
            outcome.errors.append(_record_error(index, "invalid", exc.message, exc.field))
    problems = import_kind.check(parsed, ctx) if parsed else {}
    good: list[Any] = []
    first_of: dict[Any, int] = {}
    for index, p in parsed:
        err = problems.get(index)
        if err is not None:
            # ImportContext.scope_error returns a ScopeError: the type marks a scope refusal.
            code = "out_of_scope" if isinstance(err, ScopeError) else "invalid"
            outcome.errors.append(_record_error(index, code, err.message, err.field))
            continue
        key = import_kind.row_key(p)
        if key is not None:
            first = first_of.setdefault(key, index)
            if first != index:
                outcome.errors.append(_record_error(index, "duplicate", _("与第%(i)d条重复，已跳过") % {"i": first}))
                continue
        good.append(p)
    outcome.errors.sort(key=lambda e: e["index"])

    ctx.phase = "write"
    try:
        with transaction.atomic():
            # The batch row first: a concurrent request with the same key waits on its unique
            # index and then fails, instead of writing the records a second time.
            batch = ApiBatch.objects.create(token=token, kind=kind, batch_key=batch_key)
            size = import_kind.batch_size
            facts = FactsWritten(import_kind, ctx)  # supervision: withdraw/warn in this transaction
            for i in range(0, len(good), size):
                outcome.counts += import_kind.write(good[i:i + size], ctx)
                facts.add(good[i:i + size])
            facts.recheck(actor=None, source=f"api:{token.name}:{kind}")
            batch.response = outcome.as_dict()
            batch.save(update_fields=["response"])
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
            _audit(token, kind, batch_key, outcome.as_dict(), ip, status=200)
    except IntegrityError:
        stored = ApiBatch.objects.filter(token=token, kind=kind, batch_key=batch_key).first()
        if stored is None:
            raise
        return _replay(token, kind, batch_key, stored, ip)
    return outcome


def _replay(token: ApiToken, kind: str, batch_key: str, stored: ApiBatch, ip: str | None) -> BatchOutcome:
    body = dict(stored.response)
    outcome = BatchOutcome(received=body.get("received", 0), errors=body.get("errors", []), replayed=True)
    outcome.counts = WriteCounts(created=body.get("created", 0), updated=body.get("updated", 0),
                                 unchanged=body.get("unchanged", 0), unmatched=body.get("unmatched", 0))
    _audit(token, kind, batch_key, {**outcome.as_dict(), "errors": len(outcome.errors)}, ip, status=200)
    return outcome


def _audit(token: ApiToken | None, kind: str, batch_key: str, counts: dict[str, Any], ip: str | None, *,
           status: int) -> None:
    detail = {"token": token.name if token else "", "kind": kind, "batch_key": batch_key, "status": status,
              **{k: v for k, v in counts.items() if k != "errors"}}
    if isinstance(counts.get("errors"), list):
        detail["rejected"] = len(counts["errors"])
    audit.record(actor=None, action="api.facts", target_type="api.apitoken", target_id=token.pk if token else "",
                 unit=token.unit if token else None, detail=detail, ip=ip)


# The counts of an hour at which a refused token writes its audit row: 1st, 100th, 10,000th, 1,000,000th.
UNAUTHENTICATED_AUDITED_AT = (1, 100, 10_000, 1_000_000)


def record_unauthenticated_call(*, error: ApiError, ip: str | None, path: str, method: str) -> int:
    """A call refused at its token (401: none, unknown, revoked, expired). Not an audit row each:
    anyone on the network can send such calls, and a row each let them fill the audit table (one
    INSERT per request). They are counted per hour in the shared cache, and the hour's 1st, 100th,
    10,000th and 1,000,000th write one row ``api.unauthenticated`` with the count so far and the
    latest call (address, path, code) — at most four rows an hour, however many calls. Returns the
    hour's count."""
    from django.core.cache import cache

    key = f"api-unauthenticated:{timezone.now():%Y%m%d%H}"
    cache.add(key, 0, timeout=7200)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=7200)
        count = 1
    if count in UNAUTHENTICATED_AUDITED_AT:
        audit.record(actor=None, action="api.unauthenticated", target_type="api.apitoken", ip=ip,
                     detail={"count_this_hour": count, "code": error.code, "status": error.status,
                             "method": method, "op": path[:200]})
    return count


def record_refused_call(*, token: ApiToken | None, kind: str, error: ApiError, ip: str | None,
                        path: str = "", method: str = "POST") -> None:
    """The audit row of a call that was refused before any write (401, 403, 400, 404): ``api.facts``
    for a fact batch; for another path (``path`` given), ``api.read`` for a GET, ``api.act`` otherwise."""
    if not path or "/facts/" in path:
        _audit(token, kind, "", {"code": error.code}, ip, status=error.status)
        return
    audit.record(actor=None, action="api.read" if method == "GET" else "api.act", target_type="api.apitoken",
                 target_id=token.pk if token else "", unit=token.unit if token else None, ip=ip,
                 detail={"token": token.name if token else "", "op": path[:200], "status": error.status,
                         "code": error.code})
