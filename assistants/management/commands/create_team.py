"""``create_team NAME --owner USERNAME``: a team owned by the user, created first when missing."""

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from assistants import services


class Command(BaseCommand):
    help = "Create a team owned by --owner (the user is created when missing; give --password then)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--owner", required=True, help="The owner's username.")
        parser.add_argument("--email", default="", help="For a new owner.")
        parser.add_argument("--password", help="For a new owner; without it the owner cannot log in until one is set.")

    def handle(self, *args, name, owner, email, password, **options):
        user = User.objects.filter(username=owner).first()
        if user is None:
            user = User.objects.create_user(username=owner, email=email, password=password)
            self.stdout.write(f"Created the user {owner}.")
        elif email or password:
            raise CommandError(f"The user {owner} exists; --email and --password are only for a new one.")
        team = services.team_create(name=name, owner=user)
        self.stdout.write(self.style.SUCCESS(f"Created the team {team.name} (slug {team.slug}), owned by {owner}."))
