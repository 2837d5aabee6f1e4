"""The Leads screen (best first, filters, status and notes, CSV export with formula cells escaped),
the Lead capture settings section, and the emails: new lead and handoff requested, escaped."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assistants.models import Conversation, Lead, LeadCapture, Membership, Message
from assistants.tasks import lead_notify_task, notify_handoff_requested
from tests.factories import make_assistant
from tests.mail import body
from tests.roles import make_crew

pytestmark = pytest.mark.django_db

XSS = '<script>alert("x")</script>'


@pytest.fixture
def crew():
    return make_crew()


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def lead(team, assistant, score, **fields) -> Lead:
    return Lead.objects.create(team=team, assistant=assistant, score=score, **fields)


def test_the_leads_screen_lists_the_best_first_and_filters(crew):
    shop = make_assistant(team=crew.team, name="Shop")
    docs = make_assistant(team=crew.team, name="Docs")
    cold = lead(crew.team, shop, 12, email="cold@example.com")
    hot = lead(crew.team, docs, 91, name=XSS, email="hot@example.com", intent="pricing", status="qualified")
    warm = lead(crew.team, shop, 55, email="warm@example.com")
    Lead.objects.filter(pk=warm.pk).update(created_at=timezone.now() - timedelta(days=10))
    lead(make_assistant().team, make_assistant(), 99, email="other-team@example.com")
    member = signed_in(crew.user("member"))
    url = reverse("team_leads", args=[crew.team.pk])

    response = member.get(url)
    assert [item.pk for item in response.context["page"]] == [hot.pk, warm.pk, cold.pk]
    html = response.content.decode()
    assert XSS not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "other-team@example.com" not in html and 'aria-current="page">Leads' in html

    def listed(**query):
        return [item.pk for item in member.get(url, query).context["page"]]

    assert listed(status="new") == [warm.pk, cold.pk]
    assert listed(assistant=shop.pk) == [warm.pk, cold.pk]
    assert listed(min_score=50) == [hot.pk, warm.pk]
    assert listed(min_score=50, max_score=hot.score - 1) == [warm.pk]
    upside_down = member.get(url, {"min_score": 60, "max_score": 40})
    assert upside_down.status_code == 400 and "max_score" in upside_down.context["form"].errors
    assert listed(since=(timezone.localdate() - timedelta(days=2)).isoformat()) == [hot.pk, cold.pk]
    bad = member.get(url, {"min_score": 101})
    assert bad.status_code == 400 and "min_score" in bad.context["form"].errors


def test_a_member_works_a_lead_status_and_notes(crew):
    item = lead(crew.team, make_assistant(team=crew.team), 40, email="a@example.com", notes="")
    member = signed_in(crew.user("member"))
    url = reverse("lead_detail", args=[item.pk])
    assert member.post(url, {"status": "contacted", "notes": "Called, " + XSS}).status_code == 302
    item.refresh_from_db()
    assert item.status == "contacted" and item.notes == "Called, " + XSS
    page = member.get(url).content.decode()
    assert XSS not in page and "Called, &lt;script&gt;" in page
    assert member.post(url, {"status": "won"}).status_code == 400


def test_the_export_escapes_formula_cells(crew):
    assistant = make_assistant(team=crew.team)
    lead(
        crew.team,
        assistant,
        80,
        name='=HYPERLINK("http://evil")',
        company="+1 cmd",
        phone="-2",
        email="ok@example.com",
        notes="@SUM(A1)",
    )
    lead(crew.team, assistant, 10, name="Low", email="low@example.com")
    response = signed_in(crew.user("member")).get(reverse("team_leads_export", args=[crew.team.pk]), {"min_score": 50})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    row = rows[0]
    assert row["name"] == '\'=HYPERLINK("http://evil")' and row["company"] == "'+1 cmd"
    assert (
        row["phone"] == "'-2"
        and row["notes"] == "'@SUM(A1)"
        and row["email"] == "ok@example.com"
        and row["score"] == "80"
    )


def test_the_lead_capture_settings_section(crew):
    assistant = make_assistant(team=crew.team)
    url = reverse("assistant_settings", args=[assistant.pk, "leads"])
    admin = signed_in(crew.user("admin"))
    page = admin.get(url)
    assert page.status_code == 200 and "Buying-intent words (French)" in page.content.decode()
    data = {
        "triggers": ["intent", "answers"],
        "after_answers": "4",
        "field_name": "required",
        "field_email": "required",
        "field_phone": "optional",
        "field_company": "off",
        "custom_fields": "Team size *\nBudget",
        "consent_text": "  I agree   to be contacted. ",
        "intent_en": "pricing\nquote, demo\nPricing",
        "intent_fr": "devis",
        "intent_de": "",
        "intent_es": "precio",
        "intent_zh": "价格",
    }
    assert admin.post(url, data).status_code == 302
    capture = LeadCapture.objects.get(assistant=assistant)
    assert capture.triggers == ["intent", "answers"] and capture.after_answers == 4
    assert capture.fields == {"name": "required", "email": "required", "phone": "optional", "company": "off"}
    assert capture.custom_fields == [
        {"key": "team_size", "label": "Team size", "required": True},
        {"key": "budget", "label": "Budget", "required": False},
    ]
    assert capture.consent_text == "I agree to be contacted."
    assert capture.intent_phrases["en"] == ["pricing", "quote", "demo"] and capture.intent_phrases["de"] == []

    refused = admin.post(url, {**data, "field_email": "off", "field_phone": "off", "after_answers": "0"})
    assert refused.status_code == 400
    form = refused.context["form"]
    assert set(form.errors) == {"field_email", "after_answers"}
    assert "Team size *" in refused.content.decode()  # what was typed is kept


def test_a_new_lead_emails_the_admins_escaped_once(crew, mailbox):
    assistant = make_assistant(team=crew.team, name="Shop")
    item = lead(
        crew.team,
        assistant,
        77,
        name=XSS,
        email="ada@example.com",
        intent="pricing",
        score_parts={"intent": {"points": 20, "max": 35, "why": "pricing"}},
    )
    lead_notify_task(item.pk)
    lead_notify_task(item.pk)
    owner, admin, member = (crew.user(role) for role in ("owner", "admin", "member"))
    message = mailbox.wait_for(admin.email)
    assert mailbox.to(owner.email) and not mailbox.to(member.email)
    assert len(mailbox.messages) == 1 and message["To"] is None  # one message, the admins in Bcc
    assert "77/100" in message["Subject"] and "\n" not in message["Subject"]
    assert XSS in body(message)  # plain text shows it as typed
    html = message.get_body(preferencelist=("html",)).get_content()
    assert XSS not in html and "&lt;script&gt;" in html and reverse("lead_detail", args=[item.pk]) in html


def test_a_handoff_request_emails_the_admins_with_what_is_known(crew, mailbox):
    assistant = make_assistant(team=crew.team, name="Shop")
    conversation = Conversation.objects.create(
        assistant=assistant, visitor_token="t" * 24, page_url="https://shop.test/"
    )
    Message.objects.create(conversation=conversation, role="user", text="I need a human " + XSS)
    conversation.feedback.create(kind="contact", details={"name": "Ada", "email": "ada@example.com", "message": XSS})
    notify_handoff_requested(conversation.pk)
    notify_handoff_requested(conversation.pk)  # redelivered: not sent twice
    admin = crew.user("admin")
    message = mailbox.wait_for(admin.email)
    assert len(mailbox.messages) == 1 and "asks for a person" in message["Subject"]
    text = body(message)
    assert "ada@example.com" in text and "I need a human" in text and "https://shop.test/" in text
    html = message.get_body(preferencelist=("html",)).get_content()
    assert XSS not in html and reverse("conversation_detail", args=[conversation.pk]) in html
    notify_handoff_requested(999999)  # gone: nothing to do, no error
    assert Membership.objects.filter(team=crew.team).count() == 3


def test_a_member_asks_for_the_daily_digest_and_gets_it_once_a_day(crew, mailbox):
    from assistants.notifications.digest import daily_digests_send

    assistant = make_assistant(team=crew.team, name="Shop")
    conversation = Conversation.objects.create(assistant=assistant, visitor_token="d" * 24)
    Message.objects.create(conversation=conversation, role="user", text="Price?")
    Message.objects.create(conversation=conversation, role="assistant", text="I don't know.", unanswered=True)
    lead(crew.team, assistant, 88, name=XSS, email="ada@example.com")
    lead(crew.team, assistant, 20, email="low@example.com")
    member = signed_in(crew.user("member"))
    url = reverse("team_digest", args=[crew.team.pk])
    assert member.post(url, {"daily_digest": "on"}).status_code == 302
    assert 'name="daily_digest" checked' in member.get(reverse("team_leads", args=[crew.team.pk])).content.decode()

    assert daily_digests_send() == 1
    assert daily_digests_send() == 0  # once a day
    message = mailbox.wait_for(crew.user("member").email)
    assert len(mailbox.messages) == 1 and "Your day on Chatsite" in message["Subject"]
    text = body(message)
    assert "1 conversation, 1 question" in text and "1 question your content could not answer" in text
    assert "2 new leads" in text and text.index("88/100") < text.index("20/100")
    html = message.get_body(preferencelist=("html",)).get_content()
    assert XSS not in html and "&lt;script&gt;" in html
    assert daily_digests_send(now=timezone.now() + timedelta(days=1)) == 1  # the next day

    member.post(url, {})
    assert daily_digests_send(now=timezone.now() + timedelta(days=2)) == 0


def test_the_conversation_page_shows_its_lead_with_the_score_parts_and_a_link(crew):
    assistant = make_assistant(team=crew.team)
    conversation = Conversation.objects.create(assistant=assistant, visitor_token="v" * 24)
    Message.objects.create(conversation=conversation, role="user", text="What does the team plan cost?")
    item = lead(
        crew.team,
        assistant,
        72,
        conversation=conversation,
        name=XSS,
        email="ada@example.com",
        phone="+33 6 12 34 56 78",
        status="qualified",
        consent_text="You may contact me about my request.",
        consent_at=timezone.now(),
        score_parts={
            "answered": {"points": 10, "max": 20, "why": "one question unanswered"},
            "intent": {"points": 35, "max": 35, "why": "asked about pricing"},
        },
    )
    page = signed_in(crew.user("member")).get(reverse("conversation_detail", args=[conversation.pk]))
    html = page.content.decode()
    card = html[html.index('id="lead"') : html.index("</section>", html.index('id="lead"'))]
    assert XSS not in html and "&lt;script&gt;" in card
    assert "ada@example.com" in card and "+33 6 12 34 56 78" in card and ">72<" in card and "Qualified" in card
    assert "You may contact me about my request." in card
    assert card.index("Intent") < card.index("Answered") and "35/35" in card and "one question unanswered" in card
    assert reverse("lead_detail", args=[item.pk]) in card

    other = Conversation.objects.create(assistant=assistant, visitor_token="w" * 24)
    assert (
        'id="lead"'
        not in signed_in(crew.user("member")).get(reverse("conversation_detail", args=[other.pk])).content.decode()
    )
