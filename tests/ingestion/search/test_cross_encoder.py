"""Cross-encoder rerankers of each native family against an independent one-pair-at-a-time reference.

Tiny random-weight BERT, XLM-RoBERTa and GTE sequence classifiers are saved to folders and loaded by
path. The reference runs the HF model on one unpadded (query, passage) pair at a time and takes
``logits[0, 0]``; the engine must agree within 1e-4 on mixed-length passages split across batches.
"""

from __future__ import annotations

import pytest
import torch

from ingestion.search.rerank import CROSS_ENCODER, CrossEncoderReranker, recipe_for
from tests.ingestion.search.tiny_rerankers import (
    CROSS_ENCODER_KINDS,
    save_as_remote_code_gte_reranker,
    save_cross_encoder,
)

QUERY = "how does the protein affect cancer cells"
PASSAGES = [
    "protein",
    " ".join(["the effect of protein on cancer cells in patients was measured in a long study"] * 6),
    "a gene and a cell",
    "results of the study were published",
    " ".join(["cancer patients with the gene responded"] * 3),
    "cell",
]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("cross-encoders")
    return {kind: str(save_cross_encoder(kind, root / kind)) for kind in CROSS_ENCODER_KINDS}


def reference(folder: str, query: str, passages: list[str], **truncation) -> list[float]:
    """One pair at a time, unpadded, through the model's own class: ``logits[0, 0]``."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    scores = []
    with torch.no_grad():
        for passage in passages:
            scores.append(float(model(**tokenizer(query, passage, return_tensors="pt", **truncation)).logits[0, 0]))
    return scores


def count_forwards(reranker, monkeypatch) -> list[int]:
    """Records the batch size of every forward pass of ``reranker``."""
    sizes: list[int] = []
    forward = reranker._forward

    def counted(inputs):
        sizes.append(inputs["input_ids"].shape[0])
        return forward(inputs)

    monkeypatch.setattr(reranker, "_forward", counted)
    return sizes


@pytest.mark.parametrize("kind", CROSS_ENCODER_KINDS)
def test_folder_is_recognised_as_a_cross_encoder(folders, kind):
    assert recipe_for(folders[kind]) == CROSS_ENCODER


@pytest.mark.parametrize("kind", CROSS_ENCODER_KINDS)
def test_scores_match_one_pair_at_a_time_across_batches(folders, kind, monkeypatch):
    reranker = CrossEncoderReranker(folders[kind], device="cpu", batch_tokens=96)
    sizes = count_forwards(reranker, monkeypatch)
    scores = reranker.score(QUERY, PASSAGES)
    expected = reference(folders[kind], QUERY, PASSAGES)
    assert len(sizes) >= 3 and sum(sizes) == len(PASSAGES) and max(sizes) > 1
    assert max(abs(a - b) for a, b in zip(scores, expected)) < 1e-4
    assert len({round(score, 3) for score in expected}) > 3  # the passages are told apart


@pytest.mark.parametrize("kind", CROSS_ENCODER_KINDS)
def test_one_big_batch_gives_the_same_scores(folders, kind):
    reranker = CrossEncoderReranker(folders[kind], device="cpu")
    expected = reference(folders[kind], QUERY, PASSAGES)
    assert max(abs(a - b) for a, b in zip(reranker.score(QUERY, PASSAGES), expected)) < 1e-4


def test_only_the_passage_is_truncated(folders):
    reranker = CrossEncoderReranker(folders["bert"], device="cpu", max_length=24)
    encoded = reranker._encode(QUERY, PASSAGES)
    query_ids = reranker.tokenizer(QUERY)["input_ids"]
    assert max(len(pair["input_ids"]) for pair in encoded) == 24
    assert all(pair["input_ids"][: len(query_ids)] == query_ids for pair in encoded)
    expected = reference(folders["bert"], QUERY, PASSAGES, truncation="only_second", max_length=24)
    assert max(abs(a - b) for a, b in zip(reranker.score(QUERY, PASSAGES), expected)) < 1e-4


def test_a_query_longer_than_half_the_budget_is_cut_too(folders):
    reranker = CrossEncoderReranker(folders["bert"], device="cpu", max_length=24)
    long_query = " ".join([QUERY] * 5)
    assert all(len(pair["input_ids"]) <= 24 for pair in reranker._encode(long_query, PASSAGES))
    assert len(reranker.score(long_query, PASSAGES)) == len(PASSAGES)


def test_max_length_is_capped_by_the_model(folders):
    assert CrossEncoderReranker(folders["bert"], device="cpu").max_length == 512
    # XLM-R's 514 positions hold 512 tokens (positions start after pad_token_id)
    assert CrossEncoderReranker(folders["xlm-roberta"], device="cpu", max_length=4096).max_length == 512


def test_no_passages_no_scores(folders):
    assert CrossEncoderReranker(folders["bert"], device="cpu").score(QUERY, []) == []


def test_remote_code_gte_checkpoint_loads_into_the_native_class(tmp_path):
    folder, native = save_as_remote_code_gte_reranker(tmp_path / "gte-remote")
    assert recipe_for(str(folder)) == CROSS_ENCODER
    reranker = CrossEncoderReranker(str(folder), device="cpu", batch_tokens=96)
    loaded = reranker.model.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in native.state_dict().items())
    tokenizer = reranker.tokenizer
    with torch.no_grad():
        expected = [
            float(native(**tokenizer(QUERY, passage, return_tensors="pt")).logits[0, 0]) for passage in PASSAGES
        ]
    assert max(abs(a - b) for a, b in zip(reranker.score(QUERY, PASSAGES), expected)) < 1e-4
