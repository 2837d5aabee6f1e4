"""The bench_retrieval command at a tiny size: its report, and that it leaves nothing behind.
(Its speed is what it measures; here only the shape and the counts are checked.)"""

import io
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from assistants.management.commands.evaluate_retrieval import remove
from assistants.models import Team
from ingestion.spaces import space_active
from tests.assistants.commands.test_evaluate_retrieval import snapshot
from tests.conftest import DRF_SITE
from tests.factories import index_pages, make_assistant


@pytest.mark.django_db(transaction=True)
def test_a_tiny_benchmark_reports_every_figure_and_leaves_other_assistants_alone(tmp_path):
    bystander = make_assistant()
    page = (DRF_SITE / "api-guide/throttling/index.html").read_text()
    index_pages(bystander, {"http://docs.test/api-guide/throttling/": page})
    before = snapshot(space_active(bystander.pk).pk)
    out, stdout = tmp_path / "bench.json", io.StringIO()
    try:
        call_command(
            "bench_retrieval", chunks=900, assistants=3, queries=12, out=str(out), stdout=stdout, stderr=io.StringIO()
        )
        after = snapshot(space_active(bystander.pk).pk)
    finally:
        remove(bystander.team, bystander.team.memberships.get().user)
    report = json.loads(out.read_text())
    assert (report["chunks"], report["assistants"], report["queries"], report["k"]) == (900, 3, 12, 10)
    assert set(report["build_seconds"]) == {"spaces", "copy", "hnsw", "total"}
    for name in ("hnsw", "exact"):
        assert 0 < report["latency_ms"][name]["p50"] <= report["latency_ms"][name]["p95"]
    assert report["latency_ratio_to_exact"]["p95"] == pytest.approx(
        report["latency_ms"]["hnsw"]["p95"] / report["latency_ms"]["exact"]["p95"], abs=1e-3
    )
    # 300 chunks per space: small enough for an exact answer, and every query finds 10 rows.
    assert report["recall@10"] == {"hybrid": 1.0, "dense": 1.0}
    assert report["k_rows_share"] == {"hnsw": 1.0, "exact": 1.0, "dense": 1.0}
    assert report["k_rows_ratio_to_exact"] == 1.0
    assert "recall@10" in stdout.getvalue() and "p95" in stdout.getvalue()
    assert after == before  # the bystander's chunks, and nothing of the benchmark left
    assert not Team.objects.filter(name__startswith="bench-").exists()
    assert not User.objects.filter(username__startswith="bench-").exists()


@pytest.mark.django_db
def test_too_few_chunks_are_refused_before_anything_is_created():
    with pytest.raises(CommandError, match="10 chunks per assistant"):
        call_command("bench_retrieval", chunks=15, assistants=2, queries=4)
    assert not Team.objects.exists()
