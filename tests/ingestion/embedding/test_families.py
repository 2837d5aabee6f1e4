"""Each local family, through the engine, against an independent per-text reference forward pass.

Tiny random-weight models of every family are saved to folders and loaded by path. The reference
runs the HF model on one unpadded text at a time, applies the prompt by hand and pools by hand; the
engine must agree (cosine ≥ 0.9999) with padding on either side and in mixed-length batches split
across several forward passes. In fp32: the references are fp32 forward passes (a CPU with native
bf16 would embed in bf16 by default; that choice is tested in test_sentence_transformers).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ingestion.embedding import Embedder
from ingestion.embedding.recipes import WEB_SEARCH_TASK
from tests.ingestion.embedding.tiny_models import save_as_remote_code_gte, save_model


@pytest.fixture(autouse=True)
def fp32(monkeypatch):
    monkeypatch.setattr("ingestion.embedding.engine.cpu_bf16", lambda: False)


TEXTS = [
    "what is a gene",
    "protein",
    " ".join(["the effect of protein on cancer cell in patients with study results"] * 12),
    "how does a cell answer the query given",
    " ".join(["gene and protein were relevant to the results of the study"] * 8),
    "cancer patients",
]
FAMILIES = {  # kind -> (pooling, query prompt template or None)
    "bert": ("mean", None),
    "gte": ("cls", None),
    "qwen2": ("last", "Instruct: {task}\nQuery: {text}"),
    "qwen3": ("last", "Instruct: {task}\nQuery:{text}"),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {kind: str(save_model(kind, root / kind)) for kind in [*FAMILIES, "gte-multilingual"]}


def reference(folder: str, texts: list[str], pooling: str, *, bidirectional: bool = False) -> np.ndarray:
    """One text at a time, no padding, default positions, pooled and normalised by hand."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    if bidirectional:
        for module in model.modules():
            if hasattr(module, "is_causal"):
                module.is_causal = False
    rows = []
    with torch.inference_mode():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt")["input_ids"]
            kwargs = {"attention_mask": {"full_attention": None}} if bidirectional else {}
            states = model(input_ids=ids, **kwargs).last_hidden_state[0]
            vector = {"mean": states.mean(dim=0), "cls": states[0], "last": states[-1]}[pooling]
            rows.append(torch.nn.functional.normalize(vector, dim=0).numpy())
    return np.stack(rows)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize("side", ["right", "left", "packed"])
@pytest.mark.parametrize("kind", list(FAMILIES))
def test_engine_matches_reference(folders, kind, side):
    """Padded batches (either side) and packed rows (texts end to end) give the reference vectors."""
    pooling, template = FAMILIES[kind]
    engine = Embedder(folders[kind], device="cpu", packed=side == "packed")
    if side != "packed":
        engine.tokenizer.padding_side = side
    queries = [template.format(task=WEB_SEARCH_TASK, text=t) for t in TEXTS] if template else TEXTS
    bidirectional = kind == "qwen2"
    expected_docs = reference(folders[kind], TEXTS, pooling, bidirectional=bidirectional)
    expected_queries = reference(folders[kind], queries, pooling, bidirectional=bidirectional)

    batches_before = engine.counters["batches"]
    budget = 64 if side == "packed" else 128  # the long texts alone, the rest in a few batches
    documents = engine.embed_documents(TEXTS, batch_tokens=budget)
    assert engine.counters["batches"] - batches_before >= 3
    padding = engine.counters["padded_tokens"] - engine.counters["tokens"]
    assert (padding == 0) == (side == "packed")
    assert documents.dtype == np.float32 and documents.shape == (len(TEXTS), engine.dims)
    assert cosines(documents, expected_docs).min() >= 0.9999
    assert cosines(engine.embed_queries(TEXTS, batch_tokens=budget), expected_queries).min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(documents, axis=1), 1, atol=1e-5)
    # The check discriminates: distinct texts are far apart in these random models.
    similarity = expected_docs @ expected_docs.T
    assert similarity[~np.eye(len(TEXTS), dtype=bool)].max() < 0.999


def test_gte_qwen2_attention_is_bidirectional(folders):
    engine = Embedder(folders["qwen2"], device="cpu")
    causal = reference(folders["qwen2"], TEXTS[:1], "last")
    assert cosines(engine.embed_documents(TEXTS[:1]), causal)[0] < 0.9999


def test_qwen3_pads_left_and_prompts_without_space(folders):
    engine = Embedder(folders["qwen3"], device="cpu")
    assert engine.tokenizer.padding_side == "left"
    assert engine.format_query("what is a gene") == f"Instruct: {WEB_SEARCH_TASK}\nQuery:what is a gene"
    assert engine.format_query("q", instruction="Find papers") == "Instruct: Find papers\nQuery:q"
    custom = engine.embed_queries(TEXTS[:2], instruction="Find papers")
    expected = reference(folders["qwen3"], [f"Instruct: Find papers\nQuery:{t}" for t in TEXTS[:2]], "last")
    assert cosines(custom, expected).min() >= 0.9999


def test_qwen3_mrl_prefix(folders):
    full = Embedder(folders["qwen3"], device="cpu").embed_documents(TEXTS)
    short = Embedder(f"{folders['qwen3']}@32", device="cpu")
    assert short.dims == 32
    vectors = short.embed_documents(TEXTS, batch_tokens=128)
    prefix = full[:, :32] / np.linalg.norm(full[:, :32], axis=1, keepdims=True)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert cosines(vectors, prefix).min() >= 0.9999
    with pytest.raises(ValueError):
        Embedder(f"{folders['qwen3']}@16", device="cpu")


def test_gte_multilingual_truncation(folders):
    folder = folders["gte-multilingual"]
    engine = Embedder(f"{folder}@128", device="cpu")
    assert engine.recipe.family == "gte-multilingual" and engine.dims == 128
    full = reference(folder, TEXTS, "cls")
    engine_full = Embedder(folder, device="cpu").embed_documents(TEXTS)
    assert cosines(engine_full, full).min() >= 0.9999
    with pytest.raises(ValueError):
        Embedder(f"{folder}@64", device="cpu")
    prefix = engine_full[:, :128] / np.linalg.norm(engine_full[:, :128], axis=1, keepdims=True)
    assert cosines(engine.embed_documents(TEXTS), prefix).min() >= 0.9999


def test_remote_code_gte_checkpoint_loads_natively(tmp_path):
    """A hub-style "new" GTE (fused qkv and up/gate weights) gives the native model's vectors."""
    folder, native = save_as_remote_code_gte(tmp_path / "new")
    engine = Embedder(str(folder), device="cpu")
    assert engine.recipe.family == "gte"
    native_folder = tmp_path / "native"
    native.save_pretrained(native_folder)
    engine.tokenizer.save_pretrained(native_folder)
    expected = reference(str(native_folder), TEXTS, "cls")
    assert cosines(engine.embed_documents(TEXTS, batch_tokens=128), expected).min() >= 0.9999


@pytest.mark.parametrize("packed", [False, True])
def test_texts_in_slices_keep_their_order(folders, packed):
    """Texts tokenised slice by slice (each sorted on its own) come back in the callers' order."""
    whole = Embedder(folders["bert"], device="cpu", packed=packed)
    sliced = Embedder(folders["bert"], device="cpu", packed=packed)
    sliced.slice_texts = 4
    texts = [*TEXTS, *reversed(TEXTS), "one more text"]
    expected = whole.embed_documents(texts, batch_tokens=64)
    batches_before = sliced.counters["batches"]
    vectors = sliced.embed_documents(texts, batch_tokens=64)
    assert sliced.counters["batches"] - batches_before >= 4  # at least one batch per slice
    assert cosines(vectors, expected).min() >= 0.9999
    assert cosines(vectors[:1], expected[1:2])[0] < 0.999  # a shifted row would be caught


@pytest.mark.parametrize("kind", list(FAMILIES))
def test_a_cpu_model_in_bf16_runs_few_shapes_and_the_same_vectors(folders, kind):
    """In bf16 on a CPU, a padded batch's length is rounded up to CPU_HALF_LENGTH_STEP tokens: oneDNN keeps
    state for each shape it multiplies in half precision, and exact lengths grew a web process's memory
    without end. The rounding changes which padding is added, not the vectors; float32 keeps exact lengths."""
    from ingestion.embedding.engine import CPU_HALF_LENGTH_STEP

    half = Embedder(folders[kind], device="cpu", dtype="bf16")
    assert half.length_step == CPU_HALF_LENGTH_STEP and Embedder(folders[kind], device="cpu").length_step == 1
    lengths = []
    half.model.register_forward_pre_hook(
        lambda module, args, kwargs: lengths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    texts = [" ".join(["protein and gene"] * n) for n in range(1, 16)]
    rounded = np.concatenate([half.embed_documents([text]) for text in texts])
    assert len(lengths) == len(texts) and len(set(lengths)) < len(texts) // 3  # 15 texts, few shapes
    assert all(length % CPU_HALF_LENGTH_STEP == 0 for length in lengths)
    half.length_step = 1
    exact = np.concatenate([half.embed_documents([text]) for text in texts])
    assert len(set(lengths[len(texts) :])) == len(texts)  # each text its own length: the check discriminates
    assert cosines(rounded, exact).min() >= 0.999


@pytest.mark.parametrize("kind", list(FAMILIES))
def test_a_cpu_model_in_bf16_runs_prepacked_linear_layers_with_the_same_vectors(folders, kind, monkeypatch):
    """On a CPU in bf16 every linear layer's weight is reordered once, at load, into oneDNN's blocked
    layout (an eager layer reorders it at every call, which costs more than a question's product).
    The vectors are those of the plain layers; float32 is left as it is."""
    from ingestion.embedding import engine

    if not engine.cpu_packs_linears(torch.bfloat16):
        pytest.skip("this torch's oneDNN runs no prepacked bf16 linear layer")
    assert Embedder(folders[kind], device="cpu", dtype="fp32").packed_linears == 0
    packed = Embedder(folders[kind], device="cpu", dtype="bf16")
    monkeypatch.setattr(engine, "pack_linears", lambda model, dtype: 0)
    plain = Embedder(folders[kind], device="cpu", dtype="bf16")
    linears = [m for m in plain.model.modules() if type(m) is torch.nn.Linear]
    assert len(linears) >= 6 and plain.packed_linears == 0
    assert packed.packed_linears == len(linears)
    assert not [m for m in packed.model.modules() if type(m) is torch.nn.Linear]
    texts = [*TEXTS, "protein"]
    assert np.array_equal(packed.embed_documents(texts, batch_tokens=64), plain.embed_documents(texts, batch_tokens=64))
