"""Hybrid retrieval over real pages in the real database, one partition per assistant."""

import pytest
from django.db import connection

from assistants.management.commands.evaluate_retrieval import remove
from ingestion.search.hybrid import (
    Fusion,
    Hit,
    chunk_search,
    chunk_search_fusions,
    default_fusion,
    lexical_ranking,
    page_aggregate,
    rrf_fuse,
    weighted_fuse,
)
from ingestion.spaces import lexical_backend, space_active
from tests.conftest import DRF_SITE
from tests.factories import index_pages, make_assistant

PAGES = ["api-guide/throttling", "api-guide/pagination", "api-guide/authentication", "api-guide/serializers"]


def site_pages(prefix: str) -> dict[str, str]:
    return {f"{prefix}/{p}/": (DRF_SITE / p / "index.html").read_text() for p in PAGES}


@pytest.fixture(scope="module")
def indexed(django_db_setup, django_db_blocker):
    """Four real pages indexed once for the module (committed), removed afterwards: the team and its owner
    (a user left behind took a name that another process's factories give too: tests/security/agent.py)."""
    with django_db_blocker.unblock():
        assistant = make_assistant()
        index_pages(assistant, site_pages("http://docs.test"))
    yield assistant
    with django_db_blocker.unblock():
        remove(assistant.team, assistant.team.memberships.get().user)


@pytest.fixture(autouse=True)
def _db(db):
    pass


def search(assistant, embedder, query, mode="hybrid", k=5):
    space = space_active(assistant.pk)
    return chunk_search(space=space, query=query, vector=embedder.embed_queries([query])[0], k=k, mode=mode)


def test_the_embedded_database_has_bm25():
    assert lexical_backend() == "bm25"


@pytest.mark.parametrize("mode", ["hybrid", "lexical", "dense"])
@pytest.mark.parametrize(
    "question, page",
    [
        ("How do I limit the rate of requests for anonymous users?", "throttling"),
        ("How do I set the default page size for list results?", "pagination"),
        ("How do I use token authentication?", "authentication"),
    ],
)
def test_each_leg_finds_the_page_that_answers(indexed, embedder, mode, question, page):
    hits = search(indexed, embedder, question, mode=mode)
    assert hits, "no results"
    assert f"/api-guide/{page}/" in hits[0].url


@pytest.mark.parametrize(
    "question", ["Note: how do I use token authentication?", "token authentication:", "auth:token:authentication"]
)
def test_a_colon_in_a_question_is_text_not_bm25_syntax(indexed, embedder, question):
    # A ::bm25query cast read "Note:" as the name of an index: the chat answered 500 (found by the API fuzz test).
    hits = search(indexed, embedder, question, mode="lexical")
    assert hits and "/api-guide/authentication/" in hits[0].url


@pytest.mark.parametrize("question", ["How do I set the default page size for list results?", "throttle", "token"])
def test_the_lexical_leg_scores_each_chunk_as_the_index_ranked_it(indexed, question):
    """BM25 scores come from the index scan that ranked the chunks (not scored again from each row's text,
    ~65 us a row): in the index's order, positive, non-increasing, and the BM25 of each chunk within a few
    percent of pg_textsearch's standalone score of its text."""
    space = space_active(indexed.pk)
    ranked = lexical_ranking(space, question, 30)
    assert len(ranked) >= 5
    with connection.cursor() as cursor:
        cursor.execute(
            f"select id, -(search_text <@> to_bm25query(%s)) from {space.partition_name}"
            " order by search_text <@> to_bm25query(%s) limit 30",
            [question, question],
        )
        standalone = [row for row in cursor.fetchall() if row[1] > 0]
    assert [chunk for chunk, _ in ranked] == [chunk for chunk, _ in standalone]
    scores = [score for _, score in ranked]
    assert all(score > 0 for score in scores) and scores == sorted(scores, reverse=True)
    assert all(abs(score - other) <= 0.05 * other for score, (_, other) in zip(scores, standalone))
    with connection.cursor() as cursor:  # a caller's transaction that turned index scans off (an exact dense scan)
        cursor.execute("set local enable_indexscan = off")
    assert lexical_ranking(space, question, 30) == ranked


def test_each_partition_keeps_its_chunk_vectors_in_the_row(indexed):
    """A partition under the HNSW threshold is searched by reading every chunk's vector: out of line
    (pgvector's EXTERNAL), each is a TOAST lookup; kept in the row (MAIN, set on the parent and
    inherited by a partition made later), the search reads the rows alone."""
    space = space_active(indexed.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            "select attstorage from pg_attribute where attrelid = %s::regclass and attname = 'embedding'",
            [space.partition_name],
        )
        assert cursor.fetchone()[0] == "m"
        cursor.execute(f"select count(*), count(pg_column_toast_chunk_id(embedding)) from {space.partition_name}")
        rows, out_of_line = cursor.fetchone()
    assert rows >= 20 and out_of_line == 0


def test_hits_link_to_their_section(indexed, embedder):
    hits = search(indexed, embedder, "AnonRateThrottle scope anon")
    assert any(hit.link.startswith("http://docs.test/api-guide/throttling/#") for hit in hits)


def test_hits_carry_their_heading_path_through_the_raw_cursor(indexed, embedder):
    # heading_path is jsonb read by a raw query, which hands it over as text: it was taken for "not a
    # list" and dropped, so no citation ever named its section (issue 26, part 4).
    hits = search(indexed, embedder, "AnonRateThrottle scope anon")
    throttling = [hit for hit in hits if "/throttling/" in hit.url]
    assert throttling and all(isinstance(hit.heading_path, list) for hit in hits)
    assert all(hit.heading_path[0] == "Throttling" for hit in throttling)
    assert any(len(hit.heading_path) > 1 for hit in throttling), [hit.heading_path for hit in throttling]


def test_no_more_than_two_chunks_of_one_page(indexed, embedder):
    hits = search(indexed, embedder, "serializer fields validation", k=6)
    per_page = {}
    for hit in hits:
        per_page[hit.document_id] = per_page.get(hit.document_id, 0) + 1
    assert max(per_page.values()) <= 2
    assert len(hits) == 6


def test_an_assistant_never_sees_another_assistants_chunks(indexed, embedder):
    other = make_assistant()
    index_pages(other, {url: html for url, html in site_pages("http://other.test").items() if "serializers" not in url})
    for mode in ["hybrid", "lexical", "dense"]:
        hits = search(indexed, embedder, "throttling rates", mode=mode, k=10)
        assert hits and all(hit.url.startswith("http://docs.test/") for hit in hits)
        hits = search(other, embedder, "throttling rates", mode=mode, k=10)
        assert hits and all(hit.url.startswith("http://other.test/") for hit in hits)


def test_each_assistant_has_its_own_partition_and_bm25_index(indexed):
    # Its HNSW index comes once it has VECTOR_INDEX_MIN_CHUNKS chunks: see test_vector_index.py.
    space = space_active(indexed.pk)
    with connection.cursor() as cursor:
        cursor.execute("select indexdef from pg_indexes where tablename = %s", [space.partition_name])
        definitions = " ".join(row[0] for row in cursor.fetchall())
    assert f"ON public.{space.partition_name} USING bm25" in definitions


def test_reindexing_a_document_replaces_its_chunks(indexed, embedder):
    from ingestion import services
    from ingestion.models import Document

    document = Document.objects.filter(source__assistant=indexed).first()
    space = space_active(indexed.pk)

    def count():
        with connection.cursor() as cursor:
            cursor.execute(
                "select count(*) from ingestion_chunk where space_id = %s and document_id = %s", [space.pk, document.pk]
            )
            return cursor.fetchone()[0]

    before = count()
    services.document_index(document=document)
    assert count() == before == document.chunk_count


def test_rrf_rewards_agreement():
    fused = rrf_fuse({"lexical": [1, 2, 3], "dense": [3, 4, 1]})
    assert [chunk_id for chunk_id, _, _ in fused][:2] == [1, 3]
    assert fused[0][2] == {"lexical": 1, "dense": 3}


def test_weighted_fusion_combines_min_max_normalised_scores():
    rankings = {"lexical": [(1, 12.0), (2, 8.0), (3, 2.0)], "dense": [(3, 0.9), (4, 0.7), (1, 0.5)]}
    # lexical → 1: 1.0, 2: 0.6, 3: 0.0; dense → 3: 1.0, 4: 0.5, 1: 0.0
    fused = weighted_fuse(rankings, alpha=0.3)
    scores = {chunk_id: score for chunk_id, score, _ in fused}
    assert scores == pytest.approx({1: 0.7, 2: 0.42, 3: 0.3, 4: 0.15})
    assert [chunk_id for chunk_id, _, _ in fused] == [1, 2, 3, 4]
    assert fused[0][2] == {"lexical": 1, "dense": 3}
    assert [chunk_id for chunk_id, _, _ in weighted_fuse(rankings, alpha=0.8)][:2] == [3, 4]


def test_weighted_fusion_of_one_leg_or_equal_scores():
    assert [c for c, _, _ in weighted_fuse({"lexical": [], "dense": [(5, 0.2), (6, 0.1)]}, 0.5)] == [5, 6]
    assert weighted_fuse({"dense": [(5, 0.3), (6, 0.3)]}, 0.5)[0][1] == pytest.approx(0.5)


def test_fusion_is_validated_and_read_from_the_settings(settings):
    with pytest.raises(ValueError):
        Fusion("max")
    with pytest.raises(ValueError):
        Fusion("weighted", 1.5)
    assert default_fusion() == Fusion("weighted", 0.5)  # the default, tuned on SciFact train
    settings.RETRIEVAL_FUSION, settings.RETRIEVAL_FUSION_ALPHA = "weighted", 0.7
    assert default_fusion() == Fusion("weighted", 0.7)
    assert default_fusion().label == "weighted@0.70"
    settings.RETRIEVAL_FUSION = "rrf"
    assert default_fusion().label == "rrf"


def test_weighted_fusion_at_the_ends_is_one_legs_order(indexed, embedder):
    space = space_active(indexed.pk)
    query = "How do I limit the rate of requests for anonymous users?"
    vector = embedder.embed_queries([query])[0]
    fusions = {"dense": Fusion("weighted", 1.0), "lexical": Fusion("weighted", 0.0), "rrf": Fusion("rrf")}
    found = chunk_search_fusions(space=space, query=query, vector=vector, k=8, fusions=fusions, per_document=None)
    for leg in ("dense", "lexical"):
        alone = chunk_search(space=space, query=query, vector=vector, k=8, mode=leg, per_document=None)
        assert [hit.chunk_id for hit in found[leg]] == [hit.chunk_id for hit in alone]
    assert [hit.chunk_id for hit in found["rrf"]] == [
        hit.chunk_id
        for hit in chunk_search(space=space, query=query, vector=vector, k=8, per_document=None, fusion=Fusion("rrf"))
    ]
    assert found["dense"] != found["lexical"]


def test_the_configured_fusion_is_the_one_searches_use(indexed, embedder, settings):
    space = space_active(indexed.pk)
    query = "serializer fields validation"
    vector = embedder.embed_queries([query])[0]
    weighted = chunk_search(space=space, query=query, vector=vector, k=6, fusion=Fusion("weighted", 0.5))
    rrf = chunk_search(space=space, query=query, vector=vector, k=6, fusion=Fusion("rrf"))
    settings.RETRIEVAL_FUSION, settings.RETRIEVAL_FUSION_ALPHA = "weighted", 0.5
    configured = chunk_search(space=space, query=query, vector=vector, k=6)
    assert [hit.score for hit in configured] == [hit.score for hit in weighted]
    assert [hit.score for hit in configured] != [hit.score for hit in rrf]
    settings.RETRIEVAL_FUSION = "rrf"
    configured = chunk_search(space=space, query=query, vector=vector, k=6)
    assert [hit.score for hit in configured] == [hit.score for hit in rrf]


def _hit(chunk_id: int, document_id: int, score: float, section: str = "") -> Hit:
    # Each chunk its own section unless told: a page's sections are what aggregation counts.
    path = ["Page", section or f"section {chunk_id}"]
    return Hit(chunk_id, document_id, f"chunk {chunk_id}", path, "", f"https://docs.test/{document_id}/", "", score)


def test_a_page_that_several_chunks_match_ranks_above_one_matched_once():
    # Page 1 has one chunk a shade better than page 2's best; page 2 has two more that match.
    hits = [_hit(10, 1, 0.80), _hit(20, 2, 0.78), _hit(21, 2, 0.60), _hit(22, 2, 0.40), _hit(30, 3, 0.10)]
    ranked = page_aggregate(hits, decay=0.5)
    assert [hit.chunk_id for hit in ranked] == [20, 10, 21, 22, 30]
    # The page's best chunk carries the page: 0.78 + 0.5 * 0.60 + 0.25 * 0.40; the others keep their own.
    assert ranked[0].score == pytest.approx(1.18)
    assert {hit.chunk_id: hit.score for hit in ranked[2:]} == pytest.approx({21: 0.60, 22: 0.40, 30: 0.10})


def test_a_section_cut_into_several_chunks_counts_once():
    # Page 2's three chunks are one section (one long abstract): it is one piece of evidence, not three.
    hits = [_hit(10, 1, 0.80), _hit(20, 2, 0.78, "s"), _hit(21, 2, 0.60, "s"), _hit(22, 2, 0.40, "s")]
    ranked = page_aggregate(hits, decay=0.5)
    assert [(hit.chunk_id, hit.score) for hit in ranked] == [(10, 0.80), (20, 0.78), (21, 0.60), (22, 0.40)]
    # With a second section, that section's best chunk adds, once.
    hits = [_hit(10, 1, 0.80), _hit(20, 2, 0.78, "s"), _hit(21, 2, 0.60, "s"), _hit(22, 2, 0.40, "t")]
    ranked = page_aggregate(hits, decay=0.5)
    assert [hit.chunk_id for hit in ranked] == [20, 10, 21, 22]
    assert ranked[0].score == pytest.approx(0.78 + 0.5 * 0.40)


def test_page_aggregation_off_is_the_best_chunk_alone():
    hits = [_hit(10, 1, 0.80), _hit(20, 2, 0.78), _hit(21, 2, 0.60)]
    assert [(hit.chunk_id, hit.score) for hit in page_aggregate(hits, decay=0)] == [(10, 0.80), (20, 0.78), (21, 0.60)]


def test_searches_rank_pages_by_their_chunks_together(indexed, embedder, settings):
    settings.RETRIEVAL_PAGE_DECAY = 0.5
    space = space_active(indexed.pk)
    query = "How do I set the default page size for list results?"
    vector = embedder.embed_queries([query])[0]
    alone = chunk_search(space=space, query=query, vector=vector, k=200, per_document=None, page_decay=0)
    paged = chunk_search(space=space, query=query, vector=vector, k=200, per_document=None)
    assert sorted(hit.chunk_id for hit in alone) == sorted(hit.chunk_id for hit in paged)
    leader = paged[0]
    best: dict[tuple, float] = {}  # each section of the page at its best chunk
    for hit in alone:
        if hit.document_id == leader.document_id:
            key = tuple(hit.heading_path)
            best[key] = max(best.get(key, 0.0), hit.score)
    own = sorted(best.values(), reverse=True)
    assert len(own) > 1
    assert leader.score == pytest.approx(sum(score * 0.5**n for n, score in enumerate(own)))
    assert leader.score > max(own)


def test_the_page_decay_is_read_from_the_settings(indexed, embedder, settings):
    space = space_active(indexed.pk)
    query = "How do I set the default page size for list results?"
    vector = embedder.embed_queries([query])[0]
    settings.RETRIEVAL_PAGE_DECAY = 0
    configured = chunk_search(space=space, query=query, vector=vector, k=8, per_document=None)
    alone = chunk_search(space=space, query=query, vector=vector, k=8, per_document=None, page_decay=0)
    assert [(hit.chunk_id, hit.score) for hit in configured] == [(hit.chunk_id, hit.score) for hit in alone]
    settings.RETRIEVAL_PAGE_DECAY = 0.5
    paged = chunk_search(space=space, query=query, vector=vector, k=8, per_document=None)
    assert paged[0].score > alone[0].score
