"""The evaluate_retrieval command end to end: a tiny BEIR folder through the real pipeline and database."""

import io
import json
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection

from assistants.management.commands.evaluate_retrieval import remove
from assistants.models import Team
from ingestion.models import Document, EmbeddingSpace
from ingestion.spaces import space_active
from tests.conftest import DRF_SITE
from tests.factories import index_pages, make_assistant

CORPUS = {
    "volcano": ("Volcanoes", "Magma erupts from a volcano when gas pressure builds in the chamber beneath the crater."),
    "bees": ("Honeybees", "Honeybees pollinate flowers and store honey in hexagonal wax combs inside the hive."),
    "chess": (
        "Chess openings",
        "The Sicilian Defence answers the king's pawn opening and leads to sharp chess positions.",
    ),
    "sourdough": ("Sourdough", "A sourdough starter of wild yeast and lactobacilli leavens the bread dough."),
    "glacier": ("Glaciers", "Glaciers carve U-shaped valleys as compacted ice slowly flows downhill."),
    "violin": ("Violins", "A violin's tone depends on its spruce top, maple back and the varnish of the luthier."),
    "tides": ("Tides", "The Moon's gravity raises ocean tides twice a day along the coast."),
    "penguins": ("Penguins", "Emperor penguins huddle through the Antarctic winter while the males incubate eggs."),
    "bitcoin": ("Bitcoin", "Bitcoin miners compete to find a hash that secures the next block of the blockchain."),
    "origami": ("Origami", "Origami folds a single square of paper into cranes without cuts or glue."),
    "cheetah": ("Cheetahs", "The cheetah is the fastest land animal, sprinting after gazelles on the savanna."),
    "lighthouse": ("Lighthouses", "A lighthouse keeper tends the lamp and Fresnel lens that warn ships off the rocks."),
}
QUERIES = {
    "q1": ("Why does magma erupt from a volcano?", "volcano"),
    "q2": ("How does a sourdough starter leaven bread?", "sourdough"),
    "q3": ("Which animal is the fastest on land?", "cheetah"),
    "q4": ("What does a lighthouse keeper do with the Fresnel lens?", "lighthouse"),
}


def write_beir(folder):
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": key, "title": title, "text": text}) + "\n" for key, (title, text) in CORPUS.items())
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": key, "text": text}) + "\n" for key, (text, _) in QUERIES.items())
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{key}\t{doc}\t1\n" for key, (_, doc) in QUERIES.items())
    )
    return folder


@pytest.fixture
def beir_folder(tmp_path):
    return write_beir(tmp_path / "tinybeir")


def chunk_rows(space_id: int) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "select id, document_id, ordinal, text, search_text, token_count, embedding::text"
            f" from ingestion_chunk where space_id = {int(space_id)} order by id"
        )
        return cursor.fetchall()


def partitions() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("select tablename from pg_tables where tablename like %s", ["ingestion_chunk_s%"])
        return {row[0] for row in cursor.fetchall()}


def snapshot(space_id: int) -> dict:
    """Everything the evaluation must leave as it was."""
    return {
        "chunks": chunk_rows(space_id),
        "documents": list(Document.objects.order_by("pk").values_list("pk", "url", "content_hash", "status")),
        "spaces": list(EmbeddingSpace.objects.order_by("pk").values_list("pk", "status")),
        "teams": list(Team.objects.order_by("pk").values_list("pk", "name")),
        "users": list(User.objects.order_by("pk").values_list("pk", "username")),
        "partitions": partitions(),
    }


@pytest.fixture(scope="module")
def evaluation(django_db_setup, django_db_blocker, tmp_path_factory):
    """One run of the command beside another assistant with indexed chunks (committed, then removed)."""
    folder = write_beir(tmp_path_factory.mktemp("beir") / "tinybeir")
    out, stdout = folder.parent / "report.json", io.StringIO()
    with django_db_blocker.unblock():
        bystander = make_assistant()
        page = (DRF_SITE / "api-guide/throttling/index.html").read_text()
        index_pages(bystander, {"http://docs.test/api-guide/throttling/": page})
        space_id = space_active(bystander.pk).pk
        before = snapshot(space_id)
        try:
            call_command(
                "evaluate_retrieval", str(folder), alphas="0,0.5,1", out=str(out), stdout=stdout, stderr=io.StringIO()
            )
            after = snapshot(space_id)
        finally:
            remove(bystander.team, bystander.team.memberships.get().user)
    return SimpleNamespace(report=json.loads(out.read_text()), table=stdout.getvalue(), before=before, after=after)


def test_the_report_has_every_mode_with_metrics_in_range(evaluation):
    report = evaluation.report
    keys = {"dataset", "split", "queries", "corpus_size", "chunks", "index_seconds", "modes", "latency_ms"}
    assert keys <= set(report)
    assert (report["dataset"], report["split"], report["queries"], report["corpus_size"]) == ("tinybeir", "test", 4, 12)
    assert report["chunks"] >= 12 and report["index_seconds"] > 0
    for mode in ("lexical", "dense", "hybrid"):
        assert set(report["modes"][mode]) == {"ndcg@10", "recall@100", "mrr@10"}
        assert all(0.0 <= value <= 1.0 for value in report["modes"][mode].values())
        assert 0 < report["latency_ms"][mode]["p50"] <= report["latency_ms"][mode]["p95"]
        assert mode in evaluation.table
    assert "nDCG@10" in evaluation.table


def test_dense_and_hybrid_rank_each_obvious_document_first(evaluation):
    for mode in ("dense", "hybrid"):
        assert evaluation.report["modes"][mode] == {"ndcg@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0}


def test_lexical_ranks_each_obvious_document_first(evaluation):
    assert evaluation.report["modes"]["lexical"] == {"ndcg@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0}


def test_other_assistants_rows_are_untouched_and_nothing_of_the_run_remains(evaluation):
    assert evaluation.before["chunks"]
    assert evaluation.after == evaluation.before


@pytest.mark.django_db(transaction=True)
def test_keep_leaves_the_index_and_limit_queries_cuts_the_split(beir_folder, tmp_path):
    out = tmp_path / "report.json"
    call_command(
        "evaluate_retrieval",
        str(beir_folder),
        limit_queries=2,
        keep=True,
        out=str(out),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    assert json.loads(out.read_text())["queries"] == 2
    team = Team.objects.get(name__startswith="eval-tinybeir-")
    assistant = team.assistants.get()
    assert Document.objects.filter(source__assistant=assistant, url__startswith="beir://tinybeir/").count() == 12
    assert chunk_rows(space_active(assistant.pk).pk)
    remove(team, team.memberships.get().user)
    assert not Team.objects.filter(pk=team.pk).exists()


def test_the_report_compares_both_fusions_from_the_same_candidates(evaluation):
    report = evaluation.report
    assert report["fusion"] == "weighted@0.50"  # the configured default
    assert list(report["fusions"]) == ["rrf", "weighted@0.00", "weighted@0.50", "weighted@1.00"]
    # The hybrid mode is the configured fusion: the same candidates, the same numbers.
    assert report["fusions"]["weighted@0.50"] == report["modes"]["hybrid"]
    # alpha 1 is the dense leg's order, alpha 0 the lexical leg's (within the same candidates).
    assert report["fusions"]["weighted@1.00"]["ndcg@10"] == pytest.approx(report["modes"]["dense"]["ndcg@10"])
    assert report["fusions"]["weighted@0.00"]["ndcg@10"] == pytest.approx(report["modes"]["lexical"]["ndcg@10"])
    for label in report["fusions"]:
        assert label in evaluation.table


@pytest.mark.django_db
def test_bad_alphas_are_refused_before_anything_is_created(beir_folder, tmp_path):
    for alphas in ("0.5,x", "1.5"):
        with pytest.raises(CommandError, match="--alphas"):
            call_command("evaluate_retrieval", str(beir_folder), alphas=alphas, out=str(tmp_path / "r.json"))
    assert not Team.objects.exists()


@pytest.mark.django_db
def test_an_unreadable_reranker_is_refused_before_anything_is_created(beir_folder, tmp_path):
    with pytest.raises(CommandError, match="cannot load reranker"):
        call_command(
            "evaluate_retrieval", str(beir_folder), rerank=str(tmp_path / "nothing"), out=str(tmp_path / "r.json")
        )
    assert not Team.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_rerank_reports_the_hybrid_ranking_reordered_by_the_rerankers_scores(beir_folder, tmp_path):
    """A tiny random-weight cross-encoder: its order is nothing like the hybrid one, so the
    reranked block must be exactly what its scores give, computed here independently."""
    from ingestion.embedding import get_embedder
    from ingestion.search.hybrid import chunk_search
    from ingestion.search.metrics import evaluate, unique_in_order
    from ingestion.search.rerank import CrossEncoderReranker
    from tests.ingestion.search.tiny_rerankers import save_cross_encoder

    model = str(save_cross_encoder("bert", tmp_path / "tiny-reranker"))
    out, stdout = tmp_path / "report.json", io.StringIO()
    call_command(
        "evaluate_retrieval",
        str(beir_folder),
        rerank=model,
        rerank_depth=8,
        keep=True,
        out=str(out),
        stdout=stdout,
        stderr=io.StringIO(),
    )
    report = json.loads(out.read_text())
    team = Team.objects.get(name__startswith="eval-tinybeir-")
    try:
        assert report["rerank"] == {"model": model, "depth": 8}
        assert "hybrid+rerank" in stdout.getvalue()
        assert 0 < report["latency_ms"]["hybrid+rerank"]["p50"] <= report["latency_ms"]["hybrid+rerank"]["p95"]
        space = space_active(team.assistants.get().pk)
        urls = dict(Document.objects.filter(source__assistant_id=space.assistant_id).values_list("pk", "url"))
        reference = CrossEncoderReranker(model, device="cpu")
        embedder = get_embedder(space.model_name)
        top, deep = {}, {}
        for query_id, (text, _) in QUERIES.items():
            hits = chunk_search(space=space, query=text, vector=embedder.embed_queries([text])[0], k=8)
            scores = reference.score(text, [hit.text for hit in hits])
            order = sorted(range(len(hits)), key=lambda i: -scores[i])
            ranking = unique_in_order(urls[hits[i].document_id].rsplit("/", 1)[1] for i in order)
            top[query_id], deep[query_id] = ranking[:10], ranking
        expected = evaluate(top, {key: {doc: 1} for key, (_, doc) in QUERIES.items()}, deep_rankings=deep)
        reranked = report["modes"]["hybrid+rerank"]
        assert reranked["ndcg@10"] == pytest.approx(expected["ndcg@10"], abs=1e-9)
        assert reranked["mrr@10"] == pytest.approx(expected["mrr@10"], abs=1e-9)
        assert reranked["ndcg@10"] < report["modes"]["hybrid"]["ndcg@10"] == 1.0  # random weights reorder
    finally:
        remove(team, team.memberships.get().user)


@pytest.mark.django_db
def test_a_missing_split_is_an_error(beir_folder, tmp_path):
    with pytest.raises(CommandError, match="train.tsv"):
        call_command("evaluate_retrieval", str(beir_folder), split="train", out=str(tmp_path / "r.json"))


@pytest.mark.django_db(transaction=True)
def test_a_kept_index_is_searched_again_with_the_same_figures_and_not_indexed_twice(beir_folder, tmp_path):
    first, again = tmp_path / "first.json", tmp_path / "again.json"
    stderr = io.StringIO()
    call_command("evaluate_retrieval", str(beir_folder), keep=True, out=str(first), stdout=io.StringIO(), stderr=stderr)
    team = Team.objects.get(name__startswith="eval-tinybeir-")
    try:
        slug = team.assistants.get().slug
        assert f"--assistant {slug}" in stderr.getvalue()
        documents, chunks = Document.objects.count(), chunk_rows(space_active(team.assistants.get().pk).pk)
        stdout = io.StringIO()
        call_command(
            "evaluate_retrieval", str(beir_folder), assistant=slug, out=str(again), stdout=stdout, stderr=io.StringIO()
        )
        before, after = json.loads(first.read_text()), json.loads(again.read_text())
        assert after["reused_index"] and not before["reused_index"] and "a kept index" in stdout.getvalue()
        assert after["modes"] == before["modes"] and after["chunks"] == before["chunks"] == len(chunks)
        assert Document.objects.count() == documents and Team.objects.filter(pk=team.pk).exists()
    finally:
        remove(team, team.memberships.get().user)


@pytest.mark.django_db
def test_an_assistant_without_the_collection_is_refused(beir_folder, tmp_path):
    other = make_assistant()
    for slug, message in (("nobody", "no such assistant"), (other.slug, "does not hold the 'tinybeir' collection")):
        with pytest.raises(CommandError, match=message):
            call_command("evaluate_retrieval", str(beir_folder), assistant=slug, out=str(tmp_path / "r.json"))
