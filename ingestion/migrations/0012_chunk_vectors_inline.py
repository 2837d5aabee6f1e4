"""Chunk vectors kept in the row (storage MAIN) instead of out of line (pgvector's default, EXTERNAL).

A partition under ``VECTOR_INDEX_MIN_CHUNKS`` has no HNSW index, so every search reads each chunk's
vector. Stored out of line, each one is a TOAST index lookup and a TOAST page: a 700-chunk site's
search touched 2,014 buffers in 3.2 ms; with the vectors in the row, 175 buffers in 0.5-0.85 ms. MAIN,
not PLAIN: a vector too large for a page (4,096 dimensions are 16 KB) still goes out of line, as the last
resort. The parent's setting reaches every partition, and partitions made later inherit it; rows
written before keep their old storage until a document is indexed again (VACUUM FULL rewrites them).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("ingestion", "0011_document_content_changed_at"),
    ]

    operations = [
        migrations.RunSQL(
            "alter table ingestion_chunk alter column embedding set storage main",
            "alter table ingestion_chunk alter column embedding set storage external",
        ),
    ]
