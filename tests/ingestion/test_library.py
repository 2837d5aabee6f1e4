"""Q&A pairs, snippets, CSV and zip imports: stored, indexed, cited, and refused with reasons."""

import io
import zipfile
from urllib.parse import urlsplit

import pytest

from ingestion import services
from ingestion.models import CrawlRun, Document, Source
from ingestion.search.hybrid import chunk_search
from ingestion.spaces import space_active
from tests.factories import make_assistant, make_team, make_user

pytestmark = pytest.mark.django_db


def search(assistant, query: str):
    from ingestion.embedding import get_embedder

    space = space_active(assistant.pk)
    vector = get_embedder(space.model_name).embed_queries([query])[0]
    return chunk_search(space=space, query=query, vector=vector, k=3)


def test_a_qa_pair_is_indexed_and_cited_with_a_readable_link(client):
    assistant = make_assistant()
    document = services.qa_add(
        assistant=assistant, question="  Do you ship to  Canada? ", answer="Yes, to every province, in 5 days."
    )
    assert document.source.kind == Source.Kind.QA and document.title == "Do you ship to Canada?"
    services.document_index(document=document)
    hits = search(assistant, "shipping to Canada")
    assert hits and hits[0].document_id == document.pk and "every province" in hits[0].text
    path = urlsplit(hits[0].link).path
    assert path == f"/d/{document.public_token}/qa.txt"
    response = client.get(path)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == "Do you ship to Canada?\nYes, to every province, in 5 days."
    assert response["Content-Security-Policy"].startswith("sandbox")


def test_qa_needs_both_parts_and_bounded_sizes():
    assistant = make_assistant()
    with pytest.raises(services.IngestionError, match="Both"):
        services.qa_add(assistant=assistant, question="Why?", answer="  ")
    with pytest.raises(services.IngestionError, match="limited"):
        services.qa_add(assistant=assistant, question="Q" * 501, answer="A")
    assert not Document.objects.exists()


def test_csv_import_adds_rows_and_reports_bad_ones():
    assistant = make_assistant()
    data = (
        "\ufeffID;Answer;Question\n"
        '1;"Returns are free within 30 days; see the form.";What is the return policy?\n'
        "2;;Missing answer?\n"
        "\n"
        "3;Open 9 to 5.;When are you open?\n"
    ).encode()
    added, errors = services.qa_import_csv(assistant=assistant, data=data)
    assert [d.title for d in added] == ["What is the return policy?", "When are you open?"]
    assert added[0].sections[0]["text"] == "Returns are free within 30 days; see the form."
    assert errors == ["row 3: Both the question (or title) and the answer (or text) are needed."]
    with pytest.raises(services.IngestionError, match="header row"):
        services.qa_import_csv(assistant=assistant, data=b"q,a\nx,y\n")
    with pytest.raises(services.IngestionError, match="UTF-8"):
        services.qa_import_csv(assistant=assistant, data="question,answer\nÉté,oui\n".encode("utf-16"))


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    buffer.seek(0)
    return buffer


def upload_zip(source, archive) -> CrawlRun:
    """Upload a zip as the dashboard does; its unpacking task runs when the upload commits (eagerly here)."""
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        run = services.documents_upload_zip(source=source, archive=archive)
    run.refresh_from_db()
    return run


def test_zip_upload_stores_each_file_and_fails_oversize_ones_alone(settings, tmp_path, eager_tasks):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.UPLOAD_MAX_BYTES = 2000
    assistant = make_assistant()
    source = services.source_documents_get_or_create(assistant=assistant)
    archive = _zip(
        {
            "docs/faq.md": b"# FAQ\n\nShipping takes three days.",
            "docs/deep/prices.txt": b"The plan costs 9 euros.",
            "docs/../../escape.txt": b"a path that climbs out is skipped",
            "big.txt": b"x" * 3000,
            ".hidden": b"no",
            "__MACOSX/._faq.md": b"no",
        }
    )
    run = upload_zip(source, archive)
    documents = {d.file_name: d for d in Document.objects.filter(source=source)}
    assert set(documents) == {"faq.md", "prices.txt", "big.txt"}
    assert documents["big.txt"].status == "failed" and "limit" in documents["big.txt"].error
    stored = tmp_path / documents["prices.txt"].file_path
    assert stored.read_bytes() == b"The plan costs 9 euros." and stored.is_relative_to(tmp_path / "uploads")
    assert (run.pages_found, run.pages_fetched, run.pages_failed) == (3, 2, 1)
    assert not list((tmp_path / "uploads").glob("*/import-*.zip")), "the archive is removed once unpacked"


def test_a_zip_bomb_or_an_empty_zip_fails_its_run_whole_and_a_non_zip_is_refused_at_once(
    settings, tmp_path, eager_tasks
):
    settings.MEDIA_ROOT = str(tmp_path)
    source = services.source_documents_get_or_create(assistant=make_assistant())
    bomb = upload_zip(source, _zip({"zeros.txt": b"\0" * (12 * 1024 * 1024)}))
    assert bomb.status == "failed" and "zip bomb" in bomb.error
    empty = upload_zip(source, _zip({".DS_Store": b"x"}))
    assert empty.status == "failed" and "no files" in empty.error
    with pytest.raises(services.IngestionError, match="not a zip"):
        services.documents_upload_zip(source=source, archive=io.BytesIO(b"%PDF-1.4 not a zip"))
    assert not Document.objects.exists()
    assert not list((tmp_path / "uploads").rglob("*.txt")), "nothing of a refused archive is extracted"


def test_a_small_zip_that_expands_enormously_costs_the_web_process_nothing(settings, tmp_path):
    """Security finding 7: a 412 KB zip cost the web process 408 MiB when it was unpacked there."""
    import tracemalloc

    settings.MEDIA_ROOT = str(tmp_path)
    members = {f"part-{n}.txt": b"\0" * (9 * 1024 * 1024) for n in range(40)}  # 360 MiB, ~360 KB compressed
    archive = _zip(members)
    assert len(archive.getvalue()) < 1024 * 1024
    source = services.source_documents_get_or_create(assistant=make_assistant())
    tracemalloc.start()
    services.documents_upload_zip(source=source, archive=archive)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"the upload held {peak / 2**20:.1f} MiB"


def test_the_child_unpacks_within_its_memory_limit_and_streams_each_file(settings, tmp_path):
    from ingestion.parsers import ParseError, unpack_archive

    members = {f"part-{n}.txt": b"\0" * (9 * 1024 * 1024) for n in range(40)}
    archive = tmp_path / "big.zip"
    archive.write_bytes(_zip(members).getvalue())
    (tmp_path / "out").mkdir()
    files = unpack_archive(
        archive,
        tmp_path / "out",
        max_files=50,
        max_member_bytes=10 * 2**20,
        max_total_bytes=400 * 2**20,
        memory_limit_mb=256,  # far less than the 360 MiB it expands to: extraction streams
    )
    assert len(files) == 40 and all(item["size"] == 9 * 2**20 for item in files)
    with pytest.raises(ParseError, match="zip bomb"):
        unpack_archive(
            archive, tmp_path / "out", max_files=50, max_member_bytes=10 * 2**20, max_total_bytes=100 * 2**20
        )


def test_the_library_page_adds_imports_and_deletes(client, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    owner = make_user()
    assistant = make_assistant(make_team(owner))
    client.force_login(owner)
    url = f"/assistants/{assistant.pk}/library/"
    client.post(url, {"action": "qa", "question": "<b>Hours?</b>", "answer": "9 to 5 <script>x</script>"})
    entry = Document.objects.get(source__assistant=assistant)
    page = client.get(url).content.decode()
    assert "&lt;b&gt;Hours?&lt;/b&gt;" in page and "<script>x" not in page
    csv_file = io.BytesIO(b"question,answer\nRefunds?,Within 30 days.\n")
    csv_file.name = "faq.csv"
    client.post(url, {"action": "csv", "file": csv_file})
    assert Document.objects.filter(source__assistant=assistant).count() == 2
    zip_file = _zip({"a.md": b"# A\n\nText."})
    zip_file.name = "docs.zip"
    response = client.post(url, {"action": "zip", "file": zip_file})
    source = Source.objects.get(assistant=assistant, kind=Source.Kind.DOCUMENT)
    assert response.status_code == 302 and response["Location"] == f"/sources/{source.pk}/"
    client.post(url, {"action": "delete", "document_id": entry.pk})
    assert not Document.objects.filter(pk=entry.pk).exists()

    client.force_login(make_user("outsider"))
    assert client.get(url).status_code == 404
    assert client.post(url, {"action": "qa", "question": "x", "answer": "y"}).status_code == 404
