from django.urls import path

from . import views

app_name = "health"

urlpatterns = [
    path("units/<str:code>/measures/", views.measures, name="measures"),
    path("units/<str:code>/measures/export.xlsx", views.measures_xlsx, name="measures_xlsx"),
    path("units/<str:code>/testing/", views.testing, name="testing"),
    path("units/<str:code>/testing/export.xlsx", views.testing_xlsx, name="testing_xlsx"),
    path("residents/<int:resident_id>/timeline/", views.timeline, name="timeline"),
    path("measures/<int:measure_id>/", views.measure, name="measure"),
    path("measures/<int:measure_id>/end-early/", views.end_measure_early, name="end_measure_early"),
    path("measures/<int:measure_id>/extend/", views.extend_measure, name="extend_measure"),
    path("held-facts/", views.held_facts, name="held_facts"),
    path("held-facts/<int:held_id>/decide/", views.decide_held_facts, name="decide_held_facts"),
]
