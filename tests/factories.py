"""Small builders for tests: real rows through the real services."""

import hashlib
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


def index_pages(assistant, pages: dict[str, str], *, reuse_vectors: bool = False):
    """Store HTML pages as documents of a website source and index them, as the worker would.

    ``reuse_vectors``: for fixtures that index the same pages for every test. The first time in the run,
    the vectors the model computed are kept (``tests.vectors``, shared by the run's processes); the next
    times they are put in the embedding cache before indexing, so the indexing finds them there as it
    would find text it has embedded before (the cache's own path), instead of running the model again on
    the same text. Not for tests that count what is embedded."""
    from ingestion import services as ingestion_services
    from ingestion.parsers.html import extract_page

    key = "pages-" + hashlib.sha256(repr(sorted(pages.items())).encode()).hexdigest() if reuse_vectors else ""
    computed = bool(key) and not vectors.cache_seed(key)
    if computed:
        before = vectors.cache_rows()

    source = Source.objects.create(assistant=assistant, url=next(iter(pages)), name="test site")
    run = CrawlRun.objects.create(source=source, status=CrawlRun.Status.RUNNING)
    for url, html in pages.items():
        page = extract_page(html, url)
        document, _ = Document.objects.update_or_create(
            source=source,
            url=url,
            defaults={
                "title": page.title,
                "sections": [s.as_dict() for s in page.sections],
                "last_run": run,
                "content_hash": ingestion_services.sections_hash(page.title, [s.as_dict() for s in page.sections]),
            },
        )
        ingestion_services.document_index(document=document)
    if computed:
        vectors.keep(key, vectors.cache_rows() - before)
    return source
