"""The JSON API under /api/v1/ (django-ninja). The OpenAPI document is /api/v1/openapi.json, the
interactive docs /api/v1/docs (Swagger UI from the vendored files in wuyiqu/static/vendor/swagger-ui).

Every error, whatever raised it, has one shape: ``{"code": ..., "message": ..., "fields": {...}}``
with a 4xx status for bad input (422 for a request that does not match the document, 400 for a body
that is not JSON, 415 for one that is not sent as JSON, 413 for one too large); an unexpected failure
is logged and answered with the same shape and 500.

A token sees its unit's subtree only: a unit, application or evaluation outside it is a 404, the same
as a missing one. What it may read or do is its ``scopes`` (403 otherwise); every call with an
accepted token writes one audit row (``api.facts`` for fact batches, ``api.read`` for reads,
``api.act`` for decisions). A call whose token is refused (401) is counted, not audited each: at most
four ``api.unauthenticated`` rows an hour (``actions.record_unauthenticated_call``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, Literal

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import DataError
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, NinjaAPI, Path, Query, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer
from pydantic import field_validator

from wuyiqu.applications.workflow import IllegalTransition

from . import actions, reads
from .actions import ApiError
from .docs import LocalSwagger
from .models import ACT_SCOPE, FACT_KINDS

log = logging.getLogger(__name__)

CODE_PATTERN = r"^[0-9A-Za-z_-]{1,40}$"  # unit codes
NUMBER_PATTERN = r"^[0-9A-Za-z_-]{1,32}$"  # certificate numbers
MAX_ID = 2**31 - 1


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _kind_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    kind = (match.kwargs.get("kind") if match else None) or request.path.rstrip("/").rsplit("/", 1)[-1]
    return str(kind)[:32]


class BearerToken(HttpBearer):
    """``Authorization: Bearer <secret>`` -> the active ApiToken (request.auth). Checked before the
    body is read; a refused token answers 401 with the reason, counted (not an audit row each:
    ``actions.record_unauthenticated_call``)."""

    def __call__(self, request: HttpRequest):
        try:
            return actions.authenticate(request.headers.get("Authorization", ""))
        except ApiError as exc:
            actions.record_unauthenticated_call(error=exc, ip=_client_ip(request), path=request.path,
                                                method=request.method)
            raise

    def authenticate(self, request, token):  # pragma: no cover (``__call__`` does the work)
        return None


class JsonOnly(Parser):
    """Bodies are JSON, sent as JSON: another content type is a 415, unparsable text a 400."""

    def parse_body(self, request: HttpRequest):
        # ninja turns any exception here into HttpError(400); the handler answers the one kept here.
        if request.content_type != "application/json":
            request._api_body_error = ApiError(
                415, "unsupported_media_type", _("请求体应为 JSON（Content-Type: application/json）"),
                {"Content-Type": (request.content_type or "")[:100]})
            raise request._api_body_error
        try:
            return json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            request._api_body_error = ApiError(400, "invalid_json", _("请求内容无法解析：应为 JSON"),
                                               {"body": str(exc)[:200]})
            raise request._api_body_error from None


# Constraints the server enforces that a parameter's type cannot carry into the document, added to it:
# a date outside reads.FIRST_DAY..LAST_DAY is a 422, a fact kind outside FACT_KINDS a 404.
DATE_PATTERN = r"^(20[0-9]{2}|2100)-[0-9]{2}-[0-9]{2}$"


class DeclaredAPI(NinjaAPI):
    """The document declares every constraint the server enforces (schemathesis's positive-data check:
    a request the document allows must not be refused)."""

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        document = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for path, operations in document.get("paths", {}).items():
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    schema = parameter.get("schema", {})
                    variants = schema.get("anyOf", [schema])
                    for variant in variants:
                        if variant.get("format") == "date":
                            variant["pattern"] = DATE_PATTERN
                    if path.endswith("/facts/{kind}") and parameter.get("name") == "kind":
                        schema["enum"] = list(FACT_KINDS[1:])
        return document


api = DeclaredAPI(
    title="wuyiqu API",
    version="1",
    description=(
        "无疫区系统接口。认证：Authorization: Bearer <令牌>（`wuyiqu api-token create` 生成）。"
        "令牌限定一个单位及其下级：范围外的对象与不存在的一样返回 404；令牌缺少的权限返回 403。"
        "所有错误的格式均为 {code, message, fields}。"
    ),
    urls_namespace="api-v1",
    docs=LocalSwagger(),
    docs_url="/docs",
    auth=BearerToken(),
    parser=JsonOnly(),
)


# --- schemas -----------------------------------------------------------------------------------------

class ErrorOut(Schema):
    code: str = Field(..., examples=["not_found"])
    message: str = Field(..., examples=["不存在"])
    fields: dict[str, str] = {}


class RecordError(Schema):
    index: int
    code: str
    message: str
    fields: dict[str, str] = {}


class BatchOut(Schema):
    received: int
    accepted: int
    created: int
    updated: int
    unchanged: int
    unmatched: int
    rejected: int
    errors: list[RecordError]
    replayed: bool


class NatRecord(Schema):
    id_number: str = Field(..., description="18位身份证号", examples=["500222199001011234"])
    sampled_at: str = Field(..., description="采样时间 YYYY-MM-DD HH:MM[:SS]，北京时间", examples=["2022-11-24 08:30"])
    result: str = Field(..., description="negative/positive 或 阴性/阳性", examples=["negative"])


# What actions.do_submit_fact_batch refuses, declared: a batch key with a character that is not white
# space and no NUL (the database cannot hold one), at most 100 characters; 1 to MAX_RECORDS records.
# A decision's opinion likewise.
NOT_BLANK_NO_NUL = r"^[^\x00]*\S[^\x00]*$"


def _batch_key():
    return Field(..., description="批次号：同一批次重发不会重复写入（不能只有空白）", min_length=1, max_length=100,
                 pattern=NOT_BLANK_NO_NUL, examples=["lab-2022-11-24-001"])


class NatBatchIn(Schema):
    batch_key: str = _batch_key()
    records: list[NatRecord] = Field(..., min_length=1, max_length=actions.MAX_RECORDS)


class FactBatchIn(Schema):
    batch_key: str = _batch_key()
    records: list[dict[str, Any]] = Field(..., description="每条记录的字段与同类文件导入的英文列名相同（见 SPEC §7）",
                                          min_length=1, max_length=actions.MAX_RECORDS)


class UnitRefOut(Schema):
    code: str
    name: str
    kind: str


class CountsOut(Schema):
    children: int
    households: int
    residents: int
    special: int


class TitleOut(Schema):
    title: str
    named_on: dt.date
    certificate_number: str | None


class CriterionOut(Schema):
    id: str
    passed: bool
    detail: str
    items: list[dict[str, Any]] = []


class EligibilityOut(Schema):
    on: dt.date
    eligible: bool
    named: bool
    criteria: list[CriterionOut]


class UnitOut(Schema):
    code: str
    name: str
    kind: str
    path: list[UnitRefOut] = Field(..., description="从最上级到本单位")
    counts: CountsOut
    title: TitleOut | None = Field(..., description="当前称号；没有则为 null")
    eligibility: EligibilityOut | None = Field(..., description="今天的评估；没有称号的单位类型为 null")


class UnitPage(Schema):
    count: int
    items: list[UnitRefOut]


class HistoryEntryOut(Schema):
    on: dt.date
    kind: str = Field(..., examples=["application"])
    label: str
    text: str
    who: str


class EvaluationOut(Schema):
    """The `wuyiqu evaluate --json` entry of one unit (``UnitEvaluation.as_contract``)."""
    unit: str
    kind: str
    title: str
    eligible: bool
    named: bool
    criteria: list[CriterionOut]
    name: str
    earliest_pass_on: dt.date | None


class EvaluationPage(Schema):
    on: dt.date
    count: int
    items: list[EvaluationOut]


class ReviewStepOut(Schema):
    decision: str
    opinion: str
    actor_name: str
    actor_role: str
    from_status: str
    to_status: str
    decided_at: dt.datetime


class ApplicationOut(Schema):
    id: int
    unit: UnitRefOut
    title: str
    status: str
    status_label: str
    step_role: str | None = Field(..., description="当前环节的办理角色；不在审核环节为 null")
    opened_at: dt.datetime
    submitted_at: dt.datetime | None
    signatures: int


class ApplicationDetailOut(ApplicationOut):
    steps: list[ReviewStepOut]


class ApplicationPage(Schema):
    count: int
    items: list[ApplicationOut]


class DecisionIn(Schema):
    status: str = Field(..., description="办理人看到的申请状态；申请已被他人处理（状态已变）时返回 409",
                        examples=["street_review"], pattern=r"^[a-z_]{1,20}$")
    decision: Literal["approve", "return", "reject", "send_back"] = Field(..., examples=["approve"])
    opinion: str = Field(..., min_length=1, max_length=2000, pattern=NOT_BLANK_NO_NUL, description="签注意见（必填）",
                         examples=["同意，报区卫健委复核"])
    send_back_to: str | None = Field(None, pattern=r"^[a-z_]{1,20}$", description="send_back 时发回的环节")


    @field_validator("opinion")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("意见中不能有 NUL 字符")
        return value


class CertificateOut(Schema):
    number: str
    unit_name: str
    title: str
    named_on: dt.date
    current: bool
    withdrawn_on: dt.date | None
    on: dt.date


# --- errors --------------------------------------------------------------------------------------------

def _error(request, status: int, code: str, message: str, fields: dict[str, str] | None = None):
    return api.create_response(request, {"code": code, "message": message, "fields": fields or {}}, status=status)


def _audited_error(request, status: int, code: str, message: str, fields: dict[str, str] | None = None):
    """An error raised after the token was accepted but before the operation ran (a body or a
    parameter it cannot read): audited too, so that every authenticated call leaves its row."""
    token = getattr(request, "auth", None)
    if token is not None and not getattr(request, "_api_audited", False):
        actions.record_refused_call(token=token, kind=_kind_of(request), error=ApiError(status, code, message),
                                    ip=_client_ip(request), path=request.path, method=request.method)
    return _error(request, status, code, message, fields)


@api.exception_handler(ApiError)
def _api_error(request, exc: ApiError):
    if exc.status in (400, 415):  # raised by the parser, before the operation could audit
        return _audited_error(request, exc.status, exc.code, exc.message, exc.fields)
    return _error(request, exc.status, exc.code, exc.message, exc.fields)


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    fields: dict[str, str] = {}
    for err in exc.errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "payload")]
        fields[".".join(loc) or "body"] = str(err.get("msg", ""))
    return _audited_error(request, 422, "invalid", _("请求内容不符合接口文档"), fields)


@api.exception_handler(AuthenticationError)
def _auth_error(request, exc):
    return _error(request, 401, "unauthenticated", _("缺少令牌或令牌无效"))


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    kept = getattr(request, "_api_body_error", None)
    if kept is not None:
        return _audited_error(request, kept.status, kept.code, kept.message, kept.fields)
    if exc.status_code == 400:
        return _audited_error(request, 400, "invalid_json", _("请求内容无法解析：应为 JSON"), {"body": str(exc)})
    return _audited_error(request, exc.status_code, "http_error", str(exc))


@api.exception_handler(Http404)
def _not_found(request, exc):
    return _error(request, 404, "not_found", _("不存在"))


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return _error(request, 403, "forbidden", str(exc) or _("无权办理"))


@api.exception_handler(RequestDataTooBig)
def _too_big(request, exc):
    return _error(request, 413, "too_large", _("请求过大，请分批发送"))


@api.exception_handler(DataError)
def _data_error(request, exc):
    # A value the database cannot hold (e.g. a NUL character in text): the input is at fault.
    return _audited_error(request, 422, "invalid", _("请求中有数据库无法保存的值"), {})


@api.exception_handler(Exception)
def _unexpected(request, exc):
    log.exception("API call %s failed", request.path)
    return _error(request, 500, "server_error", _("服务器内部错误，已记录"))


# Every error a call can get, in the one shape. 405 is answered by wuyiqu/api/urls.py for a method the
# path does not have; 500 is the shape of an unexpected failure (logged; no input should cause one).
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 405: ErrorOut, 409: ErrorOut,
          413: ErrorOut, 415: ErrorOut, 422: ErrorOut, 500: ErrorOut}


def responses(ok) -> dict[int, Any]:
    return {200: ok, **ERRORS}


# --- fact batches ------------------------------------------------------------------------------------

def _submit(request: HttpRequest, kind: str, batch_key: str, records: list[dict[str, Any]]):
    token = request.auth
    request._api_audited = True
    try:
        return actions.do_submit_fact_batch(token=token, kind=kind, batch_key=batch_key, records=records,
                                            ip=_client_ip(request)).as_dict()
    except ApiError as exc:
        actions.record_refused_call(token=token, kind=kind, error=exc, ip=_client_ip(request))
        raise
    except DataError:
        actions.record_refused_call(token=token, kind=kind, error=ApiError(422, "invalid", ""), ip=_client_ip(request))
        raise


@api.post("/facts/nat-results", response=responses(BatchOut), summary="写入核酸检测结果", tags=["facts"],
          description="每条记录一人一次采样。身份证号不在名册中、或登记在令牌管辖单位以外的结果也会保存，"
                      "两者同样计为 unmatched，不计入任何居民（后者待覆盖双方的街道或区卫健委确认）。"
                      "阳性结果同时记为采样当日的阳性感染者。")
def post_nat_results(request, payload: NatBatchIn):
    return _submit(request, "nat-results", payload.batch_key, [r.dict() for r in payload.records])


@api.post("/facts/{kind}", response=responses(BatchOut), summary="写入其他防疫事实", tags=["facts"],
          description="kind：" + "、".join(FACT_KINDS[1:]) + "。字段与同类文件导入的英文列名相同。")
def post_facts(request, payload: FactBatchIn, kind: str = Path(..., pattern=r"^[a-z-]{1,32}$", example="cases")):
    return _submit(request, kind, payload.batch_key, payload.records)


# --- reads ---------------------------------------------------------------------------------------------

# A parameter's ``example`` (one value), not ``examples``: ninja would copy a list onto the parameter,
# where OpenAPI wants a map of Example objects.
Code = Path(..., pattern=CODE_PATTERN, description="单位编码", example="500110002015")
Limit = Query(100, ge=1, le=1000)
Offset = Query(0, ge=0, le=10_000_000)
OnDate = Query(None, description="日期 YYYY-MM-DD，2000 至 2100 年（默认今天）", example="2022-11-25")


@api.get("/units/{code}", response=responses(UnitOut), summary="单位概况", tags=["units"],
         description="单位、上级路径、户数与人数、当前称号和今天的评估（各标准的编号、是否通过、情况）。需要 units:read。")
def get_unit(request, code: str = Code):
    with reads.call(request, "units:read", "unit") as c:
        return c.done(reads.unit_overview(c.principal, code), code)


@api.get("/units/{code}/children", response=responses(UnitPage), summary="下级单位", tags=["units"],
         description="需要 units:read。")
def get_unit_children(request, code: str = Code, limit: int = Limit, offset: int = Offset):
    with reads.call(request, "units:read", "unit.children") as c:
        return c.done(reads.unit_children(c.principal, code, limit, offset), code)


@api.get("/units/{code}/history", response=responses(list[HistoryEntryOut]), summary="单位历程", tags=["units"],
         description="申请与审核、命名、警示与整改、摘牌与恢复、每日评估，按日期排列。需要 units:read。")
def get_unit_history(request, code: str = Code):
    with reads.call(request, "units:read", "unit.history") as c:
        return c.done(reads.unit_history(c.principal, code), code)


@api.get("/units/{code}/evaluation", response=responses(EvaluationOut), summary="单位某日的评估",
         tags=["evaluations"], description="与 `wuyiqu evaluate --json` 中该单位的条目相同。需要 evaluations:read。")
def get_unit_evaluation(request, code: str = Code, date: dt.date | None = OnDate):
    with reads.call(request, "evaluations:read", "unit.evaluation") as c:
        return c.done(reads.unit_evaluation(c.principal, code, date), code)


@api.get("/evaluations", response=responses(EvaluationPage), summary="评估列表", tags=["evaluations"],
         description="root（默认令牌的单位）及其下级各有称号单位某日的评估，按树的顺序分页。需要 evaluations:read。")
def list_evaluations(request, date: dt.date | None = OnDate,
                     root: str | None = Query(None, pattern=CODE_PATTERN, description="单位编码（默认令牌的单位）",
                                              example="500110002015"),
                     limit: int = Limit, offset: int = Offset):
    with reads.call(request, "evaluations:read", "evaluations") as c:
        return c.done(reads.evaluations(c.principal, date, root, limit, offset), root or "")


@api.get("/applications", response=responses(ApplicationPage), summary="申请列表", tags=["applications"],
         description="step=mine：停在令牌办理角色环节的申请（待办），最早提交的在前。需要 applications:read。")
def list_applications(request, step: Literal["mine"] | None = Query(None), limit: int = Limit, offset: int = Offset):
    with reads.call(request, "applications:read", "applications") as c:
        return c.done(reads.applications(c.principal, step, limit, offset), step or "")


@api.get("/applications/{application_id}", response=responses(ApplicationDetailOut), summary="申请详情",
         tags=["applications"], description="需要 applications:read。")
def get_application(request, application_id: int = Path(..., ge=1, le=MAX_ID)):
    with reads.call(request, "applications:read", "application") as c:
        return c.done(reads.application_detail(c.principal, application_id), application_id)


@api.post("/applications/{application_id}/decisions", response=responses(ApplicationDetailOut),
          summary="审核决定", tags=["applications"],
          description="以令牌的经办人身份在当前环节作出决定（通过、退回、不予通过、发回），须签注意见。"
                      "与网页相同的状态机与拒绝理由；申请已被他人处理时 409。需要 applications:act。")
def post_decision(request, payload: DecisionIn, application_id: int = Path(..., ge=1, le=MAX_ID)):
    from wuyiqu.applications.actions import ApplicationRefused, ReviewConflict

    with reads.call(request, ACT_SCOPE, "decision", action="api.act") as c:
        try:
            out = reads.decide(c.principal, request.auth, application_id, status=payload.status,
                               decision=payload.decision, opinion=payload.opinion, send_back_to=payload.send_back_to)
        except ReviewConflict as exc:
            raise ApiError(409, "conflict", str(exc), {"status": payload.status}) from None
        except IllegalTransition as exc:
            raise ApiError(409, "illegal_transition", str(exc), {"decision": payload.decision}) from None
        except ApplicationRefused as exc:
            raise ApiError(409, "refused", str(exc)) from None
        return c.done(out, application_id, decision=payload.decision)


@api.get("/public/certificates/{number}", response=responses(CertificateOut), auth=None,
         summary="证书查验（公开）", tags=["public"],
         description="证书二维码背后的公开查验：单位名称、称号、命名日期、今天是否有效。无需令牌，不含个人信息。")
def get_certificate(request, number: str = Path(..., pattern=NUMBER_PATTERN, example="WYQ-2022-000001")):
    from wuyiqu.certification.selectors import verify_certificate

    t = verify_certificate(number)
    return {"number": t.number, "unit_name": t.unit_name, "title": t.title, "named_on": t.named_on,
            "current": t.current, "withdrawn_on": t.withdrawn_on, "on": t.on}
