"""Small builders for tests: real rows through the real services."""

import itertools
from contextlib import contextmanager

from django.contrib.auth.models import User
from django.db import transaction

from assistants import services
from ingestion.models import CrawlRun, Document, Source
from tests import vectors

_counter = itertools.count(1)


@contextmanager
def rows_for_the_module(django_db_blocker):
    """Rows built once for a whole test module (in a module-scoped fixture, given pytest-django's
    ``django_db_blocker``): they are written in a transaction that stays open while the module's tests run,
    each test's own transaction nests inside it (a savepoint, rolled back after the test as usual), and
    the whole of it is rolled back after the last test. Only for modules whose tests are not
    ``transaction=True``."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield
        transaction.set_rollback(True)


def make_user(name: str | None = None) -> User:
    name = name or f"user{next(_counter)}"
    return User.objects.create_user(username=name, email=f"{name}@example.com", password="correct-horse-9")


def make_team(owner: User | None = None, name: str | None = None):
    return services.team_create(name=name or f"Team {next(_counter)}", owner=owner or make_user())


def make_assistant(team=None, name: str | None = None):
    return services.assistant_create(team=team or make_team(), name=name or f"Assistant {next(_counter)}")


def index_pages(assistant, pages: dict[str, str], *, reuse_vectors: bool = True):
    """Store HTML pages as documents of a website source and index them, as the worker would.

    ``reuse_vectors``: a text the model embedded earlier in the run (in any test, in any of the run's
    processes: ``tests.vectors``) is put in the embedding cache before indexing, so the indexing finds it
    there as it would find text it has embedded before (the cache's own path), instead of running the
    model again on the same text; what the model computes is kept for the next. False for the tests that
    count what is embedded."""
    from ingestion.embedding import get_embedder
    from ingestion.parsers.html import extract_page
    from ingestion.services import indexing, sections_hash
    from ingestion.spaces import spaces_for_indexing

    source = Source.objects.create(assistant=assistant, url=next(iter(pages)), name="test site")
    run = CrawlRun.objects.create(source=source, status=CrawlRun.Status.RUNNING)
    documents = []
    for url, html in pages.items():
        page = extract_page(html, url)
        document, _ = Document.objects.update_or_create(
            source=source,
            url=url,
            defaults={
                "title": page.title,
                "sections": [s.as_dict() for s in page.sections],
                "last_run": run,
                "content_hash": sections_hash(page.title, [s.as_dict() for s in page.sections]),
            },
        )
        documents.append(document)
    computed = {}  # model -> the hashes of the texts its space embeds that the run has not kept yet
    if reuse_vectors:
        for space in spaces_for_indexing(assistant.pk):
            embedder = get_embedder(space.model_name)
            hashes = [
                indexing.text_hash(draft.search_text)
                for document in documents
                for draft in indexing.document_drafts(document=document, embedder=embedder)
            ]
            kept = vectors.cache_seed_texts(space.model_name, hashes)
            computed[space.model_name] = [text_hash for text_hash in hashes if text_hash not in kept]
    for document in documents:
        indexing.document_index(document=document)
    for model_name, hashes in computed.items():
        vectors.keep_texts(model_name, hashes)
    return source
