"""Recipe resolution, name options, prompts and sizes — no weights loaded, nothing downloaded."""

from __future__ import annotations

import json

import pytest

from ingestion.embedding import DEFAULT_MODEL, embedding_dims, get_embedder, parse_name, recipe_for
from ingestion.embedding.recipes import KNOWN_DIMS, WEB_SEARCH_TASK, gte_config_from_new


@pytest.fixture(autouse=True)
def _hub_ids_allowed(settings):
    """The operator allows the known hub ids (nothing is downloaded: their sizes are known)."""
    settings.MODEL_HUB_ALLOWED = list(KNOWN_DIMS)


@pytest.mark.parametrize(
    ("name", "family", "dims"),
    [
        ("", "bert", 384),
        (DEFAULT_MODEL, "bert", 384),
        ("thenlper/gte-small", "bert", 384),
        ("thenlper/gte-base", "bert", 768),
        ("thenlper/gte-large", "bert", 1024),
        ("Alibaba-NLP/gte-base-en-v1.5", "gte", 768),
        ("Alibaba-NLP/gte-large-en-v1.5", "gte", 1024),
        ("Alibaba-NLP/gte-multilingual-base", "gte-multilingual", 768),
        ("Alibaba-NLP/gte-Qwen2-1.5B-instruct", "gte-qwen2", 1536),
        ("Alibaba-NLP/gte-Qwen2-7B-instruct", "gte-qwen2", 3584),
        ("Qwen/Qwen3-Embedding-0.6B", "qwen3", 1024),
        ("Qwen/Qwen3-Embedding-4B", "qwen3", 2560),
        ("Qwen/Qwen3-Embedding-8B", "qwen3", 4096),
    ],
)
def test_hub_ids_resolve_by_pattern(name, family, dims):
    assert recipe_for(name).family == family
    assert embedding_dims(name) == dims


def test_name_options():
    assert parse_name("Qwen/Qwen3-Embedding-8B@256") == ("Qwen/Qwen3-Embedding-8B", 256)
    assert parse_name("thenlper/gte-base") == ("thenlper/gte-base", None)
    assert embedding_dims("Qwen/Qwen3-Embedding-8B@256") == 256
    assert embedding_dims("Qwen/Qwen3-Embedding-0.6B", mrl_dims=32) == 32
    assert embedding_dims("Alibaba-NLP/gte-multilingual-base@128") == 128
    for bad in [
        "Qwen/Qwen3-Embedding-0.6B@16",
        "Qwen/Qwen3-Embedding-0.6B@2048",
        "thenlper/gte-base@128",
        "Alibaba-NLP/gte-multilingual-base@64",
    ]:
        with pytest.raises(ValueError):
            embedding_dims(bad)


def test_query_prompts_are_exact():
    query = "what causes scurvy?"
    assert recipe_for("thenlper/gte-base").format_query(query) == query
    assert recipe_for("Alibaba-NLP/gte-base-en-v1.5").format_query(query) == query
    assert recipe_for("Alibaba-NLP/gte-Qwen2-7B-instruct").format_query(query) == (
        f"Instruct: {WEB_SEARCH_TASK}\nQuery: {query}"
    )
    assert recipe_for("Qwen/Qwen3-Embedding-4B").format_query(query, "Find papers") == (
        f"Instruct: Find papers\nQuery:{query}"
    )


@pytest.mark.parametrize(
    ("config", "pooling", "family", "dims"),
    [
        ({"model_type": "bert", "hidden_size": 96}, None, "bert", 96),
        ({"model_type": "bert", "hidden_size": 96}, {"pooling_mode_cls_token": True}, "bert", 96),
        ({"model_type": "gte", "hidden_size": 80, "vocab_size": 30528}, None, "gte", 80),
        ({"model_type": "new", "hidden_size": 80, "vocab_size": 250048}, None, "gte-multilingual", 80),
        ({"model_type": "qwen2", "hidden_size": 48}, None, "gte-qwen2", 48),
        ({"model_type": "qwen3", "hidden_size": 64}, {"pooling_mode": "lasttoken"}, "qwen3", 64),
    ],
)
def test_local_folders_resolve_by_config_without_weights(tmp_path, config, pooling, family, dims):
    (tmp_path / "config.json").write_text(json.dumps(config))
    if pooling:
        (tmp_path / "1_Pooling").mkdir()
        (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    recipe = recipe_for(str(tmp_path))
    assert recipe.family == family
    if pooling and "pooling_mode_cls_token" in pooling:
        assert recipe.pooling == "cls"
    assert embedding_dims(str(tmp_path)) == dims


def test_remote_code_gte_rope_scaling_maps_to_native():
    """The hub config's fixed NTK scaling gives the same RoPE frequencies in the native model."""
    import torch
    from transformers.models.gte.modeling_gte import GteRotaryEmbedding

    config = gte_config_from_new(
        {
            "model_type": "new",
            "vocab_size": 100,
            "hidden_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "intermediate_size": 128,
            "rope_theta": 160000,
            "rope_scaling": {"factor": 8.0, "type": "ntk"},
        }
    )
    dim, base, factor = 16, 160000 * 8.0, 8.0
    expected = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)) / factor ** (2 / dim)
    torch.testing.assert_close(GteRotaryEmbedding(config).inv_freq, expected)
    with pytest.raises(NotImplementedError):
        gte_config_from_new({"hidden_size": 64, "num_attention_heads": 4, "logn_attention_scale": True})


def test_api_names_route_to_the_api_module(monkeypatch):
    import sys
    import types

    module = types.ModuleType("ingestion.embedding.api")
    module.api_embedder = lambda name: ("api", name)
    monkeypatch.setitem(sys.modules, "ingestion.embedding.api", module)
    get_embedder.cache_clear()
    try:
        assert get_embedder("gemini:text-embedding-004") == ("api", "gemini:text-embedding-004")
        assert get_embedder("openai:text-embedding-3-small") == ("api", "openai:text-embedding-3-small")
    finally:
        get_embedder.cache_clear()


def test_batch_plans_keep_the_budget_and_little_padding():
    from ingestion.embedding import plan_batches

    lengths = [200, 200, 198, 190, 180, 150, 120, 60, 30, 20, 10, 5]
    padded = plan_batches(lengths, 16384)
    assert sorted(i for batch in padded for i in batch) == list(range(len(lengths)))
    assert [[lengths[i] for i in batch] for batch in padded] == [
        [200, 200, 198, 190, 180],
        [150, 120, 60, 30],
        [20, 10, 5],
    ]
    assert all(max(lengths[i] for i in b) * len(b) <= 16384 for b in padded)
    assert plan_batches(lengths, 400) == [[0, 1], [2, 3], [4, 5], [6, 7, 8], [9, 10, 11]]  # longest × count ≤ 400
    packed = plan_batches(lengths, 16384, packed=True)
    assert packed == [list(range(len(lengths)))]  # no padding to avoid: one row
    assert [sum(lengths[i] for i in b) for b in plan_batches(lengths, 600, packed=True)] == [598, 520, 245]
