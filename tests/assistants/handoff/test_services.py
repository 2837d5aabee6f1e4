"""The handoff's state machine and triggers through the real services and database."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from assistants.handoff import selectors, services
from assistants.handoff.selectors import Cursor
from assistants.models import Conversation, Feedback, Handoff, HandoffEvent, HandoffSettings, Message
from tests.factories import make_assistant, make_team, make_user

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit hooks run, as in production


@pytest.fixture
def world():
    owner = make_user("dana")
    owner.first_name = "Dana"
    owner.save()
    team = make_team(owner=owner, name="Acme")
    assistant = make_assistant(team=team)
    conversation = Conversation.objects.create(
        assistant=assistant, visitor_token="v" * 24, page_url="https://shop.example/cart"
    )
    return owner, assistant, conversation


def ask(conversation, question, answer="", unanswered=False):
    Message.objects.create(conversation=conversation, role="user", text=question)
    return Message.objects.create(conversation=conversation, role="assistant", text=answer, unanswered=unanswered)


def events(conversation):
    return list(
        HandoffEvent.objects.filter(conversation=conversation).values_list("kind", "from_state", "to_state", "actor")
    )


def test_the_whole_cycle_is_recorded_and_a_resolved_conversation_goes_back_to_the_assistant(world, caplog):
    owner, assistant, conversation = world
    ask(conversation, "Do you ship to Norway?", "I don't know.", unanswered=True)
    caplog.set_level(logging.INFO, logger="assistants.handoff.hooks")

    turn = services.visitor_turn(conversation=conversation, text="Can I talk to a human?")
    assert turn.held and turn.started and conversation.handoff_state == "pending"
    handoff = turn.handoff
    assert handoff.reason == "visitor_asked" and "talk to a human" in handoff.trigger.lower()
    assert "Do you ship to Norway?" in handoff.summary and "Not answered: Do you ship to Norway?" in handoff.summary
    assert handoff.page_url == "https://shop.example/cart"
    assert Message.objects.filter(conversation=conversation, role="user").count() == 2  # stored, not answered

    again = services.visitor_turn(conversation=conversation, text="Hello? Anyone?")
    assert again.held and not again.started and again.handoff == handoff

    services.handoff_assign(conversation=conversation, user=owner)
    reply = services.agent_reply(conversation=conversation, user=owner, text="Hi, Dana here. Yes we do.")
    assert reply.role == "agent" and reply.author == owner
    services.handoff_resolve(conversation=conversation, user=owner)
    assert Conversation.objects.get(pk=conversation.pk).handoff_state == "resolved"

    back = services.visitor_turn(conversation=conversation, text="Thanks! And how long does it take?")
    assert not back.held and conversation.handoff_state == "bot"
    assert events(conversation) == [
        ("state", "bot", "pending", "visitor"),
        ("state", "pending", "open", "agent"),
        ("state", "open", "resolved", "agent"),
        ("state", "resolved", "bot", "visitor"),
    ]
    opened = HandoffEvent.objects.get(conversation=conversation, to_state="open")
    assert opened.user == owner and opened.created_at is not None
    handoff.refresh_from_db()
    assert handoff.assigned_to == owner and handoff.resolved_by == owner and handoff.resolved_at is not None
    logged = [record.handoff_event for record in caplog.records if hasattr(record, "handoff_event")]
    assert logged == ["handoff.requested", "message.created", "handoff.resolved"]


def test_the_machine_refuses_changes_it_does_not_allow(world):
    owner, _, conversation = world
    with pytest.raises(services.HandoffError):
        services.handoff_assign(conversation=conversation, user=owner)
    with pytest.raises(services.HandoffError):
        services.handoff_resolve(conversation=conversation, user=owner)
    with pytest.raises(services.HandoffError):
        services.agent_reply(conversation=conversation, user=owner, text="hello")
    assert HandoffEvent.objects.count() == 0


def test_asking_twice_keeps_one_handoff_and_replying_to_a_waiting_conversation_takes_it(world):
    owner, _, conversation = world
    first = services.handoff_request(conversation=conversation, reason="visitor_asked", trigger="button")
    second = services.handoff_request(conversation=conversation, reason="visitor_asked", trigger="button")
    assert first == second and Handoff.objects.count() == 1
    services.agent_reply(conversation=conversation, user=owner, text="I'm here")
    assert Conversation.objects.get(pk=conversation.pk).handoff_state == "open"
    assert Handoff.objects.get().assigned_to == owner


def test_another_member_can_take_it_over(world):
    owner, assistant, conversation = world
    colleague = make_user()
    assistant.team.memberships.create(user=colleague, role="member")
    services.handoff_request(conversation=conversation, reason="rule", trigger="keyword: refund")
    services.handoff_assign(conversation=conversation, user=owner)
    services.handoff_assign(conversation=conversation, user=colleague)
    assert Handoff.objects.get().assigned_to == colleague
    assert events(conversation)[-1] == ("assigned", "open", "open", "agent")
    assert "taken over from dana" in HandoffEvent.objects.last().reason.lower()


def test_two_answers_without_support_hand_the_conversation_over(world):
    _, _, conversation = world
    ask(conversation, "Q1", "I don't know.", unanswered=True)
    assert services.after_answer(conversation=conversation) is None
    ask(conversation, "Q2", "Here you go [1].", unanswered=False)
    ask(conversation, "Q3", "I don't know.", unanswered=True)
    assert services.after_answer(conversation=conversation) is None
    ask(conversation, "Q4", "I don't know.", unanswered=True)
    handoff = services.after_answer(conversation=conversation)
    assert handoff is not None and handoff.reason == "missing_knowledge"
    assert "Not answered: Q1 · Q3 · Q4" in handoff.summary


def test_a_down_rating_with_a_comment_hands_over_but_not_without_one(world):
    _, _, conversation = world
    answer = ask(conversation, "Price?", "Ten euros [1].")
    rating = Feedback.objects.create(conversation=conversation, message=answer, kind="rating", rating=-1)
    assert services.after_feedback(feedback=rating) is None
    rating.comment = "That is the old price"
    handoff = services.after_feedback(feedback=rating)
    assert handoff.reason == "negative_feedback" and handoff.trigger == "That is the old price"


def test_the_teams_rules_hand_over_on_a_keyword_or_a_page(world):
    _, assistant, conversation = world
    HandoffSettings.objects.create(assistant=assistant, keywords=["refund"], page_patterns=["*/enterprise*"])
    assert not services.visitor_turn(conversation=conversation, text="How do I install it?").held
    turn = services.visitor_turn(conversation=conversation, text="I want a refund", page_url="https://shop.example/")
    assert turn.held and turn.handoff.reason == "rule" and turn.handoff.trigger == "keyword: refund"
    other = Conversation.objects.create(assistant=assistant, visitor_token="w" * 24)
    turn = services.visitor_turn(conversation=other, text="Hello", page_url="https://shop.example/enterprise/")
    assert turn.held and turn.handoff.trigger == "page: */enterprise*"
    assert turn.handoff.page_url == "https://shop.example/enterprise/"


def test_with_handoff_off_the_assistant_keeps_answering(world):
    _, assistant, conversation = world
    HandoffSettings.objects.create(assistant=assistant, enabled=False)
    assert not services.visitor_turn(conversation=conversation, text="talk to a human").held
    assert services.handoff_request(conversation=conversation, reason="visitor_asked") is None
    assert conversation.handoff_state == "bot"


def test_outside_the_teams_hours_the_visitor_is_told_at_once(world):
    _, assistant, conversation = world
    HandoffSettings.objects.create(assistant=assistant, hours={"mon": ["09:00", "17:00"]}, timezone="UTC")
    sunday = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    handoff = services.handoff_request(conversation=conversation, reason="visitor_asked", now=sunday)
    assert handoff.unavailable_at == sunday
    assert events(conversation)[-1] == ("unavailable", "pending", "pending", "system")
    assert conversation.handoff_state == "pending"  # the team still sees it


def test_when_nobody_takes_it_in_time_the_visitor_is_told_once(world):
    owner, assistant, conversation = world
    HandoffSettings.objects.create(assistant=assistant, wait_seconds=120)
    handoff = services.handoff_request(conversation=conversation, reason="visitor_asked")
    soon = handoff.requested_at + timedelta(seconds=60)
    late = handoff.requested_at + timedelta(seconds=121)
    assert not services.handoff_check_wait(conversation_id=conversation.pk, now=soon)
    assert services.handoff_check_wait(conversation_id=conversation.pk, now=late)
    assert not services.handoff_check_wait(conversation_id=conversation.pk, now=late + timedelta(seconds=5))
    assert [kind for kind, *_ in events(conversation)] == ["state", "unavailable"]
    assert "2 minutes" in HandoffEvent.objects.last().reason
    # Taken after all: it still works.
    services.handoff_assign(conversation=conversation, user=owner)
    assert not services.handoff_check_wait(conversation_id=conversation.pk, now=timezone.now() + timedelta(days=1))


def test_the_visitors_stream_reads_what_came_after_its_cursor(world):
    owner, _, conversation = world
    start = selectors.cursor_for_visitor(conversation_id=conversation.pk)
    services.handoff_request(conversation=conversation, reason="visitor_asked")
    services.agent_reply(conversation=conversation, user=owner, text="Hello from Dana")
    services.visitor_turn(conversation=conversation, text="visitor text is not sent back to the visitor")
    items = selectors.visitor_items_after(conversation=conversation, cursor=start)
    assert [(item.name, item.data.get("state") or item.data.get("text")) for item in items] == [
        ("handoff", "pending"),
        ("handoff", "open"),
        ("message", "Hello from Dana"),
    ]
    assert items[1].data["agent"] == "Dana from Acme" and items[2].data["label"] == "Dana from Acme"
    assert [Cursor.parse(str(item.cursor)) for item in items] == [item.cursor for item in items]
    assert selectors.visitor_items_after(conversation=conversation, cursor=items[-1].cursor) == []
    assert selectors.visitor_items_after(conversation=conversation, cursor=items[0].cursor) == items[1:]
    assert selectors.cursor_for_visitor(conversation_id=conversation.pk) == items[-1].cursor


def test_take_over_works_from_the_assistant_or_resolved_and_not_from_a_waiting_conversation(world):
    owner, assistant, conversation = world
    ask(conversation, "Do you ship to Norway?", "Yes.")
    handoff = services.handoff_take_over(conversation=conversation, user=owner, why="  VIP\ncustomer ")
    assert conversation.handoff_state == "open" and handoff.trigger == "VIP customer"
    assert services.visitor_turn(conversation=conversation, text="Thanks!").held  # the assistant is quiet
    services.handoff_resolve(conversation=conversation, user=owner)
    services.handoff_take_over(conversation=conversation, user=owner)
    assert events(conversation)[-1] == ("state", "resolved", "open", "agent")
    assert HandoffEvent.objects.filter(conversation=conversation).last().reason == "taken over by a member"
    services.handoff_resolve(conversation=conversation, user=owner)
    services.visitor_turn(conversation=conversation, text="Can I talk to a human?")
    assert conversation.handoff_state == "pending"
    with pytest.raises(services.HandoffError):
        services.handoff_take_over(conversation=conversation, user=owner)
    assert Handoff.objects.filter(conversation=conversation, reason="taken_over").count() == 2
