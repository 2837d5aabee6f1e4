"""Shared role fixtures: a team with an owner, an admin and a member, and an outsider in another team."""

from dataclasses import dataclass

from django.contrib.auth.models import User

from assistants.models import Membership, Team
from tests.factories import make_assistant, make_team, make_user

ROLES = ("owner", "admin", "member", "outsider")


@dataclass
class Crew:
    team: Team
    users: dict[str, User]  # by role, "outsider" included (a member of another team)

    def user(self, role: str) -> User:
        return self.users[role]


def make_crew() -> Crew:
    owner = make_user()
    team = make_team(owner=owner)
    users = {"owner": owner}
    for role in ("admin", "member"):
        users[role] = make_user()
        Membership.objects.create(team=team, user=users[role], role=role)
    users["outsider"] = make_user()
    make_assistant(team=make_team(owner=users["outsider"]))  # the outsider has a team and an assistant of its own
    return Crew(team=team, users=users)
