"""Small embedding calls that find the model busy share one forward pass (engine.Embedder._embed)."""

import threading
import time

import numpy as np
import pytest

from ingestion.embedding.engine import COALESCE_TEXTS, COALESCED_MAX_WASTE, Embedder, plan_batches
from tests.ingestion.embedding.tiny_models import save_model

QUESTIONS = [
    "what is a protein",
    "how does the cell study work",
    "effect of gene on cancer patients",
    "results",
    "what were the results of the study for patients with cancer",
    "protein in cell",
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return Embedder(str(save_model("bert", tmp_path_factory.mktemp("bert"))), device="cpu", dtype="fp32")


def _waiting_calls(engine: Embedder, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with engine._waiting_lock:
            if len(engine._waiting) >= count:
                return
        assert time.monotonic() < deadline, "the calls never queued"
        time.sleep(0.005)


def test_calls_waiting_for_a_busy_model_run_in_one_pass_and_each_gets_its_own_vectors(engine):
    alone = [engine.embed_queries([question])[0] for question in QUESTIONS]
    results: dict[int, np.ndarray] = {}

    def ask(n: int) -> None:
        results[n] = engine.embed_queries([QUESTIONS[n]])[0]

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(len(QUESTIONS))]
    with engine._lock:  # the model is busy (an indexing batch, another question's pass)
        threads[0].start()
        _waiting_calls(engine, 1)  # the first to arrive leads, and waits for the model
        for thread in threads[1:]:
            thread.start()
        _waiting_calls(engine, len(QUESTIONS))
        passes = engine.counters["batches"]
    for thread in threads:
        thread.join(10)
    # One pass planned for all of them (a few padded batches, not one per question)...
    assert engine.counters["batches"] - passes < len(QUESTIONS)
    # ... and each call got the vectors of its own text, as if it had run alone.
    for n, vector in enumerate(alone):
        np.testing.assert_allclose(results[n], vector, atol=1e-5)
    assert not engine._waiting and not engine._leading


def test_questions_that_share_a_pass_with_a_long_sentence_are_not_padded_to_its_length(engine):
    """An answer's long sentence (the grounding check) and questions waiting together: the questions run
    in a batch of their own length, not padded to the sentence's (which tripled a pass's cost on a CPU)."""
    sentence = " ".join(["the protein in the cell study changed the results for the patients"] * 12)
    lengths = [len(ids) for ids in engine.tokenizer([sentence, *QUESTIONS[:3]])["input_ids"]]
    assert lengths[0] - max(lengths[1:]) > COALESCED_MAX_WASTE  # the sentence is long, the questions short
    alone = [engine.embed_documents([sentence])[0], *(engine.embed_queries([q])[0] for q in QUESTIONS[:3])]
    results: dict[int, np.ndarray] = {}

    def ask(n: int) -> None:
        results[n] = engine.embed_documents([sentence])[0] if n == 0 else engine.embed_queries([QUESTIONS[n - 1]])[0]

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(4)]
    with engine._lock:
        threads[0].start()
        _waiting_calls(engine, 1)
        for thread in threads[1:]:
            thread.start()
        _waiting_calls(engine, 4)
        tokens, padded = engine.counters["tokens"], engine.counters["padded_tokens"]
    for thread in threads:
        thread.join(10)
    padding = (engine.counters["padded_tokens"] - padded) - (engine.counters["tokens"] - tokens)
    assert padding <= 3 * COALESCED_MAX_WASTE  # three questions padded to the sentence: hundreds of tokens
    for n, vector in enumerate(alone):
        np.testing.assert_allclose(results[n], vector, atol=1e-5)
    # Elsewhere (indexing a document's chunks) the plan is unchanged: short rows may join a long one.
    assert plan_batches([200, 20, 10], 4096) == [[0, 1, 2]]
    assert plan_batches([200, 20, 10], 4096, max_waste=COALESCED_MAX_WASTE) == [[0], [1, 2]]


def test_the_next_waiting_call_leads_once_a_pass_is_done(engine):
    """Calls that arrive during a pass are run by one of them next, and none is left waiting."""
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def ask(n: int) -> None:
        try:
            for _ in range(5):
                results[n] = engine.embed_documents([QUESTIONS[n % len(QUESTIONS)]])[0]
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and all(not thread.is_alive() for thread in threads)
    expected = engine.embed_documents(QUESTIONS)
    for n, vector in results.items():
        np.testing.assert_allclose(vector, expected[n % len(QUESTIONS)], atol=1e-5)
    assert not engine._waiting and not engine._leading


def test_a_failed_pass_fails_every_call_it_served_and_the_next_calls_still_run(engine, monkeypatch):
    failures: list[BaseException] = []

    def ask() -> None:
        try:
            engine.embed_queries(["what is a protein"])
        except RuntimeError as error:
            failures.append(error)

    def broken(texts, batch_tokens, **options):
        raise MemoryError("out of memory")

    threads = [threading.Thread(target=ask) for _ in range(3)]
    with engine._lock:
        monkeypatch.setattr(engine, "_embed_now", broken)
        for thread in threads:
            thread.start()
        _waiting_calls(engine, 3)
    for thread in threads:
        thread.join(10)
    assert len(failures) == 3 and all(isinstance(error.__cause__, MemoryError) for error in failures)
    monkeypatch.undo()
    assert engine.embed_queries(["what is a protein"]).shape == (1, engine.dims)
    assert not engine._waiting and not engine._leading


def test_a_large_call_runs_on_its_own(engine):
    texts = [f"protein cell study {n}" for n in range(COALESCE_TEXTS + 1)]
    np.testing.assert_allclose(
        engine.embed_documents(texts)[:3], np.vstack([engine.embed_documents([t])[0] for t in texts[:3]]), atol=1e-5
    )
    assert not engine._waiting
