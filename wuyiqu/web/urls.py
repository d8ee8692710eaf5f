from django.contrib.auth import views as auth_views
from django.urls import path

from wuyiqu.accounts.views import LoginView

from . import records, transfers, views

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
    path("imports/<int:job_id>/confirm/", views.import_confirm, name="import_confirm"),
    path("imports/<int:job_id>/errors.xlsx", views.import_error_workbook, name="import_error_workbook"),
    # Every fact by hand (web/records.py): one row of the import kind, through the same validation.
    path("units/<str:code>/record/<str:kind>/", records.record_on_unit, name="record"),
    path("units/<str:code>/risk-zones/<int:zone_id>/lift/", records.lift_risk_zone, name="lift_risk_zone"),
    path("households/<str:code>/residents/add/", records.add_resident, name="add_resident"),
    path("households/<str:code>/verify/", records.verify_household, name="verify_household"),
    path("residents/<int:resident_id>/ledger/", records.edit_ledger_entry, name="edit_ledger_entry"),
    path("residents/<int:resident_id>/ledger/review/", records.review_ledger_entry, name="review_ledger_entry"),
    path("residents/<int:resident_id>/remove/", records.remove_resident, name="remove_resident"),
    path("residents/<int:resident_id>/move/", records.move_resident, name="move_resident"),
    # People registered elsewhere named by a residents import (units.transfers).
    path("transfers/", transfers.transfer_queue, name="transfers"),
    path("transfers/<int:transfer_id>/decide/", transfers.decide_transfer, name="decide_transfer"),
]
