"""Server-Sent Events for the handoff: the inbox's stream (a team's members) and the visitor's stream
(one conversation).

A stream never carries what Redis says: a write (``services``) publishes a wake-up on the team's and
the conversation's channels after it commits, and the stream then reads what is new from the
database, after its cursor (the last message id and event id it sent, ``selectors.Cursor``). Each
event's SSE id is that cursor, so a client that reconnects with ``Last-Event-ID`` gets exactly what
it had not seen: nothing lost (the rows are in the database) and nothing twice (the ids only grow,
as the team's writes take one lock, see ``services._locked``). Without a wake-up (Redis away, a
message lost) the stream reads the database again every ``POLL_SECONDS`` anyway, and sends a comment
line to keep proxies from closing it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable

import redis
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings

from assistants.handoff.selectors import Cursor, Item
from chatsite.db import release_connection
from chatsite.lib.shared_redis import redis_client

logger = logging.getLogger(__name__)

POLL_SECONDS = 10.0  # read the database this often without a wake-up (and send a keep-alive)
TYPING_EVERY = 2.0  # seconds: at most one typing signal per conversation and side in this time
TYPING_PREFIX = "typing:"  # a pub/sub message that carries a typing signal instead of a wake-up
STREAM_SECONDS = 300.0  # then the stream ends and the client reconnects (with its Last-Event-ID)
RETRY_MS = 1000  # the reconnect delay a client is told
PRESENCE_SECONDS = 3 * POLL_SECONDS  # a visitor counts as here while their stream refreshes this key


def conversation_channel(conversation_id: int) -> str:
    return f"handoff:{_database()}:conversation:{conversation_id}"


def team_channel(team_id: int) -> str:
    return f"handoff:{_database()}:team:{team_id}"


def _database() -> int:
    """The Redis database this installation uses. Keys belong to a database, but pub/sub channels to the
    whole server: two installations on one Redis, each on its own database (staging beside production,
    or the test processes), would otherwise wake each other's streams and show each other's typing
    signals ("Dana from Acme is typing") for conversations and teams that share an id."""
    return redis_client().connection_pool.connection_kwargs.get("db", 0)


def presence_key(conversation_id: int) -> str:
    return f"handoff:present:{conversation_id}"


def visitor_present(conversation_id: int) -> bool:
    """Whether the visitor has the conversation's live stream open now (in any web process, any tab):
    the key is a sorted set of the open streams, each scored with the time its mark runs out."""
    try:
        return redis_client().zcount(presence_key(conversation_id), time.time(), "+inf") > 0
    except redis.RedisError:
        return True  # unknown: do not email someone who may be reading


def publish(*, team_id: int, conversation_id: int) -> None:
    """Wake the team's inbox streams and the conversation's visitor streams, in every web process."""
    try:
        client = redis_client()
        client.publish(conversation_channel(conversation_id), "1")
        client.publish(team_channel(team_id), "1")
    except redis.RedisError as exc:  # the streams read the database on their own every POLL_SECONDS
        logger.warning("handoff wake-up not published: %s", exc)


def _typing_publish(channel: str, throttle_key: str, payload: dict) -> bool:
    """Publish a typing signal (not stored: it only matters now), at most once per ``TYPING_EVERY``
    for the same side of the same conversation. True when it was published."""
    try:
        client = redis_client()
        if not client.set(throttle_key, "1", nx=True, px=int(TYPING_EVERY * 1000)):
            return False
        client.publish(channel, TYPING_PREFIX + json.dumps(payload))
        return True
    except redis.RedisError as exc:
        logger.warning("typing signal not published: %s", exc)
        return False


def typing_agent(*, conversation_id: int, label: str) -> bool:
    """A member types a reply: the visitor's streams of the conversation say "<label> is typing…"."""
    return _typing_publish(
        conversation_channel(conversation_id),
        f"handoff:typing:{conversation_id}:agent",
        {"who": "agent", "conversation_id": conversation_id, "label": label},
    )


def typing_visitor(*, team_id: int, conversation_id: int) -> bool:
    """The visitor types: the team's inbox streams show it on that conversation."""
    return _typing_publish(
        team_channel(team_id),
        f"handoff:typing:{conversation_id}:visitor",
        {"who": "visitor", "conversation_id": conversation_id},
    )


def typing_sse(raw: str) -> bytes | None:
    """The SSE event of a typing signal read from pub/sub, rebuilt field by field (only a known side,
    an id and a short label go out; anything else is dropped). No ``id``: it moves no cursor."""
    try:
        data = json.loads(raw[len(TYPING_PREFIX) :])
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("who") not in ("agent", "visitor"):
        return None
    conversation_id = data.get("conversation_id")
    if not isinstance(conversation_id, int):
        return None
    event = {"who": data["who"], "conversation_id": conversation_id, "label": str(data.get("label") or "")[:80]}
    return f"event: typing\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


def sse(item: Item) -> bytes:
    data = json.dumps(item.data, ensure_ascii=False)
    return f"id: {item.cursor}\nevent: {item.name}\ndata: {data}\n\n".encode()


def start_cursor(request) -> Cursor | None:
    """Where a stream starts: the client's ``Last-Event-ID`` (a reconnect), else ``?after=`` (the cursor
    the page was rendered with); None: from now (the caller reads the current cursor)."""
    for value in (request.headers.get("Last-Event-ID", ""), request.GET.get("after", "")):
        cursor = Cursor.parse(value)
        if cursor is not None:
            return cursor
    return None


async def stream(
    *,
    channel: str,
    cursor: Cursor,
    read_after: Callable[[Cursor], list[Item]],
    tick: Callable[[], None] | None = None,
    seconds: float = STREAM_SECONDS,
    presence: str = "",
) -> AsyncIterator[bytes]:
    """The events after ``cursor``, then each new one as it is written, for ``seconds``.

    ``read_after`` (sync, run in a thread) reads the database; ``tick`` (sync, optional) runs before
    each read: the visitor's stream checks there whether the team's waiting time ran out.
    ``presence``: a Redis key kept while the stream is open (the visitor is here: no email)."""
    client = aioredis.from_url(settings.REDIS_URL)
    pubsub = client.pubsub()
    stream_id = uuid.uuid4().hex
    subscribed = False
    deadline = time.monotonic() + seconds

    def read(after: Cursor) -> list[Item]:
        try:
            if tick is not None:
                tick()
            return read_after(after)
        finally:
            release_connection()

    try:
        try:  # subscribe before the first read, so nothing written in between is missed
            await pubsub.subscribe(channel)
            subscribed = True
        except (redis.RedisError, OSError) as exc:
            logger.warning("handoff stream without wake-ups (polling): %s", exc)
        if presence:  # here from the first moment, not only after the backlog
            await _mark(client, presence, stream_id)
        yield f"retry: {RETRY_MS}\n: connected\n\n".encode()
        read_now = True
        while True:
            if read_now:
                items = await sync_to_async(read)(cursor)
                for item in items:
                    cursor = item.cursor
                    yield sse(item)
                if items:
                    continue  # a long backlog: read on before waiting
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if presence:
                await _mark(client, presence, stream_id)
            woken, typing = await _wait(pubsub if subscribed else None, min(POLL_SECONDS, remaining))
            for raw in typing:
                event = typing_sse(raw)
                if event is not None:
                    yield event
            read_now = woken or not typing  # only typing signals: nothing new in the database
            if not woken and not typing:
                yield b": keep-alive\n\n"
    finally:
        try:
            if presence:
                await client.zrem(presence, stream_id)
            if subscribed:
                await pubsub.unsubscribe(channel)
            await pubsub.aclose()
            await client.aclose()
        except (redis.RedisError, OSError, RuntimeError):
            pass


async def _mark(client, key: str, stream_id: str) -> None:
    """This stream is open for another ``PRESENCE_SECONDS`` (a tab closing leaves the others marked)."""
    try:
        await client.zadd(key, {stream_id: time.time() + PRESENCE_SECONDS})
        await client.expire(key, int(PRESENCE_SECONDS))
    except (redis.RedisError, OSError):
        pass


async def _wait(pubsub, seconds: float) -> tuple[bool, list[str]]:
    """Wait for a wake-up or a typing signal, or ``seconds``: (woken, the typing signals received);
    several messages at once are taken together."""
    if pubsub is None:
        await asyncio.sleep(seconds)
        return False, []
    end = time.monotonic() + seconds
    woken, typing = False, []

    def take(message) -> None:
        nonlocal woken
        data = message.get("data")
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        if text.startswith(TYPING_PREFIX):
            typing.append(text)
        else:
            woken = True

    try:
        while (left := end - time.monotonic()) > 0:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is not None:
                take(message)
                while (more := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0)) is not None:
                    take(more)
                return woken, typing
    except (redis.RedisError, OSError) as exc:
        logger.warning("handoff stream lost its wake-ups: %s", exc)
        await asyncio.sleep(max(0.0, end - time.monotonic()))
    return woken, typing
