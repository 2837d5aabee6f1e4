"""Which lexical leg search uses is never a secret: each process logs it as it starts, the dashboard
shows it to staff, and the fallback (PostgreSQL's built-in full-text search) is a warning."""

import logging

import pytest
from django.test import Client

from ingestion.search.hybrid import Fusion, chunk_search, default_fusion, fallback_fusion
from ingestion.spaces import lexical_backend, lexical_status, log_lexical_backend, space_active
from tests.conftest import DRF_SITE
from tests.deploy.test_pg_textsearch import VENDORED
from tests.factories import index_pages, make_assistant, make_team, make_user

# The hybrid-search tests' four pages (tests/ingestion/search/test_hybrid.py) at the same addresses: the
# vectors the model computes for them are kept for the run, so it embeds them once for both files.
PAGES = ["api-guide/throttling", "api-guide/pagination", "api-guide/authentication", "api-guide/serializers"]

pytestmark = pytest.mark.django_db


@pytest.fixture
def fallback(settings):
    """The deployment without BM25 (LEXICAL_BACKEND=fts), for this test only."""
    settings.LEXICAL_BACKEND = "fts"
    lexical_backend.cache_clear()
    yield
    settings.LEXICAL_BACKEND = "auto"
    lexical_backend.cache_clear()


def staff_client(staff: bool) -> Client:
    user = make_user()
    user.is_staff = staff
    user.save()
    make_team(user, "Acme")
    client = Client()
    client.force_login(user)
    return client


def test_bm25_is_in_force_here_and_logged_as_information(caplog):
    status = lexical_status()
    assert status["backend"] == "bm25" and not status["warning"] and f"pg_textsearch {VENDORED}" in status["label"]
    with caplog.at_level(logging.INFO, logger="ingestion.spaces"):
        log_lexical_backend("web")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, f"lexical search (web): {status['label']}")
    ]


def test_the_fallback_is_logged_as_a_warning(fallback, caplog):
    with caplog.at_level(logging.INFO, logger="ingestion.spaces"):
        log_lexical_backend("worker")
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert (
        "PostgreSQL full-text search (fallback)" in record.getMessage() and "LEXICAL_BACKEND=fts" in record.getMessage()
    )


def test_staff_see_the_lexical_backend_on_the_dashboard_and_others_do_not():
    page = staff_client(staff=True).get("/").content.decode()
    assert 'id="lexical-search"' in page and "BM25 (pg_textsearch" in page and 'class="notice' not in page
    page = staff_client(staff=False).get("/").content.decode()
    assert "lexical-search" not in page and "pg_textsearch" not in page


def test_staff_are_warned_of_the_fallback(fallback):
    page = staff_client(staff=True).get("/").content.decode()
    assert 'class="notice system-line" id="lexical-search"' in page
    assert "PostgreSQL full-text search (fallback) (LEXICAL_BACKEND=fts)" in page and "less well than with BM25" in page


def test_the_fallback_fuses_with_its_own_weight_and_still_finds_the_page(fallback, settings, embedder):
    """Without BM25, hybrid search leans on the vectors (RETRIEVAL_FTS_FUSION_ALPHA), whatever
    RETRIEVAL_FUSION says, and its full-text leg still answers."""
    settings.RETRIEVAL_FUSION, settings.RETRIEVAL_FTS_FUSION_ALPHA = "rrf", 0.85
    assert default_fusion() == fallback_fusion() == Fusion("weighted", 0.85)
    assistant = make_assistant()
    pages = {f"http://docs.test/{p}/": (DRF_SITE / p / "index.html").read_text() for p in PAGES}
    index_pages(assistant, pages)
    space = space_active(assistant.pk)
    query = "How do I limit the rate of requests for anonymous users?"
    vector = embedder.embed_queries([query])[0]
    lexical = chunk_search(space=space, query=query, vector=vector, k=3, mode="lexical")
    hybrid = chunk_search(space=space, query=query, vector=vector, k=3)
    assert lexical and "throttling" in lexical[0].url
    assert "throttling" in hybrid[0].url and set(hybrid[0].ranks) == {"lexical", "dense"}
