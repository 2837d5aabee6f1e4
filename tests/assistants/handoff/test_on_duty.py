"""The members on duty get the "a visitor asks for a person" email; nobody on duty: every owner and admin
does. Members put themselves on duty from the inbox (or the members page), owners and admins put others.
The emails are read from a real local SMTP server."""

import pytest
from django.test import Client
from django.urls import reverse

from assistants import tasks
from assistants.handoff import services
from assistants.models import Conversation, Membership
from chatsite.lib.shared_redis import redis_client
from tests.factories import make_assistant
from tests.roles import make_crew

pytestmark = pytest.mark.django_db(transaction=True)  # the hooks run after commit, as in production


@pytest.fixture
def crew():
    return make_crew()


def waiting_conversation(crew):
    conversation = Conversation.objects.create(assistant=make_assistant(team=crew.team), visitor_token="v" * 24)
    services.handoff_request(conversation=conversation, reason="visitor_asked", trigger="talk to a human")
    return conversation


def recipients(mailbox, conversation) -> list[str]:
    """Who the worker's task emails (run here as the worker runs it; the SMTP send is synchronous)."""
    mailbox.messages.clear()
    redis_client().delete(f"notified:handoff:{conversation.pk}")  # one email per window: run it afresh
    tasks.notify_handoff_requested(conversation.pk)
    assert len(mailbox.messages) == 1
    return sorted(mailbox.messages[0]["X-Envelope-To"].split(", "))


def duty(crew, role: str, value: bool = True) -> Membership:
    membership = Membership.objects.get(team=crew.team, user=crew.user(role))
    Membership.objects.filter(pk=membership.pk).update(on_duty=value)
    return membership


def test_nobody_on_duty_emails_every_owner_and_admin(crew, mailbox):
    conversation = waiting_conversation(crew)
    assert recipients(mailbox, conversation) == sorted([crew.user("owner").email, crew.user("admin").email])


def test_the_members_on_duty_get_it_and_nobody_else(crew, mailbox):
    conversation = waiting_conversation(crew)
    duty(crew, "member")
    assert recipients(mailbox, conversation) == [crew.user("member").email]


def test_a_member_on_duty_without_an_email_address_counts_as_nobody(crew, mailbox):
    conversation = waiting_conversation(crew)
    duty(crew, "member")
    crew.user("member").email = ""
    crew.user("member").save()
    assert recipients(mailbox, conversation) == sorted([crew.user("owner").email, crew.user("admin").email])


def test_a_member_off_duty_again_leaves_it_to_the_owners_and_admins(crew, mailbox):
    conversation = waiting_conversation(crew)
    duty(crew, "member")
    duty(crew, "admin")
    assert recipients(mailbox, conversation) == sorted([crew.user("member").email, crew.user("admin").email])
    duty(crew, "member", False)
    duty(crew, "admin", False)
    assert recipients(mailbox, conversation) == sorted([crew.user("owner").email, crew.user("admin").email])


# --- The dashboard ------------------------------------------------------------------------------


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_member_goes_on_duty_from_the_inbox_and_sees_it(crew):
    client = signed_in(crew.user("member"))
    inbox = reverse("team_inbox", args=[crew.team.pk])
    page = client.get(inbox).content.decode()
    assert "Go on duty" in page and "every owner and admin is emailed" in page
    response = client.post(reverse("team_on_duty", args=[crew.team.pk]), {"on_duty": "1"})
    assert response.status_code == 302 and response["Location"] == inbox
    assert Membership.objects.get(team=crew.team, user=crew.user("member")).on_duty
    page = client.get(inbox).content.decode()
    assert "Go off duty" in page and crew.user("member").username in page.split("On duty:")[1][:200]
    client.post(reverse("team_on_duty", args=[crew.team.pk]), {"on_duty": "0"})
    assert not Membership.objects.get(team=crew.team, user=crew.user("member")).on_duty


def test_an_admin_puts_a_member_on_duty_from_the_members_page_and_a_member_cannot(crew):
    target = Membership.objects.get(team=crew.team, user=crew.user("member"))
    admin = signed_in(crew.user("admin"))
    page = admin.get(reverse("team_members", args=[crew.team.pk])).content.decode()
    assert reverse("membership_on_duty", args=[target.pk]) in page
    response = admin.post(reverse("membership_on_duty", args=[target.pk]), {"on_duty": "1", "back": "members"})
    assert response["Location"] == reverse("team_members", args=[crew.team.pk])
    target.refresh_from_db()
    assert target.on_duty

    admin_membership = Membership.objects.get(team=crew.team, user=crew.user("admin"))
    member = signed_in(crew.user("member"))
    assert member.post(reverse("membership_on_duty", args=[admin_membership.pk]), {"on_duty": "1"}).status_code == 403
    admin_membership.refresh_from_db()
    assert not admin_membership.on_duty
    outsider = signed_in(crew.user("outsider"))
    assert outsider.post(reverse("membership_on_duty", args=[target.pk]), {"on_duty": "0"}).status_code == 404
    target.refresh_from_db()
    assert target.on_duty
