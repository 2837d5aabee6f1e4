"""The retrieval metrics against values worked out by hand, and the BEIR loader."""

import math

import pytest

from ingestion.search.metrics import evaluate, load_beir, mrr_at_k, ndcg_at_k, recall_at_k, unique_in_order

LOG2_3 = math.log2(3)  # the discount at rank 2; rank 1 divides by log2(2) = 1, rank 3 by log2(4) = 2


def test_ndcg_of_the_ideal_ranking_is_one():
    assert ndcg_at_k(["a", "b", "x"], {"a": 1, "b": 1}) == pytest.approx(1.0)


def test_ndcg_with_a_miss_between_two_relevant_documents():
    # DCG = 1/1 + 0 + 1/2 = 1.5; ideal DCG = 1/1 + 1/log2(3) = 1.6309; nDCG = 0.91972
    value = ndcg_at_k(["a", "x", "b"], {"a": 1, "b": 1})
    assert value == pytest.approx(1.5 / (1 + 1 / LOG2_3))
    assert value == pytest.approx(0.919720, abs=1e-6)


def test_ndcg_uses_the_grades_as_linear_gains():
    # grades a=2, b=1, ranked b then a: DCG = 1 + 2/log2(3) = 2.2619; ideal = 2 + 1/log2(3) = 2.6309
    value = ndcg_at_k(["b", "a"], {"a": 2, "b": 1})
    assert value == pytest.approx((1 + 2 / LOG2_3) / (2 + 1 / LOG2_3))
    assert value == pytest.approx(0.859719, abs=1e-6)


def test_ndcg_ideal_counts_relevant_documents_never_retrieved():
    # one of two relevant documents, at rank 1: 1 / (1 + 1/log2(3)) = 0.61315
    assert ndcg_at_k(["a", "x"], {"a": 1, "b": 1}) == pytest.approx(0.613147, abs=1e-6)


def test_ndcg_ignores_zero_grades_and_ranks_beyond_k():
    qrels = {"a": 1, "z": 0}
    assert ndcg_at_k(["z", "x", "y"], qrels) == 0.0
    assert ndcg_at_k([f"x{i}" for i in range(10)] + ["a"], qrels, k=10) == 0.0
    assert ndcg_at_k(["z", "a"], qrels) == pytest.approx(1 / LOG2_3)


def test_ndcg_without_relevant_documents_is_zero():
    assert ndcg_at_k(["a"], {}) == 0.0
    assert ndcg_at_k([], {"a": 1}) == 0.0


def test_recall_counts_relevant_documents_within_k():
    qrels = {"a": 1, "b": 2, "c": 1, "z": 0}
    assert recall_at_k(["a", "x", "b", "z"], qrels) == pytest.approx(2 / 3)
    assert recall_at_k(["a", "x", "b"], qrels, k=2) == pytest.approx(1 / 3)
    assert recall_at_k(["x", "z"], qrels) == 0.0


def test_mrr_is_the_reciprocal_rank_of_the_first_relevant_document():
    qrels = {"b": 1, "c": 1, "z": 0}
    assert mrr_at_k(["z", "x", "b", "c"], qrels) == pytest.approx(1 / 3)
    assert mrr_at_k(["c"], qrels) == 1.0
    assert mrr_at_k([f"x{i}" for i in range(10)] + ["b"], qrels, k=10) == 0.0


def test_evaluate_averages_over_queries_and_reads_recall_from_the_deep_ranking():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1, "c": 1}, "q3": {"d": 1}}
    rankings = {"q1": ["a"], "q2": ["x", "b"]}  # q3 retrieved nothing
    deep = {"q1": ["a"], "q2": ["x", "b", "c"], "q3": ["d"]}
    result = evaluate(rankings, qrels, deep_rankings=deep)
    q2_ndcg = (1 / LOG2_3) / (1 + 1 / LOG2_3)
    assert result["ndcg@10"] == pytest.approx((1 + q2_ndcg + 0) / 3)
    assert result["mrr@10"] == pytest.approx((1 + 1 / 2 + 0) / 3)
    assert result["recall@100"] == pytest.approx(1.0)
    assert evaluate(rankings, qrels)["recall@100"] == pytest.approx((1 + 1 / 2 + 0) / 3)


def test_evaluate_refuses_judgements_without_a_relevant_document():
    with pytest.raises(ValueError):
        evaluate({}, {"q1": {"a": 0}})


def test_unique_in_order_keeps_each_documents_best_rank():
    assert unique_in_order([3, 1, 3, 2, 1]) == [3, 1, 2]


def test_load_beir(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "Bees", "text": "Bees make honey."}\n{"_id": 2, "text": "No title."}\n\n'
    )
    (tmp_path / "queries.jsonl").write_text(
        '{"_id": "q1", "text": "honey?"}\n{"_id": "q2", "text": "unjudged"}\n'
        '{"_id": "q3", "text": "judged irrelevant only"}\n'
    )
    (tmp_path / "qrels" / "dev.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\t2\t0\nq3\td1\t0\nq9\td1\t1\n"
    )
    dataset = load_beir(tmp_path, "dev")
    assert dataset.name == tmp_path.name
    assert dataset.corpus == {"d1": ("Bees", "Bees make honey."), "2": ("", "No title.")}
    assert dataset.qrels == {"q1": {"d1": 2, "2": 0}}  # q3: nothing relevant; q9: no text
    assert dataset.queries == {"q1": "honey?"}
    with pytest.raises(FileNotFoundError, match="test.tsv"):
        load_beir(tmp_path, "test")
