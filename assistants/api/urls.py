"""``/api/v1/``: the API's operations (:mod:`assistants.api.views`), its description (``openapi.json``,
``docs``), and a 404 in the one error shape for every other path."""

from django.urls import re_path

from assistants.api import views
from assistants.api.http import path_not_found
from assistants.api.openapi import Api

api = Api(title="Chatsite API", version="1", urls_namespace="api")
api.add_router("", views.router)
api.add_reference()

app_name = "api"
urlpatterns = [
    *api.urls[0],
    re_path(r"", path_not_found, name="not_found"),  # last: whatever the paths above do not match
]
