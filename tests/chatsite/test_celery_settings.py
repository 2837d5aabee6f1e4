"""Celery's limits fit together: a task ends (soft, then hard limit) before Redis gives it to another worker
(the visibility timeout), whatever CELERY_TASK_TIME_LIMIT an operator sets, and a worker process that grew
too large is replaced."""

import os
import subprocess
import sys

from django.conf import settings

from chatsite.celery import app


def _limits(task) -> tuple[int, int]:
    hard = task.time_limit or settings.CELERY_TASK_TIME_LIMIT
    soft = task.soft_time_limit or settings.CELERY_TASK_SOFT_TIME_LIMIT
    return soft, hard


def test_every_task_ends_before_redis_hands_it_to_another_worker():
    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if name.split(".")[0] in {"assistants", "ingestion"}}
    assert len(ours) >= 5, sorted(ours)
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    for name, task in ours.items():
        soft, hard = _limits(task)
        assert 0 < soft < hard < visibility, (name, soft, hard, visibility)


def test_the_visibility_timeout_follows_a_longer_task_limit():
    # A fresh interpreter: settings are read once, at import.
    env = {**os.environ, "CELERY_TASK_TIME_LIMIT": "7200", "DJANGO_SETTINGS_MODULE": "chatsite.settings"}
    env.pop("CELERY_VISIBILITY_TIMEOUT", None)
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.CELERY_TASK_SOFT_TIME_LIMIT, s.CELERY_TASK_TIME_LIMIT, "
        "s.CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'])"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    soft, hard, visibility = map(int, out.stdout.split()[-3:])
    assert soft < hard == 7200 < visibility


def test_a_worker_process_that_grew_too_large_is_replaced():
    assert 0 < settings.CELERY_WORKER_MAX_MEMORY_PER_CHILD <= 8_000_000  # KiB


def test_every_task_is_tried_again_when_the_database_cannot_be_reached():
    """A task taken from the broker while PostgreSQL restarts is retried a few seconds later, not lost
    (tests/e2e/test_database_restart.py queues a file during an outage and sees it indexed)."""
    from django.db import InterfaceError, OperationalError

    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if name.split(".")[0] in {"assistants", "ingestion"}}
    for name, task in ours.items():
        assert {OperationalError, InterfaceError} <= set(task.autoretry_for), name
        assert hasattr(task, "_orig_run"), f"{name} is not wrapped by Celery's autoretry"
        assert task.retry_kwargs["max_retries"] >= 3, name


def test_tasks_keep_djangos_enqueue_on_commit():
    app.loader.import_default_modules()
    assert callable(app.tasks["ingestion.tasks.document_prepare_task"].delay_on_commit)
