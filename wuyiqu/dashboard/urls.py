from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("dashboard/", views.home, name="home"),
    path("units/<str:code>/dashboard/", views.dashboard, name="unit"),
    path("units/<str:code>/dashboard/children.json", views.children_json, name="children"),
    path("units/<str:code>/blockers/", views.blockers, name="blockers"),
    path("units/<str:code>/dashboard/ledger.xlsx", views.ledger_xlsx, name="ledger_xlsx"),
    path("units/<str:code>/dashboard/ledger.pdf", views.ledger_pdf, name="ledger_pdf"),
    path("units/<str:code>/dashboard/weekly.xlsx", views.weekly_xlsx, name="weekly_xlsx"),
    path("units/<str:code>/dashboard/weekly.pdf", views.weekly_pdf, name="weekly_pdf"),
]
