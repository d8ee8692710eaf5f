"""/api/v1/: the ninja API, with JSON errors for what ninja itself answers in HTML or empty (an
unknown path, a method the path does not have)."""

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


_patterns, _app, _namespace = api.urls
app_name = _namespace  # "api-v1": the namespace ninja reverses its own URLs in
for _p in _patterns:
    # ninja's root ("api-root", reversed to build the document's paths) would answer an HTML 404
    _p.callback = not_found if _p.name == "api-root" else _json_405(_p.callback)

urlpatterns = [
    *_patterns,
    re_path(r"^(?P<rest>.*)$", not_found),
]
