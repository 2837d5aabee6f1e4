"""Writes for teams, assistants and conversations."""

from __future__ import annotations

import logging
import secrets

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.text import slugify

from assistants.models import Assistant, Conversation, Membership, Message, Team
from ingestion.embedding import DEFAULT_MODEL, embedding_dims
from ingestion.spaces import space_create

logger = logging.getLogger(__name__)


def _unique_slug(model, name: str) -> str:
    base = slugify(name)[:100] or "item"
    slug = base
    while model.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


def team_create(*, name: str, owner: User) -> Team:
    with transaction.atomic():
        team = Team.objects.create(name=name, slug=_unique_slug(Team, name))
        Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    return team


def user_signup(*, username: str, email: str, password: str, team_name: str) -> tuple[User, Team]:
    with transaction.atomic():
        user = User.objects.create_user(username=username, email=email, password=password)
        team = team_create(name=team_name, owner=user)
    return user, team


def assistant_create(
    *, team: Team, name: str, embedding_model: str = "", access: dict | None = None, **fields
) -> Assistant:
    """An assistant with its first embedding space, ready to receive sources; ``access`` as in
    :func:`assistant_update`."""
    from django.conf import settings

    model_name = embedding_model or settings.EMBEDDING_MODEL or DEFAULT_MODEL
    dims = embedding_dims(model_name)
    with transaction.atomic():
        assistant = Assistant.objects.create(team=team, name=name, slug=_unique_slug(Assistant, name), **fields)
        space_create(assistant=assistant, model_name=model_name, dims=dims, active=True)
        if access:
            assistant_access_code_set(assistant=assistant, **access)
    return assistant


def assistant_update(*, assistant: Assistant, access: dict | None = None, **fields) -> Assistant:
    """Change the assistant's fields; ``access`` {"code": str} sets the access code, {"code": None}
    removes it, None or {} keeps it (the dashboard form's and the API's ``split()``)."""
    with transaction.atomic():
        for key, value in fields.items():
            setattr(assistant, key, value)
        assistant.save()
        if access:
            assistant_access_code_set(assistant=assistant, **access)
    return assistant


def conversation_for_visitor(
    *, assistant: Assistant, visitor_token: str, conversation_id: int | None, page_url: str = ""
) -> Conversation:
    """The visitor's conversation when the id is theirs, else a new one."""
    if conversation_id:
        conversation = Conversation.objects.filter(
            pk=conversation_id, assistant=assistant, visitor_token=visitor_token
        ).first()
        if conversation:
            return conversation
    return Conversation.objects.create(assistant=assistant, visitor_token=visitor_token, page_url=page_url[:2000])


def message_add(*, conversation: Conversation, role: str, text: str, **fields) -> Message:
    message = Message.objects.create(conversation=conversation, role=role, text=text, **fields)
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=message.created_at)
    return message


def assistant_access_code_set(*, assistant: Assistant, code: str | None) -> Assistant:
    """Set (a Django password hash) or clear (None) the code an internal assistant asks for first.
    Changing it signs every visitor out, as their pass is tied to the hash (see chat_views)."""
    from django.contrib.auth.hashers import make_password

    assistant.access_code_hash = make_password(code) if code else ""
    assistant.save(update_fields=["access_code_hash"])
    return assistant


def custom_domain_add(*, assistant: Assistant, host: str):
    """A custom host for the assistant, with a fresh verification token (unverified)."""
    from assistants.models import CustomDomain

    return CustomDomain.objects.create(
        assistant=assistant, host=host, verification_token="chatsite-verify-" + secrets.token_urlsafe(24)
    )


def custom_domain_verify(*, domain):
    """Check that the domain's owner published its token; record success or the reason it failed."""
    from django.utils import timezone

    from assistants.domains import verification as domains

    error = domains.check_control(host=domain.host, token=domain.verification_token)
    if error:
        domain.last_check_error = error[:300]
    else:
        domain.verified_at = domain.verified_at or timezone.now()
        domain.last_check_error = ""
    domain.save(update_fields=["verified_at", "last_check_error"])
    return domain


def custom_domain_delete(*, domain) -> None:
    domain.delete()


WIDGET_SEEN_EVERY_SECONDS = 300  # the loader's check runs on every page view; one write per few minutes


def widget_seen_record(*, assistant: Assistant, origin: str) -> None:
    """Record that the widget's loader was allowed to open on ``origin`` (the dashboard's "installed");
    at most one write per assistant and WIDGET_SEEN_EVERY_SECONDS, unless the site changes."""
    from datetime import timedelta

    from django.db.models import Q
    from django.utils import timezone

    now = timezone.now()
    stale = Q(widget_seen_at__isnull=True) | Q(widget_seen_at__lt=now - timedelta(seconds=WIDGET_SEEN_EVERY_SECONDS))
    Assistant.objects.filter(stale | ~Q(widget_seen_origin=origin[:300]), pk=assistant.pk).update(
        widget_seen_at=now, widget_seen_origin=origin[:300]
    )
