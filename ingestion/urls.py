from django.urls import path, re_path

from ingestion import views

urlpatterns = [
    path("sources/<int:source_id>/", views.source_detail, name="source_detail"),
    path("sources/<int:source_id>/progress", views.source_progress, name="source_progress"),
    path("sources/<int:source_id>/crawl", views.source_crawl, name="source_crawl"),
    re_path(
        r"^sources/(?P<source_id>[0-9]+)/(?P<action>pause|resume|cancel)$",
        views.source_run_control,
        name="source_run_control",
    ),
    path("assistants/<int:assistant_id>/library/", views.library, name="library"),
    path("d/<str:token>/<str:name>", views.document_file, name="document_file"),
]
