"""Typing signals through the real Redis pub/sub and the live streams: a member typing reaches the
visitor's stream as "typing" (with who), the visitor typing reaches the team's; nothing is stored,
nothing moves a cursor, a flood is throttled, and a stream only passes a signal's known fields."""

import asyncio
import json

import pytest
import redis
from django.db import connection
from django.test import Client

from assistants.handoff import live, services
from assistants.handoff.selectors import Cursor
from assistants.models import Conversation, Message
from chatsite.lib.shared_redis import redis_client
from chatsite.test_settings import redis_url_moved
from tests.factories import make_assistant, make_team, make_user

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "visitor-token-typing-0123"


@pytest.fixture
def world():
    dana = make_user()
    dana.first_name = "Dana"
    dana.save()
    assistant = make_assistant(team=make_team(owner=dana, name="Acme"))
    conversation = Conversation.objects.create(assistant=assistant, visitor_token=TOKEN)
    services.handoff_request(conversation=conversation, reason="visitor_asked")
    services.handoff_assign(conversation=conversation, user=dana)
    for side in ("agent", "visitor"):
        redis_client().delete(f"handoff:typing:{conversation.pk}:{side}")
    return dana, conversation


def in_thread(publish):
    def run():
        try:
            publish()
        finally:
            connection.close()  # the thread's own database connection

    return run


def collect(channel: str, publish, seconds: float = 1.5) -> tuple[list[bytes], list[int]]:
    """Open a stream on ``channel`` (nothing in the database after its cursor), run ``publish`` once
    it is subscribed, and return what it sent and, at each chunk, how many times it had read the
    database by then."""
    reads = 0

    def read_after(cursor):
        nonlocal reads
        reads += 1
        return []

    async def run():
        chunks, counts = [], []
        body = live.stream(channel=channel, cursor=Cursor(0, 0), read_after=read_after, seconds=seconds)
        chunks.append(await body.__anext__())  # "connected": subscribed by now
        counts.append(reads)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, in_thread(publish))
        async for chunk in body:
            chunks.append(chunk)
            counts.append(reads)
        return chunks, counts

    return asyncio.run(run())


def typing_events(chunks) -> list[dict]:
    events = []
    for chunk in chunks:
        text = chunk.decode()
        if text.startswith("event: typing\n"):
            assert "\nid:" not in text and not text.startswith("id:")  # moves no cursor
            events.append(json.loads(text.split("data: ", 1)[1]))
    return events


def test_a_member_typing_reaches_the_visitors_stream_once_per_interval(world):
    dana, conversation = world

    def publish():
        assert live.typing_agent(conversation_id=conversation.pk, label="Dana from Acme")
        assert not live.typing_agent(conversation_id=conversation.pk, label="Dana from Acme")  # throttled

    chunks, reads = collect(live.conversation_channel(conversation.pk), publish)
    assert typing_events(chunks) == [{"who": "agent", "conversation_id": conversation.pk, "label": "Dana from Acme"}]
    # Read once before waiting; the typing signal then read nothing more from the database (the
    # keep-alive at the end of the wait still counts one read).
    assert chunks[-1] == b": keep-alive\n\n" and reads[-1] == 1
    assert not Message.objects.filter(conversation=conversation, role="agent").exists()


def test_a_stream_passes_only_known_fields_of_a_signal(world):
    dana, conversation = world
    channel = live.conversation_channel(conversation.pk)

    def publish():
        client = redis_client()
        client.publish(channel, 'typing:{"who": "agent", "conversation_id": 1, "label": "<b>x</b>", "html": "evil"}')
        client.publish(channel, 'typing:{"who": "admin", "conversation_id": 1}')
        client.publish(channel, "typing:not json")

    chunks, _ = collect(channel, publish)
    assert typing_events(chunks) == [{"who": "agent", "conversation_id": 1, "label": "<b>x</b>"}]


def test_an_installation_on_another_redis_database_is_not_heard(world, settings):
    """Two installations on one Redis server, each on its own database (staging beside production; the
    test processes), both with this conversation's and team's ids: keys are kept apart by the database,
    pub/sub channels are not, so the channels carry the database's number."""
    dana, conversation = world
    own = settings.REDIS_URL
    other = redis_url_moved(own, 8)  # a database no other test process uses (they take 15, 14, ... down)

    def publish():
        settings.REDIS_URL = other  # the other installation's processes, in this one's place
        try:
            live.publish(team_id=conversation.assistant.team_id, conversation_id=conversation.pk)
            assert live.typing_agent(conversation_id=conversation.pk, label="Sam from Elsewhere")
        finally:
            settings.REDIS_URL = own
            redis.Redis.from_url(other).delete(f"handoff:typing:{conversation.pk}:agent")

    chunks, reads = collect(live.conversation_channel(conversation.pk), publish, seconds=1.0)
    assert typing_events(chunks) == []
    assert chunks[-1] == b": keep-alive\n\n" and reads[-1] == 1  # not woken either: the one read, then the wait


def test_the_endpoints_publish_for_who_may_and_only_while_a_person_has_it(world):
    dana, conversation = world
    assistant = conversation.assistant
    member = Client()
    member.force_login(dana)
    visitor = Client(headers={"X-Chatsite-Visitor": TOKEN})
    stranger = Client(headers={"X-Chatsite-Visitor": "someone-else-0123456789"})

    def publish():
        assert member.post(f"/conversations/{conversation.pk}/typing/").status_code == 204
        body = json.dumps({"conversation_id": conversation.pk})
        assert visitor.post(f"/embed/{assistant.public_key}/typing", body, "application/json").status_code == 204
        assert stranger.post(f"/embed/{assistant.public_key}/typing", body, "application/json").status_code == 404

    chunks, _ = collect(live.team_channel(assistant.team_id), publish)
    assert typing_events(chunks) == [{"who": "visitor", "conversation_id": conversation.pk, "label": ""}]

    services.handoff_resolve(conversation=conversation, user=dana)
    redis_client().delete(f"handoff:typing:{conversation.pk}:agent")
    chunks, _ = collect(
        live.conversation_channel(conversation.pk),
        lambda: member.post(f"/conversations/{conversation.pk}/typing/"),
        seconds=1.0,
    )
    assert typing_events(chunks) == []  # with the assistant again: no signal


def test_a_flood_of_typing_signals_from_one_address_is_refused_for_a_while(world, monkeypatch):
    from assistants.web import handoff as handoff_web

    dana, conversation = world
    monkeypatch.setattr(handoff_web, "TYPING_PER_ADDRESS", 3)
    visitor = Client(headers={"X-Chatsite-Visitor": TOKEN})
    url = f"/embed/{conversation.assistant.public_key}/typing"
    body = json.dumps({"conversation_id": conversation.pk})
    codes = [visitor.post(url, body, "application/json").status_code for _ in range(5)]
    assert codes == [204, 204, 204, 429, 429]
    refused = visitor.post(url, body, "application/json")
    assert int(refused["Retry-After"]) > 0 and refused.json()["error"] == "rate_limited"
