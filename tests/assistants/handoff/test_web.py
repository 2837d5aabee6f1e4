"""The handoff through the web: the visitor's endpoints (their token decides), the chat staying quiet
while a person has the conversation, and the team's inbox and its actions."""

import json

import pytest
from django.test import Client

from assistants.handoff import services
from assistants.models import Conversation, HandoffSettings, Message
from tests.factories import index_pages, make_assistant, make_team, make_user
from tests.roles import make_crew
from tests.sse import ask, parse_sse

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "visitor-token-0123456789"
PAGE = """<html><head><title>Shipping</title></head><body><main><h1>Shipping</h1>
<p>We ship the gadget to every country of the European Union within three working days.</p></main></body></html>"""


@pytest.fixture
def assistant():
    owner = make_user()
    owner.first_name = "Dana"
    owner.save()
    assistant = make_assistant(team=make_team(owner=owner, name="Acme"), name="Gadget Help")
    index_pages(assistant, {"http://docs.test/shipping/": PAGE})
    return assistant


def visitor(token=TOKEN) -> Client:
    return Client(headers={"X-Chatsite-Visitor": token})


def post_json(client, url, payload):
    return client.post(url, data=json.dumps(payload), content_type="application/json")


def test_the_button_hands_over_and_the_conversation_tells_the_visitor_who_replies(assistant):
    client = visitor()
    response = post_json(client, f"/embed/{assistant.public_key}/handoff", {"page_url": "https://shop.example/cart"})
    assert response.status_code == 200
    state = response.json()
    assert state["state"] == "pending" and state["enabled"] and not state["unavailable"] and state["agent"] == ""
    conversation = Conversation.objects.get(pk=state["conversation_id"])
    assert conversation.visitor_token == TOKEN and conversation.handoffs.get().reason == "visitor_asked"

    dana = assistant.team.memberships.get().user
    services.agent_reply(conversation=conversation, user=dana, text="<b>Hi</b>, Dana here")
    data = client.get(f"/embed/{assistant.public_key}/conversation").json()
    assert data["handoff"]["state"] == "open" and data["handoff"]["agent"] == "Dana from Acme"
    agent = [m for m in data["messages"] if m["role"] == "agent"]
    assert agent == [
        {
            "id": agent[0]["id"],
            "role": "agent",
            "text": "<b>Hi</b>, Dana here",
            "citations": [],
            "label": "Dana from Acme",
        }
    ]


def test_another_visitor_can_neither_read_nor_hand_over_the_conversation(assistant):
    state = post_json(visitor(), f"/embed/{assistant.public_key}/handoff", {}).json()
    stranger = visitor("someone-else-0123456789")
    live = stranger.get(f"/embed/{assistant.public_key}/live?conversation_id={state['conversation_id']}")
    assert live.status_code == 404
    again = post_json(stranger, f"/embed/{assistant.public_key}/handoff", {"conversation_id": state["conversation_id"]})
    assert again.json()["conversation_id"] != state["conversation_id"]  # a conversation of their own
    assert (
        Client().get(f"/embed/{assistant.public_key}/live?conversation_id={state['conversation_id']}").status_code
        == 404
    )


def test_with_live_handoff_off_the_button_falls_back_to_the_contact_form(assistant):
    HandoffSettings.objects.create(assistant=assistant, enabled=False)
    state = post_json(visitor(), f"/embed/{assistant.public_key}/handoff", {}).json()
    assert state["enabled"] is False and state["state"] == "bot"


def test_the_assistant_does_not_answer_while_a_person_has_the_conversation(assistant):
    client = visitor()
    events, _ = ask(assistant.slug, "Can I talk to a human?", client=_async(client))
    names = [name for name, _ in events]
    assert names == ["meta", "handoff", "done"]
    conversation_id = events[0][1]["conversation_id"]
    assert events[1][1]["state"] == "pending" and events[2][1]["held"] is True
    events, _ = ask(assistant.slug, "Where do you ship?", conversation_id, client=_async(client))
    assert [name for name, _ in events] == ["meta", "handoff", "done"]
    conversation = Conversation.objects.get(pk=conversation_id)
    assert list(conversation.messages.values_list("role", "text")) == [
        ("user", "Can I talk to a human?"),
        ("user", "Where do you ship?"),
    ]
    dana = assistant.team.memberships.get().user
    services.handoff_resolve(conversation=conversation, user=dana)
    events, _ = ask(assistant.slug, "Where do you ship?", conversation_id, client=_async(client))
    assert "token" in [name for name, _ in events]  # the assistant again
    assert Conversation.objects.get(pk=conversation_id).handoff_state == "bot"


def test_two_unanswered_questions_hand_over_after_the_second_answer(assistant):
    client = visitor()
    events, _ = ask(assistant.slug, "What is the warranty on the flux capacitor?", client=_async(client))
    conversation_id = events[0][1]["conversation_id"]
    assert events[-1][0] == "done" and events[-1][1]["unanswered"] is True
    events, _ = ask(assistant.slug, "Who designed the quantum oscillator?", conversation_id, client=_async(client))
    assert [name for name, _ in events][-2:] == ["done", "handoff"]
    assert events[-1][1]["state"] == "pending"
    assert Conversation.objects.get(pk=conversation_id).handoffs.get().reason == "missing_knowledge"


def test_a_down_rating_with_a_comment_hands_over(assistant):
    client = visitor()
    events, _ = ask(assistant.slug, "Where do you ship the gadget?", client=_async(client))
    message_id = events[-1][1]["message_id"]
    rated = post_json(client, f"/embed/{assistant.public_key}/feedback", {"message_id": message_id, "rating": -1})
    assert "handoff" not in rated.json()
    rated = post_json(
        client,
        f"/embed/{assistant.public_key}/feedback",
        {"message_id": message_id, "rating": -1, "comment": "I live in Norway"},
    )
    assert rated.json()["handoff"]["state"] == "pending"


def _async(client: Client):
    """An AsyncClient of the same visitor as ``client`` (the full page's visitor cookie)."""
    from django.test import AsyncClient

    chat = AsyncClient()
    chat.cookies["cs_visitor"] = TOKEN
    return chat


# --- The inbox ------------------------------------------------------------------------------------


@pytest.fixture
def crew_world():
    crew = make_crew()
    assistant = make_assistant(team=crew.team, name="Gadget Help")
    conversation = Conversation.objects.create(
        assistant=assistant, visitor_token=TOKEN, page_url="https://shop.example/p"
    )
    Message.objects.create(conversation=conversation, role="user", text="<script>window.x=1</script> help")
    services.handoff_request(conversation=conversation, reason="visitor_asked", trigger="button")
    return crew, conversation


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_inbox_lists_waiting_conversations_with_summary_and_page(crew_world):
    crew, conversation = crew_world
    page = signed_in(crew.user("member")).get(f"/teams/{crew.team.pk}/inbox/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Visitor asked" in html and "https://shop.example/p" in html and "Waiting for someone" in html
    assert "<script>window.x=1</script>" not in html and "&lt;script&gt;window.x=1&lt;/script&gt;" in html
    assert 'data-action="assign"' in html and 'id="reply"' in html
    empty = signed_in(crew.user("outsider")).get(f"/teams/{crew.team.pk}/inbox/")
    assert empty.status_code == 404


def test_an_empty_inbox_says_so(crew_world):
    crew, conversation = crew_world
    services.handoff_resolve(conversation=conversation, user=crew.user("owner"))
    html = signed_in(crew.user("owner")).get(f"/teams/{crew.team.pk}/inbox/").content.decode()
    assert "Nobody is waiting for a person" in html and 'id="inbox-empty" hidden' not in html


def test_members_take_reply_and_resolve(crew_world):
    crew, conversation = crew_world
    member = signed_in(crew.user("member"))
    response = member.post(f"/conversations/{conversation.pk}/assign/")
    assert response.status_code == 302 and response["Location"].endswith(f"?c={conversation.pk}")
    response = member.post(
        f"/conversations/{conversation.pk}/reply/", {"text": "On it"}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 200 and response.json()["state"] == "open"
    assert Message.objects.get(pk=response.json()["message_id"]).author == crew.user("member")
    empty = member.post(
        f"/conversations/{conversation.pk}/reply/", {"text": "  "}, headers={"Accept": "application/json"}
    )
    assert empty.status_code == 409 and empty.json()["error"] == "Write a reply first."
    member.post(f"/conversations/{conversation.pk}/resolve/")
    conversation.refresh_from_db()
    assert conversation.handoff_state == "resolved"
    late = member.post(f"/conversations/{conversation.pk}/reply/", {"text": "One more thing"})
    assert late.status_code == 302 and conversation.messages.filter(role="agent").count() == 1
    outsider = signed_in(crew.user("outsider"))
    assert outsider.post(f"/conversations/{conversation.pk}/reply/", {"text": "hi"}).status_code == 404


def test_the_nav_links_to_the_inbox(crew_world):
    crew, _ = crew_world
    html = signed_in(crew.user("member")).get("/").content.decode()
    assert f'href="/teams/{crew.team.pk}/inbox/"' in html


def test_the_inbox_stream_refuses_outsiders_and_strangers(crew_world):
    crew, _ = crew_world
    assert Client().get(f"/teams/{crew.team.pk}/inbox/stream").status_code == 401
    assert signed_in(crew.user("outsider")).get(f"/teams/{crew.team.pk}/inbox/stream").status_code == 404


def test_sse_parsing_helper_keeps_event_names():
    assert parse_sse(b"event: handoff\ndata: {}\n\n") == [("handoff", {})]


def test_admins_set_the_handoff_rules_and_mistakes_come_back_at_their_field(crew_world):
    crew, conversation = crew_world
    assistant = conversation.assistant
    admin = signed_in(crew.user("admin"))
    page = admin.get(f"/assistants/{assistant.pk}/handoff/")
    assert page.status_code == 200 and "Minutes a visitor waits for someone" in page.content.decode()
    wrong = admin.post(
        f"/assistants/{assistant.pk}/handoff/",
        {"enabled": "on", "wait_minutes": "3", "timezone": "Mars/Olympus", "hours": "monday 9-5"},
    )
    html = wrong.content.decode()
    assert wrong.status_code == 400 and "Use a time zone name" in html and "like mon-fri 09:00-17:30" in html
    saved = admin.post(
        f"/assistants/{assistant.pk}/handoff/",
        {
            "enabled": "on",
            "wait_minutes": "3",
            "timezone": "Europe/Paris",
            "hours": "mon-fri 9:00-17:30\nsat 10:00-13:00",
            "keywords": "refund\n\n  cancel my contract ",
            "page_patterns": "*/enterprise*",
        },
    )
    assert saved.status_code == 302
    settings = HandoffSettings.objects.get(assistant=assistant)
    assert settings.wait_seconds == 180 and settings.timezone == "Europe/Paris"
    assert settings.hours["mon"] == ["09:00", "17:30"] and settings.hours["sat"] == ["10:00", "13:00"]
    assert "sun" not in settings.hours
    assert settings.keywords == ["refund", "cancel my contract"] and settings.page_patterns == ["*/enterprise*"]
    again = admin.get(f"/assistants/{assistant.pk}/handoff/").content.decode()
    assert "mon 09:00-17:30" in again and "cancel my contract" in again
    member = signed_in(crew.user("member"))
    assert member.post(f"/assistants/{assistant.pk}/handoff/", {"wait_minutes": "1"}).status_code == 403


def test_the_conversation_page_names_the_member_who_replied_and_the_handoff(crew_world):
    crew, conversation = crew_world
    member = crew.user("member")
    member.first_name = "Sam"
    member.save()
    services.agent_reply(conversation=conversation, user=member, text="Sam here, let me check")
    html = signed_in(crew.user("owner")).get(f"/conversations/{conversation.pk}/").content.decode()
    assert 'Sam <span class="muted">(your team)</span>' in html and "Sam here, let me check" in html
    assert "With the team" in html and "Visitor asked" in html and f"inbox/?c={conversation.pk}" in html


def test_a_visitor_opening_live_streams_in_a_loop_is_refused_for_a_while(assistant):
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    from assistants.web.handoff import LIVE_OPENS_PER_VISITOR

    state = post_json(visitor(), f"/embed/{assistant.public_key}/handoff", {}).json()
    url = f"/embed/{assistant.public_key}/live?conversation_id={state['conversation_id']}"

    async def opens(n):
        client = AsyncClient(headers={"X-Chatsite-Visitor": TOKEN})
        client.cookies["cs_visitor"] = TOKEN
        return [(await client.get(url)).status_code for _ in range(n)]

    statuses = async_to_sync(opens)(LIVE_OPENS_PER_VISITOR + 1)
    assert statuses[:-1] == [200] * LIVE_OPENS_PER_VISITOR and statuses[-1] == 429


def test_the_inbox_reads_a_long_queue_in_a_few_queries(crew_world, django_assert_max_num_queries):
    crew, conversation = crew_world
    for n in range(15):
        other = Conversation.objects.create(
            assistant=conversation.assistant, visitor_token=f"visitor-{n:02}-0123456789"
        )
        Message.objects.create(conversation=other, role="user", text=f"question {n}")
        services.handoff_request(conversation=other, reason="visitor_asked")
    client = signed_in(crew.user("member"))
    with django_assert_max_num_queries(20):
        page = client.get(f"/teams/{crew.team.pk}/inbox/")
    assert page.content.decode().count('class="inbox-item') == 16


def test_a_member_takes_over_a_conversation_that_never_asked_and_the_assistant_stops(assistant):
    """From the conversation page: the conversation goes to ``open``, assigned to the member, with who,
    when and why; the visitor's next message is held (no answer), tells them who replies, and the
    cursor it gives starts before the take-over, so their live stream brings the member's reply."""
    from assistants.handoff import selectors
    from assistants.models import HandoffEvent

    client = visitor()
    events, _ = ask(assistant.slug, "Where do you ship?", client=_async(client))
    assert "token" in [name for name, _ in events]  # the assistant answers
    conversation = Conversation.objects.get(pk=events[0][1]["conversation_id"])
    dana = assistant.team.memberships.get().user

    page = signed_in(dana).get(f"/conversations/{conversation.pk}/").content.decode()
    assert 'id="take-over"' in page
    response = signed_in(dana).post(f"/conversations/{conversation.pk}/take-over/", {"why": "A big <b>order</b>"})
    assert response.status_code == 302 and response["Location"].endswith(f"/inbox/?c={conversation.pk}")
    conversation.refresh_from_db()
    assert conversation.handoff_state == "open"
    handoff = conversation.handoffs.get()
    assert (handoff.reason, handoff.trigger, handoff.assigned_to) == ("taken_over", "A big <b>order</b>", dana)
    assert "Where do you ship?" in handoff.summary
    event = HandoffEvent.objects.get(conversation=conversation)
    assert (event.from_state, event.to_state, event.actor, event.user) == ("bot", "open", "agent", dana)
    assert event.reason == "taken over: A big <b>order</b>" and event.created_at is not None
    again = signed_in(dana).post(f"/conversations/{conversation.pk}/take-over/", {})
    assert again.status_code == 302 and conversation.handoffs.count() == 1  # already with the team: refused
    assert 'id="take-over"' not in signed_in(dana).get(f"/conversations/{conversation.pk}/").content.decode()

    services.agent_reply(conversation=conversation, user=dana, text="Hi, Dana here: where to?")
    events, _ = ask(assistant.slug, "Norway, please", conversation.pk, client=_async(client))
    assert [name for name, _ in events] == ["meta", "handoff", "done"]  # held: the assistant is quiet
    state = events[1][1]
    assert state["state"] == "open" and state["agent"] == "Dana from Acme"
    cursor = selectors.Cursor.parse(state["cursor"])
    items = selectors.visitor_items_after(conversation=conversation, cursor=cursor)
    assert [(item.name, item.data.get("state") or item.data.get("text")) for item in items] == [
        ("handoff", "open"),
        ("message", "Hi, Dana here: where to?"),
    ]
    assert conversation.messages.filter(role="assistant").count() == 1

    member_of_other_team = signed_in(make_user())
    assert member_of_other_team.post(f"/conversations/{conversation.pk}/take-over/").status_code == 404
