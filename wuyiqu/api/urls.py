"""/api/v1/: the ninja API, with JSON errors for what ninja itself answers in HTML or empty (an
unknown path, a method the path does not have)."""

import re
from functools import wraps

from django.http import JsonResponse
from django.urls import re_path
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from .api import api


def _error(status: int, code: str, message: str, fields=None) -> JsonResponse:
    return JsonResponse({"code": code, "message": message, "fields": fields or {}}, status=status,
                        json_dumps_params={"ensure_ascii": False})


def _json_405(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith("application/json"):
            allowed = response.get("Allow", "")
            response = _error(405, "method_not_allowed", _("此路径不支持 %(m)s 方法") % {"m": request.method},
                              {"method": request.method})
            response["Allow"] = allowed
        return response
    return wrapped


@csrf_exempt
def not_found(request, rest=""):
    return _error(404, "not_found", _("不存在"), {"path": request.path[:200]})


def _declared_query() -> dict[str, tuple[dict[str, set[str]], bool]]:
    """For each ninja path ("units/{code}/children"): the query parameters each method declares, and
    whether the path needs a token."""
    declared: dict[str, tuple[dict[str, set[str]], bool]] = {}
    for _prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            names: dict[str, set[str]] = {}
            protected = False
            for operation in path_view.operations:
                query = {name for model in operation.signature.models if model.__ninja_param_source__ == "query"
                         for name in model.model_fields}
                for method in operation.methods:
                    names[method] = query
                protected = protected or operation.auth_callbacks != []
            declared[path.lstrip("/")] = (names, protected)
    return declared


def _refuse_unknown_query(view, declared: dict[str, set[str]], protected: bool):
    """A query parameter the document does not declare for the operation is a 422 (schemathesis's
    negative-data check: what the document forbids is refused), once the token is accepted — a call
    without a valid token still gets its 401."""
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        unknown = sorted(set(request.GET) - declared.get(request.method, set()))
        if unknown and request.method in declared:
            authenticated = True
            if protected:
                from .actions import ApiError, authenticate

                try:
                    authenticate(request.headers.get("Authorization", ""))
                except ApiError:
                    authenticated = False
            if authenticated:
                shown = "、".join(name[:40] or '""' for name in unknown[:5])
                return _error(422, "invalid", _("无法识别的查询参数：%(names)s") % {"names": shown},
                              {name[:40]: _("接口文档中没有此参数") for name in unknown[:5]})
        return view(request, *args, **kwargs)
    return wrapped


_patterns, _app, _namespace = api.urls
app_name = _namespace  # "api-v1": the namespace ninja reverses its own URLs in
_DECLARED = _declared_query()
for _p in _patterns:
    # ninja's root ("api-root", reversed to build the document's paths) would answer an HTML 404
    if _p.name == "api-root":
        _p.callback = not_found
        continue
    _route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(_p.pattern))
    if _route in _DECLARED:
        _p.callback = _refuse_unknown_query(_p.callback, *_DECLARED[_route])
    _p.callback = _json_405(_p.callback)

urlpatterns = [
    *_patterns,
    re_path(r"^(?P<rest>.*)$", not_found),
]
