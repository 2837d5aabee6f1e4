"""Qwen3-Reranker against an independent reference built from the model card by hand.

A tiny random-weight ``Qwen3ForCausalLM`` with a word-level tokenizer is saved to a folder and loaded
by path. The reference writes the card's prompt out as one string, runs it unpadded and takes the
softmax over the last position's "no" and "yes" logits; the engine (left padding, mixed lengths,
several batches) must give the same P("yes") within 1e-4.
"""

from __future__ import annotations

import pytest
import torch

from ingestion.search.rerank import QWEN3, Qwen3Reranker, qwen3_prompt, recipe_for
from tests.ingestion.search.tiny_rerankers import save_qwen3_reranker

QUERY = "how does the protein affect cancer cells ?"
PASSAGES = [
    "protein",
    " ".join(["the effect of protein on cancer cells in patients was measured in a long study ."] * 6),
    "a gene and a cell",
    "results of the study were published , yes or no ?",
    " ".join(["cancer patients with the gene responded"] * 3),
]
TASK = "Given a web search query, retrieve relevant passages that answer the query"
CUSTOM_TASK = "Judge the passages for a biology question"


def card_prompt(query: str, doc: str, instruction: str = TASK) -> str:
    """The prompt exactly as the Qwen3-Reranker model card writes it."""
    prefix = (
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct"
        ' provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
    )
    suffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    return prefix + f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}" + suffix


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    corpus = [QUERY, *PASSAGES, CUSTOM_TASK]
    return str(save_qwen3_reranker(tmp_path_factory.mktemp("qwen3") / "reranker", corpus))


@pytest.fixture(scope="module")
def model_and_tokenizer(folder):
    from transformers import AutoTokenizer, Qwen3ForCausalLM

    return Qwen3ForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def p_yes(model, tokenizer, ids: list[int]) -> float:
    """P("yes") over {"no", "yes"} at the last position of one unpadded sequence."""
    no, yes = tokenizer.convert_tokens_to_ids("no"), tokenizer.convert_tokens_to_ids("yes")
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
    return float(torch.softmax(logits[[no, yes]], dim=-1)[1])


def reference(model_and_tokenizer, query: str, passages: list[str], instruction: str = TASK) -> list[float]:
    model, tokenizer = model_and_tokenizer
    return [
        p_yes(model, tokenizer, tokenizer(card_prompt(query, doc, instruction), add_special_tokens=False)["input_ids"])
        for doc in passages
    ]


def test_prompt_is_the_model_cards():
    assert qwen3_prompt("what is a gene", "A gene is a unit of heredity.") == (
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct"
        ' provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
        "<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n"
        "<Query>: what is a gene\n<Document>: A gene is a unit of heredity."
        "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    assert qwen3_prompt("q", "d", CUSTOM_TASK) == card_prompt("q", "d", CUSTOM_TASK)


def test_folder_is_recognised_and_tokens_are_read(folder):
    assert recipe_for(folder) == QWEN3
    reranker = Qwen3Reranker(folder, device="cpu")
    assert reranker.tokenizer.padding_side == "left"
    assert reranker.tokenizer.convert_ids_to_tokens([reranker.no_id, reranker.yes_id]) == ["no", "yes"]


def test_encoded_ids_are_the_whole_prompt_tokenised(folder, model_and_tokenizer):
    _, tokenizer = model_and_tokenizer
    reranker = Qwen3Reranker(folder, device="cpu")
    for pair, doc in zip(reranker._encode(QUERY, PASSAGES), PASSAGES):
        assert pair["input_ids"] == tokenizer(card_prompt(QUERY, doc), add_special_tokens=False)["input_ids"]


def test_scores_match_the_reference_across_batches(folder, model_and_tokenizer, monkeypatch):
    reranker = Qwen3Reranker(folder, device="cpu", batch_tokens=160)
    sizes: list[int] = []
    forward = reranker._forward

    def counted(inputs):
        sizes.append(inputs["input_ids"].shape[0])
        assert (inputs["attention_mask"][:, -1] == 1).all()  # left padding: the last position is real
        return forward(inputs)

    monkeypatch.setattr(reranker, "_forward", counted)
    scores = reranker.score(QUERY, PASSAGES)
    expected = reference(model_and_tokenizer, QUERY, PASSAGES)
    assert len(sizes) >= 3 and sum(sizes) == len(PASSAGES) and max(sizes) > 1
    assert max(abs(a - b) for a, b in zip(scores, expected)) < 1e-4
    assert all(0 < score < 1 for score in scores)
    assert len({round(score, 3) for score in expected}) > 3  # the passages are told apart


def test_one_big_batch_and_a_custom_instruction(folder, model_and_tokenizer):
    reranker = Qwen3Reranker(folder, device="cpu", instruction=CUSTOM_TASK)
    expected = reference(model_and_tokenizer, QUERY, PASSAGES, CUSTOM_TASK)
    assert max(abs(a - b) for a, b in zip(reranker.score(QUERY, PASSAGES), expected)) < 1e-4


def test_long_documents_are_truncated_as_the_card_does(folder, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    reranker = Qwen3Reranker(folder, device="cpu", max_length=90)
    prefix, suffix = (
        card_prompt("", "").split("<Instruct>: ")[0],
        "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    )
    prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    suffix_ids = tokenizer(suffix, add_special_tokens=False)["input_ids"]
    expected = []
    for doc in PASSAGES:
        body = f"<Instruct>: {TASK}\n<Query>: {QUERY}\n<Document>: {doc}"
        body_ids = tokenizer(body, add_special_tokens=False)["input_ids"][: 90 - len(prefix_ids) - len(suffix_ids)]
        expected.append(p_yes(model, tokenizer, prefix_ids + body_ids + suffix_ids))
    encoded = reranker._encode(QUERY, PASSAGES)
    assert max(len(pair["input_ids"]) for pair in encoded) == 90
    assert all(pair["input_ids"][-len(suffix_ids) :] == suffix_ids for pair in encoded)
    assert max(abs(a - b) for a, b in zip(reranker.score(QUERY, PASSAGES), expected)) < 1e-4
