from django.urls import path

from . import views

app_name = "certification"

urlpatterns = [
    path("certificates/<str:number>.pdf", views.certificate, name="certificate"),
    path("verify/<str:number>/", views.verify, name="verify"),
]
