"""Finding 8, second half: one team's slow sources must not starve other teams' ingestion.

A team runs at most ``INGEST_TEAM_CONCURRENCY`` ingest tasks at once (slots in the real Redis); a
task over the cap sends itself again for later and its worker process takes the next message.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime

import pytest
import redis
from django.conf import settings
from django.core.files.base import ContentFile

from ingestion import services, tasks
from ingestion.models import CrawlRun, Document
from ingestion.tasks import TeamSlots, document_prepare_task, team_turn
from tests.conftest import wait_for
from tests.factories import make_assistant, make_team
from tests.security.hostile import Server, drip


def broker():
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def waiting(queue: str) -> list[dict]:
    """The messages waiting in a Redis queue: task name, arguments, keyword arguments, ETA."""
    out = []
    for raw in broker().lrange(queue, 0, -1):
        message = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        out.append(
            {"task": message["headers"]["task"], "args": args, "kwargs": kwargs, "eta": message["headers"]["eta"]}
        )
    return out


@pytest.fixture
def empty_queues():
    broker().delete("ingest", "embed")
    yield
    broker().delete("ingest", "embed")


@pytest.fixture
def slots():
    made = []

    def make(team_id: int) -> TeamSlots:
        made.append(TeamSlots(team_id))
        broker().delete(made[-1].key)
        return made[-1]

    yield make
    for team_slots in made:
        broker().delete(team_slots.key)


def test_team_slots_cap_take_over_and_expiry(slots, monkeypatch):
    team = slots(-101)
    assert team.take("task-a", 1)
    assert not team.take("task-b", 1)
    assert team.take("task-a", 1)  # a redelivered task takes over its own slot
    assert team.take("task-b", 2) and team.held() == 2
    team.release("task-a")
    team.release("task-b")
    assert team.held() == 0 and team.take("task-b", 1)
    assert team.renew("task-b") and not team.renew("task-gone")
    other = slots(-102)
    assert other.take("task-c", 1)  # teams do not share slots

    monkeypatch.setattr(tasks, "SLOT_SECONDS", 0.3)
    lost = slots(-103)
    assert lost.take("killed-worker-task", 1)
    assert not lost.take("next", 1)
    time.sleep(0.4)  # the killed task's worker never released it: the slot expires on its own
    assert lost.take("next", 1)


@pytest.mark.django_db
def test_a_task_over_its_teams_cap_sends_itself_again_and_ends(empty_queues, slots, settings):
    settings.INGEST_TEAM_CONCURRENCY = 1
    team = make_team()
    held = slots(team.pk)
    assert held.take("a-running-crawl", 1)
    document = Document.objects.create(
        source=services.source_documents_get_or_create(assistant=make_assistant(team)), url="x", file_name="a.md"
    )
    document_prepare_task.push_request(id="delivered-1", called_directly=False)
    try:
        started = time.time()
        with team_turn(document_prepare_task, team.pk, (document.pk,), 3) as turn:
            assert turn is False
    finally:
        document_prepare_task.pop_request()
    [copy] = waiting("ingest")
    assert copy["task"] == "ingestion.tasks.document_prepare_task"
    assert copy["args"] == [document.pk] and copy["kwargs"] == {"deferrals": 4}
    # 2 s doubled three times is 16 s, held to DEFER_MAX_SECONDS (10 s), with up to a quarter more of jitter.
    assert 9 <= datetime.fromisoformat(copy["eta"]).timestamp() - started <= 13.5

    held.release("a-running-crawl")
    document_prepare_task.push_request(id="delivered-2", called_directly=False)
    try:
        with team_turn(document_prepare_task, team.pk, (document.pk,), 0) as turn:
            assert turn is True and held.held() == 1
    finally:
        document_prepare_task.pop_request()
    assert held.held() == 0
    assert len(waiting("ingest")) == 1


def test_direct_and_uncapped_calls_run_at_once(slots, settings):
    held = slots(-104)
    assert held.take("busy", 1)
    with team_turn(document_prepare_task, -104, (1,), 0) as turn:  # called directly (tests, shell)
        assert turn is True
    settings.INGEST_TEAM_CONCURRENCY = 0
    document_prepare_task.push_request(id="delivered-3", called_directly=False)
    try:
        with team_turn(document_prepare_task, -104, (1,), 0) as turn:
            assert turn is True
    finally:
        document_prepare_task.pop_request()


@pytest.mark.slow
@pytest.mark.e2e  # through real worker processes
@pytest.mark.django_db(transaction=True)
def test_another_teams_upload_finishes_while_one_teams_slow_sources_drip(start_worker, empty_queues, slots, settings):
    """The issue's scenario: team A's two sites drip one byte at a time, which holds a worker
    process until the outbound deadline; team B uploads a small file. With two worker processes,
    B's file is indexed while A's first crawl is still dripping (before the fix, A's two crawls
    held both processes and B waited for the deadline)."""
    settings.OUTBOUND_ALLOW_PRIVATE = True  # the dripping sites are on loopback (the workers allow it too)
    dripping = Server(routes={"*": drip(interval=1.0, count=600)})
    team_a, team_b = make_team(), make_team()
    slots(team_a.pk), slots(team_b.pk)
    try:
        workers = [
            start_worker(hostname=f"fair{i}@%h", OUTBOUND_DEADLINE="90", INGEST_TEAM_CONCURRENCY="1") for i in (1, 2)
        ]
        assistant_a, assistant_b = make_assistant(team_a), make_assistant(team_b)
        runs_a = []
        for path in ("/one/", "/two/"):
            source = services.source_create_website(assistant=assistant_a, url=dripping.url(path))
            runs_a.append(services.source_crawl_start(source=source))
        wait_for(lambda: dripping.dripping >= 1, timeout=60, message="team A's crawl to start dripping")
        started = time.monotonic()
        source_b = services.source_documents_get_or_create(assistant=assistant_b)
        run_b = services.documents_upload(
            source=source_b, files=[ContentFile(b"# Opening hours\n\nWe open at nine every day.", name="hours.md")]
        )
        wait_for(
            lambda: CrawlRun.objects.get(pk=run_b.pk).status in ("done", "failed"),
            timeout=80,
            interval=0.5,
            message="team B's upload to be indexed",
        )
        took = time.monotonic() - started
        assert CrawlRun.objects.get(pk=run_b.pk).status == "done"
        assert Document.objects.get(source=source_b).status == "ready"
        # A's first crawl is still being fetched, byte by byte, and its second has not taken a process.
        assert dripping.dripping == 1, dripping.dripping
        assert {CrawlRun.objects.get(pk=run.pk).status for run in runs_a} <= {"queued", "running"}
        assert all(worker.exited() is None for worker in workers)
        print(f"team B's upload indexed in {took:.1f} s while team A's source dripped")
    finally:
        dripping.close()  # the drips end, so the workers stop at once
