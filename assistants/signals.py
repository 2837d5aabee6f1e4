"""Reactions to what the content layer reports: an assistant's content indexed anew is calibrated
again (its answering gate, ``assistants.golden.services.assistant_calibrate``), on a worker."""

from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver

from ingestion.signals import content_indexed


@receiver(content_indexed, dispatch_uid="assistants.calibrate_on_content_indexed")
def calibrate_on_content_indexed(sender, assistant_id: int | None = None, **kwargs) -> None:
    from assistants.tasks import assistant_calibrate_task

    if assistant_id is not None:
        transaction.on_commit(lambda: assistant_calibrate_task.delay(assistant_id))
