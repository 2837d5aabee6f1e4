"""Celery tasks of ingestion: they take ids, are idempotent, and call the services.

Fair shares of the ``ingest`` queue. Crawls and document downloads fetch from servers that tenants
choose, and a slow one holds a worker process until the outbound deadline; queued in order, one
team's many slow sources would hold every process while other teams wait. So a team runs at most
``settings.INGEST_TEAM_CONCURRENCY`` ingest tasks at once, across all workers (0: no cap):

* a task takes one of its team's slots in the shared Redis before it runs (:class:`TeamSlots`: a
  sorted set per team of task id -> expiry, changed only by Lua scripts, so workers on several
  machines agree);
* a task whose team has no slot free sends itself again with a countdown (``DEFER_FIRST_SECONDS``,
  doubled on each further deferral up to ``DEFER_MAX_SECONDS``, a quarter of jitter) and ends: the
  process takes the next message, another team's. The copy carries ``deferrals`` (its count);
  the task's own arguments are unchanged;
* a slot lives ``SLOT_SECONDS`` and is renewed by a thread while its task runs, so a worker killed
  mid-task frees its team's slot within ``SLOT_SECONDS``; the task id is the slot's token, so the
  redelivered message of a killed task takes over its own stale slot rather than waiting for it.

Nothing is lost: a deferral is sent before its message is acknowledged (a crash in between leaves
two copies, and the tasks are idempotent), and when Redis cannot say or the copy cannot be sent, the
task runs at once, without a slot (fairness is best effort, the work is not). A task called
directly or eagerly (tests, ``CELERY_TASK_ALWAYS_EAGER``) runs at once: it has no queue to share.
Fairness needs more worker processes on ``ingest`` than the cap: with one process, a slow task of
one team still delays the next task of every team. Its price falls on a team alone on the server: its
ingest tasks run one at a time (the default cap), the others waking every few seconds to check; an
installation that serves one team can set ``INGEST_TEAM_CONCURRENCY=0``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Iterator

import redis
from celery import Task, shared_task
from django.conf import settings

from chatsite.lib.shared_redis import redis_client
from ingestion import services
from ingestion.crawling.crawler import CrawlLimits, SiteUnreachable, crawl
from ingestion.models import CrawlRun, Document, EmbeddingSpace
from ingestion.parsers import ParseError

logger = logging.getLogger(__name__)


UNREACHABLE_RETRIES = 5  # a site that does not answer is tried again, 15 s, 30 s, 60 s… later

#: Fair shares of the ingest queue (see the module docstring).
DEFER_FIRST_SECONDS = 2.0
DEFER_MAX_SECONDS = 10.0
SLOT_SECONDS = 60.0
SLOT_RENEW_SECONDS = 15.0

# KEYS: the team's slots (sorted set of task id -> expiry, ms). ARGV: task id, cap, lifetime ms.
# 1 when the slot is taken (or was already this task's), else 0.
_TAKE_SLOT = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""
# The same keys and arguments: pushes the expiry of a slot still held; 0 when it is gone.
_RENEW_SLOT = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""


class TeamSlots:
    """The ingest slots of one team in the shared Redis (see the module docstring)."""

    def __init__(self, team_id: int):
        self.key = f"ingest:team:{team_id}:slots"
        client = redis_client()
        self._take = client.register_script(_TAKE_SLOT)
        self._renew = client.register_script(_RENEW_SLOT)

    def take(self, token: str, cap: int) -> bool:
        return bool(self._take(keys=[self.key], args=[token, cap, int(SLOT_SECONDS * 1000)]))

    def renew(self, token: str) -> bool:
        return bool(self._renew(keys=[self.key], args=[token, 0, int(SLOT_SECONDS * 1000)]))

    def release(self, token: str) -> None:
        redis_client().zrem(self.key, token)

    def held(self) -> int:
        """Slots taken and not expired (for tests and the curious)."""
        seconds, micros = redis_client().time()
        return redis_client().zcount(self.key, seconds * 1000 + micros // 1000 + 1, "+inf")


@contextlib.contextmanager
def _renewed(slots: TeamSlots, token: str) -> Iterator[None]:
    """Renew the slot in a thread while the block runs; release it at the end, however it ends."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(SLOT_RENEW_SECONDS):
            try:
                slots.renew(token)
            except redis.RedisError:
                logger.warning("could not renew ingest slot %s of %s", token, slots.key)

    thread = threading.Thread(target=renew, name="ingest-slot", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        try:
            slots.release(token)
        except redis.RedisError:
            logger.warning("could not release ingest slot %s of %s (it expires on its own)", token, slots.key)


@contextlib.contextmanager
def team_turn(task: Task, team_id: int | None, args: tuple, deferrals: int) -> Iterator[bool]:
    """``with team_turn(...) as turn:`` True when the task may run now (holding one of its team's
    slots until the block ends), False when it has been sent again for later and must end."""
    cap = settings.INGEST_TEAM_CONCURRENCY
    request = task.request
    if cap <= 0 or team_id is None or request.called_directly or request.is_eager or not request.id:
        yield True
        return
    slots = TeamSlots(team_id)
    try:
        taken = slots.take(request.id, cap)
    except redis.RedisError:
        logger.warning("ingest slots of team %s unknown (Redis failed): running %s now", team_id, request.id)
        yield True
        return
    if not taken:
        countdown = min(DEFER_FIRST_SECONDS * 2**deferrals, DEFER_MAX_SECONDS) * (1 + random.random() / 4)
        try:
            task.apply_async(args, {"deferrals": deferrals + 1}, countdown=countdown)
        except Exception:
            logger.exception("could not defer %s of team %s: running it now", request.id, team_id)
            yield True
            return
        logger.info("team %s has %d ingest task(s) running: %s deferred %.1f s", team_id, cap, task.name, countdown)
        yield False
        return
    with _renewed(slots, request.id):
        yield True


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=UNREACHABLE_RETRIES)
def source_crawl_task(self, run_id: int, deferrals: int = 0) -> None:
    """Crawl a source's website; each new or changed page is queued for indexing. Takes a turn of
    its team's share of the ingest queue first (``deferrals``: how often it waited for one)."""
    team_id = CrawlRun.objects.filter(pk=run_id).values_list("source__assistant__team_id", flat=True).first()
    with team_turn(self, team_id, (run_id,), deferrals) as turn:
        if turn:
            _crawl(self, run_id)


def _crawl(self, run_id: int) -> None:
    run = CrawlRun.objects.select_related("source").filter(pk=run_id).first()
    owner = self.request.id or ""
    if run is None or not services.run_begin(run=run, owner=owner):
        return
    run.refresh_from_db()
    source = run.source
    # Source.settings: max_pages, max_depth, include / exclude (globs on path and query),
    # extra_hosts (host[:port]), render_javascript, whole_site, sitemap_url; see CrawlLimits.
    limits = CrawlLimits(
        max_pages=int(source.settings.get("max_pages", settings.CRAWL_MAX_PAGES)),
        max_depth=int(source.settings.get("max_depth", settings.CRAWL_MAX_DEPTH)),
        include=tuple(source.settings.get("include") or ()),
        exclude=tuple(source.settings.get("exclude") or ()),
        extra_hosts=tuple(source.settings.get("extra_hosts") or ()),
        render_javascript=bool(source.settings.get("render_javascript")),
        whole_site=bool(source.settings.get("whole_site")),
        sitemap_url=source.settings.get("sitemap_url") or "",
    )
    known_urls, validators = services.source_known_pages(source=source)
    try:
        events = crawl(
            source.url,
            limits,
            user_agent=settings.OUTBOUND_USER_AGENT,
            validators=validators,
            seeds=known_urls,
            should_stop=lambda: not services.run_still_running(run_id=run.pk, owner=owner),
        )
        for event in events:
            services.run_record_event(run=run, event=event)
    except SiteUnreachable as exc:
        if self.request.retries >= UNREACHABLE_RETRIES:
            services.run_fail(run_id=run.pk, reason=f"the site did not answer: {exc}")
            return
        services.run_requeue(run_id=run.pk)
        raise self.retry(countdown=15 * 2**self.request.retries) from exc
    except Exception as exc:  # a bug or an outage: the run fails with its reason, the worker lives on
        logger.exception("crawl of %s failed", source.url)
        services.run_fail(run_id=run.pk, reason=f"crawl stopped: {exc}")
        return
    services.run_crawl_finished(run=run)  # does nothing to a run paused or cancelled meanwhile


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def document_prepare_task(self, document_id: int, deferrals: int = 0) -> None:
    """Download (added by address) and parse (in the sandbox) one file, then queue its embedding.

    On the ``ingest`` queue, in a turn of its team's share (see the module docstring). A redelivered
    task finds the file parsed and only queues the embedding.
    """
    team_id = Document.objects.filter(pk=document_id).values_list("source__assistant__team_id", flat=True).first()
    with team_turn(self, team_id, (document_id,), deferrals) as turn:
        if turn:
            _prepare(document_id)


def _prepare(document_id: int) -> None:
    try:
        document = services.document_prepare(document_id=document_id)
    except ParseError as exc:
        services.document_fail(document_id=document_id, reason=exc.reason)
    except Exception as exc:
        logger.exception("preparing document %s failed", document_id)
        services.document_fail(document_id=document_id, reason=f"parsing failed: {exc}")
    else:
        if document is not None:
            document_index_task.delay(document_id)
        return
    _finish_run_of(document_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def document_index_task(document_id: int) -> None:
    """Chunk and embed a document, with the other documents of its assistant that wait for it (on the
    ``embed`` queue, which GPU workers can own). A document another task took into its batch is left
    to that task."""
    waiting = Document.objects.filter(pk=document_id, status=Document.Status.PENDING).defer("sections").first()
    if waiting is not None and waiting.claimed_by not in (None, document_id):
        return  # in another task's batch: that task indexes it and closes its run (most tasks of a crawl)
    if waiting is not None and services.document_needs_preparing(waiting):  # queued before its file was parsed
        document_prepare_task.delay(document_id)
        return
    # Most tasks of a crawl come after their document was indexed in another task's batch: with
    # nothing pending and nothing held from an earlier delivery, there is nothing to claim.
    has_work = waiting is not None or services.documents_held_by(document_id=document_id)
    batch = services.documents_index_claim(document_id=document_id) if has_work else None
    if batch is None:
        _finish_run_of(document_id)
        return
    services.documents_index_batch(batch=batch)
    _finish_run_of(document_id, *(document.pk for document in batch.documents))


def _finish_run_of(*document_ids: int) -> None:
    # Only runs waiting for their indexing can finish here (a run still crawling is finished by its
    # crawl, which moves it to indexing and checks it then).
    run_ids = Document.objects.filter(pk__in=document_ids, last_run__status=CrawlRun.Status.INDEXING).values_list(
        "last_run_id", flat=True
    )
    for run_id in sorted(set(run_ids)):
        services.run_finish_if_indexed(run_id=run_id)


@shared_task(ignore_result=True)
def sources_recrawl_due_task() -> None:
    """Beat, every few minutes: start the crawls that sources' schedules say are due."""
    for source in services.sources_due_for_recrawl():
        services.source_crawl_start(source=source)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def space_build_task(space_id: int) -> None:
    """Re-embed an assistant's documents into a new embedding space, then flip to it."""
    space = EmbeddingSpace.objects.filter(pk=space_id, status=EmbeddingSpace.Status.BUILDING).first()
    if space is not None:
        services.space_build(space=space)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def archive_unpack_task(run_id: int) -> None:
    """Unpack an uploaded zip of documents in a sandboxed child, then queue its files (the ingest queue)."""
    services.archive_unpack(run_id=run_id)


@shared_task(ignore_result=True)
def reconcile_task() -> None:
    """Beat, every few minutes: queue again the work whose task was lost (see services/reconcile.py)."""
    services.lost_work_requeue()
