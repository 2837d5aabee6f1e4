"""The navigation bar's data: the user's teams, the current one, and the section of the page.

The current team is kept in the session. The team switcher sets it; a page of another of the user's
teams (an assistant, a conversation, ... named in its URL) makes that team the current one, so the
bar always names the team whose page is shown.
"""

from __future__ import annotations

from assistants import selectors
from assistants.models import Team

SESSION_KEY = "team_id"

# A URL's argument, and how a team is reached from the object it names.
_TEAM_OF = {
    "team_id": "pk",
    "assistant_id": "assistants",
    "conversation_id": "assistants__conversations",
    "source_id": "assistants__sources",
    "document_id": "assistants__sources__documents",
    "domain_id": "assistants__domains",
    "golden_id": "assistants__golden_questions",
    "gap_id": "assistants__content_gaps",
    "membership_id": "memberships",
    "invitation_id": "invitations",
    "lead_id": "leads",
    "endpoint_id": "webhook_endpoints",
    "delivery_id": "webhook_endpoints__deliveries",
}

# The bar's sections, by the name of the URL a page was reached by.
SECTIONS = {
    "dashboard": "assistants",
    "assistant_detail": "assistants",
    "assistant_create": "assistants",
    "assistant_settings": "assistants",
    "handoff_settings": "assistants",
    "library": "assistants",
    "golden_set": "assistants",
    "source_detail": "assistants",
    "source_edit": "assistants",
    "assistant_documents": "assistants",
    "assistant_playground": "assistants",
    "team_inbox": "inbox",
    "team_conversations": "conversations",
    "assistant_conversations": "conversations",
    "conversation_detail": "conversations",
    "team_analytics": "analytics",
    "assistant_analytics": "analytics",
    "gap_detail": "analytics",
    "gap_qa_add": "analytics",
    "gap_recheck": "analytics",
    "topics_rebuild": "analytics",
    "team_members": "team",
    "team_settings": "team",
    "team_api_keys": "api_keys",
    "team_leads": "leads",
    "lead_detail": "leads",
    "team_webhooks": "webhooks",
    "webhook_detail": "webhooks",
    "help": "help",
    "help_page": "help",
    "account": "account",
}


def remember_team(request, team: Team) -> None:
    """Make ``team`` the current team of the dashboard (the user must be a member)."""
    request.session[SESSION_KEY] = team.pk


def current_team(request, teams: list[Team] | None = None) -> Team | None:
    """The current team: the one the page belongs to, else the session's, else the user's first."""
    if not request.user.is_authenticated:
        return None
    teams = list(selectors.teams_for_user(user=request.user)) if teams is None else teams
    if not teams:
        return None
    by_id = {team.pk: team for team in teams}
    page_team = _page_team_id(request)
    if page_team in by_id and request.session.get(SESSION_KEY) != page_team:
        request.session[SESSION_KEY] = page_team
    return by_id.get(request.session.get(SESSION_KEY)) or teams[0]


def _page_team_id(request) -> int | None:
    """The team of the object the page's URL names, when the user is one of its members."""
    match = getattr(request, "resolver_match", None)
    for argument, path in _TEAM_OF.items():
        value = str((match.kwargs if match else {}).get(argument, ""))
        if value.isdigit():
            return selectors.team_id_reaching(user=request.user, path=path, pk=int(value))
    return None


def navigation(request) -> dict:
    """Template context: ``nav_teams`` (each with ``viewer_role``), ``nav_team`` and ``nav_section``."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    teams = list(selectors.teams_for_user(user=request.user))
    match = getattr(request, "resolver_match", None)
    return {
        "nav_teams": teams,
        "nav_team": current_team(request, teams),
        "nav_section": SECTIONS.get(match.url_name if match else "", ""),
    }
