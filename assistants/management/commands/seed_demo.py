"""Create the demo user, team and assistant, and crawl the product's own help pages.

Run by ``make run`` on every start; it changes nothing when the demo already exists, except
that a demo source that has never been crawled is queued.
"""

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand

from assistants import services
from assistants.models import Assistant
from ingestion import services as ingestion_services
from ingestion.models import Source

DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"
DEMO_SLUG = "chatsite-help"


class Command(BaseCommand):
    help = "Create the demo team and assistant (idempotent) and queue the crawl of the help pages."

    def handle(self, *args, **options):
        user = User.objects.filter(username=DEMO_USER).first()
        if user is None:
            user, team = services.user_signup(
                username=DEMO_USER, email="demo@example.com", password=DEMO_PASSWORD, team_name="Demo team"
            )
            user.is_staff = user.is_superuser = True  # the demo user can open /admin/ too
            user.save(update_fields=["is_staff", "is_superuser"])
        else:
            team = user.memberships.first().team
        assistant = Assistant.objects.filter(slug=DEMO_SLUG).first()
        if assistant is None:
            assistant = services.assistant_create(
                team=team,
                name="Chatsite Help",
                greeting="Hi! I answer questions about Chatsite from its help pages. Try: how do I add my website?",
            )
            assistant.slug = DEMO_SLUG
            assistant.save(update_fields=["slug"])
        source = assistant.sources.first()
        if source is None:
            source = ingestion_services.source_create_website(
                assistant=assistant, url=f"{settings.SITE_URL}/help/", max_pages=50, max_depth=3
            )
        if source.status in {Source.Status.IDLE, Source.Status.FAILED}:
            ingestion_services.source_crawl_start(source=source)
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  Chatsite is starting on {settings.SITE_URL}/\n"
                f"  Log in as {DEMO_USER} / {DEMO_PASSWORD}\n"
                f"  The demo assistant: {settings.SITE_URL}/a/{DEMO_SLUG}/\n"
            )
        )
