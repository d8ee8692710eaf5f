from django.urls import path

from . import views

app_name = "applications"

urlpatterns = [
    path("applications/", views.index, name="index"),
    path("applications/queue/", views.queue, name="queue"),
    path("applications/open/", views.open_application, name="open"),
    path("applications/<int:application_id>/", views.detail, name="detail"),
    path("applications/<int:application_id>/progress/", views.progress, name="progress"),
    path("applications/<int:application_id>/paper/", views.paper_sheet, name="paper"),
    path("applications/<int:application_id>/unlock/", views.unlock, name="unlock"),
    path("applications/<int:application_id>/attachments/", views.add_attachment, name="add_attachment"),
    path("applications/<int:application_id>/attachments/<int:attachment_id>/", views.attachment, name="attachment"),
    path("applications/<int:application_id>/unit-signature/", views.unit_signature, name="unit_signature"),
    path("applications/<int:application_id>/submit/", views.submit, name="submit"),
    path("applications/<int:application_id>/review/", views.review, name="review"),
    path("applications/<int:application_id>/poster/", views.poster, name="poster"),
    path("applications/<int:application_id>/qr.png", views.qr_png, name="qr"),
    path("s/<str:token>/", views.sign, name="sign"),
]
