from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
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
