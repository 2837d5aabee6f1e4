"""``add_source ASSISTANT_SLUG URL``: a website source and its first crawl, queued for the worker."""

from django.core.management.base import BaseCommand, CommandError

from assistants.forms import WebsiteSourceForm
from assistants.management.commands._lookup import assistant_for_slug
from assistants.management.commands._progress import wait_for_run
from ingestion import services
from ingestion.models import Source


class Command(BaseCommand):
    help = (
        "Add a website to an assistant and queue its crawl (it stays under the address's folder unless "
        "--whole-site or --include); --wait follows the crawl to its report."
    )

    def add_arguments(self, parser):
        parser.add_argument("assistant", help="The assistant's slug.")
        parser.add_argument("url")
        parser.add_argument("--max-pages", type=int)
        parser.add_argument("--max-depth", type=int)
        parser.add_argument(
            "--include",
            action="append",
            default=[],
            metavar="PATTERN",
            help="Only pages matching (/docs/*); repeatable.",
        )
        parser.add_argument(
            "--exclude",
            action="append",
            default=[],
            metavar="PATTERN",
            help="Never pages matching (/blog/*); repeatable.",
        )
        parser.add_argument("--sitemap", default="", help="A sitemap to read instead of robots.txt's.")
        parser.add_argument("--whole-site", action="store_true", help="Not only the pages under the address's folder.")
        parser.add_argument("--render-javascript", action="store_true", help="Run each page's scripts first (slower).")
        parser.add_argument("--schedule", choices=Source.Schedule.values, default=Source.Schedule.MANUAL)
        parser.add_argument("--no-crawl", action="store_true", help="Save the source without crawling it now.")
        parser.add_argument("--wait", action="store_true", help="Print progress until the crawl ends.")
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between progress checks.")
        parser.add_argument("--timeout", type=float, default=3600.0, help="Stop waiting after this many seconds.")

    def handle(self, *args, assistant, url, wait, interval, timeout, no_crawl, **options):
        form = WebsiteSourceForm(
            data={
                "url": url,
                "max_pages": options["max_pages"] or WebsiteSourceForm.base_fields["max_pages"].initial(),
                "max_depth": WebsiteSourceForm.base_fields["max_depth"].initial()
                if options["max_depth"] is None
                else options["max_depth"],
                "include": options["include"],
                "exclude": options["exclude"],
                "sitemap_url": options["sitemap"],
                "whole_site": options["whole_site"],
                "render_javascript": options["render_javascript"],
                "schedule": options["schedule"],
            }
        )
        if not form.is_valid():
            raise CommandError("; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()))
        try:
            source = services.source_create_website(assistant=assistant_for_slug(assistant), **form.cleaned_data)
        except services.IngestionError as exc:
            raise CommandError(str(exc)) from None
        if no_crawl:
            self.stdout.write(f"Added source {source.pk} ({url}); not crawled yet.")
            return
        run = services.source_crawl_start(source=source)
        self.stdout.write(f"Added source {source.pk} ({url}); crawl {run.pk} queued.")
        if wait:
            wait_for_run(source=source, run=run, stdout=self.stdout, interval=interval, timeout=timeout)
