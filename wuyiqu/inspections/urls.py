from django.urls import path

from . import views

app_name = "inspections"

urlpatterns = [
    path("units/<str:code>/inspections/", views.record_inspection, name="record"),
    path("units/<str:code>/incidents/", views.record_incident, name="incident"),
    path("units/<str:code>/incidents/<int:incident_id>/handled/", views.opinion_handled, name="opinion_handled"),
    path("units/<str:code>/incidents/<int:incident_id>/accept/", views.opinion_accept, name="opinion_accept"),
    path("units/<str:code>/incidents/<int:incident_id>/return/", views.opinion_return, name="opinion_return"),
]
