from django.contrib import admin
from django.urls import include, path

from chatsite import help_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("assistants.api.urls")),
    path("help/", help_views.help_page, name="help"),
    path("help/<slug:page>/", help_views.help_page, name="help_page"),
    path("", include("assistants.urls")),
    path("", include("ingestion.urls")),
]
