"""The demo (security finding 3): a local convenience, off unless asked for, never an administrator."""

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from assistants.management.commands.seed_demo import DEMO_PASSWORD, DEMO_SLUG, DEMO_USER
from assistants.models import Assistant

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _help_pages_reachable(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1:8000", "localhost:8000"]  # as `make run` sets it


def test_without_demo_nothing_is_created_and_the_first_owner_is_explained(settings, capsys):
    settings.DEMO = False
    call_command("seed_demo")
    assert not User.objects.filter(username=DEMO_USER).exists() and not Assistant.objects.exists()
    assert "createsuperuser" in capsys.readouterr().out


def test_the_local_demo_is_an_ordinary_member_that_cannot_open_the_admin(settings):
    settings.DEMO, settings.SITE_URL = True, "http://127.0.0.1:8000"
    call_command("seed_demo")
    call_command("seed_demo")  # idempotent
    user = User.objects.get(username=DEMO_USER)
    assert not user.is_staff and not user.is_superuser
    assistant = Assistant.objects.get(slug=DEMO_SLUG)
    assert assistant.team.memberships.get(user=user).role == "owner"
    assert assistant.sources.get().url == "http://127.0.0.1:8000/help/"
    client = Client()
    response = client.post("/admin/login/", {"username": DEMO_USER, "password": DEMO_PASSWORD, "next": "/admin/"})
    assert response.status_code == 200 and "staff account" in response.content.decode()
    assert client.get("/admin/").status_code == 302  # still sent to the admin's login


@pytest.mark.parametrize("site", ["https://help.example.com", "http://10.0.0.5:8000", "http://0.0.0.0:8000"])
def test_the_demo_is_refused_for_a_site_not_on_this_machine(settings, site):
    settings.DEMO, settings.SITE_URL = True, site
    with pytest.raises(CommandError, match="DEMO=false"):
        call_command("seed_demo")
    assert not User.objects.filter(username=DEMO_USER).exists()


def test_a_demo_superuser_made_by_an_earlier_version_is_demoted_or_disabled(settings):
    old = User.objects.create_user(username=DEMO_USER, password=DEMO_PASSWORD, is_staff=True, is_superuser=True)
    settings.DEMO, settings.SITE_URL = True, "http://localhost:8000"
    from assistants.services import team_create

    team_create(name="Demo team", owner=old)
    call_command("seed_demo")
    old.refresh_from_db()
    assert old.is_active and not old.is_staff and not old.is_superuser
    settings.DEMO = False  # a server that ran the old `make run`
    old.is_superuser = True
    old.save()
    call_command("seed_demo")
    old.refresh_from_db()
    assert not old.is_active and not old.is_superuser
