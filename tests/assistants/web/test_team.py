"""The team: invitations by email (real SMTP on loopback), joining by the signed, expiring link, roles,
removal, the last owner, team settings and the team switcher."""

import time

import pytest
from django.core import signing
from django.test import Client

from assistants.models import Invitation, Membership
from assistants.selectors import INVITATION_SALT
from tests.factories import make_assistant, make_team, make_user
from tests.mail import body, first_link
from tests.servers import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return make_user("olga")


@pytest.fixture
def team(owner):
    return make_team(owner, "Acme")


@pytest.fixture
def client(owner):
    client = Client()
    client.force_login(owner)
    return client


def invite(client, team, email="new.person@example.com", role="admin"):
    return client.post(f"/teams/{team.pk}/invitations/", {"email": email, "role": role})


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def test_an_invitation_is_emailed_and_the_invitee_signs_up_and_joins(client, team, mailbox):
    response = invite(client, team, "New.Person@Example.com")
    assert response.status_code == 302 and response["Location"] == f"/teams/{team.pk}/members/"
    message = mailbox.wait_for("new.person@example.com")
    assert message["Subject"] == "olga invited you to Acme on Chatsite"
    assert message.get_content_type() == "text/plain"  # nothing in it renders as HTML
    assert "join the team “Acme” on Chatsite as an admin" in body(message)
    link = first_link(message)
    assert link.startswith("http://testserver/invitation/")
    invitation = Invitation.objects.get(team=team)
    assert invitation.email == "new.person@example.com" and invitation.token_hash not in link  # only a hash is kept

    visitor = Client()
    page = visitor.get(path_of(link)).content.decode()
    assert "olga invited" in page and "new.person@example.com" in page and "Create my account and join" in page
    response = visitor.post(path_of(link), {"username": "newbie", "password": "short"})
    assert response.status_code == 400 and "password" in response.context["signup_form"].errors
    assert 'value="newbie"' in response.content.decode()
    response = visitor.post(path_of(link), {"username": "newbie", "password": "a-long-passphrase-9"})
    assert response.status_code == 302 and response["Location"] == "/"
    membership = Membership.objects.get(team=team, user__username="newbie")
    assert membership.role == "admin" and membership.user.email == "new.person@example.com"
    invitation.refresh_from_db()
    assert invitation.accepted_at and invitation.accepted_by == membership.user
    assert "Welcome to Acme!" in visitor.get("/").content.decode()
    # The link works once.
    assert "already been used" in Client().get(path_of(link)).content.decode()


def test_someone_with_an_account_logs_in_and_joins(client, team, mailbox):
    invite(client, team, "dora@example.com", role="member")
    link = first_link(mailbox.wait_for("dora@example.com"))
    dora = make_user("dora")
    visitor = Client()
    page = visitor.get(path_of(link)).content.decode()
    assert f'href="/login/?next={path_of(link)}"' in page
    visitor.force_login(dora)
    assert "Join Acme" in visitor.get(path_of(link)).content.decode()
    assert visitor.post(path_of(link)).status_code == 302
    assert Membership.objects.get(team=team, user=dora).role == "member"


def test_an_expired_or_altered_link_is_refused(client, team, mailbox, settings):
    invite(client, team, "late@example.com")
    link = path_of(first_link(mailbox.wait_for("late@example.com")))
    token = link.split("/")[2]
    secret = signing.loads(token, salt=INVITATION_SALT)

    class EightDaysAgo(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - 8 * 24 * 3600)

    old = EightDaysAgo(salt=INVITATION_SALT).sign_object(secret)
    page = Client().get(f"/invitation/{old}/").content.decode()
    assert "This invitation has expired" in page
    settings.INVITATION_DAYS = 10
    assert "Create my account and join" in Client().get(f"/invitation/{old}/").content.decode()
    assert "not valid" in Client().get(f"/invitation/{token[:-2]}xx/").content.decode()
    assert not Membership.objects.filter(team=team, user__email="late@example.com").exists()


def test_inviting_again_sends_a_new_link_and_the_old_one_stops_working(client, team, mailbox):
    invite(client, team, "twice@example.com", role="member")
    first = path_of(first_link(mailbox.wait_for("twice@example.com")))
    invite(client, team, "twice@example.com", role="owner")
    second = path_of(first_link(mailbox.wait_for("twice@example.com", count=2)))
    assert Invitation.objects.get(team=team).role == "owner"
    assert "replaced by a newer one" in Client().get(first).content.decode()
    assert 'as <span class="badge role-owner">owner</span>' in Client().get(second).content.decode()
    invitation = Invitation.objects.get(team=team)
    client.post(f"/invitations/{invitation.pk}/revoke/")
    assert "cancelled or replaced" in Client().get(second).content.decode()


def test_a_member_cannot_be_invited_and_the_error_is_at_the_email(client, team, owner, mailbox):
    response = invite(client, team, owner.email.upper())
    assert response.status_code == 400
    assert response.context["invite_form"].errors == {"email": [f"{owner.email} is already a member of this team."]}
    response = invite(client, team, "not an address")
    assert response.status_code == 400 and "email" in response.context["invite_form"].errors
    assert 'value="not an address"' in response.content.decode()
    assert not mailbox.messages


def test_when_the_mail_server_is_down_the_invitation_is_kept_for_a_resend(client, team, mailbox, smtp_server, settings):
    settings.EMAIL_PORT = free_port()  # nothing listens there
    response = invite(client, team, "later@example.com")
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "the email to later@example.com could not be sent" in page and "Resend" in page
    invitation = Invitation.objects.get(team=team)
    settings.EMAIL_PORT = smtp_server.port  # the server is back
    client.post(f"/invitations/{invitation.pk}/resend/")
    assert "/invitation/" in body(mailbox.wait_for("later@example.com"))


def test_a_team_name_never_reaches_the_headers(client, team, mailbox):
    client.post(f"/teams/{team.pk}/settings/", {"name": "Acme\r\nBcc: victim@example.com"})
    team.refresh_from_db()
    invite(client, team, "header@example.com")
    message = mailbox.wait_for("header@example.com")
    assert message["Subject"] == "olga invited you to Acme Bcc: victim@example.com on Chatsite"
    assert message["Bcc"] is None and not mailbox.to("victim@example.com")


def test_roles_change_and_the_last_owner_stays(client, team, owner):
    admin = make_user("adam")
    membership = Membership.objects.create(team=team, user=admin, role="admin")
    mine = Membership.objects.get(team=team, user=owner)

    assert client.post(f"/members/{membership.pk}/role/", {"role": "member"}).status_code == 302
    membership.refresh_from_db()
    assert membership.role == "member"

    response = client.post(f"/members/{mine.pk}/role/", {"role": "admin"})
    assert response.status_code == 400
    page = response.content.decode()
    row = page.split(f'id="member-{mine.pk}"')[1].split("</li>")[0]
    assert "The team needs an owner: make someone else an owner first." in row and 'aria-invalid="true"' in row
    response = client.post(f"/members/{mine.pk}/remove/")
    assert response.status_code == 400 and "The last owner cannot be removed" in response.content.decode()
    mine.refresh_from_db()
    assert mine.role == "owner"

    client.post(f"/members/{membership.pk}/role/", {"role": "owner"})
    response = client.post(f"/members/{mine.pk}/role/", {"role": "member"})  # another owner now: allowed
    assert response.status_code == 302 and response["Location"] == "/"
    mine.refresh_from_db()
    assert mine.role == "member"


def test_an_owner_removes_a_member(client, team):
    member = Membership.objects.create(team=team, user=make_user("mia"), role="member")
    assert client.post(f"/members/{member.pk}/remove/").status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert "mia was removed from Acme." in client.get(f"/teams/{team.pk}/members/").content.decode()


def test_members_see_the_team_but_only_owners_change_it(team):
    member = make_user("max")
    Membership.objects.create(team=team, user=member, role="admin")
    client = Client()
    client.force_login(member)
    page = client.get(f"/teams/{team.pk}/members/").content.decode()
    assert "olga" in page and "Send invitation" not in page and 'name="role"' not in page
    assert client.post(f"/teams/{team.pk}/settings/", {"name": "Mine"}).status_code == 403
    assert "disabled" in client.get(f"/teams/{team.pk}/settings/").content.decode()


def test_the_team_settings_rename_the_team_and_refuse_an_empty_name(client, team):
    response = client.post(f"/teams/{team.pk}/settings/", {"name": ""})
    assert response.status_code == 400 and 'id="id_name_error"' in response.content.decode()
    assert client.post(f"/teams/{team.pk}/settings/", {"name": "Acme Corp"}).status_code == 302
    team.refresh_from_db()
    assert team.name == "Acme Corp"


def test_the_switcher_and_the_pages_set_the_current_team(client, owner, team):
    second = make_team(owner, "Beta")
    beta_bot = make_assistant(second, "Beta bot")
    make_assistant(team, "Acme bot")
    page = client.get("/").content.decode()
    assert "Acme bot" in page and "Beta bot" not in page  # the first team by name
    assert client.post(f"/teams/{second.pk}/switch/").status_code == 302
    page = client.get("/").content.decode()
    assert "Beta bot" in page and "Acme bot" not in page
    assert client.session["team_id"] == second.pk
    client.post(f"/teams/{team.pk}/switch/")
    client.get(f"/assistants/{beta_bot.pk}/")  # a page of the other team makes it the current one
    assert client.session["team_id"] == second.pk
    assert f'href="/teams/{second.pk}/conversations/"' in client.get("/").content.decode()
    outsider_team = make_team(make_user(), "Other")
    assert client.post(f"/teams/{outsider_team.pk}/switch/").status_code == 404
    assert client.session["team_id"] == second.pk


def test_a_new_team_becomes_the_current_one_and_needs_a_name(client, team):
    response = client.post("/teams/new/", {"name": "  "})
    assert response.status_code == 400 and 'id="id_name_error"' in response.content.decode()
    assert client.post("/teams/new/", {"name": "Gamma"}).status_code == 302
    assert "Gamma" in client.get("/").content.decode().split("<main")[1].split("</main>")[0]
