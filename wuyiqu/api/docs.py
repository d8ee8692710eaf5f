"""The interactive docs page (/api/v1/docs): Swagger UI from the vendored files in
``wuyiqu/static/vendor/swagger-ui`` (swagger-ui-dist, Apache-2.0, see its LICENSE there), never a CDN,
and no inline script: ``static/api/swagger-init.js`` reads the document's URL from the page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from ninja.openapi.docs import DocsBase


class LocalSwagger(DocsBase):
    template = "api/docs.html"

    def render_page(self, request: HttpRequest, api, **kwargs) -> HttpResponse:
        return render(request, self.template, {"api": api, "openapi_url": self.get_openapi_url(api, kwargs)})
