"""Sources of content, their documents, and the chunks retrieval searches.

Chunks live in one PostgreSQL table partitioned by embedding space (one LIST partition per
assistant's space), so each assistant has its own BM25 statistics and its own HNSW graph, and a
query scoped to an assistant always returns k rows (a shared HNSW index with a tenant filter
returned fewer than k for every query measured: docs/benchmarks.md). The migration creates that
table with SQL (Django only knows its shape), and ``ingestion.spaces`` adds a partition per space.
"""

from pathlib import PurePosixPath
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.db import models
from django.utils import timezone
from pgvector.django import VectorField


class Source(models.Model):
    class Kind(models.TextChoices):
        WEBSITE = "website", "Website"
        DOCUMENT = "document", "Documents"
        QA = "qa", "Q&A and snippets"

    class Status(models.TextChoices):
        IDLE = "idle", "Not crawled yet"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    class Schedule(models.TextChoices):
        MANUAL = "manual", "Only when asked"
        HOURLY = "hourly", "Every hour"
        DAILY = "daily", "Every day"
        WEEKLY = "weekly", "Every week"

    assistant = models.ForeignKey("assistants.Assistant", on_delete=models.CASCADE, related_name="sources")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.WEBSITE)
    schedule = models.CharField(max_length=10, choices=Schedule.choices, default=Schedule.MANUAL)
    name = models.CharField(max_length=200, blank=True, default="")
    url = models.URLField(max_length=2000, blank=True, default="")
    # {"max_pages": 500, "max_depth": 5}
    settings = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.IDLE)
    error = models.TextField(blank=True, default="")
    last_run = models.ForeignKey("CrawlRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name or self.url


class CrawlRun(models.Model):
    """One crawl of a source: its progress while it runs, its report when done."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        INDEXING = "indexing", "Indexing"
        PAUSED = "paused", "Paused"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    pages_found = models.PositiveIntegerField(default=0)
    pages_fetched = models.PositiveIntegerField(default=0)
    pages_failed = models.PositiveIntegerField(default=0)
    pages_skipped = models.PositiveIntegerField(default=0)
    pages_unchanged = models.PositiveIntegerField(default=0)
    chunks_embedded = models.PositiveIntegerField(default=0)
    # {"failed": [{"url", "reason"}], "skipped": [{"url", "reason"}]}
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The delivery of the crawl task that holds the run (its task id), and when it last showed it was alive
    # (queued, begun, or between two pages): a second delivery stays out while it is fresh, takes over once
    # it is stale (a worker died), and the reconciler re-queues a run nobody touched for long (a lost task).
    owner = models.CharField(max_length=64, blank=True, default="")
    heartbeat_at = models.DateTimeField(default=timezone.now)

    @property
    def is_active(self) -> bool:
        return self.status in {self.Status.QUEUED, self.Status.RUNNING, self.Status.INDEXING}


class Document(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be indexed"
        READY = "ready", "Indexed"
        FAILED = "failed", "Failed"

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="documents")
    url = models.URLField(max_length=2000)
    # Uploaded files: the name the user gave it, where it is stored (a generated name under
    # MEDIA_ROOT), and the unguessable token of its public URL (citations open it).
    file_name = models.CharField(max_length=255, blank=True, default="")
    file_path = models.CharField(max_length=500, blank=True, default="")
    public_token = models.CharField(max_length=64, blank=True, default="", db_index=True)
    warnings = models.JSONField(default=list, blank=True)
    title = models.CharField(max_length=500, blank=True, default="")
    # sha256 of the extracted sections: an unchanged page is never re-chunked or re-embedded.
    content_hash = models.CharField(max_length=64, blank=True, default="")
    # The extracted text, as [{"heading_path": [...], "anchor": "...", "text": "..."}].
    sections = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    # The document whose indexing task holds this one in its batch (services.documents_index_claim).
    claimed_by = models.BigIntegerField(null=True, blank=True, db_index=True)
    chunk_count = models.PositiveIntegerField(default=0)
    indexed_hash = models.CharField(max_length=64, blank=True, default="")
    last_run = models.ForeignKey(CrawlRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="documents")
    fetched_at = models.DateTimeField(null=True, blank=True)
    # HTTP validators of the last fetch (ETag, Last-Modified), sent back in conditional requests.
    etag = models.CharField(max_length=200, blank=True, default="")
    last_modified = models.CharField(max_length=100, blank=True, default="")
    # When its content (``content_hash``) was last found different, as stored by a crawl or a parse:
    # when it was first stored, or later when it changed. Null for documents stored before it was
    # kept (migration 0011): unknown until their content changes. The analytics' stale pages read it.
    content_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "url"], name="document_unique_source_url")]

    @property
    def added_by_url(self) -> bool:
        """A file (PDF, DOCX, …) added by its address: the worker downloads it, citations open that
        address. Uploads have a public token, crawled pages no file name."""
        return bool(self.file_name) and not self.public_token

    @property
    def cited_url(self) -> str:
        """The address its citations open (see ``cited_url``)."""
        return cited_url(document_id=self.pk, url=self.url, file_name=self.file_name, public_token=self.public_token)


# Word, PowerPoint and Excel files are cited as a readable page of their extracted text on the platform
# (``/d/<token>/<name>``), whether uploaded or added by address: a browser cannot show the original, so
# a citation of one at its own address downloaded a zip of XML. An upload's link carries its public
# token; a file added by address is cited by a token signed from its id (its address stays the key it
# is downloaded again from).
READABLE_SUFFIXES = (".docx", ".pptx", ".xlsx")
_VIEW_SALT = "ingestion.document-view"


def view_token(document_id: int) -> str:
    """The unguessable token of the readable page of a document added by address: ``v<id>-<signature>``."""
    return f"v{int(document_id)}-{signing.Signer(salt=_VIEW_SALT).signature(str(int(document_id)))}"


def view_token_document_id(token: str) -> int | None:
    """The document id a ``view_token`` was made for; None for any other text."""
    head, _, signature = token.partition("-")
    if not head.startswith("v") or not head[1:].isascii() or not head[1:].isdigit() or len(head) > 20:
        return None
    document_id = int(head[1:])
    return document_id if signing.constant_time_compare(token, view_token(document_id)) and signature else None


def cited_url(*, document_id: int, url: str, file_name: str, public_token: str) -> str:
    """The address a citation of the document opens: its own (a web page, an upload's platform link, a
    PDF or a video added by address), or the platform's readable page of an Office file added by address."""
    if file_name and not public_token and PurePosixPath(file_name).suffix.lower() in READABLE_SUFFIXES:
        return f"{settings.SITE_URL}/d/{view_token(document_id)}/{quote(file_name)}"
    return url


class EmbeddingSpace(models.Model):
    """The vectors of one assistant under one embedding model: one partition of the chunk table."""

    class Status(models.TextChoices):
        BUILDING = "building", "Building"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    assistant = models.ForeignKey("assistants.Assistant", on_delete=models.CASCADE, related_name="spaces")
    model_name = models.CharField(max_length=200)
    dims = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BUILDING)
    # The answering gate learned from this space's content (ingestion.search.calibration); {} until
    # its content is first calibrated.
    calibration = models.JSONField(default=dict, blank=True)
    calibrated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["assistant"], condition=models.Q(status="active"), name="space_one_active_per_assistant"
            )
        ]

    @property
    def partition_name(self) -> str:
        return f"ingestion_chunk_s{self.pk}"


class EmbeddingCache(models.Model):
    """Vectors by (model, sha256 of the embedded text): unchanged text is never embedded twice."""

    model_name = models.CharField(max_length=200)
    text_hash = models.CharField(max_length=64)
    embedding = VectorField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model_name", "text_hash"], name="embedding_cache_unique_model_text")
        ]


class Chunk(models.Model):
    """A passage of a document, with its vector in one embedding space. Table made by SQL."""

    id = models.BigAutoField(primary_key=True)
    space = models.ForeignKey(EmbeddingSpace, on_delete=models.DO_NOTHING, db_constraint=False)
    document = models.ForeignKey(Document, on_delete=models.DO_NOTHING, db_constraint=False)
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    # What BM25 and the embedding see: the page title and heading path, then the text.
    search_text = models.TextField()
    heading_path = models.JSONField(default=list)
    anchor = models.CharField(max_length=300, blank=True, default="")
    token_count = models.PositiveIntegerField()
    embedding = VectorField()

    class Meta:
        db_table = "ingestion_chunk"
