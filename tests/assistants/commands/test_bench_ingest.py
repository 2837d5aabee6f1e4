"""bench_ingest runs the real pipeline (real workers, or every task in its own process) on a tiny site
and folder, reports consistent figures, and leaves nothing behind (its team, its partitions and its embedding-cache rows are removed)."""

import json

import pytest
from django.core.management import call_command

from assistants.models import Team
from ingestion.models import EmbeddingCache, EmbeddingSpace

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PAGE = "<html><head><title>{t}</title></head><body><main><h1>{t}</h1><p>{p}</p>{a}</main></body></html>"


@pytest.mark.parametrize("workers, rounds", [(False, 2), (True, 1)], ids=["eager-two-rounds", "workers"])
def test_bench_ingest_measures_and_cleans_up(tmp_path, settings, workers, rounds):
    site = tmp_path / "site"
    (site / "billing").mkdir(parents=True)
    (site / "index.html").write_text(
        PAGE.format(t="Home", p="Every order is packed by hand in Lisbon. " * 8, a='<a href="/billing/">Billing</a>')
    )
    (site / "billing" / "index.html").write_text(
        PAGE.format(t="Billing", p="Invoices are sent on the first day of each month. " * 8, a="")
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "faq.md").write_text("# Returns\n\nYou can return any item within 30 days of delivery.")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a PDF")
    out = tmp_path / "bench.json"

    cached_before = set(EmbeddingCache.objects.values_list("pk", flat=True))  # (a module fixture may commit some)
    call_command(
        "bench_ingest",
        site=str(site),
        docs=str(docs),
        out=str(out),
        eager=not workers,
        rounds=rounds,
        broker=settings.CELERY_BROKER_URL,
        stdout=open("/dev/null", "w"),
    )

    report = json.loads(out.read_text())
    assert (report["pages_fetched"], report["documents_uploaded"], report["documents_failed"]) == (2, 2, 1)
    assert report["chunks"] >= 3  # two pages and the FAQ
    assert report["pipeline_seconds"] >= report["crawl_seconds"] > 0 and report["embed_alone_seconds"] > 0
    assert report["mode"].startswith("workers" if workers else "eager")
    if not workers:  # in this process, the time inside the model is measured too
        assert 0 < report["embed_inside_pipeline_seconds"] < report["pipeline_seconds"]
    assert report["pipeline_efficiency"] == pytest.approx(
        report["pipeline_seconds"] / report["embed_alone_seconds"], rel=0.01
    )
    assert len(report["rounds"]) == rounds and report["rounds"][-1] == report["pipeline_efficiency"]
    if rounds > 1:  # the last round's baseline: the mean of the measurements before and after it
        assert report["embed_alone_seconds"] == pytest.approx(
            (report["embed_alone_before_seconds"] + report["embed_alone_measured_seconds"]) / 2, abs=1e-3
        )
        assert report["median_pipeline_efficiency"] == pytest.approx(sum(report["rounds"]) / 2, abs=1e-3)
    else:
        assert (
            report["embed_alone_seconds"] == report["embed_alone_measured_seconds"] == min(report["embed_alone_runs"])
        )
    assert not Team.objects.exists() and not EmbeddingSpace.objects.exists()
    assert set(EmbeddingCache.objects.values_list("pk", flat=True)) == cached_before
