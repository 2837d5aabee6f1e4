"""Branding: the dashboard form validates it, the full page and the widget render it, escaped."""

import pytest
from django.test import Client

from assistants.forms import SETTINGS_SECTIONS
from assistants.models import Assistant
from tests.factories import make_assistant, make_team, make_user

pytestmark = pytest.mark.django_db

BRANDING = {
    "name": "Acme Help",
    "avatar_url": "https://cdn.acme.test/avatar.png",
    "logo_url": "https://img.acme.test/logo.svg",
    "primary_color": "#aa3300",
    "background_color": "#fafafa",
    "launcher_position": "left",
    "launcher_icon": "spark",
    "theme": "dark",
    "greeting": "Hello from Acme",
    "suggested_questions": "How much is it?\n\n  Where do I  start?  \n",
    "system_prompt": "Be brief.",
    "show_powered_by": "",
    "language": "fr",
    "allowed_domains": "www.acme.test",
}


@pytest.fixture
def owner():
    return make_user()


@pytest.fixture
def assistant(owner):
    return make_assistant(make_team(owner), "Acme")


@pytest.fixture
def owner_client(owner):
    client = Client()
    client.force_login(owner)
    return client


def edit(client, assistant, **changes):
    """Save each section of the settings with its part of BRANDING and ``changes``: the first refusal,
    else the last redirect."""
    data = {**BRANDING, **changes}
    for section, (_, _, fields) in SETTINGS_SECTIONS.items():
        if fields:
            response = client.post(
                f"/assistants/{assistant.pk}/settings/{section}/", {k: v for k, v in data.items() if k in fields}
            )
            if response.status_code != 302:
                return response
    return response


def settings_pages(client, assistant) -> str:
    return "".join(
        client.get(f"/assistants/{assistant.pk}/settings/{section}/").content.decode() for section in SETTINGS_SECTIONS
    )


def test_the_form_saves_every_branding_field(owner_client, assistant):
    page = settings_pages(owner_client, assistant)
    for field in (
        "avatar_url",
        "logo_url",
        "launcher_position",
        "launcher_icon",
        "theme",
        "suggested_questions",
        "show_powered_by",
        "language",
        "access_code",
    ):
        assert f'name="{field}"' in page
    assert 'id="preview"' in page and "js/branding.js" in page
    response = edit(owner_client, assistant)
    assert response.status_code == 302
    assistant.refresh_from_db()
    assert (assistant.avatar_url, assistant.logo_url) == (BRANDING["avatar_url"], BRANDING["logo_url"])
    assert (assistant.launcher_position, assistant.launcher_icon, assistant.theme) == ("left", "spark", "dark")
    assert assistant.suggested_questions == ["How much is it?", "Where do I start?"]
    assert assistant.show_powered_by is False and assistant.language == "fr"
    assert assistant.primary_color == "#aa3300" and assistant.background_color == "#fafafa"
    page = owner_client.get(f"/assistants/{assistant.pk}/settings/behaviour/").content.decode()
    assert "How much is it?\nWhere do I start?" in page


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"avatar_url": "javascript:alert(1)"}, "avatar_url"),
        ({"logo_url": "ftp://files.acme.test/logo.png"}, "logo_url"),
        ({"avatar_url": "data:image/png;base64,AAAA"}, "avatar_url"),
        ({"primary_color": "red"}, "primary_color"),
        ({"background_color": "#fff;}body{x:y"}, "background_color"),
        ({"launcher_position": "top"}, "launcher_position"),
        ({"launcher_icon": "skull"}, "launcher_icon"),
        ({"theme": "neon"}, "theme"),
        ({"language": "xx"}, "language"),
        ({"suggested_questions": "\n".join(f"Question {n}?" for n in range(7))}, "suggested_questions"),
        ({"suggested_questions": "x" * 121}, "suggested_questions"),
    ],
)
def test_bad_branding_is_refused(owner_client, assistant, changes, field):
    """The section holding the mistake is refused as a whole, and comes back as typed."""
    section = next(name for name, (_, _, fields) in SETTINGS_SECTIONS.items() if field in fields)
    data = {k: v for k, v in {**BRANDING, **changes}.items() if k in SETTINGS_SECTIONS[section][2]}
    response = owner_client.post(f"/assistants/{assistant.pk}/settings/{section}/", data)
    assert response.status_code == 400
    assert list(response.context["form"].errors) == [field]
    assert response.context["form"].data[field] == changes[field]
    assistant.refresh_from_db()
    assert assistant.avatar_url == "" and assistant.primary_color == "#2563eb"
    assert assistant.language == "" and assistant.suggested_questions == []


def test_the_full_page_and_the_widget_show_the_branding(owner_client, assistant):
    edit(owner_client, assistant, show_powered_by="on")
    assistant.refresh_from_db()
    for url in (f"/a/{assistant.slug}/", f"/embed/{assistant.public_key}/"):
        response = Client().get(url)
        html = response.content.decode()
        assert '<html lang="fr" data-theme="dark" data-lang="fr">' in html
        assert "--brand: #aa3300; --surface: #fafafa;" in html
        assert 'data-position="left" data-icon="spark"' in html
        assert '<img class="logo" src="https://img.acme.test/logo.svg"' in html
        assert '<img class="avatar" src="https://cdn.acme.test/avatar.png"' in html
        assert 'data-question="Where do I start?">Where do I start?</button>' in html
        assert 'id="powered"' in html
    csp = Client().get(f"/embed/{assistant.public_key}/")["Content-Security-Policy"]
    assert (
        "img-src 'self' https://www.acme.test http://www.acme.test https://cdn.acme.test https://img.acme.test;" in csp
    )


def test_powered_by_is_shown_only_when_on(owner_client, assistant):
    assert 'id="powered"' in Client().get(f"/a/{assistant.slug}/").content.decode()  # on by default
    edit(owner_client, assistant)  # the form sends it off
    assert 'id="powered"' not in Client().get(f"/a/{assistant.slug}/").content.decode()


def test_what_teams_write_is_escaped_and_stored_values_are_checked_again(assistant):
    # Values written around the form (the admin, the API, an old row) are checked again where rendered.
    Assistant.objects.filter(pk=assistant.pk).update(
        name="<script>alert(1)</script>",
        greeting="<img src=x onerror=alert(1)>",
        suggested_questions=['"><script>alert(2)</script>', 42],
        primary_color="red;}x{",
        background_color="#12345",
        avatar_url="javascript:alert(3)",
        logo_url='https://x.test/a.png" onerror="alert(4)',
        theme="neon!",
        launcher_position="top",
        language="<b>",
    )
    for url in (f"/a/{assistant.slug}/", f"/embed/{assistant.public_key}/"):
        response = Client().get(url)
        html = response.content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html and 'onerror="alert' not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
        assert 'data-question="&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"' in html
        assert "--brand: #2563eb; --surface: #ffffff;" in html and "red;}" not in html
        assert "javascript:" not in html and 'class="logo"' not in html and 'class="avatar"' not in html
        assert 'data-theme="auto"' in html and 'data-position="right"' in html and "data-lang" not in html
    csp = Client().get(f"/embed/{assistant.public_key}/")["Content-Security-Policy"]
    assert "x.test" not in csp and "javascript" not in csp


def test_a_new_assistant_can_be_branded_at_creation(owner_client, owner):
    team = make_team(owner)
    response = owner_client.post(f"/teams/{team.pk}/assistants/new/", {**BRANDING, "name": "Branded"})
    assert response.status_code == 302
    created = Assistant.objects.get(name="Branded")
    assert created.launcher_icon == "spark" and created.suggested_questions == ["How much is it?", "Where do I start?"]
    assert created.access_code_hash == ""


def test_the_form_chooses_the_assistants_model_and_checks_its_reranker(owner_client, assistant, tmp_path, settings):
    answering = {"llm_provider": "gemini", "llm_model": "gemini-2.0-flash", "llm_base_url": ""}
    assert edit(owner_client, assistant, **answering).status_code == 302
    assistant.refresh_from_db()
    assert (assistant.llm_provider, assistant.llm_model, assistant.reranker_model) == ("gemini", "gemini-2.0-flash", "")

    # An embedding model's folder is a model, but not a reranker; a missing folder is nothing at all.
    (tmp_path / "config.json").write_text('{"model_type": "bert", "architectures": ["BertModel"]}')
    for name, message in (
        (str(tmp_path), "is not a reranker"),
        ("/no/such/folder", "not a model this server may load"),
        ("BAAI/bge-reranker-v2-m3", "MODEL_HUB_ALLOWED"),  # a hub id the operator has not allowed
    ):
        page = edit(owner_client, assistant, reranker_model=name)
        assert page.status_code == 400 and message in page.content.decode()
    settings.MODEL_HUB_ALLOWED = ["BAAI/bge-reranker-v2-m3"]
    assert edit(owner_client, assistant, reranker_model="BAAI/bge-reranker-v2-m3").status_code == 302
    assistant.refresh_from_db()
    assert assistant.reranker_model == "BAAI/bge-reranker-v2-m3"
