"""The embed_bench command end to end on a tiny corpus with the real MiniLM on CPU."""

from __future__ import annotations

import io
import json

from django.core.management import call_command


def test_embed_bench_writes_report(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"Line {i}: vitamin C and scurvy in sailors, study {i}." for i in range(20)))
    out = tmp_path / "bench.json"
    call_command(
        "embed_bench", model="", device="cpu", corpus=str(corpus), limit=20, out=str(out), stdout=io.StringIO()
    )
    report = json.loads(out.read_text())
    assert report["chunks"] == 20 and report["tokens"] > 0
    for key in ["tokens_per_s", "chunks_per_s", "peak_memory_bytes", "padding_fraction"]:
        assert key in report["engine"]
    assert report["engine"]["tokens_per_s"] > 0 and report["sentence_transformers"]["tokens_per_s"] > 0
    assert 0 <= report["engine"]["padding_fraction"] < 1
    assert report["speedup"] > 0 and report["min_cosine_vs_sentence_transformers"] >= 0.9999


def test_embed_bench_compares_packed_with_padded(tmp_path):
    """Packed rows and padded batches on the same chunks in one run: both timed, same vectors."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"Doc {i}: " + "vitamin C and scurvy in sailors " * (1 + i % 7) for i in range(24)))
    out = tmp_path / "bench.json"
    call_command(
        "embed_bench",
        model="",
        device="cpu",
        corpus=str(corpus),
        limit=24,
        packing="on",
        compare_padded=True,
        no_baseline=True,
        batch_tokens=256,
        out=str(out),
        stdout=io.StringIO(),
    )
    report = json.loads(out.read_text())
    assert report["engine"]["packed"] is True and report["engine"]["padding_fraction"] == 0
    assert report["engine_padded"]["packed"] is False and report["engine_padded"]["padding_fraction"] > 0
    assert report["packing_speedup"] > 0 and report["min_cosine_packed_vs_padded"] >= 0.9999
    assert "sentence_transformers" not in report
