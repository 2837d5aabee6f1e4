"""The role matrix on every dashboard route: an owner, an admin, a member and an outsider each try every
route; the outsider always gets 404, a role without the permission a route needs gets 403, and a role
with it gets through (a page, or a redirect after the action)."""

import pytest
from django.test import Client
from django.urls import URLPattern, get_resolver, reverse

from assistants import access
from assistants.models import Conversation, CustomDomain, GoldenQuestion, Message
from ingestion.models import Document, Source
from tests.factories import make_assistant
from tests.roles import ROLES, make_crew

pytestmark = pytest.mark.django_db

# What each route needs. A route missing here fails test_every_route_is_in_the_matrix.
ROUTES = [
    # (url name, method, the object its URL names, the permission it needs)
    ("team_api_keys", "GET", "team", "read"),
    ("team_api_keys", "POST", "team", "manage"),
    ("assistant_create", "GET", "team", "manage"),
    ("assistant_create", "POST", "team", "manage"),
    ("assistant_detail", "GET", "assistant", "read"),
    ("assistant_edit", "GET", "assistant", "manage"),
    ("assistant_edit", "POST", "assistant", "manage"),
    ("source_add", "POST", "assistant", "manage"),
    ("documents_upload", "POST", "assistant", "manage"),
    ("document_add_url", "POST", "assistant", "manage"),
    ("assistant_embedding_switch", "POST", "assistant", "manage"),
    ("golden_set", "GET", "assistant", "read"),
    ("golden_question_add", "POST", "assistant", "manage"),
    ("golden_run_start", "POST", "assistant", "manage"),
    ("golden_question_delete", "POST", "golden", "manage"),
    ("library", "GET", "assistant", "read"),
    ("library", "POST", "assistant", "manage"),
    ("domain_add", "POST", "assistant", "manage"),
    ("domain_verify", "POST", "domain", "manage"),
    ("domain_delete", "POST", "domain", "manage"),
    ("conversation_detail", "GET", "conversation", "read"),
    ("source_detail", "GET", "source", "read"),
    ("source_progress", "GET", "source", "read"),
    ("source_crawl", "POST", "source", "manage"),
    ("source_run_control", "POST", "source", "manage"),
    ("assistant_start", "GET", "assistant", "read"),
    ("assistant_start", "POST", "assistant", "manage"),
    ("assistant_start_progress", "GET", "assistant", "read"),
    ("assistant_install", "GET", "assistant", "read"),
    ("assistant_install", "POST", "assistant", "manage"),
]
# Routes that name no team object: public pages, the visitors' chat, and what any signed-in user may do.
PUBLIC = {
    "signup",
    "login",
    "logout",
    "help",
    "help_page",
    "domain_check",
    "document_file",
    "assistant_page",
    "access_unlock",
    "conversation_resume",
    "chat_stream",
    "widget_js",
    "embed_page",
    "embed_unlock",
    "embed_conversation",
    "embed_feedback",
    "embed_contact",
    "embed_allowed",
}
SIGNED_IN = {"dashboard", "team_create"}
URL_ARGUMENT = {
    "team": "team_id",
    "assistant": "assistant_id",
    "golden": "golden_id",
    "domain": "domain_id",
    "conversation": "conversation_id",
    "source": "source_id",
}


@pytest.fixture
def world():
    crew = make_crew()
    assistant = make_assistant(team=crew.team)
    conversation = Conversation.objects.create(assistant=assistant, visitor_token="t" * 24)
    Message.objects.create(conversation=conversation, role="user", text="Hello?")
    source = Source.objects.create(assistant=assistant, url="https://docs.example.invalid/", name="docs")
    Document.objects.create(source=source, url="https://docs.example.invalid/a/", title="A")
    objects = {
        "team": crew.team,
        "assistant": assistant,
        "conversation": conversation,
        "source": source,
        "domain": CustomDomain.objects.create(assistant=assistant, host="help.example.invalid", verification_token="t"),
        "golden": GoldenQuestion.objects.create(
            assistant=assistant, question="A?", expected_urls=["https://docs.example.invalid/a/"]
        ),
    }
    return crew, objects


def url_for(name: str, target: str, objects: dict) -> str:
    kwargs = {URL_ARGUMENT[target]: objects[target].pk}
    if name == "source_run_control":
        kwargs["action"] = "pause"
    return reverse(name, kwargs=kwargs)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "method", "target", "need"), ROUTES, ids=[f"{m} {n}" for n, m, _, _ in ROUTES])
def test_each_role_gets_what_the_matrix_gives_it(world, role, name, method, target, need):
    crew, objects = world
    client = Client()
    client.force_login(crew.user(role))
    url = url_for(name, target, objects)
    response = client.get(url) if method == "GET" else client.post(url, {})
    if role == "outsider":
        expected = "404"
    elif need in access.ROLE_PERMISSIONS[role]:
        expected = "through"
    else:
        expected = "403"
    got = {403: "403", 404: "404"}.get(response.status_code, "through")
    assert got == expected, (role, method, url, response.status_code)
    assert response.status_code < 500


@pytest.mark.parametrize(("name", "method", "target", "need"), ROUTES[:3])
def test_a_visitor_who_is_not_signed_in_is_sent_to_log_in(world, name, method, target, need):
    _, objects = world
    url = url_for(name, target, objects)
    response = Client().get(url) if method == "GET" else Client().post(url, {})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_every_route_is_in_the_matrix():
    patterns = get_resolver("assistants.urls").url_patterns
    names = {pattern.name for pattern in patterns if isinstance(pattern, URLPattern)}
    covered = {name for name, *_ in ROUTES} | PUBLIC | SIGNED_IN
    assert names - covered == set(), "routes without an entry in the role matrix"
    assert covered - names == set(), "entries of the matrix for routes that do not exist"


def test_the_matrix():
    owner, admin, member = (access.ROLE_PERMISSIONS[role] for role in ("owner", "admin", "member"))
    assert owner == set(access.Permission)
    assert admin == {"read", "work", "manage"}
    assert member == {"read", "work"}


def test_a_member_cannot_weaken_an_internal_assistant(world):
    """Security finding 9: a member could clear the access code and point the model at their own server."""
    crew, objects = world
    assistant = objects["assistant"]
    assistant.access_code_hash = "x"
    assistant.save()
    client = Client()
    client.force_login(crew.user("member"))
    response = client.post(
        reverse("assistant_edit", args=[assistant.pk]),
        {
            "name": assistant.name,
            "primary_color": "#000000",
            "background_color": "#ffffff",
            "clear_access_code": "on",
            "llm_base_url": "https://attacker.example/v1",
            "llm_model": "x",
        },
    )
    assert response.status_code == 403
    assistant.refresh_from_db()
    assert assistant.access_code_hash == "x" and assistant.llm_base_url == ""


def test_the_role_comes_from_the_users_own_membership(world):
    """Each helper reads the role of the signed-in user, not of another member of the same team."""
    crew, objects = world
    for role in ("owner", "admin", "member"):
        assistant = access.assistant_for(user=crew.user(role), assistant_id=objects["assistant"].pk)
        assert assistant.viewer_role == role
