"""Create the demo user, team and assistant, and crawl the product's own help pages.

A local convenience, off unless asked for: ``make run`` sets ``DEMO=true``; without it (production,
Docker) the command only says how the first owner is created. It refuses to run for a site that is
not served on this machine (``SITE_URL`` on a loopback host), and the demo user is never staff or a
superuser: its password is printed on every start. It changes nothing when the demo already exists,
except that a demo source that has never been crawled is queued.
"""

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from assistants import services
from assistants.models import Assistant
from ingestion import services as ingestion_services
from ingestion.models import Source

DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"
DEMO_SLUG = "chatsite-help"
FIRST_OWNER = (
    "Create the first owner with `python manage.py createsuperuser` (Django admin) or by signing up at "
    "{site}/signup/ (a new team, owned by whoever signs up)."
)


def is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Command(BaseCommand):
    help = "Create the demo team and assistant (DEMO=true, local sites only; idempotent) and crawl the help pages."

    def handle(self, *args, **options):
        if not settings.DEMO:
            retired = User.objects.filter(username=DEMO_USER, is_active=True).first()
            if retired is not None and retired.check_password(DEMO_PASSWORD):  # a demo an earlier start made
                retired.is_active = retired.is_staff = retired.is_superuser = False
                retired.save(update_fields=["is_active", "is_staff", "is_superuser"])
                self.stdout.write(f"The demo user ({DEMO_USER}, whose password is public) is disabled.")
            self.stdout.write(f"No demo (DEMO is off). {FIRST_OWNER.format(site=settings.SITE_URL)}")
            return
        if not is_local(settings.SITE_URL):
            raise CommandError(
                f"The demo, with its known password, is for a local machine only; SITE_URL is {settings.SITE_URL}. "
                f"Set DEMO=false (`make run DEMO=false`). {FIRST_OWNER.format(site=settings.SITE_URL)}"
            )
        user = User.objects.filter(username=DEMO_USER).first()
        if user is None:
            user, team = services.user_signup(
                username=DEMO_USER, email="demo@example.com", password=DEMO_PASSWORD, team_name="Demo team"
            )
        else:
            team = user.memberships.first().team
        if user.is_staff or user.is_superuser:  # made by an earlier version: a known password must not open /admin/
            user.is_staff = user.is_superuser = False
            user.save(update_fields=["is_staff", "is_superuser"])
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
                f"  Log in as {DEMO_USER} / {DEMO_PASSWORD} (a local demo; `make run` sets DEMO=true)\n"
                f"  The demo assistant: {settings.SITE_URL}/a/{DEMO_SLUG}/\n"
            )
        )
