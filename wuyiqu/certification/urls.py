from django.urls import path, re_path

from . import views

app_name = "certification"

urlpatterns = [
    path("certificates/<str:number>.pdf", views.certificate, name="certificate"),
    path("verify/<str:number>/", views.verify, name="verify"),
    # Anything else under /verify/ (no number, a slash in it): "查无此证书", not the staff 404.
    re_path(r"^verify/(?:(?P<rest>.+))?$", views.verify_malformed, name="verify_malformed"),
]
