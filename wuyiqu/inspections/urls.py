from django.urls import path

from . import views

app_name = "inspections"

urlpatterns = [
    path("units/<str:code>/inspections/", views.record_inspection, name="record"),
    path("units/<str:code>/incidents/", views.record_incident, name="incident"),
]
