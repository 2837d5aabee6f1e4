"""The conversation log (an assistant's and the team's): flags, filters, search, pages and export; one
conversation's page with everything the visitor left; and "fix this answer"."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from assistants import selectors, services
from assistants.models import Conversation, Feedback, Membership, Message
from ingestion.models import Document, Source
from tests.factories import make_assistant, make_team, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return make_user()


@pytest.fixture
def team(owner):
    return make_team(owner, "Acme")


@pytest.fixture
def assistant(team):
    return make_assistant(team, "Acme Help")


@pytest.fixture
def client(owner):
    client = Client()
    client.force_login(owner)
    return client


def converse(assistant, *turns, page_url="https://acme.test/pricing", started=None, **answer_fields):
    """A conversation of (question, answer) turns; returns it and its answers."""
    conversation = Conversation.objects.create(assistant=assistant, visitor_token="v" * 24, page_url=page_url)
    answers = []
    for question, answer in turns:
        services.message_add(conversation=conversation, role=Message.Role.USER, text=question)
        answers.append(
            services.message_add(conversation=conversation, role=Message.Role.ASSISTANT, text=answer, **answer_fields)
        )
    if started:
        Conversation.objects.filter(pk=conversation.pk).update(created_at=started)
    return conversation, answers


def log_ids(client, url, **params) -> list[int]:
    response = client.get(url, params)
    assert response.status_code == 200, response.content.decode()[:500]
    return [conversation.pk for conversation in response.context["page"]]


def test_the_log_shows_first_question_turns_rating_and_flags(client, assistant):
    conversation, answers = converse(
        assistant, ("How much is Business?", "49 euros [1]."), ("And Starter?", "I don't know."), page_url=""
    )
    Message.objects.filter(pk=answers[1].pk).update(unanswered=True)
    Feedback.objects.create(conversation=conversation, message=answers[0], kind="rating", rating=1)
    Feedback.objects.create(conversation=conversation, message=answers[1], kind="rating", rating=-1, comment="Useless")
    Feedback.objects.create(
        conversation=conversation,
        kind="contact",
        details={"name": "Ada", "email": "ada@example.com", "message": "Call"},
    )
    row = selectors.conversation_log(conversations=Conversation.objects.filter(pk=conversation.pk)).get()
    assert row.first_question == "How much is Business?" and row.turns == 2
    assert (row.thumbs_up, row.thumbs_down) == (1, 1)
    assert [flag.name for flag in selectors.flags_of(row)] == ["unanswered", "handed_off", "lead"]

    page = client.get(f"/assistants/{assistant.pk}/conversations/").content.decode()
    assert "How much is Business?" in page and "Unanswered" in page and "Lead left" in page


def test_a_contact_request_without_an_email_is_handed_off_but_no_lead(assistant):
    conversation, _ = converse(assistant, ("Hi?", "Hello."))
    Feedback.objects.create(conversation=conversation, kind="contact", details={"name": "Bob", "email": ""})
    row = selectors.conversation_log(conversations=Conversation.objects.all()).get()
    assert [flag.name for flag in selectors.flags_of(row)] == ["handed_off"]


def test_each_filter_narrows_the_log(client, assistant):
    today = timezone.now()
    gap, gap_answers = converse(assistant, ("Opening hours on Sunday?", "I don't know."), started=today)
    Message.objects.filter(pk=gap_answers[0].pk).update(unanswered=True)
    liked, liked_answers = converse(
        assistant, ("How do I install the gadget?", "Use the installer."), started=today - timedelta(days=3)
    )
    Feedback.objects.create(conversation=liked, message=liked_answers[0], kind="rating", rating=1)
    disliked, disliked_answers = converse(
        assistant, ("Refund policy?", "Refunds within 30 days."), started=today - timedelta(days=10)
    )
    Feedback.objects.create(conversation=disliked, message=disliked_answers[0], kind="rating", rating=-1)
    lead, _ = converse(assistant, ("Talk to sales", "Leave your details."), started=today - timedelta(days=1))
    Feedback.objects.create(conversation=lead, kind="contact", details={"email": "buyer@example.com"})
    url = f"/assistants/{assistant.pk}/conversations/"

    assert log_ids(client, url) == [gap.pk, lead.pk, liked.pk, disliked.pk]  # newest first
    assert log_ids(client, url, flags="unanswered") == [gap.pk]
    assert log_ids(client, url, flags=["handed_off", "lead"]) == [lead.pk]
    assert log_ids(client, url, rating="up") == [liked.pk]
    assert log_ids(client, url, rating="down") == [disliked.pk]
    assert log_ids(client, url, rating="none") == [gap.pk, lead.pk]
    # Every word, as the beginning of a word, in a question or an answer, any case.
    assert log_ids(client, url, q="instal GADGET") == [liked.pk]
    assert log_ids(client, url, q="refunds") == [disliked.pk]
    assert log_ids(client, url, q="30 days") == [disliked.pk]
    assert log_ids(client, url, q="sunday installer") == []
    assert log_ids(client, url, q="'\"&|!:*()") == [gap.pk, lead.pk, liked.pk, disliked.pk]  # no words: no filter
    day = timezone.localdate
    since, until = (day() - timedelta(days=4)).isoformat(), (day() - timedelta(days=1)).isoformat()
    assert log_ids(client, url, since=since, until=until) == [lead.pk, liked.pk]
    assert log_ids(client, url, since=day().isoformat()) == [gap.pk]


def test_a_bad_filter_is_shown_at_its_field_as_typed(client, assistant):
    response = client.get(
        f"/assistants/{assistant.pk}/conversations/", {"since": "2026-05-10", "until": "2026-05-01", "q": "refund"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors == {"until": ["The end date is before the start date."]}
    page = response.content.decode()
    assert 'id="id_until_error"' in page and 'value="2026-05-01"' in page and 'value="refund"' in page
    response = client.get(f"/assistants/{assistant.pk}/conversations/", {"since": "yesterday"})
    assert response.status_code == 400 and "since" in response.context["form"].errors


def test_the_team_log_covers_every_assistant_and_filters_by_one(client, team, assistant, owner):
    other = make_assistant(team, "Other bot")
    first, _ = converse(assistant, ("Question to Acme?", "Answer."))
    second, _ = converse(other, ("Question to Other?", "Answer."))
    elsewhere, _ = converse(make_assistant(make_team(make_user())), ("Not ours?", "No."))
    url = f"/teams/{team.pk}/conversations/"
    assert log_ids(client, url) == [second.pk, first.pk]
    assert log_ids(client, url, assistant=other.pk) == [second.pk]
    response = client.get(url, {"assistant": elsewhere.assistant_id})  # another team's assistant is no choice
    assert response.status_code == 400 and "assistant" in response.context["form"].errors


def test_the_log_is_paged_and_keeps_its_filters(client, assistant):
    for n in range(30):
        converse(assistant, (f"Question {n}?", "Answer."))
    url = f"/assistants/{assistant.pk}/conversations/"
    first = client.get(url, {"q": "question"})
    assert len(first.context["page"]) == 25 and first.context["page"].paginator.count == 30
    assert "?q=question&amp;page=2" in first.content.decode()
    second = client.get(url, {"q": "question", "page": 2})
    assert len(second.context["page"]) == 5


def test_the_export_is_the_apis_for_the_filtered_conversations(client, assistant):
    kept, _ = converse(assistant, ("=HYPERLINK(1)", "Answer [1]."), citations=[{"n": 1, "title": "T", "url": "u"}])
    Message.objects.filter(conversation=kept, role="assistant").update(unanswered=True)
    converse(assistant, ("Not exported?", "Right."))
    url = f"/assistants/{assistant.pk}/conversations/export/"

    response = client.get(url, {"format": "csv", "flags": "unanswered"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="{assistant.slug}-conversations-' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["conversation_id", "created_at", "role", "text", "citations", "page_url"]
    assert [(row[0], row[2], row[3]) for row in rows[1:]] == [
        (str(kept.pk), "user", "'=HYPERLINK(1)"),  # never a spreadsheet formula
        (str(kept.pk), "assistant", "Answer [1]."),
    ]

    response = client.get(url, {"format": "jsonl"})
    assert response["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert len(lines) == 4 and lines[1]["citations"] == [{"n": 1, "title": "T", "url": "u"}]
    assert client.get(url, {"format": "xml"}).status_code == 200  # the log again, with the error
    team_export = client.get(f"/teams/{assistant.team_id}/conversations/export/", {"format": "jsonl"})
    assert len(b"".join(team_export.streaming_content).decode().splitlines()) == 4


def test_the_conversation_page_shows_everything_the_visitor_left(client, assistant):
    conversation, answers = converse(
        assistant,
        ("How much is <b>Business</b>?", "It costs 49 euros [1]."),
        ("Opening hours?", "I don't know."),
        citations=[{"n": 1, "title": "Pricing", "section": "Plans", "url": "https://acme.test/pricing#plans"}],
    )
    Message.objects.filter(pk=answers[1].pk).update(
        unanswered=True,
        grounding={"retrieval": {"weak": True, "similarity": 0.21, "coverage": 0.4}},
        citations=[],
    )
    Feedback.objects.create(
        conversation=conversation, message=answers[1], kind="rating", rating=-1, comment="<script>x()</script>"
    )
    Feedback.objects.create(
        conversation=conversation,
        kind="contact",
        details={"name": "Ada <i>", "email": "ada@example.com", "message": "Please call", "page_url": "javascript:x"},
    )
    response = client.get(f"/conversations/{conversation.pk}/")
    page = response.content.decode()
    assert "https://acme.test/pricing" in page  # the page it was asked on
    assert 'href="https://acme.test/pricing#plans"' in page and "Plans" in page  # the sources cited
    assert "No passage of the content matched the question well enough" in page  # why it is unanswered
    assert "similarity 0.21; 40% of the question" in page
    assert "rated this answer not helpful" in page and "&lt;script&gt;x()&lt;/script&gt;" in page
    assert "Ada &lt;i&gt;" in page and 'href="mailto:ada@example.com"' in page and "Please call" in page
    assert "How much is &lt;b&gt;Business&lt;/b&gt;?" in page and "<b>Business" not in page
    assert 'href="javascript:' not in page
    # The rating is shown at the answer it rates.
    second_answer = page.split(f'id="message-{answers[1].pk}"')[1]
    assert "not helpful" in second_answer and "not helpful" not in page.split(f'id="message-{answers[1].pk}"')[0]
    flags = [flag.name for flag in response.context["flags"]]
    assert flags == ["unanswered", "handed_off", "lead"]


def test_an_unsupported_answer_says_which_sentences(client, assistant):
    conversation, answers = converse(assistant, ("Price?", "It is free. It is 5 euros [1]."))
    Message.objects.filter(pk=answers[0].pk).update(
        unanswered=True,
        grounding={
            "supported": False,
            "sentences": [
                {"text": "It is free.", "supported": False},
                {"text": "It is 5 euros [1].", "supported": True},
            ],
            "retrieval": {"weak": False},
        },
    )
    page = client.get(f"/conversations/{conversation.pk}/").content.decode()
    assert "do not support what it says" in page and "<li>It is free.</li>" in page


def test_fix_this_answer_adds_a_qa_pair_queued_for_indexing(assistant, team, owner):
    member = make_user()
    Membership.objects.create(team=team, user=member, role="member")  # fixing an answer is every member's work
    client = Client()
    client.force_login(member)
    conversation, answers = converse(assistant, ("  Opening   hours on Sunday? ", "I don't know."))
    response = client.post(
        f"/conversations/{conversation.pk}/fix/",
        {"message_id": answers[0].pk, "question": "Opening hours on Sunday?", "answer": "Closed on Sundays."},
    )
    assert response.status_code == 302 and response["Location"].endswith(f"#message-{answers[0].pk}")
    document = Document.objects.get(source__assistant=assistant, source__kind=Source.Kind.QA)
    assert document.title == "Opening hours on Sunday?" and document.sections[0]["text"] == "Closed on Sundays."
    assert document.status == Document.Status.PENDING  # queued for indexing
    page = client.get(f"/conversations/{conversation.pk}/").content.decode()
    assert "Fixed: a Q&amp;A pair answers this question" in page and "Fix it again" in page


def test_fix_this_answer_keeps_what_was_typed_and_says_what_is_missing(client, assistant):
    conversation, answers = converse(assistant, ("Sunday?", "No idea."), ("Monday?", "Also no idea."))
    response = client.post(
        f"/conversations/{conversation.pk}/fix/",
        {"message_id": answers[1].pk, "question": "Monday opening?", "answer": "  "},
    )
    assert response.status_code == 400
    page = response.content.decode()
    form_html = page.split(f'id="message-{answers[1].pk}"')[1]
    assert "Write the answer the assistant should have given." in form_html
    assert 'value="Monday opening?"' in form_html and '<details class="fix" open>' in form_html
    assert "Write the answer" not in page.split(f'id="message-{answers[1].pk}"')[0]
    assert not Document.objects.filter(source__assistant=assistant).exists()


def test_an_answer_of_another_conversation_cannot_be_fixed_here(client, assistant):
    conversation, _ = converse(assistant, ("A?", "B."))
    _, other_answers = converse(assistant, ("C?", "D."))
    response = client.post(
        f"/conversations/{conversation.pk}/fix/", {"message_id": other_answers[0].pk, "question": "C?", "answer": "E"}
    )
    assert response.status_code == 400 and not Document.objects.exists()
