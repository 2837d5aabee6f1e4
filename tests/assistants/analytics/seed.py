"""A small seeded set of conversations whose analytics are computed by hand in the tests."""

import datetime as dt
from dataclasses import dataclass, field

from assistants.models import Conversation, Feedback, Message
from tests.factories import make_assistant, make_team

DAY1 = dt.date(2026, 11, 10)
DAY2 = dt.date(2026, 11, 11)
P1 = {"n": 1, "title": "Pricing", "url": "https://ex.example/pricing", "anchor": "", "chunk_id": 1}
P2 = {"n": 2, "title": "Install guide", "url": "https://ex.example/install", "anchor": "", "chunk_id": 2}


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


def conversation(assistant, when: dt.datetime, page_url: str = "") -> Conversation:
    conv = Conversation.objects.create(assistant=assistant, visitor_token=f"v{when.timestamp()}", page_url=page_url)
    Conversation.objects.filter(pk=conv.pk).update(created_at=when)
    conv.refresh_from_db()
    return conv


def ask(conv, when, text="How much does it cost?") -> Message:
    message = Message.objects.create(conversation=conv, role="user", text=text)
    Message.objects.filter(pk=message.pk).update(created_at=when)
    return message


def answer(conv, when, *, text="It costs 10.", ttft=None, citations=(), provider="extractive", usage=None, **fields):
    message = Message.objects.create(
        conversation=conv,
        role="assistant",
        text=text,
        citations=list(citations),
        timings={"first_token_ms": ttft} if ttft is not None else {},
        provider=provider,
        usage=usage or {},
        **fields,
    )
    Message.objects.filter(pk=message.pk).update(created_at=when)
    message.refresh_from_db()
    return message


def rate(message, rating: int) -> Feedback:
    return Feedback.objects.create(conversation=message.conversation, message=message, kind="rating", rating=rating)


def usage(prompt, completion, cost, model="gpt-4o-mini"):
    return {"model": model, "prompt_tokens": prompt, "completion_tokens": completion, "cost_usd": cost}


@dataclass
class Seeded:
    team: object
    a: object
    b: object
    other: object
    messages: dict = field(default_factory=dict)


def seed() -> Seeded:
    """Assistant A: four conversations on DAY1, one on DAY2; B (same team): one on DAY1; another team's: one."""
    team = make_team()
    a, b = make_assistant(team=team, name="A"), make_assistant(team=team, name="B")
    other = make_assistant(name="Other")
    s = Seeded(team, a, b, other)
    c1 = conversation(a, at(DAY1, 9), "https://ex.example/pricing?utm_source=x")
    ask(c1, at(DAY1, 9, 1))
    s.messages["c1a1"] = answer(
        c1, at(DAY1, 9, 2), ttft=300, citations=[P1], provider="openai", usage=usage(100, 20, 0.001)
    )
    rate(s.messages["c1a1"], 1)
    ask(c1, at(DAY1, 9, 3), "And for teams?")
    answer(c1, at(DAY1, 9, 4), ttft=500, citations=[P1, P2], provider="openai", usage=usage(200, 30, 0.002))
    c2 = conversation(a, at(DAY1, 10), "https://ex.example/docs#top")
    ask(c2, at(DAY1, 10, 1), "Do you support SAML?")
    answer(c2, at(DAY1, 10, 2), text="I don't know.", ttft=100, unanswered=True)
    c3 = conversation(a, at(DAY1, 11))
    ask(c3, at(DAY1, 11, 1), "How do I install it?")
    s.messages["c3a1"] = answer(c3, at(DAY1, 11, 2), ttft=200, citations=[P2])
    rate(s.messages["c3a1"], -1)
    c4 = conversation(a, at(DAY1, 12))
    ask(c4, at(DAY1, 12, 1), "Hello?")
    answer(c4, at(DAY1, 12, 2), text="", provider="openai", error="timeout")
    c5 = conversation(a, at(DAY2, 8), "https://ex.example/pricing")
    ask(c5, at(DAY2, 8, 1))
    s.messages["c5a1"] = answer(
        c5, at(DAY2, 8, 2), ttft=900, citations=[P1], provider="openai", usage=usage(50, 10, 0.0005)
    )
    c6 = conversation(b, at(DAY1, 13))
    ask(c6, at(DAY1, 13, 1))
    answer(c6, at(DAY1, 13, 2), ttft=400)
    c7 = conversation(other, at(DAY1, 14))
    ask(c7, at(DAY1, 14, 1))
    answer(c7, at(DAY1, 14, 2), ttft=50)
    return s
