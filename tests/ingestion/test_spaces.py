"""Embedding spaces: switching an assistant's model re-embeds in the background and flips
atomically; the embedding cache never embeds the same text twice."""

import json

import pytest
from django.db import connection

from assistants.answering.retrieval import retrieve
from ingestion import services
from ingestion.embedding import get_embedder
from ingestion.models import EmbeddingSpace
from ingestion.spaces import space_active
from tests.conftest import DRF_SITE
from tests.factories import index_pages, make_assistant
from tests.ingestion.embedding.tiny_models import save_model

pytestmark = pytest.mark.django_db

PAGES = {
    f"http://docs.test/api-guide/{name}/": (DRF_SITE / f"api-guide/{name}/index.html").read_text()
    for name in ["throttling", "pagination"]
}


def chunk_count(space) -> int:
    with connection.cursor() as cursor:
        cursor.execute("select count(*) from ingestion_chunk where space_id = %s", [space.pk])
        return cursor.fetchone()[0]


def partition_exists(space) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("select to_regclass(%s)", [space.partition_name])
        return cursor.fetchone()[0] is not None


def test_switching_the_model_rebuilds_then_flips(tmp_path, django_capture_on_commit_callbacks):
    assistant = make_assistant()
    index_pages(assistant, PAGES)
    old = space_active(assistant.pk)
    tiny = str(save_model("bert", tmp_path / "tiny-bert"))

    with django_capture_on_commit_callbacks() as callbacks:
        new = services.space_switch_start(assistant=assistant, model_name=tiny)
    assert len(callbacks) == 1, "the build is queued after the commit"
    assert new.status == "building" and new.dims == 64 and partition_exists(new)
    # Until the new space is complete, answers come from the old one.
    assert space_active(assistant.pk) == old and retrieve(assistant, "throttle rates")
    assert services.space_switch_start(assistant=assistant, model_name=tiny) == new  # asking twice: one build

    services.space_build(space=new)
    new.refresh_from_db()
    assistant.refresh_from_db()
    assert new.status == "active" and space_active(assistant.pk) == new
    assert assistant.embedding_model == tiny
    assert chunk_count(new) > 0 and not partition_exists(old)
    assert not EmbeddingSpace.objects.filter(pk=old.pk).exists()
    hits = retrieve(assistant, "AnonRateThrottle")
    assert hits and all(len(hit.text) > 0 for hit in hits)


def test_a_new_document_during_a_build_goes_into_both_spaces(tmp_path):
    assistant = make_assistant()
    index_pages(assistant, dict(list(PAGES.items())[:1]))
    old = space_active(assistant.pk)
    new = services.space_switch_start(assistant=assistant, model_name=str(save_model("bert", tmp_path / "m")))
    before = chunk_count(old)
    index_pages(assistant, dict(list(PAGES.items())[1:]))
    assert chunk_count(old) > before and chunk_count(new) == chunk_count(old) - before


def test_a_model_that_cannot_be_read_is_refused_with_a_reason(tmp_path):
    assistant = make_assistant()
    with pytest.raises((OSError, ValueError)):
        services.space_switch_start(assistant=assistant, model_name=str(tmp_path / "missing"))
    assert EmbeddingSpace.objects.filter(assistant=assistant).count() == 1


def test_unchanged_text_is_never_embedded_twice():
    engine = get_embedder("")
    first, second = make_assistant(), make_assistant()
    index_pages(first, PAGES, reuse_vectors=False)
    tokens = engine.counters["tokens"]
    # the same pages for another assistant: every vector from the cache the first indexing filled
    index_pages(second, PAGES, reuse_vectors=False)
    assert engine.counters["tokens"] == tokens
    assert chunk_count(space_active(second.pk)) == chunk_count(space_active(first.pk)) > 0


def test_vector_literals_are_pgvectors_text_form_to_seven_digits():
    import numpy as np

    from ingestion.spaces import vector_literal

    vectors = (
        np.random.default_rng(7).standard_normal((20, 384)).astype(np.float32)
        * 10.0 ** np.arange(-3, 4)[:, None].repeat(3)[:20, None]
    )
    for vector in vectors:
        literal = vector_literal(vector)
        assert literal == "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"
        with connection.cursor() as cursor:
            cursor.execute("select %s::vector::real[]", [literal])
            assert np.allclose(cursor.fetchone()[0], vector, rtol=1e-6, atol=0)
    assert vector_literal([0.5, -1, 2e-9]) == "[0.5,-1,2e-09]"


def test_chunks_are_stored_exactly_as_chunked_whatever_their_characters():
    """Chunks go in by COPY: tabs, newlines, backslashes, quotes and non-ASCII text come back unchanged."""
    from ingestion.chunking import chunk_sections
    from ingestion.models import Source

    awkward = "Tabs\tand\\backslashes \\N, \"quotes\" 'too', caf\u00e9 \u2014 \U0001f600\r\nnew line\\."
    sections = [{"heading_path": ["H\t\\1", 'Quote "2"'], "anchor": "a\\b\tc", "text": awkward}]
    assistant = make_assistant()
    source = Source.objects.create(assistant=assistant, url="https://awkward.test/", name="awkward")
    document = source.documents.create(
        url="https://awkward.test/",
        title="Awkward",
        sections=sections,
        content_hash=services.sections_hash("Awkward", sections),
    )
    assert services.document_index(document=document) == 1
    expected = chunk_sections(sections, count_tokens=get_embedder("").count_tokens, max_tokens=10_000, title="Awkward")[
        0
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "select text, search_text, heading_path, anchor from ingestion_chunk where document_id = %s", [document.pk]
        )
        text, search_text, heading_path, anchor = cursor.fetchone()
    assert (text, search_text, json.loads(heading_path), anchor) == (
        expected.text,
        expected.search_text,
        expected.heading_path,
        expected.anchor,
    )
    assert expected.text == awkward


def test_a_web_process_loads_its_assistants_models_as_it_starts(tmp_path, settings, caplog):
    from ingestion.spaces import warm_models

    folder = str(save_model("bert", tmp_path / "warm"))
    gone = str(tmp_path / "deleted-model")
    for name in (folder, gone):
        EmbeddingSpace.objects.filter(pk=space_active(make_assistant().pk).pk).update(model_name=name)
    caplog.set_level("INFO")

    warm_models("worker")  # workers load a model in the pool child that embeds, not at start
    settings.EMBEDDING_WARM_UP = False
    warm_models("web")
    assert folder not in caplog.text

    settings.EMBEDDING_WARM_UP = True
    warm_models("web")
    assert f"loading embedding model {folder}" in caplog.text
    assert f"model warm-up: {gone} could not be loaded" in caplog.text  # the start goes on
    assert get_embedder(folder).dims == 64
