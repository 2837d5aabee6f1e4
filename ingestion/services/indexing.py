"""Writes that chunk and embed documents into their assistant's embedding spaces: claiming a batch
of waiting documents, embedding their new texts in one call per space (cached by text), replacing
each document's chunks atomically."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast, Length
from django.utils import timezone

from ingestion.chunking import chunk_sections
from ingestion.models import Document, EmbeddingSpace, Source
from ingestion.services.documents import document_fail
from ingestion.services.errors import MAX_ATTEMPTS
from ingestion.spaces import spaces_for_indexing, vector_index_if_due, vector_literal

logger = logging.getLogger(__name__)


# An indexing task embeds its document together with others of the same assistant that wait for it
# (one embedding call instead of one per document: a GPU gets batches worth running, a CPU fewer
# small ones), up to this many documents and characters of text.
BATCH_MAX_DOCUMENTS = 32


BATCH_MAX_CHARS = 400_000


@dataclass
class IndexBatch:
    """The documents an indexing task embeds (see :func:`documents_index_claim`)."""

    leader: int  # the document whose task claimed them
    documents: list[Document]
    one_by_one: bool = False  # an earlier delivery of the task stopped: each document on its own attempt


def _held_by(document_id: int):
    """Documents that the indexing task of ``document_id`` claimed and that still wait (it stopped)."""
    return Document.objects.filter(claimed_by=document_id, status=Document.Status.PENDING)


def documents_held_by(*, document_id: int) -> bool:
    """Whether the indexing task of ``document_id`` holds documents from an earlier delivery (read without a lock)."""
    return _held_by(document_id).exists()


def documents_index_claim(*, document_id: int) -> IndexBatch | None:
    """What the indexing task of ``document_id`` embeds; None when there is nothing for it to do.

    On the task's first delivery: the document and other pending, parsed documents of its assistant
    that no task holds, each marked ``claimed_by`` this document and counted an attempt — their own
    tasks then find them held and do nothing. A document held by another task's batch is left to that
    task (and to its redelivery). A delivery that finds documents it claimed still pending comes after
    one that stopped (a killed worker): it takes them one by one, each on its own attempt, so a document
    that kills the worker ends failed alone.
    """
    with transaction.atomic():
        held = list(_held_by(document_id).select_for_update().order_by("pk"))
        if held:  # (even when the task's own document was deleted since)
            return IndexBatch(leader=document_id, documents=held, one_by_one=True)
        document = Document.objects.select_for_update().filter(pk=document_id).first()
        if document is None or document.status != Document.Status.PENDING or document.claimed_by is not None:
            return None
        assistant_id = Source.objects.filter(pk=document.source_id).values_list("assistant_id", flat=True).get()
        waiting = (
            Document.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(source__assistant_id=assistant_id, status=Document.Status.PENDING, claimed_by__isnull=True)
            .exclude(pk=document_id)
            .exclude(file_name__gt="", public_token="", file_path="")  # added by address, not downloaded yet
            .exclude(~Q(file_path=""), content_hash="")  # a file not parsed yet
            .annotate(size=Length(Cast("sections", TextField())))
            .order_by("pk")[: BATCH_MAX_DOCUMENTS - 1]
        )
        batch, size = [document], len(json.dumps(document.sections))
        for other in waiting:
            if size + other.size <= BATCH_MAX_CHARS:  # a document too large to join is left to its own task
                batch.append(other)
                size += other.size
        claimed = []
        for member in batch:
            member.claimed_by = document_id
            if _attempt_counted(member):
                claimed.append(member)
        Document.objects.bulk_update(batch, ["claimed_by", "attempts", "status", "error"])
    return IndexBatch(leader=document_id, documents=claimed) if claimed else None


def _attempt_counted(document: Document) -> bool:
    """Count an indexing attempt; False (and the document failed) once it has stopped its worker too often."""
    document.attempts += 1
    if document.attempts > MAX_ATTEMPTS:
        document.status = Document.Status.FAILED
        document.error = f"indexing stopped its worker {MAX_ATTEMPTS} times; giving up"
        return False
    return True


def documents_index_batch(*, batch: IndexBatch) -> None:
    """Index a claimed batch. When indexing the documents together fails, each is indexed alone, so
    only the documents that fail on their own are failed, with their reason."""
    if not batch.one_by_one:
        try:
            documents_index(documents=batch.documents)
            return
        except Exception:
            logger.exception("indexing %d documents together failed; indexing them one by one", len(batch.documents))
    for document in batch.documents:
        with transaction.atomic():
            locked = (
                Document.objects.select_for_update()
                .filter(pk=document.pk, status=Document.Status.PENDING, claimed_by=batch.leader)
                .first()
            )
            if locked is None:
                continue
            if batch.one_by_one:
                counted = _attempt_counted(locked)
                locked.save(update_fields=["attempts", "status", "error"])
                if not counted:
                    continue
        try:
            documents_index(documents=[locked])
        except Exception as exc:
            logger.exception("indexing document %s failed", document.pk)
            document_fail(document_id=document.pk, reason=f"indexing failed: {exc}")


def document_index(*, document: Document) -> int:
    """Chunk and embed one document into every live space of its assistant; chunks written."""
    return documents_index(documents=[document])[document.pk]


def documents_index(*, documents: list[Document]) -> dict[int, int]:
    """Chunk and embed documents of one assistant into every live space of it, their new chunk texts in
    one embedding call per space; then mark each ready. Chunks written, by document.

    Each document's old chunks are replaced in one transaction per space, so retrieval sees the old
    version or the new one, never half; a document whose content changed meanwhile (a recrawl) is
    left to the task its new content queued.
    """
    if not documents:
        return {}
    assistant_id = Source.objects.filter(pk=documents[0].source_id).values_list("assistant_id", flat=True).get()
    written = dict.fromkeys((document.pk for document in documents), 0)
    for space in spaces_for_indexing(assistant_id):
        written.update(documents_index_into_space(documents=documents, space=space))
    now = timezone.now()
    with transaction.atomic():
        for document in documents:
            Document.objects.filter(pk=document.pk, content_hash=document.content_hash).update(
                status=Document.Status.READY,
                indexed_hash=document.content_hash,
                chunk_count=written[document.pk],
                error="" if written[document.pk] else "no text to index",
                claimed_by=None,
                updated_at=now,
            )
    return written


def documents_index_into_space(*, documents: list[Document], space: EmbeddingSpace) -> dict[int, int]:
    """Replace the documents' chunks in one space; texts in the embedding cache are not embedded again."""
    from ingestion.embedding import get_embedder

    embedder = get_embedder(space.model_name)
    drafts = {document.pk: document_drafts(document=document, embedder=embedder) for document in documents}
    texts = [draft.search_text for document in documents for draft in drafts[document.pk]]
    vectors = iter(embeddings_cached(model_name=space.model_name, texts=texts, embedder=embedder))
    written = {}
    for document in documents:
        rows = [
            (
                space.pk,
                document.pk,
                draft.ordinal,
                draft.text,
                draft.search_text,
                json.dumps(draft.heading_path),
                draft.anchor[:300],
                draft.token_count,
                next(vectors),
            )
            for draft in drafts[document.pk]
        ]
        written[document.pk] = _chunks_replace(document=document, space=space, rows=rows)
    vector_index_if_due(space)
    return written


def document_drafts(*, document: Document, embedder) -> list:
    """The chunks a document is cut into for ``embedder``'s model (its token counts set the sizes)."""
    return chunk_sections(
        document.sections,
        count_tokens=embedder.count_tokens,
        max_tokens=settings.CHUNK_MAX_TOKENS,
        title=document.title,
    )


def _chunks_replace(*, document: Document, space: EmbeddingSpace, rows: list[tuple]) -> int:
    """Put ``rows`` in place of the document's chunks in ``space``, unless it was deleted or its content
    changed since it was chunked (it is locked meanwhile)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("select content_hash from ingestion_document where id = %s for update", [document.pk])
        current = cursor.fetchone()
        if current is None or current[0] != document.content_hash:
            return 0
        cursor.execute("delete from ingestion_chunk where space_id = %s and document_id = %s", [space.pk, document.pk])
        # COPY: a third less time than a batch of inserts for a document's rows (psycopg's own cursor)
        with cursor.cursor.copy(
            "copy ingestion_chunk (space_id, document_id, ordinal, text, search_text, heading_path, anchor,"
            " token_count, embedding) from stdin"
        ) as copy:
            for row in rows:
                copy.write_row(row)
    return len(rows)


def text_hash(text: str) -> str:
    """The embedding cache's key for a text (with the model's name)."""
    return hashlib.sha256(text.encode()).hexdigest()


def embeddings_cached(*, model_name: str, texts: list[str], embedder) -> list[str]:
    """Vectors (as pgvector literals) for ``texts``: from the cache, the rest embedded and cached."""
    hashes = [text_hash(text) for text in texts]
    with connection.cursor() as cursor:
        cursor.execute(
            "select text_hash, embedding::text from ingestion_embeddingcache where model_name = %s and text_hash = any(%s)",
            [model_name, list(set(hashes))],
        )
        known = dict(cursor.fetchall())
    todo = list(dict.fromkeys(h for h in hashes if h not in known))
    if todo:
        first_text = dict(zip(reversed(hashes), reversed(texts)))
        vectors = embedder.embed_documents([first_text[h] for h in todo], batch_tokens=settings.EMBEDDING_BATCH_TOKENS)
        fresh = {h: vector_literal(vector) for h, vector in zip(todo, vectors)}
        with connection.cursor() as cursor:
            cursor.executemany(
                "insert into ingestion_embeddingcache (model_name, text_hash, embedding, created_at)"
                " values (%s, %s, %s::vector, now()) on conflict (model_name, text_hash) do nothing",
                [(model_name, h, vector) for h, vector in fresh.items()],
            )
        known.update(fresh)
    return [known[h] for h in hashes]
