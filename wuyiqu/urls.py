from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path


def _favicon(request):
    """The icon's static URL, looked up per request: at import the manifest of collected static files may
    not exist yet (`wuyiqu check` before `collectstatic`)."""
    return HttpResponsePermanentRedirect(static("wuyiqu/favicon.svg"))


urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    # Browsers ask for /favicon.ico on every page (and on the PDFs and JSON they open) whatever the
    # page links: one permanent redirect to the icon base.html links, instead of a 404 each time.
    path("favicon.ico", _favicon, name="favicon"),
    path("api/v1/", include("wuyiqu.api.urls")),
    path("", include("wuyiqu.web.urls")),
    path("", include("wuyiqu.health.urls")),
    path("", include("wuyiqu.standards.urls")),
    path("", include("wuyiqu.inspections.urls")),
    path("", include("wuyiqu.applications.urls")),
    path("", include("wuyiqu.certification.urls")),
    path("", include("wuyiqu.notifications.urls")),
    path("", include("wuyiqu.supervision.urls")),
    path("", include("wuyiqu.dashboard.urls")),
    path("", include("wuyiqu.accounts.urls")),
    path("", include("wuyiqu.audit.urls")),
]
