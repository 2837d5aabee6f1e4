"""``/api/v1/``: each path joins the views of its methods (see ``assistants.api.http.route``)."""

from django.urls import path

from assistants.api import views
from assistants.api.http import route

urlpatterns = [
    path("assistants", route(views.assistant_list, views.assistant_create), name="api_assistants"),
    path(
        "assistants/<int:assistant_id>",
        route(views.assistant_detail, views.assistant_update, views.assistant_delete),
        name="api_assistant",
    ),
    path("assistants/<int:assistant_id>/sources", route(views.source_list, views.source_create), name="api_sources"),
    path("assistants/<int:assistant_id>/conversations", route(views.conversation_list), name="api_conversations"),
    path("assistants/<int:assistant_id>/chat", route(views.chat), name="api_chat"),
    path("sources/<int:source_id>", route(views.source_detail), name="api_source"),
    path("sources/<int:source_id>/crawl", route(views.source_crawl), name="api_source_crawl"),
    path("conversations/<int:conversation_id>", route(views.conversation_detail), name="api_conversation"),
    path("openapi.json", route(views.openapi_json), name="api_openapi"),
    path("docs", route(views.docs), name="api_docs"),
]
