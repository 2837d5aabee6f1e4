"""``create_assistant --team SLUG NAME``: an assistant with its embedding space, ready for sources."""

from django.core.management.base import BaseCommand, CommandError

from assistants import services
from assistants.models import Team


class Command(BaseCommand):
    help = "Create an assistant in a team."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--team", required=True, help="The team's slug.")

    def handle(self, *args, name, team, **options):
        found = Team.objects.filter(slug=team).first()
        if found is None:
            raise CommandError(f"No team with the slug {team!r}.")
        assistant = services.assistant_create(team=found, name=name)
        self.stdout.write(
            self.style.SUCCESS(f"Created the assistant {assistant.name} (slug {assistant.slug}, id {assistant.pk}).")
        )
