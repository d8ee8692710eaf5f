from django.contrib.auth import views as auth_views
from django.urls import path

from wuyiqu.accounts.views import LoginView

from . import views

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", LoginView.as_view(), name="login"),  # with the lock after repeated failures
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("units/search/", views.unit_search, name="unit_search"),
    path("units/<str:code>/", views.unit_detail, name="unit"),
    path("units/<str:code>/ledger/", views.special_population_ledger, name="ledger"),
    path("units/<str:code>/import/", views.import_start, name="import"),
    path("units/<str:code>/import/template/<str:kind>/", views.import_template, name="import_template"),
    path("households/<str:code>/", views.household_detail, name="household"),
    path("residents/<int:resident_id>/reveal/", views.resident_reveal, name="resident_reveal"),
    path("imports/<int:job_id>/", views.import_job, name="import_job"),
]
