from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("account/password/", views.own_password, name="password"),
    path("accounts/", views.account_list, name="list"),
    path("accounts/new/", views.account_create, name="create"),
    path("accounts/passwords/<int:job_id>/", views.password_sheet, name="password_sheet"),
    path("accounts/<int:account_id>/", views.account_detail, name="detail"),
    path("accounts/<int:account_id>/deactivate/", views.account_deactivate, name="deactivate"),
    path("accounts/<int:account_id>/reactivate/", views.account_reactivate, name="reactivate"),
    path("accounts/<int:account_id>/unlock/", views.account_unlock, name="unlock"),
    path("accounts/<int:account_id>/reset-password/", views.account_reset_password, name="reset_password"),
]
