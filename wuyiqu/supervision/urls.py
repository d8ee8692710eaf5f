from django.urls import path

from . import views

app_name = "supervision"

urlpatterns = [
    path("units/<str:code>/history/", views.history, name="history"),
    path("units/<str:code>/history/warn/", views.warn, name="warn"),
    path("units/<str:code>/history/warnings/<int:warning_id>/close/", views.close_warning, name="close_warning"),
    path("units/<str:code>/history/withdraw/", views.withdraw, name="withdraw"),
    path("units/<str:code>/history/reinstate/", views.reinstate, name="reinstate"),
]
