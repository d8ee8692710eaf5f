"""The JSON API under /api/v1/ (django-ninja); its OpenAPI document is /api/v1/openapi.json.

Every error, whatever raised it, has one shape: ``{"code": ..., "message": ..., "fields": {...}}``
with a 4xx status for bad input; an unexpected failure is logged and answered with the same shape
and 500. The interactive docs page is off: ninja's page loads Swagger UI from a CDN, and the
deployment has no internet; the OpenAPI JSON is served and complete.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from . import actions
from .actions import ApiError
from .models import FACT_KINDS

log = logging.getLogger(__name__)


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _kind_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    kind = (match.kwargs.get("kind") if match else None) or request.path.rstrip("/").rsplit("/", 1)[-1]
    return str(kind)[:32]


class BearerToken(HttpBearer):
    """``Authorization: Bearer <secret>`` -> the active ApiToken (request.auth). Checked before the
    body is read; a refused token answers 401 with the reason and writes its audit row."""

    def __call__(self, request: HttpRequest):
        try:
            return actions.authenticate(request.headers.get("Authorization", ""))
        except ApiError as exc:
            actions.record_refused_call(token=None, kind=_kind_of(request), error=exc, ip=_client_ip(request))
            raise

    def authenticate(self, request, token):  # pragma: no cover (``__call__`` does the work)
        return None


api = NinjaAPI(
    title="wuyiqu API",
    version="1",
    description="无疫区系统接口：由外部系统（如核酸检测机构）按批次写入防疫事实。认证：Authorization: Bearer <令牌>。",
    urls_namespace="api-v1",
    docs_url=None,  # Swagger UI would come from a CDN; the OpenAPI JSON is served
    auth=BearerToken(),
)


class ErrorOut(Schema):
    code: str
    message: str
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


class NatBatchIn(Schema):
    batch_key: str = Field(..., description="批次号：同一批次重发不会重复写入", max_length=100)
    records: list[NatRecord]


class FactBatchIn(Schema):
    batch_key: str = Field(..., description="批次号：同一批次重发不会重复写入", max_length=100)
    records: list[dict[str, Any]] = Field(..., description="每条记录的字段与同类文件导入的英文列名相同（见 SPEC §7）")


def _error(request, status: int, code: str, message: str, fields: dict[str, str] | None = None):
    return api.create_response(request, {"code": code, "message": message, "fields": fields or {}}, status=status)


def _audited_error(request, status: int, code: str, message: str, fields: dict[str, str] | None = None):
    """An error raised by ninja after the token was accepted (a body it cannot read): audited too,
    so that every authenticated call leaves its row."""
    token = getattr(request, "auth", None)
    if token is not None:
        actions.record_refused_call(token=token, kind=_kind_of(request), error=ApiError(status, code, message),
                                    ip=_client_ip(request))
    return _error(request, status, code, message, fields)


@api.exception_handler(ApiError)
def _api_error(request, exc: ApiError):
    return _error(request, exc.status, exc.code, exc.message, exc.fields)


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    fields: dict[str, str] = {}
    for err in exc.errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "payload")]
        fields[".".join(loc) or "body"] = str(err.get("msg", ""))
    return _audited_error(request, 400, "invalid_request", _("请求内容不符合格式"), fields)


@api.exception_handler(AuthenticationError)
def _auth_error(request, exc):
    return _error(request, 401, "unauthenticated", _("缺少令牌或令牌无效"))


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    # Raised by ninja itself, e.g. for a body that is not JSON (400).
    if exc.status_code == 400:
        return _audited_error(request, 400, "invalid_request", _("请求内容无法解析：应为 JSON"), {"body": str(exc)})
    return _audited_error(request, exc.status_code, "http_error", str(exc))


@api.exception_handler(Http404)
def _not_found(request, exc):
    return _error(request, 404, "not_found", _("不存在"))


@api.exception_handler(RequestDataTooBig)
def _too_big(request, exc):
    return _error(request, 413, "too_large", _("请求过大，请分批发送"))


@api.exception_handler(Exception)
def _unexpected(request, exc):
    log.exception("API call %s failed", request.path)
    return _error(request, 500, "server_error", _("服务器内部错误，已记录"))


def _submit(request: HttpRequest, kind: str, batch_key: str, records: list[dict[str, Any]]):
    token = request.auth
    try:
        return actions.do_submit_fact_batch(token=token, kind=kind, batch_key=batch_key, records=records,
                                            ip=_client_ip(request)).as_dict()
    except ApiError as exc:
        actions.record_refused_call(token=token, kind=kind, error=exc, ip=_client_ip(request))
        raise


RESPONSES = {200: BatchOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut}


@api.post("/facts/nat-results", response=RESPONSES, summary="写入核酸检测结果",
          description="每条记录一人一次采样。身份证号不在名册中的结果也会保存（计为 unmatched）；"
                      "属于令牌管辖单位以外居民的记录被拒绝（out_of_scope）。阳性结果同时记为采样当日的阳性感染者。")
def post_nat_results(request, payload: NatBatchIn):
    return _submit(request, "nat-results", payload.batch_key, [r.dict() for r in payload.records])


@api.post("/facts/{kind}", response=RESPONSES, summary="写入其他防疫事实",
          description="kind：" + "、".join(FACT_KINDS[1:]) + "。字段与同类文件导入的英文列名相同。")
def post_facts(request, kind: str, payload: FactBatchIn):
    return _submit(request, kind, payload.batch_key, payload.records)
