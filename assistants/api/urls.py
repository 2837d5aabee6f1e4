"""``/api/v1/``: each path joins the views of its methods (see ``assistants.api.http.route``)."""

from django.urls import path, re_path

from assistants.api import views
from assistants.api.http import path_not_found, route

urlpatterns = [
    path("assistants", route(views.assistant_list, views.assistant_create), name="api_assistants"),
    path(
        "assistants/<int:assistant_id>",
        route(views.assistant_detail, views.assistant_update, views.assistant_delete),
        name="api_assistant",
    ),
    path("assistants/<int:assistant_id>/sources", route(views.source_list, views.source_create), name="api_sources"),
    path("assistants/<int:assistant_id>/conversations", route(views.conversation_list), name="api_conversations"),
    path(
        "assistants/<int:assistant_id>/conversations/export",
        route(views.conversation_export),
        name="api_conversations_export",
    ),
    path(
        "assistants/<int:assistant_id>/documents",
        route(views.document_list, views.document_upload),
        name="api_documents",
    ),
    path("assistants/<int:assistant_id>/documents/url", route(views.document_add_url), name="api_document_url"),
    path("assistants/<int:assistant_id>/qa", route(views.qa_create), name="api_qa"),
    path("assistants/<int:assistant_id>/feedback", route(views.feedback_list), name="api_feedback"),
    path("assistants/<int:assistant_id>/chat", route(views.chat), name="api_chat"),
    path("documents/<int:document_id>", route(views.document_detail, views.document_delete), name="api_document"),
    path("documents/<int:document_id>/reindex", route(views.document_reindex), name="api_document_reindex"),
    path("sources/<int:source_id>", route(views.source_detail), name="api_source"),
    path("sources/<int:source_id>/crawl", route(views.source_crawl), name="api_source_crawl"),
    path("sources/<int:source_id>/pause", route(views.source_pause), name="api_source_pause"),
    path("sources/<int:source_id>/resume", route(views.source_resume), name="api_source_resume"),
    path("sources/<int:source_id>/cancel", route(views.source_cancel), name="api_source_cancel"),
    path("conversations/<int:conversation_id>", route(views.conversation_detail), name="api_conversation"),
    path("openapi.json", route(views.openapi_json), name="api_openapi"),
    path("docs", route(views.docs), name="api_docs"),
    re_path(r"", path_not_found, name="api_not_found"),  # last: whatever the paths above do not match
]
