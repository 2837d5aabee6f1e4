"""``add_source ASSISTANT_SLUG URL``: a website source and its first crawl, queued for the worker."""

from django.core.management.base import BaseCommand, CommandError

from assistants.management.commands._lookup import assistant_for_slug
from assistants.management.commands._progress import wait_for_run
from ingestion import services


class Command(BaseCommand):
    help = "Add a website to an assistant and queue its crawl; --wait follows the crawl to its report."

    def add_arguments(self, parser):
        parser.add_argument("assistant", help="The assistant's slug.")
        parser.add_argument("url")
        parser.add_argument("--max-pages", type=int)
        parser.add_argument("--max-depth", type=int)
        parser.add_argument("--wait", action="store_true", help="Print progress until the crawl ends.")
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between progress checks.")
        parser.add_argument("--timeout", type=float, default=3600.0, help="Stop waiting after this many seconds.")

    def handle(self, *args, assistant, url, max_pages, max_depth, wait, interval, timeout, **options):
        try:
            source = services.source_create_website(
                assistant=assistant_for_slug(assistant), url=url, max_pages=max_pages, max_depth=max_depth
            )
        except services.IngestionError as exc:
            raise CommandError(str(exc)) from None
        run = services.source_crawl_start(source=source)
        self.stdout.write(f"Added source {source.pk} ({url}); crawl {run.pk} queued.")
        if wait:
            wait_for_run(source=source, run=run, stdout=self.stdout, interval=interval, timeout=timeout)
