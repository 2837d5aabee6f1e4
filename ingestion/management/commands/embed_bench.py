"""Embedding throughput of the local engine against sentence-transformers, on a realistic chunk mix.

    python manage.py embed_bench --model M --device cuda|cpu --dtype bf16|fp16|fp32 \\
        [--corpus FILE] [--limit N] [--random-weights] [--batch-tokens N] [--no-baseline]
        [--packing auto|on|off] [--compare-padded] --out FILE.json

The corpus (default: SciFact, ``scifact/corpus.jsonl`` in the shared evaluation data, see
``chatsite.env.shared_data_dir``) is a JSONL of ``{"title", "text"}`` documents or a plain text
file of one document per line; each document is chunked as the pipeline chunks it and the first
``--limit`` chunks' ``search_text`` are embedded.
The same inputs then go through ``SentenceTransformer.encode`` at the same dtype (the model's own
sentence-transformers config where it has one, else Transformer + the recipe's pooling).

``--random-weights`` builds a model of a known shape with random weights instead of loading one
(no download; the MiniLM WordPiece tokenizer stands in for every family's own). Shapes
(``-shape`` suffix optional): bert-base, gte-base, gte-large, gte-multilingual-base, qwen2-1.5b,
gte-qwen2-7b, qwen3-0.6b, qwen3-4b, qwen3-8b.

Reported: tokens/s and chunks/s for both, the speed-up, peak memory (CUDA allocator peak, else
process RSS), the padding fraction of the engine's batches and, on CUDA, the MFU against a measured
bf16 matmul peak (model FLOPs per token ≈ 2 × non-embedding parameters + 4 × layers × width × the
length of the token's own text, averaged over tokens, for attention). ``--compare-padded`` also runs
the engine with padded batches on the same inputs in the same run (the packing speed-up, and the
cosine between the two paths' vectors).
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from chatsite.env import shared_data_dir
from ingestion.chunking import chunk_sections
from ingestion.embedding import Embedder
from ingestion.embedding.engine import torch_dtype
from ingestion.embedding.recipes import resolve_model_path

DEFAULT_CORPUS = shared_data_dir(Path(settings.BASE_DIR)) / "scifact" / "corpus.jsonl"
_BERT = {"model_type": "bert", "vocab_size": 30522, "max_position_embeddings": 512}
_GTE = {"model_type": "gte", "vocab_size": 30528, "type_vocab_size": 0, "pad_token_id": 0}
_QWEN2 = {"model_type": "qwen2", "vocab_size": 151646, "max_position_embeddings": 32768}
_QWEN3 = {"model_type": "qwen3", "vocab_size": 151669, "head_dim": 128, "max_position_embeddings": 32768}
SHAPES = {
    "bert-base": {
        **_BERT,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
    },
    "gte-base": {
        **_GTE,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
    },
    "gte-large": {
        **_GTE,
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
    },
    "gte-multilingual-base": {
        **_GTE,
        "vocab_size": 250048,
        "type_vocab_size": 1,
        "pad_token_id": 1,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
    },
    "qwen2-1.5b": {
        **_QWEN2,
        "hidden_size": 1536,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "intermediate_size": 8960,
    },
    "gte-qwen2-7b": {
        **_QWEN2,
        "hidden_size": 3584,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "intermediate_size": 18944,
    },
    "qwen3-0.6b": {
        **_QWEN3,
        "hidden_size": 1024,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "intermediate_size": 3072,
    },
    "qwen3-4b": {
        **_QWEN3,
        "hidden_size": 2560,
        "num_hidden_layers": 36,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 9728,
    },
    "qwen3-8b": {
        **_QWEN3,
        "hidden_size": 4096,
        "num_hidden_layers": 36,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 12288,
    },
}


def read_documents(path: Path) -> list[tuple[str, str]]:
    """(title, text) pairs from a JSONL corpus, or one untitled document per non-empty line."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if path.suffix == ".jsonl":
        return [(row.get("title", ""), row.get("text", "")) for row in map(json.loads, lines)]
    return [("", line) for line in lines]


def build_chunks(documents, count_tokens, limit: int) -> list[str]:
    """The pipeline's chunks of the documents, ``search_text`` of the first ``limit``."""
    chunks: list[str] = []
    for title, text in documents:
        sections = [{"heading_path": [title] if title else [], "text": text, "anchor": ""}]
        drafts = chunk_sections(sections, count_tokens=count_tokens, max_tokens=settings.CHUNK_MAX_TOKENS)
        chunks.extend(draft.search_text for draft in drafts)
        if len(chunks) >= limit:
            break
    return chunks[:limit]


def save_random_model(shape: str, folder: Path, *, device: str, dtype) -> Path:
    """A random-weight model of a known shape, saved with the MiniLM tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    key = shape.removesuffix("-shape")
    if key not in SHAPES:
        raise CommandError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    fields = dict(SHAPES[key])
    config = AutoConfig.for_model(fields.pop("model_type"), **fields)
    with torch.device(device):
        model = AutoModel.from_config(config, dtype=dtype)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_model_path("")).save_pretrained(folder)
    return folder


def sentence_transformer(path: str, engine: Embedder, device: str, dtype):
    """sentence-transformers' model for ``path``: its own config, else Transformer + the recipe's pooling."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    if (Path(path) / "modules.json").is_file():
        model = SentenceTransformer(path, device=device, model_kwargs={"dtype": dtype})
    else:
        transformer = Transformer(path, model_kwargs={"dtype": dtype}, max_seq_length=engine.max_length)
        pooling = {"mean": "mean", "cls": "cls", "last": "lasttoken"}[engine.recipe.pooling]
        model = SentenceTransformer(
            modules=[transformer, Pooling(engine.native_dims, pooling), Normalize()], device=device
        )
    model.max_seq_length = engine.max_length
    return model


class Meter:
    """Wall time and peak memory of one phase."""

    def __init__(self, device: str):
        import torch

        self.torch, self.cuda = torch, device.startswith("cuda")

    def __enter__(self):
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self.torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.start
        if self.cuda:
            self.peak_bytes = int(self.torch.cuda.max_memory_allocated())
        else:  # ru_maxrss is in KiB on Linux: the process high-water mark
            self.peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def matmul_peak_flops(dtype, seconds: float = 3.0) -> float:
    """The GPU's measured dense matmul rate (FLOP/s) for ``dtype``: the best of timed windows of ten
    8192³ products, after a second of products to bring the clocks up."""
    import torch

    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    start = time.perf_counter()
    while time.perf_counter() - start < 1.0:
        a @ b
        torch.cuda.synchronize()
    best = 0.0
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        begin.record()
        for _ in range(10):
            a @ b
        end.record()
        end.synchronize()
        best = max(best, 2 * n**3 * 10 / (begin.elapsed_time(end) / 1000))
    return best


def flops_per_token(model, mean_length: float) -> float:
    """≈ 2 × non-embedding parameters + attention (4 × layers × width × attended length)."""
    config = model.config
    embedding = sum(p.numel() for name, p in model.named_parameters() if "embed" in name)
    dense = sum(p.numel() for p in model.parameters()) - embedding
    return 2 * dense + 4 * config.num_hidden_layers * config.hidden_size * mean_length


class Command(BaseCommand):
    help = "Benchmark the embedding engine against sentence-transformers on a realistic chunk mix."

    def add_arguments(self, parser):
        parser.add_argument("--model", default="", help="name, hub id or folder; a shape name with --random-weights")
        parser.add_argument("--device", default="", help="cuda or cpu (default: cuda when available)")
        parser.add_argument("--dtype", default="", choices=["", "bf16", "fp16", "fp32"])
        parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
        parser.add_argument("--limit", type=int, default=500, help="chunks to embed")
        parser.add_argument("--batch-tokens", type=int, default=settings.EMBEDDING_BATCH_TOKENS)
        parser.add_argument("--random-weights", action="store_true")
        parser.add_argument("--no-baseline", action="store_true", help="skip sentence-transformers")
        parser.add_argument(
            "--packing", default="auto", choices=["auto", "on", "off"], help="packed rows or padded batches"
        )
        parser.add_argument("--compare-padded", action="store_true", help="also time the padded path")
        parser.add_argument("--compile", action="store_true", help="torch.compile the model")
        parser.add_argument("--out", required=True)

    def handle(self, *args, **options):
        import torch

        device = options["device"] or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype_name = options["dtype"] or ("bf16" if device.startswith("cuda") else "fp32")
        dtype = torch_dtype(dtype_name, device)
        with tempfile.TemporaryDirectory() as scratch:
            name = options["model"]
            if options["random_weights"]:
                name = str(save_random_model(name, Path(scratch) / "model", device=device, dtype=dtype))
            packed = {"auto": None, "on": True, "off": False}[options["packing"]]
            engine = Embedder(name, device=device, dtype=dtype_name, packed=packed, compile=options["compile"])
            chunks = build_chunks(read_documents(Path(options["corpus"])), engine.count_tokens, options["limit"])
            if not chunks:
                raise CommandError("the corpus gave no chunks")
            report, vectors = self.measure(engine, chunks, name, device, dtype, options)
            if options["compare_padded"] and engine.packed:
                padded = Embedder(name, device=device, dtype=dtype_name, packed=False)
                batch_tokens = report["batch_tokens"]
                report["engine_padded"], padded_vectors = self.time_engine(padded, chunks, device, batch_tokens)
                report["packing_speedup"] = report["engine"]["tokens_per_s"] / report["engine_padded"]["tokens_per_s"]
                report["min_cosine_packed_vs_padded"] = float((vectors * padded_vectors).sum(axis=1).min())
        report.update(
            model=options["model"] or engine.name, device=device, dtype=dtype_name, compiled=options["compile"]
        )
        Path(options["out"]).write_text(json.dumps(report, indent=2))
        self.stdout.write(json.dumps(report, indent=2))

    @staticmethod
    def time_engine(engine: Embedder, chunks: list[str], device: str, batch_tokens: int) -> tuple[dict, object]:
        """One timed pass of the engine over the chunks (after a short warm-up): figures and vectors."""
        engine.embed_documents(chunks[: len(chunks) // 10], batch_tokens=batch_tokens)  # warm-up: kernels, compiling
        before = dict(engine.counters)
        with Meter(device) as run:
            vectors = engine.embed_documents(chunks, batch_tokens=batch_tokens)
        real = engine.counters["tokens"] - before["tokens"]
        padded = engine.counters["padded_tokens"] - before["padded_tokens"]
        figures = {
            "packed": engine.packed,
            "seconds": run.seconds,
            "tokens_per_s": real / run.seconds,
            "chunks_per_s": len(chunks) / run.seconds,
            "peak_memory_bytes": run.peak_bytes,
            "padding_fraction": 1 - real / padded,
            "batches": engine.counters["batches"] - before["batches"],
        }
        return figures, vectors

    def measure(
        self, engine: Embedder, chunks: list[str], name: str, device: str, dtype, options
    ) -> tuple[dict, object]:
        batch_tokens = options["batch_tokens"] or engine.batch_tokens
        lengths = [min(n + engine.special_tokens, engine.max_length) for n in engine.count_tokens(chunks)]
        tokens = sum(lengths)
        figures, vectors = self.time_engine(engine, chunks, device, batch_tokens)
        report = {
            "chunks": len(chunks),
            "tokens": tokens,
            "mean_tokens_per_chunk": tokens / len(chunks),
            "batch_tokens": batch_tokens,
            "engine": figures,
        }
        if device.startswith("cuda"):
            peak = matmul_peak_flops(torch_dtype("bf16", device))
            attended = sum(n * n for n in lengths) / tokens  # a token attends over its own text
            achieved = flops_per_token(engine.model, attended) * figures["tokens_per_s"]
            report["engine"].update(mfu=achieved / peak, model_flops_per_s=achieved, matmul_peak_flops_per_s=peak)
        if not options["no_baseline"]:
            baseline = sentence_transformer(resolve_model_path(name), engine, device, dtype)
            baseline.encode(chunks[:8], normalize_embeddings=True, show_progress_bar=False)
            with Meter(device) as run:
                reference = baseline.encode(chunks, normalize_embeddings=True, batch_size=32, show_progress_bar=False)
            report["sentence_transformers"] = {
                "seconds": run.seconds,
                "tokens_per_s": tokens / run.seconds,
                "chunks_per_s": len(chunks) / run.seconds,
                "peak_memory_bytes": run.peak_bytes,
            }
            report["speedup"] = report["engine"]["tokens_per_s"] / report["sentence_transformers"]["tokens_per_s"]
            if engine.recipe.bidirectional and not (Path(resolve_model_path(name)) / "modules.json").is_file():
                # Without the model's own (remote) code sentence-transformers runs the decoder causally.
                report["sentence_transformers"]["attention"] = "causal"
            else:
                report["min_cosine_vs_sentence_transformers"] = float((vectors * reference).sum(axis=1).min())
        return report, vectors
