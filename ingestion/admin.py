from django.contrib import admin

from ingestion.models import CrawlRun, Document, EmbeddingSpace, Source


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["__str__", "assistant", "kind", "status", "created_at"]
    list_filter = ["kind", "status"]


@admin.register(CrawlRun)
class CrawlRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "source",
        "status",
        "pages_fetched",
        "pages_failed",
        "chunks_embedded",
        "started_at",
        "finished_at",
    ]


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["url", "title", "status", "chunk_count", "updated_at"]
    list_filter = ["status"]
    exclude = ["sections"]


@admin.register(EmbeddingSpace)
class EmbeddingSpaceAdmin(admin.ModelAdmin):
    list_display = ["id", "assistant", "model_name", "dims", "status"]
