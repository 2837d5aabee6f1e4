from django.urls import path

from ingestion import views

urlpatterns = [
    path("sources/<int:source_id>/", views.source_detail, name="source_detail"),
    path("sources/<int:source_id>/progress", views.source_progress, name="source_progress"),
    path("sources/<int:source_id>/crawl", views.source_crawl, name="source_crawl"),
    path("d/<str:token>/<str:name>", views.document_file, name="document_file"),
]
