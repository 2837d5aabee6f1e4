"""Writes for sources, crawl runs, documents, indexing and embedding-model switches; views, tasks
and commands call these as ``services.<name>``. Each lives in the module named for what it changes:

* ``sources``: website sources, uploads, documents and videos by address, Q&A pairs and snippets;
* ``runs``: crawls started, paused, resumed, cancelled, recorded and closed;
* ``documents``: one document stored, downloaded, parsed, queued, reindexed, failed, deleted;
* ``indexing``: batches of documents chunked and embedded into the assistant's spaces;
* ``model_switch``: a new embedding space built in the background, then flipped to;
* ``calibration``: the answering gate of a space, learned from its content.
"""

from ingestion.services.calibration import space_calibrate
from ingestion.services.documents import (
    document_delete,
    document_download,
    document_fail,
    document_needs_preparing,
    document_parse,
    document_prepare,
    document_queue,
    document_reindex,
    document_retryable,
    document_store,
    documents_retry_failed,
    sections_hash,
    upload_folder,
)
from ingestion.services.errors import MAX_ATTEMPTS, IngestionError
from ingestion.services.indexing import (
    IndexBatch,
    document_index,
    documents_held_by,
    documents_index,
    documents_index_batch,
    documents_index_claim,
    documents_index_into_space,
    embeddings_cached,
)
from ingestion.services.model_switch import space_activate, space_build, space_switch_start
from ingestion.services.reconcile import lost_work_requeue
from ingestion.services.runs import (
    documents_run,
    run_begin,
    run_cancel,
    run_crawl_finished,
    run_fail,
    run_finish_if_indexed,
    run_pause,
    run_record_event,
    run_requeue,
    run_resume,
    run_still_running,
    source_crawl_start,
    source_known_pages,
    sources_due_for_recrawl,
)
from ingestion.services.sources import (
    archive_unpack,
    document_add_url,
    documents_upload,
    documents_upload_zip,
    qa_add,
    qa_import_csv,
    source_create_website,
    source_delete,
    source_documents_get_or_create,
    source_qa_get_or_create,
    source_update_website,
)

__all__ = [
    "MAX_ATTEMPTS",
    "IndexBatch",
    "lost_work_requeue",
    "archive_unpack",
    "IngestionError",
    "document_add_url",
    "document_delete",
    "document_download",
    "document_fail",
    "document_index",
    "document_needs_preparing",
    "document_parse",
    "document_prepare",
    "document_queue",
    "document_reindex",
    "document_retryable",
    "documents_retry_failed",
    "document_store",
    "documents_held_by",
    "documents_index",
    "documents_index_batch",
    "documents_index_claim",
    "documents_index_into_space",
    "documents_run",
    "documents_upload",
    "documents_upload_zip",
    "embeddings_cached",
    "qa_add",
    "qa_import_csv",
    "run_begin",
    "run_cancel",
    "run_crawl_finished",
    "run_fail",
    "run_finish_if_indexed",
    "run_pause",
    "run_record_event",
    "run_requeue",
    "run_resume",
    "run_still_running",
    "sections_hash",
    "source_create_website",
    "source_delete",
    "source_update_website",
    "source_crawl_start",
    "source_documents_get_or_create",
    "source_known_pages",
    "source_qa_get_or_create",
    "sources_due_for_recrawl",
    "space_activate",
    "space_calibrate",
    "space_build",
    "space_switch_start",
    "upload_folder",
]
