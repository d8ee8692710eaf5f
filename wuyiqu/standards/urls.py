from django.urls import path

from . import views

app_name = "standards"

urlpatterns = [
    path("units/<str:code>/assessment/", views.assessment, name="assessment"),
]
