from django.contrib.auth import views as auth_views
from django.urls import path

from assistants import chat_views, views
from assistants import widget_views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("signup/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("teams/new/", views.team_create, name="team_create"),
    path("teams/<int:team_id>/assistants/new/", views.assistant_create, name="assistant_create"),
    path("teams/<int:team_id>/api-keys/", views.team_api_keys, name="team_api_keys"),
    path("assistants/<int:assistant_id>/", views.assistant_detail, name="assistant_detail"),
    path("assistants/<int:assistant_id>/edit/", views.assistant_edit, name="assistant_edit"),
    path("assistants/<int:assistant_id>/sources/new/", views.source_add, name="source_add"),
    path("assistants/<int:assistant_id>/documents/", views.documents_upload, name="documents_upload"),
    path("assistants/<int:assistant_id>/documents/url/", views.document_add_url, name="document_add_url"),
    path("assistants/<int:assistant_id>/embedding/", views.assistant_embedding_switch, name="assistant_embedding_switch"),
    path("assistants/<int:assistant_id>/golden/", views.golden_set, name="golden_set"),
    path("assistants/<int:assistant_id>/golden/questions/", views.golden_question_add, name="golden_question_add"),
    path("assistants/<int:assistant_id>/golden/run/", views.golden_run_start, name="golden_run_start"),
    path("golden/<int:golden_id>/delete/", views.golden_question_delete, name="golden_question_delete"),
    path("conversations/<int:conversation_id>/", views.conversation_detail, name="conversation_detail"),
    path("assistants/<int:assistant_id>/domains/", views.domain_add, name="domain_add"),
    path("domains/<int:domain_id>/verify/", views.domain_verify, name="domain_verify"),
    path("domains/<int:domain_id>/delete/", views.domain_delete, name="domain_delete"),
    path("domains/check", views.domain_check, name="domain_check"),
    path("a/<slug:slug>/", chat_views.assistant_page, name="assistant_page"),
    path("a/<slug:slug>/access", chat_views.access_unlock, name="access_unlock"),
    path("a/<slug:slug>/conversation", chat_views.conversation_resume, name="conversation_resume"),
    path("a/<slug:slug>/chat", chat_views.chat_stream, name="chat_stream"),
    path("widget.js", widget_views.widget_js, name="widget_js"),
    path("embed/<str:public_key>/", widget_views.embed_page, name="embed_page"),
    path("embed/<str:public_key>/access", widget_views.embed_unlock, name="embed_unlock"),
    path("embed/<str:public_key>/conversation", widget_views.embed_conversation, name="embed_conversation"),
    path("embed/<str:public_key>/feedback", widget_views.embed_feedback, name="embed_feedback"),
    path("embed/<str:public_key>/contact", widget_views.embed_contact, name="embed_contact"),
]
