"""Rerankers: re-score retrieval candidates against the query with a local model, best first.

``get_reranker(name)`` gives the process-wide reranker for a hub id or local folder of a registered
family; ``rerank(hits, query, reranker)`` re-orders retrieval hits by its scores. Two families:

* **Cross-encoders** (``Alibaba-NLP/gte-multilingual-reranker-base``, ``BAAI/bge-reranker-v2-m3``,
  or any folder of a BERT, XLM-RoBERTa or GTE ``…ForSequenceClassification`` with one label): the
  query and passage are tokenised as a pair (the passage truncated, ``only_second``, to 512 tokens or
  the model's limit) and the score is the raw logit. The model cards' optional sigmoid is monotone,
  so it is left out: the order is the same and raw logits keep their spread.
* **Qwen3-Reranker** (``Qwen/Qwen3-Reranker-0.6B``/``4B``/``8B``, or a folder of a
  ``Qwen3ForCausalLM``): the model card's chat prompt asks whether the document meets the query and
  the instruction; the score is P("yes") = softmax over the last position's "no" and "yes" logits.

Models load by their native transformers classes, as the embedding engine's do (a hub id is matched
by name without any download; a folder by its ``config.json`` ``model_type`` and ``architectures``),
on ``settings.EMBEDDING_DEVICE`` (CUDA when present) in ``settings.EMBEDDING_DTYPE`` (bf16 on CUDA,
fp32 on CPU). Every pair is tokenised once, and pairs are sorted by length and packed into batches of
at most ``batch_tokens`` padded tokens (``ingestion.embedding.plan_batches``).
"""

from __future__ import annotations

import abc
import functools
import logging
import os
import re
import threading
from dataclasses import dataclass
from typing import Protocol

from ingestion.embedding.engine import plan_batches, torch_dtype
from ingestion.embedding.recipes import (
    WEB_SEARCH_TASK,
    config_dict,
    gte_config_from_new,
    model_location,
)

logger = logging.getLogger(__name__)

BATCH_TOKENS = 16384  # padded tokens per forward pass

# The Qwen3-Reranker prompt, verbatim from its model card.
QWEN3_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct"
    ' provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_BODY = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"


class Reranker(Protocol):
    """Relevance scores of passages to a query."""

    name: str

    def score(self, query: str, passages: list[str]) -> list[float]:
        """One score per passage, in the passages' order; higher is more relevant."""
        ...


@dataclass(frozen=True)
class RerankRecipe:
    """How one family of rerankers is prompted and capped."""

    family: str  # "cross-encoder" or "qwen3"
    max_length: int  # cap on tokens per pair, before the model's and tokenizer's own limits


CROSS_ENCODER = RerankRecipe(family="cross-encoder", max_length=512)
QWEN3 = RerankRecipe(family="qwen3", max_length=8192)  # the model card's max_length

NAME_PATTERNS: list[tuple[re.Pattern, RerankRecipe]] = [
    (re.compile(r"Alibaba-NLP/gte-multilingual-reranker-base|BAAI/bge-reranker-v2-m3", re.IGNORECASE), CROSS_ENCODER),
    (re.compile(r"Qwen/Qwen3-Reranker-(0\.6B|4B|8B)", re.IGNORECASE), QWEN3),
]
CROSS_ENCODER_TYPES = {"bert", "xlm-roberta", "gte", "new"}  # "new": the hub's remote-code GTE


def recipe_from_config(config: dict) -> RerankRecipe:
    """The family of a reranker folder from its ``model_type`` and ``architectures``."""
    model_type = config.get("model_type")
    architectures = config.get("architectures") or []
    if model_type in CROSS_ENCODER_TYPES and any(name.endswith("ForSequenceClassification") for name in architectures):
        return CROSS_ENCODER
    if model_type == "qwen3" and architectures in ([], ["Qwen3ForCausalLM"]):
        return QWEN3
    raise ValueError(f"no reranker recipe for model_type {model_type!r} with architectures {architectures}")


def recipe_for(name: str, *, local_files_only: bool = False) -> RerankRecipe:
    """The recipe for a reranker: by hub-id pattern (no download), else by the folder's (or hub's)
    config; ``local_files_only`` never asks the hub (what a form's validation wants)."""
    location = model_location(name)  # refuses a name this server may not load, before anything is read
    for pattern, recipe in NAME_PATTERNS:
        if pattern.fullmatch(name):
            return recipe
    return recipe_from_config(config_dict(location, local_files_only=local_files_only))


def qwen3_body(query: str, doc: str, instruction: str = WEB_SEARCH_TASK) -> str:
    """The user turn of the Qwen3-Reranker prompt (the part truncated, as tokens, to fit the model)."""
    return QWEN3_BODY.format(instruction=instruction, query=query, doc=doc)


def qwen3_prompt(query: str, doc: str, instruction: str = WEB_SEARCH_TASK) -> str:
    """The whole Qwen3-Reranker prompt, as the model reads it when nothing is truncated."""
    return QWEN3_PREFIX + qwen3_body(query, doc, instruction) + QWEN3_SUFFIX


def _max_length(config: dict, tokenizer, cap: int) -> int:
    """The smallest of the cap, the model's positions and the tokenizer's limit."""
    limits = [cap]
    if positions := config.get("max_position_embeddings"):
        # XLM-RoBERTa counts positions from pad_token_id + 1, so two of them are never used.
        offset = int(config.get("pad_token_id", 1)) + 1 if config.get("model_type") == "xlm-roberta" else 0
        limits.append(int(positions) - offset)
    if 0 < getattr(tokenizer, "model_max_length", 0) < 10**7:
        limits.append(int(tokenizer.model_max_length))
    return min(limits)


class LocalReranker(abc.ABC):
    """The shared part of the local rerankers: loading, length-sorted batching, one pass at a time.

    A family supplies ``_load_model``, ``_encode`` (token ids per pair, truncated) and ``_forward``
    (scores for one padded batch).
    """

    padding_side = "right"

    def __init__(
        self,
        name: str,
        device: str = "",
        *,
        dtype: str = "",
        max_length: int | None = None,
        batch_tokens: int = BATCH_TOKENS,
        threads: int = 0,
    ):
        import torch
        from transformers import AutoTokenizer

        self.name = name
        self.recipe = recipe_for(name)
        self.location = model_location(name)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cpu":
            torch.set_num_threads(threads or os.cpu_count() or 1)
        # On a CPU fp32 unless asked: a reranker orders by small score differences, and bf16 moved the
        # scores of the test models by up to 0.05 (the embedder's vectors move by a cosine of 1e-4).
        self.dtype = torch_dtype(dtype or ("fp32" if self.device == "cpu" else ""), self.device)
        self.batch_tokens = batch_tokens
        config = config_dict(self.location)
        self.tokenizer = AutoTokenizer.from_pretrained(self.location)
        self.tokenizer.padding_side = self.padding_side
        self.model = self._load_model(config).to(self.device).eval()
        self.max_length = _max_length(config, self.tokenizer, max_length or self.recipe.max_length)
        self._lock = threading.Lock()  # one forward pass at a time per process

    @abc.abstractmethod
    def _load_model(self, config: dict):
        """The model, in ``self.dtype`` (moved to the device by the caller)."""

    @abc.abstractmethod
    def _encode(self, query: str, passages: list[str]) -> list[dict[str, list[int]]]:
        """The model inputs of each (query, passage) pair, unpadded and truncated to ``max_length``."""

    @abc.abstractmethod
    def _forward(self, inputs: dict):
        """One score per row of a padded batch on the device."""

    def score(self, query: str, passages: list[str]) -> list[float]:
        """One score per passage, in the passages' order; higher is more relevant."""
        import torch

        if not passages:
            return []
        encoded = self._encode(query, passages)
        scores = [0.0] * len(passages)
        with self._lock, torch.inference_mode():
            for batch in plan_batches([len(pair["input_ids"]) for pair in encoded], self.batch_tokens):
                inputs = self.tokenizer.pad([encoded[i] for i in batch], padding=True, return_tensors="pt")
                inputs = {key: value.to(self.device) for key, value in inputs.items()}
                for index, value in zip(batch, self._forward(inputs).float().cpu().tolist()):
                    scores[index] = value
        return scores


class CrossEncoderReranker(LocalReranker):
    """The single logit of a sequence-classification model over (query, passage) pairs."""

    def _load_model(self, config: dict):
        from transformers import (
            BertForSequenceClassification,
            GteForSequenceClassification,
            XLMRobertaForSequenceClassification,
        )

        classes = {
            "bert": BertForSequenceClassification,
            "xlm-roberta": XLMRobertaForSequenceClassification,
            "gte": GteForSequenceClassification,
            "new": GteForSequenceClassification,
        }
        extra = {}
        if config["model_type"] == "new":  # the hub's remote-code GTE, read into the native class
            native = gte_config_from_new(config)
            native.num_labels = len(config.get("id2label") or {0: "LABEL_0"})
            extra["config"] = native
        model = classes[config["model_type"]].from_pretrained(
            self.location, dtype=self.dtype, attn_implementation="sdpa", **extra
        )
        if model.config.num_labels != 1:
            raise ValueError(f"{self.name}: a cross-encoder reranker has one label, not {model.config.num_labels}")
        return model

    def _encode(self, query: str, passages: list[str]) -> list[dict[str, list[int]]]:
        # Only the passage is cut to fit, unless the query alone takes more than half the budget.
        query_tokens = len(self.tokenizer(query, add_special_tokens=False)["input_ids"])
        truncation = "only_second" if query_tokens <= self.max_length // 2 else "longest_first"
        encoded = self.tokenizer([query] * len(passages), passages, truncation=truncation, max_length=self.max_length)
        return [{key: encoded[key][i] for key in encoded} for i in range(len(passages))]

    def _forward(self, inputs: dict):
        return self.model(**inputs).logits[:, 0]


class Qwen3Reranker(LocalReranker):
    """P("yes") of Qwen3-Reranker to the model card's prompt, read at the last position (left padding)."""

    padding_side = "left"

    def __init__(self, name: str, device: str = "", *, instruction: str = WEB_SEARCH_TASK, **options):
        super().__init__(name, device, **options)
        self.instruction = instruction
        self.prefix_ids = self.tokenizer.encode(QWEN3_PREFIX, add_special_tokens=False)
        self.suffix_ids = self.tokenizer.encode(QWEN3_SUFFIX, add_special_tokens=False)
        self.no_id = self.tokenizer.convert_tokens_to_ids("no")
        self.yes_id = self.tokenizer.convert_tokens_to_ids("yes")

    def _load_model(self, config: dict):
        from transformers import Qwen3ForCausalLM

        return Qwen3ForCausalLM.from_pretrained(self.location, dtype=self.dtype, attn_implementation="sdpa")

    def _encode(self, query: str, passages: list[str]) -> list[dict[str, list[int]]]:
        # As the card does: the body alone is truncated, then framed by the prefix and suffix ids.
        budget = self.max_length - len(self.prefix_ids) - len(self.suffix_ids)
        bodies = self.tokenizer(
            [qwen3_body(query, passage, self.instruction) for passage in passages],
            add_special_tokens=False,
            truncation=True,
            max_length=budget,
        )["input_ids"]
        return [{"input_ids": self.prefix_ids + body + self.suffix_ids} for body in bodies]

    def _forward(self, inputs: dict):
        import torch

        mask = inputs["attention_mask"]
        # Positions count from each row's first real token, so left padding changes nothing.
        position_ids = (mask.cumsum(dim=1) - 1).clamp(min=0)
        logits = self.model(**inputs, position_ids=position_ids, logits_to_keep=1).logits[:, -1]
        pair = logits[:, [self.no_id, self.yes_id]].float()
        return torch.softmax(pair, dim=-1)[:, 1]


FAMILIES = {CROSS_ENCODER.family: CrossEncoderReranker, QWEN3.family: Qwen3Reranker}


@functools.lru_cache(maxsize=2)
def get_reranker(name: str) -> Reranker:
    """The process-wide reranker for a hub id or local folder, on the embedding device and dtype."""
    from django.conf import settings

    logger.info("loading reranker %s", name)
    return FAMILIES[recipe_for(name).family](
        name,
        device=settings.EMBEDDING_DEVICE,
        dtype=settings.EMBEDDING_DTYPE,
        threads=settings.EMBEDDING_THREADS,
    )


def rerank(hits: list, query: str, reranker: Reranker, *, top_n: int | None = None) -> list:
    """``hits`` ordered by the reranker's score of ``query`` against each hit's text, best first.

    Every hit is scored; the best ``top_n`` (all when None) are returned, ties kept in their input
    order. Each returned hit is updated in place: ``score`` becomes the reranker's score, the score it
    had (the fused retrieval score) moves to ``fused_score``, and ``ranks`` gains ``"fused"`` (its
    1-based position in ``hits``) and ``"rerank"`` (its 1-based position in the result).
    """
    scores = reranker.score(query, [hit.text for hit in hits])
    order = sorted(range(len(hits)), key=lambda index: -scores[index])  # sorted() is stable
    ranked = []
    for rank, index in enumerate(order[:top_n], start=1):
        hit = hits[index]
        hit.fused_score = hit.score
        hit.score = scores[index]
        hit.ranks["fused"] = index + 1
        hit.ranks["rerank"] = rank
        ranked.append(hit)
    return ranked
