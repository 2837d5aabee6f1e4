"""The account: a new password, and a password reset by email through a real SMTP server on loopback."""

import pytest
from django.test import Client

from tests.factories import make_user
from tests.mail import body, first_link

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return make_user("rosa")


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def test_the_account_page_changes_the_password_and_keeps_the_user_signed_in(user):
    client = Client()
    client.force_login(user)
    assert client.get("/account/").status_code == 200
    response = client.post(
        "/account/",
        {"old_password": "wrong", "new_password1": "a-new-passphrase-7", "new_password2": "a-new-passphrase-7"},
    )
    assert response.status_code == 200
    assert (
        "old_password" in response.context["form"].errors and 'id="id_old_password_error"' in response.content.decode()
    )
    response = client.post(
        "/account/",
        {
            "old_password": "correct-horse-9",
            "new_password1": "a-new-passphrase-7",
            "new_password2": "a-new-passphrase-7",
        },
        follow=True,
    )
    assert "Your password is changed." in response.content.decode()
    assert client.get("/").status_code == 200  # still signed in
    user.refresh_from_db()
    assert user.check_password("a-new-passphrase-7")


def test_the_account_page_needs_a_login():
    response = Client().get("/account/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_password_is_reset_by_email(user, mailbox):
    client = Client()
    response = client.post("/password-reset/", {"email": user.email})
    assert response.status_code == 302 and response["Location"] == "/password-reset/sent/"
    message = mailbox.wait_for(user.email)
    assert message["Subject"] == "Reset your Chatsite password"
    assert message.get_content_type() == "text/plain" and "Hello rosa" in body(message)
    link = path_of(first_link(message))
    form_page = client.get(link, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0]
    response = client.post(set_url, {"new_password1": "short", "new_password2": "short"})
    assert response.status_code == 200 and "new_password2" in response.context["form"].errors
    response = client.post(set_url, {"new_password1": "brand-new-secret-8", "new_password2": "brand-new-secret-8"})
    assert response.status_code == 302 and response["Location"] == "/password-reset/done/"
    user.refresh_from_db()
    assert user.check_password("brand-new-secret-8")
    assert "cannot be used" in Client().get(link, follow=True).content.decode()  # the link works once


def test_an_unknown_address_gets_the_same_answer_and_no_email(mailbox):
    response = Client().post("/password-reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302 and response["Location"] == "/password-reset/sent/"
    assert not mailbox.messages
