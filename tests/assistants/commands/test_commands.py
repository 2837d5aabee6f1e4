"""The operator commands, run with call_command on the real database (no worker: crawls stay queued)."""

import csv
import io
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from assistants.models import Assistant, Conversation, Membership, Message, Team
from ingestion.models import CrawlRun, Document, Source
from tests.factories import index_pages, make_assistant, make_user


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_create_team_creates_a_missing_owner_who_can_log_in():
    output = run(
        "create_team", "Acme Support", "--owner", "ada", "--email", "ada@example.com", "--password", "s3cret-pass"
    )
    team = Team.objects.get(name="Acme Support")
    owner = User.objects.get(username="ada")
    assert owner.check_password("s3cret-pass") and owner.email == "ada@example.com"
    assert Membership.objects.get(team=team).user == owner
    assert "Created the user ada" in output and f"slug {team.slug}" in output


@pytest.mark.django_db
def test_create_team_reuses_an_existing_owner():
    owner = make_user("grace")
    output = run("create_team", "Second team", "--owner", "grace")
    assert Team.objects.get(name="Second team").memberships.get().user == owner
    assert "Created the user" not in output
    with pytest.raises(CommandError, match="exists"):
        run("create_team", "Third team", "--owner", "grace", "--password", "other-pass")


@pytest.mark.django_db
def test_create_assistant_in_a_team():
    run("create_team", "Acme", "--owner", "ada")
    output = run("create_assistant", "--team", "acme", "Acme Help")
    assistant = Assistant.objects.get(name="Acme Help")
    assert assistant.team.slug == "acme" and assistant.spaces.exists()
    assert f"slug {assistant.slug}" in output
    with pytest.raises(CommandError, match="No team"):
        run("create_assistant", "--team", "nope", "Other")


@pytest.mark.django_db
def test_add_source_queues_a_crawl():
    assistant = make_assistant()
    output = run("add_source", assistant.slug, "https://docs.example.com/", "--max-pages", "30", "--max-depth", "2")
    source = Source.objects.get(assistant=assistant)
    assert source.settings == {"max_pages": 30, "max_depth": 2} and source.status == "queued"
    assert source.last_run.status == "queued"
    assert f"source {source.pk}" in output and f"crawl {source.last_run.pk} queued" in output


@pytest.mark.django_db
def test_add_source_refuses_what_the_dashboard_refuses(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    assistant = make_assistant()
    with pytest.raises(CommandError, match="cannot be crawled"):
        run("add_source", assistant.slug, "http://127.0.0.1/")
    with pytest.raises(CommandError, match="No assistant"):
        run("add_source", "no-such-assistant", "https://docs.example.com/")
    assert not Source.objects.exists()


@pytest.mark.django_db
def test_upload_documents_stores_every_file_of_the_folder(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.UPLOAD_MAX_BYTES = 1000
    folder = tmp_path / "docs"
    (folder / "nested").mkdir(parents=True)
    (folder / "faq.md").write_text("# FAQ\n\nShipping takes three days.")
    (folder / "nested" / "prices.txt").write_text("The plan costs 9 euros.")
    (folder / "big.txt").write_text("x" * 2000)
    (folder / ".hidden").write_text("not uploaded")
    assistant = make_assistant()
    output = run("upload_documents", assistant.slug, str(folder))
    documents = {d.file_name: d for d in Document.objects.filter(source__assistant=assistant)}
    assert set(documents) == {"faq.md", "prices.txt", "big.txt"}
    assert documents["big.txt"].status == "failed" and "limit" in documents["big.txt"].error
    assert (tmp_path / "media" / documents["faq.md"].file_path).read_text() == "# FAQ\n\nShipping takes three days."
    run_ = CrawlRun.objects.get(source__assistant=assistant)
    assert (run_.pages_found, run_.pages_fetched, run_.pages_failed) == (3, 2, 1)
    assert "Uploaded 3 files" in output
    with pytest.raises(CommandError, match="not a folder"):
        run("upload_documents", assistant.slug, str(folder / "faq.md"))


@pytest.mark.django_db(transaction=True)  # the answer is written from answer_events' own threads
def test_ask_streams_the_answer_then_its_citations():
    assistant = make_assistant()
    url = "https://docs.example.com/shipping"
    index_pages(
        assistant,
        {
            url: "<html><head><title>Shipping</title></head><body><main><h1>Shipping</h1>"
            "<p>Orders ship within three business days from our Lisbon warehouse.</p>"
            "</main></body></html>"
        },
    )
    output = run("ask", assistant.slug, "How long does shipping take?")
    answer, _, sources = output.partition("\n[1] ")
    assert "three business days" in answer and "[1]" in answer
    assert sources.startswith("Shipping") and url in sources
    conversation = Conversation.objects.get(assistant=assistant)
    assert f"(conversation {conversation.pk})" in output
    assert [m.role for m in conversation.messages.all()] == ["user", "assistant"]

    run("ask", assistant.slug, "And to Porto?", "--conversation", str(conversation.pk))
    assert conversation.messages.count() == 4


@pytest.mark.django_db
def test_export_conversations_writes_the_apis_export(tmp_path):
    assistant = make_assistant()
    conversation = Conversation.objects.create(
        assistant=assistant, visitor_token="v" * 30, page_url="https://acme.test/"
    )
    Message.objects.create(conversation=conversation, role="user", text="Hello?")
    Message.objects.create(
        conversation=conversation, role="assistant", text="Hi [1]", citations=[{"n": 1, "title": "T", "url": "u"}]
    )

    rows = [json.loads(line) for line in run("export_conversations", assistant.slug).splitlines()]
    assert [(r["conversation_id"], r["role"], r["page_url"]) for r in rows] == [
        (conversation.pk, "user", "https://acme.test/"),
        (conversation.pk, "assistant", "https://acme.test/"),
    ]
    assert rows[1]["citations"] == [{"n": 1, "title": "T", "url": "u"}]

    out = tmp_path / "export.csv"
    assert run("export_conversations", assistant.slug, "--format", "csv", "--out", str(out)) == ""
    exported = list(csv.DictReader(out.open(newline="")))
    assert [row["text"] for row in exported] == ["Hello?", "Hi [1]"]

    assert run("export_conversations", assistant.slug, "--since", "2999-01-01T00:00:00Z") == ""
    with pytest.raises(CommandError, match="ISO 8601"):
        run("export_conversations", assistant.slug, "--until", "soon")
