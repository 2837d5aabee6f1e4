"""Switching an assistant's embedding model: a new space built in the background from the stored
texts while the old one keeps answering, then flipped to atomically."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction

from ingestion.models import Document, EmbeddingSpace
from ingestion.services import indexing
from ingestion.signals import content_indexed
from ingestion.spaces import space_active, space_create, space_drop

if TYPE_CHECKING:
    from assistants.models import Assistant


def space_switch_start(*, assistant: Assistant, model_name: str) -> EmbeddingSpace:
    """Start re-embedding an assistant's chunks with another model, in a new space built in the
    background; answers keep using the active space until the new one is complete."""
    from ingestion.embedding import embedding_dims
    from ingestion.tasks import space_build_task

    active = space_active(assistant.pk)
    if active and active.model_name == model_name:
        return active
    for building in EmbeddingSpace.objects.filter(assistant=assistant, status=EmbeddingSpace.Status.BUILDING):
        if building.model_name == model_name:
            return building
        space_drop(space=building)
    dims = embedding_dims(model_name)  # fails here, with its reason, for a model we cannot read
    with transaction.atomic():
        space = space_create(assistant=assistant, model_name=model_name, dims=dims, active=False)
        space_build_task.delay_on_commit(space.pk)
    return space


def space_build(*, space: EmbeddingSpace) -> None:
    """Embed every indexed document of the assistant into ``space``, then make it the active one.

    Documents indexed while this runs go into both spaces (``spaces_for_indexing``), so nothing is
    missing when the space flips.
    """
    documents = Document.objects.filter(source__assistant_id=space.assistant_id, status=Document.Status.READY)
    group: list[Document] = []
    for document in documents.order_by("pk").iterator():
        group.append(document)
        if len(group) == indexing.BATCH_MAX_DOCUMENTS:
            indexing.documents_index_into_space(documents=group, space=space)
            group = []
    indexing.documents_index_into_space(documents=group, space=space)
    space_activate(space=space)


def space_activate(*, space: EmbeddingSpace) -> None:
    """Flip the assistant to ``space`` in one transaction, then drop the spaces it replaces."""
    with transaction.atomic():
        space = EmbeddingSpace.objects.select_for_update().get(pk=space.pk)
        if space.status != EmbeddingSpace.Status.BUILDING:
            return
        retired = list(
            EmbeddingSpace.objects.filter(assistant_id=space.assistant_id, status=EmbeddingSpace.Status.ACTIVE)
        )
        EmbeddingSpace.objects.filter(pk__in=[old.pk for old in retired]).update(status=EmbeddingSpace.Status.RETIRED)
        space.status = EmbeddingSpace.Status.ACTIVE
        space.save(update_fields=["status"])
    for old in retired:
        space_drop(space=old)
    content_indexed.send(sender=EmbeddingSpace, assistant_id=space.assistant_id)
