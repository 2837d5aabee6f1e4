"""A document's stored file goes with its row, however the row goes: deleted on its own, or with its
source, its assistant or its team (cascades bypass the services, so this is a signal). The file is
removed once the deletion is committed; a rolled-back deletion keeps it.

``content_indexed`` (``assistant_id``) tells the layers above that an assistant's searchable
content changed as a whole: a crawl or upload run finished indexing, or a new embedding space took
over. The assistants app recalibrates its answering gate then.

After every ``migrate``, the database's pg_textsearch is brought to the version of the server's binaries
(``chatsite.dbserver.UPDATE_EXTENSIONS``): development's ``make install`` builds a newer one than the
database was made with."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import connections, transaction
from django.db.models.signals import post_delete
from django.dispatch import Signal, receiver

from chatsite.dbserver import UPDATE_EXTENSIONS
from ingestion.models import Document

content_indexed = Signal()


@receiver(post_delete, sender=Document, dispatch_uid="ingestion.document_file_removed")
def document_file_removed(sender, instance: Document, **kwargs) -> None:
    if not instance.file_path:
        return
    path = (Path(settings.MEDIA_ROOT) / instance.file_path).resolve()
    if path.is_relative_to(Path(settings.MEDIA_ROOT).resolve()):
        transaction.on_commit(lambda: path.unlink(missing_ok=True))


def extensions_updated(sender, using: str = "default", plan=None, **kwargs) -> None:
    """post_migrate, for the ingestion app (connected in its ``ready``). ``flush`` sends the signal too,
    without a plan: nothing then."""
    connection = connections[using]
    if plan is not None and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(UPDATE_EXTENSIONS)
