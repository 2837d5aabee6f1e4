"""The role matrix on every dashboard route: an owner, an admin, a member and an outsider each try every
route; the outsider always gets 404, a role without the permission a route needs gets 403, and a role
with it gets through (a page, or a redirect after the action)."""

import pytest
from django.test import Client
from django.urls import URLPattern, get_resolver, reverse
from django.utils import timezone

from assistants import access
from assistants.forms import SETTINGS_SECTIONS
from assistants.models import (
    Assistant,
    ContentGap,
    Conversation,
    CustomDomain,
    GoldenQuestion,
    Invitation,
    Lead,
    Membership,
    Message,
    WebhookDelivery,
    WebhookEndpoint,
)
from ingestion.models import Document, Source
from tests.factories import make_assistant, rows_for_the_module
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
    ("assistant_settings", "GET", "assistant", "read"),  # every section: test_every_settings_section_...
    ("assistant_settings", "POST", "assistant", "manage"),
    ("assistant_delete", "POST", "assistant", "manage"),
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
    ("conversation_fix", "POST", "conversation", "work"),
    ("team_conversations", "GET", "team", "read"),
    ("team_conversations_export", "GET", "team", "read"),
    ("assistant_conversations", "GET", "assistant", "read"),
    ("assistant_conversations_export", "GET", "assistant", "read"),
    ("team_switch", "POST", "team", "read"),
    ("team_members", "GET", "team", "read"),
    ("team_invite", "POST", "team", "own"),
    ("team_settings", "GET", "team", "read"),
    ("team_settings", "POST", "team", "own"),
    ("invitation_resend", "POST", "invitation", "own"),
    ("invitation_revoke", "POST", "invitation", "own"),
    ("membership_role", "POST", "membership", "own"),
    ("membership_remove", "POST", "membership", "own"),
    ("source_detail", "GET", "source", "read"),
    ("source_progress", "GET", "source", "read"),
    ("source_crawl", "POST", "source", "manage"),
    ("source_run_control", "POST", "source", "manage"),
    ("source_edit", "GET", "source", "read"),
    ("source_edit", "POST", "source", "manage"),
    ("source_delete", "POST", "source", "manage"),
    ("assistant_documents", "GET", "assistant", "read"),
    ("documents_retry_failed", "POST", "assistant", "manage"),
    ("document_action", "POST", "document", "manage"),
    ("assistant_playground", "GET", "assistant", "read"),
    ("assistant_playground", "POST", "assistant", "work"),
    ("assistant_start", "GET", "assistant", "read"),
    ("assistant_start", "POST", "assistant", "manage"),
    ("assistant_start_progress", "GET", "assistant", "read"),
    ("assistant_install", "GET", "assistant", "read"),
    ("assistant_install", "POST", "assistant", "manage"),
    ("team_leads", "GET", "team", "read"),
    ("team_leads_export", "GET", "team", "read"),
    ("team_digest", "POST", "team", "read"),
    ("lead_detail", "GET", "lead", "read"),
    ("lead_detail", "POST", "lead", "work"),
    ("team_webhooks", "GET", "team", "read"),
    ("team_webhooks", "POST", "team", "manage"),
    ("webhook_detail", "GET", "endpoint", "read"),
    ("webhook_detail", "POST", "endpoint", "manage"),
    ("webhook_delivery_replay", "POST", "delivery", "manage"),
    ("team_analytics", "GET", "team", "read"),  # every tab: test_every_analytics_tab_follows_the_matrix
    ("team_analytics_export", "GET", "team", "read"),
    ("assistant_analytics", "GET", "assistant", "read"),
    ("assistant_analytics_export", "GET", "assistant", "read"),
    ("topics_rebuild", "POST", "assistant", "manage"),
    ("gap_detail", "GET", "gap", "read"),
    ("gap_recheck", "POST", "gap", "manage"),
    ("gap_qa_add", "POST", "gap", "manage"),
    ("team_inbox", "GET", "team", "read"),
    ("inbox_stream", "GET", "team", "read"),
    ("team_on_duty", "POST", "team", "work"),
    ("membership_on_duty", "POST", "membership", "manage"),
    ("handoff_assign", "POST", "conversation", "work"),
    ("handoff_reply", "POST", "conversation", "work"),
    ("handoff_resolve", "POST", "conversation", "work"),
    ("handoff_take_over", "POST", "conversation", "work"),
    ("handoff_typing", "POST", "conversation", "work"),
    ("handoff_settings", "GET", "assistant", "read"),
    ("handoff_settings", "POST", "assistant", "manage"),
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
    "invitation_accept",  # its signed link is the key; joining needs an account (tests/assistants/web/test_team.py)
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "embed_allowed",
    "embed_lead_check",
    "embed_lead",
    "embed_handoff",  # the visitor's, by their token (tests/assistants/handoff/test_web.py)
    "embed_live",
    "embed_typing",  # the visitor's, by their token (tests/assistants/handoff/test_typing.py)
    "conversation_return",  # its signed link is the key (tests/assistants/handoff/test_visitor_email.py)
}
SIGNED_IN = {"dashboard", "team_create", "account"}
URL_ARGUMENT = {
    "team": "team_id",
    "assistant": "assistant_id",
    "golden": "golden_id",
    "domain": "domain_id",
    "conversation": "conversation_id",
    "source": "source_id",
    "document": "document_id",
    "invitation": "invitation_id",
    "membership": "membership_id",
    "lead": "lead_id",
    "endpoint": "endpoint_id",
    "delivery": "delivery_id",
    "gap": "gap_id",
}
ANALYTICS_ROUTES = ("team_analytics", "team_analytics_export", "assistant_analytics", "assistant_analytics_export")
# URL arguments beside the object's id.
URL_EXTRA = {
    "source_run_control": {"action": "pause"},
    "document_action": {"action": "reindex"},
    "assistant_settings": {"section": "behaviour"},
    **{name: {"tab": "overview"} for name in ANALYTICS_ROUTES},
}


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """One team with every kind of object, built once for the module's ~400 requests (tests roll back
    what they change)."""
    with rows_for_the_module(django_db_blocker):
        yield build_world()


def build_world():
    crew = make_crew()
    assistant = make_assistant(team=crew.team)
    conversation = Conversation.objects.create(assistant=assistant, visitor_token="t" * 24)
    Message.objects.create(conversation=conversation, role="user", text="Hello?")
    source = Source.objects.create(assistant=assistant, url="https://docs.example.invalid/", name="docs")
    document = Document.objects.create(source=source, url="https://docs.example.invalid/a/", title="A")
    endpoint = WebhookEndpoint.objects.create(
        team=crew.team, url="https://93.184.216.34/hook", events=["lead.created"], secret="whsec_" + "A" * 32
    )
    objects = {
        "document": document,
        "team": crew.team,
        "assistant": assistant,
        "conversation": conversation,
        "source": source,
        "domain": CustomDomain.objects.create(assistant=assistant, host="help.example.invalid", verification_token="t"),
        "golden": GoldenQuestion.objects.create(
            assistant=assistant, question="A?", expected_urls=["https://docs.example.invalid/a/"]
        ),
        "invitation": Invitation.objects.create(
            team=crew.team,
            email="new@example.invalid",
            invited_by=crew.user("owner"),
            token_hash="0" * 64,
            sent_at=timezone.now(),
        ),
        "membership": Membership.objects.get(team=crew.team, user=crew.user("member")),
        "lead": Lead.objects.create(
            team=crew.team, assistant=assistant, conversation=conversation, email="a@example.com"
        ),
        "endpoint": endpoint,
        "delivery": WebhookDelivery.objects.create(
            endpoint=endpoint, message_id="msg_roles", event_type="lead.created", payload={}, status="failed"
        ),
        "gap": ContentGap.objects.create(assistant=assistant, label="A?", kind=ContentGap.Kind.NO_PAGE),
    }
    return crew, objects


def url_for(name: str, target: str, objects: dict, **extra) -> str:
    kwargs = {URL_ARGUMENT[target]: objects[target].pk, **URL_EXTRA.get(name, {}), **extra}
    return reverse(name, kwargs=kwargs)


def outcome(role: str, need: str, response) -> tuple[str, str]:
    """What the matrix expects of the response, and what it got: "404", "403" or "through"."""
    if role == "outsider":
        expected = "404"
    elif need in access.ROLE_PERMISSIONS[role]:
        expected = "through"
    else:
        expected = "403"
    return expected, {403: "403", 404: "404"}.get(response.status_code, "through")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "method", "target", "need"), ROUTES, ids=[f"{m} {n}" for n, m, _, _ in ROUTES])
def test_each_role_gets_what_the_matrix_gives_it(world, role, name, method, target, need):
    crew, objects = world
    client = Client()
    client.force_login(crew.user(role))
    url = url_for(name, target, objects)
    response = client.get(url) if method == "GET" else client.post(url, {})
    expected, got = outcome(role, need, response)
    assert got == expected, (role, method, url, response.status_code)
    assert response.status_code < 500


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("section", list(SETTINGS_SECTIONS))
def test_every_settings_section_follows_the_matrix(world, role, section):
    """Every role of the team reads each section of an assistant's settings; owners and admins save them."""
    crew, objects = world
    client = Client()
    client.force_login(crew.user(role))
    url = url_for("assistant_settings", "assistant", objects, section=section)
    expected, got = outcome(role, "read", client.get(url))
    assert got == expected, (role, url)
    if section != "danger":  # deleting has its own route (assistant_delete)
        expected, got = outcome(role, "manage", client.post(url, {}))
        assert got == expected, (role, "POST", url)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", ANALYTICS_ROUTES)
@pytest.mark.parametrize("tab", ["overview", "questions", "gaps", "sources", "conversations"])
def test_every_analytics_tab_follows_the_matrix(world, role, name, tab):
    """Every role of the team reads every analytics tab and exports its tables; an outsider gets 404."""
    crew, objects = world
    client = Client()
    client.force_login(crew.user(role))
    target = "team" if name.startswith("team") else "assistant"
    url = url_for(name, target, objects, tab=tab)
    response = client.get(url)
    expected, got = outcome(role, "read", response)
    assert got == expected and response.status_code in (200, 404), (role, url, response.status_code)


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
    assistant = Assistant.objects.get(pk=objects["assistant"].pk)  # a copy of its own: the world is shared
    assistant.access_code_hash = "x"
    assistant.save()
    client = Client()
    client.force_login(crew.user("member"))
    response = client.post(reverse("assistant_settings", args=[assistant.pk, "access"]), {"clear_access_code": "on"})
    assert response.status_code == 403
    response = client.post(
        reverse("assistant_settings", args=[assistant.pk, "model"]),
        {"llm_base_url": "https://attacker.example/v1", "llm_model": "x"},
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
