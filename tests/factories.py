"""Small builders for tests: real rows through the real services."""

import itertools

from django.contrib.auth.models import User

from assistants import services
from ingestion.models import CrawlRun, Document, Source

_counter = itertools.count(1)


def make_user(name: str | None = None) -> User:
    name = name or f"user{next(_counter)}"
    return User.objects.create_user(username=name, email=f"{name}@example.com", password="correct-horse-9")


def make_team(owner: User | None = None, name: str | None = None):
    return services.team_create(name=name or f"Team {next(_counter)}", owner=owner or make_user())


def make_assistant(team=None, name: str | None = None):
    return services.assistant_create(team=team or make_team(), name=name or f"Assistant {next(_counter)}")


def index_pages(assistant, pages: dict[str, str]):
    """Store HTML pages as documents of a website source and index them, as the worker would."""
    from ingestion import services as ingestion_services
    from ingestion.parsers.html import extract_page

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
    return source
