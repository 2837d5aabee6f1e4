"""An assistant's settings, section by section: each saves its own fields, a mistake comes back at its
field as typed, members read without changing, and the danger zone deletes the assistant and
everything it owns (partitions and files included)."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from assistants.models import Assistant, Conversation, Membership
from ingestion.models import Document, EmbeddingSpace, Source
from tests.factories import index_pages, make_assistant, make_team, make_user

pytestmark = pytest.mark.django_db

PAGE = "<html><head><title>Plans</title></head><body><main><h1>Plans</h1><p>Starter costs 10 euros.</p></main></body></html>"


@pytest.fixture
def owner():
    return make_user()


@pytest.fixture
def assistant(owner):
    return make_assistant(make_team(owner, "Acme"), "Acme Help")


@pytest.fixture
def client(owner):
    client = Client()
    client.force_login(owner)
    return client


def url(assistant, section):
    return f"/assistants/{assistant.pk}/settings/{section}/"


def test_a_section_saves_only_its_fields(client, assistant):
    assistant.show_powered_by = False
    assistant.save()
    response = client.post(
        url(assistant, "behaviour"), {"greeting": "Welcome!", "system_prompt": "Be warm.", "language": "de"}
    )
    assert response.status_code == 302 and response["Location"] == url(assistant, "behaviour")
    assistant.refresh_from_db()
    assert (assistant.greeting, assistant.system_prompt, assistant.language) == ("Welcome!", "Be warm.", "de")
    assert assistant.show_powered_by is False and assistant.name == "Acme Help"  # other sections untouched
    assert "Behaviour saved." in client.get(response["Location"]).content.decode()


def test_a_bad_avatar_is_refused_at_its_own_field_with_the_form_as_typed(client, assistant):
    """The dashboard's old form showed the avatar's error under Name and lost nothing only by chance."""
    data = {
        "name": "Renamed",
        "avatar_url": "javascript:alert(1)",
        "primary_color": "#aa3300",
        "background_color": "#ffffff",
    }
    response = client.post(url(assistant, "branding"), data)
    assert response.status_code == 400
    page = response.content.decode()
    name_field = page.split('data-field="name"')[1].split('data-field="')[0]
    avatar_field = page.split('data-field="avatar_url"')[1].split('data-field="')[0]
    assert "field-error" not in name_field and 'value="Renamed"' in name_field
    assert 'class="field-error" id="id_avatar_url_error"' in avatar_field and 'aria-invalid="true"' in avatar_field
    assert 'value="javascript:alert(1)"' in avatar_field  # as typed (escaped), to correct it
    assert "<h1>Settings</h1>" in page and "Acme Help" in page  # the page names the saved assistant
    assistant.refresh_from_db()
    assert assistant.name == "Acme Help"


def test_the_access_section_sets_and_clears_the_code(client, assistant):
    assert (
        client.post(
            url(assistant, "access"), {"access_code": "open-sesame", "allowed_domains": "www.acme.test"}
        ).status_code
        == 302
    )
    assistant.refresh_from_db()
    assert assistant.access_code_hash and assistant.allowed_domains == ["www.acme.test"]
    assert "Visitors need the access code" in client.get(url(assistant, "access")).content.decode()
    response = client.post(url(assistant, "access"), {"access_code": "abc"})  # too short
    assert response.status_code == 400 and "access_code" in response.context["form"].errors
    client.post(url(assistant, "access"), {"clear_access_code": "on"})
    assistant.refresh_from_db()
    assert assistant.access_code_hash == "" and assistant.allowed_domains == []


def test_a_member_reads_the_settings_but_cannot_save_them(assistant):
    member = make_user()
    Membership.objects.create(team=assistant.team, user=member, role="member")
    client = Client()
    client.force_login(member)
    page = client.get(url(assistant, "branding")).content.decode()
    assert "can read these settings; owners and admins change them" in page
    assert '<fieldset class="plain" disabled>' in page and "Save branding" not in page
    assert "Delete this assistant" not in client.get(url(assistant, "danger")).content.decode()
    assert client.post(url(assistant, "branding"), {"name": "Mine"}).status_code == 403


def test_an_unknown_section_is_not_found(client, assistant):
    assert client.get(url(assistant, "secrets")).status_code == 404


def test_an_embedding_model_that_cannot_be_read_is_refused_at_its_field(client, assistant):
    response = client.post(f"/assistants/{assistant.pk}/embedding/", {"model_name": "/no/such/model/folder"})
    assert response.status_code == 400
    errors = response.context["switch_form"].errors["model_name"]
    assert errors == ["There is no folder /no/such/model/folder on this server."]
    assert 'value="/no/such/model/folder"' in response.content.decode()
    response = client.post(f"/assistants/{assistant.pk}/embedding/", {"model_name": "not a model!"})
    assert response.status_code == 400
    assert response.context["switch_form"].errors["model_name"][0].startswith("This model cannot be used: ")
    assert assistant.spaces.count() == 1


def test_deleting_asks_for_the_name_first(client, assistant):
    response = client.post(f"/assistants/{assistant.pk}/delete/", {"confirm_name": "Acme"})
    assert response.status_code == 400
    assert response.context["delete_form"].errors == {
        "confirm_name": ["Type Acme Help exactly, to be sure you delete the right one."]
    }
    assert '<details class="confirm" open>' in response.content.decode()
    assert Assistant.objects.filter(pk=assistant.pk).exists()


def test_deleting_drops_the_partitions_and_the_files(
    client, assistant, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    index_pages(assistant, {"https://acme.test/plans": PAGE})
    client.post(
        f"/assistants/{assistant.pk}/documents/",
        {"files": [SimpleUploadedFile("faq.md", b"# FAQ\n\nShipping is free.", content_type="text/markdown")]},
    )
    upload = Document.objects.get(source__assistant=assistant, source__kind=Source.Kind.DOCUMENT)
    stored = Path(tmp_path) / upload.file_path
    assert stored.is_file()
    Conversation.objects.create(assistant=assistant, visitor_token="v" * 24)
    partitions = [space.partition_name for space in assistant.spaces.all()]
    other = make_assistant(assistant.team, "Kept")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/assistants/{assistant.pk}/delete/", {"confirm_name": " Acme Help "})
    assert response.status_code == 302 and response["Location"] == "/"
    assert not Assistant.objects.filter(pk=assistant.pk).exists()
    assert not Source.objects.filter(assistant_id=assistant.pk).exists()
    assert not Conversation.objects.filter(assistant_id=assistant.pk).exists()
    assert not EmbeddingSpace.objects.filter(assistant_id=assistant.pk).exists()
    with connection.cursor() as cursor:
        for name in partitions:
            cursor.execute("select to_regclass(%s)", [name])
            assert cursor.fetchone()[0] is None, name
    assert not stored.exists() and not stored.parent.exists()
    assert Assistant.objects.filter(pk=other.pk).exists() and other.spaces.count() == 1
    assert "Acme Help and everything it held are deleted." in client.get("/").content.decode()


def test_allowed_domains_take_host_names_only_and_refuse_the_rest_at_the_field(client, assistant):
    response = client.post(url(assistant, "access"), {"allowed_domains": "www.Acme.test\n*.acme.test\nlocalhost:8000"})
    assert response.status_code == 302
    assistant.refresh_from_db()
    assert assistant.allowed_domains == ["www.acme.test", "*.acme.test", "localhost:8000"]
    for typed, message in (
        ("https://www.acme.test/pricing", "Write just the host name: www.acme.test"),
        ("www.acme.test\nacme test; frame-src *", "is not a domain"),
    ):
        response = client.post(url(assistant, "access"), {"allowed_domains": typed})
        assert response.status_code == 400
        assert message in " ".join(response.context["form"].errors["allowed_domains"])
        assert typed.splitlines()[-1] in response.content.decode()  # as typed
    assistant.refresh_from_db()
    assert assistant.allowed_domains == ["www.acme.test", "*.acme.test", "localhost:8000"]
