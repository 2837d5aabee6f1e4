"""``rerank`` over retrieval hits, and reranker resolution — no weights downloaded."""

from __future__ import annotations

import json

import pytest

from ingestion.search.hybrid import Hit
from ingestion.search.rerank import (
    CROSS_ENCODER,
    QWEN3,
    CrossEncoderReranker,
    get_reranker,
    recipe_for,
    rerank,
)
from tests.ingestion.search.tiny_rerankers import save_cross_encoder


class FixedReranker:
    """Scores each passage by a table, and records what it was asked."""

    name = "fixed"

    def __init__(self, table: dict[str, float]):
        self.table = table
        self.calls: list[tuple[str, list[str]]] = []

    def score(self, query: str, passages: list[str]) -> list[float]:
        self.calls.append((query, passages))
        return [self.table[passage] for passage in passages]


def hits(*texts: str) -> list[Hit]:
    """Hits in fused order: the first has the best fused score."""
    return [
        Hit(i, i, text, [], "", f"https://example.com/{i}", text, score=1.0 / (60 + i), ranks={"dense": i})
        for i, text in enumerate(texts, start=1)
    ]


def test_hits_are_ordered_by_the_rerankers_score():
    reranker = FixedReranker({"a": 0.1, "b": 0.9, "c": 0.5})
    candidates = hits("a", "b", "c")
    fused = {hit.text: hit.score for hit in candidates}
    ranked = rerank(candidates, "the query", reranker)
    assert [hit.text for hit in ranked] == ["b", "c", "a"]
    assert reranker.calls == [("the query", ["a", "b", "c"])]
    assert [hit.score for hit in ranked] == [0.9, 0.5, 0.1]
    assert all(hit.fused_score == fused[hit.text] for hit in ranked)
    assert [hit.ranks for hit in ranked] == [
        {"dense": 2, "fused": 2, "rerank": 1},
        {"dense": 3, "fused": 3, "rerank": 2},
        {"dense": 1, "fused": 1, "rerank": 3},
    ]


def test_ties_keep_the_fused_order():
    ranked = rerank(hits("a", "b", "c", "d"), "q", FixedReranker({"a": 0.2, "b": 0.7, "c": 0.2, "d": 0.7}))
    assert [hit.text for hit in ranked] == ["b", "d", "a", "c"]


def test_top_n_keeps_the_best():
    reranker = FixedReranker({"a": 0.1, "b": 0.9, "c": 0.5, "d": 0.3})
    ranked = rerank(hits("a", "b", "c", "d"), "q", reranker, top_n=2)
    assert [hit.text for hit in ranked] == ["b", "c"]
    assert [hit.ranks["rerank"] for hit in ranked] == [1, 2]
    assert reranker.calls == [("q", ["a", "b", "c", "d"])]  # every candidate is scored
    assert [hit.text for hit in rerank(hits("a", "b"), "q", reranker, top_n=10)] == ["b", "a"]


def test_no_hits():
    assert rerank([], "q", FixedReranker({})) == []
    assert rerank([], "q", FixedReranker({}), top_n=3) == []


@pytest.mark.parametrize(
    ("name", "recipe"),
    [
        ("Alibaba-NLP/gte-multilingual-reranker-base", CROSS_ENCODER),
        ("BAAI/bge-reranker-v2-m3", CROSS_ENCODER),
        ("baai/BGE-reranker-v2-m3", CROSS_ENCODER),
        ("Qwen/Qwen3-Reranker-0.6B", QWEN3),
        ("Qwen/Qwen3-Reranker-4B", QWEN3),
        ("Qwen/Qwen3-Reranker-8B", QWEN3),
    ],
)
def test_hub_ids_resolve_by_pattern_without_a_download(name, recipe, monkeypatch, settings):
    settings.MODEL_HUB_ALLOWED = [name]  # the operator allows it; its family is known without a download

    def no_config(path):
        raise AssertionError(f"config of {path} was fetched")

    monkeypatch.setattr("ingestion.search.rerank.config_dict", no_config)
    assert recipe_for(name) == recipe
    assert recipe.max_length == (8192 if recipe is QWEN3 else 512)


@pytest.mark.parametrize(
    ("config", "recipe"),
    [
        ({"model_type": "new", "architectures": ["NewForSequenceClassification"]}, CROSS_ENCODER),
        ({"model_type": "xlm-roberta", "architectures": ["XLMRobertaForSequenceClassification"]}, CROSS_ENCODER),
        ({"model_type": "gte", "architectures": ["GteForSequenceClassification"]}, CROSS_ENCODER),
        ({"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"]}, QWEN3),
        ({"model_type": "bert", "architectures": ["BertModel"]}, None),  # an embedding model
        ({"model_type": "qwen3", "architectures": ["Qwen3Model"]}, None),  # Qwen3-Embedding
        ({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}, None),
    ],
)
def test_folders_resolve_by_config(tmp_path, config, recipe):
    (tmp_path / "config.json").write_text(json.dumps(config))
    if recipe is None:
        with pytest.raises(ValueError, match="no reranker recipe"):
            recipe_for(str(tmp_path))
    else:
        assert recipe_for(str(tmp_path)) == recipe


def test_get_reranker_loads_once_per_name(tmp_path, settings):
    settings.EMBEDDING_DEVICE = "cpu"
    folder = str(save_cross_encoder("bert", tmp_path / "bert"))
    get_reranker.cache_clear()
    try:
        reranker = get_reranker(folder)
        assert isinstance(reranker, CrossEncoderReranker) and reranker.name == folder
        assert reranker.device == "cpu" and str(reranker.dtype) == "torch.float32"
        assert get_reranker(folder) is reranker
    finally:
        get_reranker.cache_clear()
