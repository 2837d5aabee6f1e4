"""Writes for teams, assistants and conversations."""

from __future__ import annotations

import logging
import secrets
import shutil
import smtplib
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from assistants.models import Assistant, Conversation, Feedback, Invitation, Membership, Message, Team
from assistants.selectors import INVITATION_SALT, invitation_token_hash
from assistants.webhooks import services as webhooks
from ingestion.embedding import DEFAULT_MODEL, embedding_dims
from ingestion.services import upload_folder
from ingestion.spaces import space_create, space_drop

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


class TeamError(ValueError):
    """A change the team cannot take (the last owner removed, an invitation to a member, a failed email);
    its text says why, in plain words, for the field it concerns."""


class EmailNotSent(TeamError):
    """The SMTP server refused or could not be reached; what was to be sent is kept."""


def team_update(*, team: Team, name: str) -> Team:
    team.name = name
    team.save(update_fields=["name"])
    return team


def _owners_locked(team_id: int) -> list[int]:
    """The ids of the team's owner memberships, locked until the transaction ends: two owners demoting
    each other at once cannot both pass the last-owner check."""
    return list(
        Membership.objects.select_for_update()
        .filter(team_id=team_id, role=Membership.Role.OWNER)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def membership_role_change(*, membership: Membership, role: str) -> Membership:
    """Give a member another role; the team keeps at least one owner."""
    if role not in Membership.Role.values:
        raise TeamError("Choose owner, admin or member.")
    with transaction.atomic():
        owners = _owners_locked(membership.team_id)
        if role != Membership.Role.OWNER and owners == [membership.pk]:
            raise TeamError("The team needs an owner: make someone else an owner first.")
        Membership.objects.filter(pk=membership.pk).update(role=role)
    membership.role = role
    return membership


def membership_on_duty_set(*, membership: Membership, on_duty: bool) -> Membership:
    """Mark a member on duty (they get the emails of visitors asking for a person) or off duty."""
    Membership.objects.filter(pk=membership.pk).update(on_duty=bool(on_duty))
    membership.on_duty = bool(on_duty)
    return membership


def membership_remove(*, membership: Membership) -> None:
    """Remove someone from the team; the team keeps at least one owner."""
    with transaction.atomic():
        if _owners_locked(membership.team_id) == [membership.pk]:
            raise TeamError("The last owner cannot be removed: make someone else an owner first.")
        membership.delete()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def invitation_create(*, team: Team, email: str, role: str, invited_by: User, site_url: str) -> Invitation:
    """Invite ``email`` to the team with ``role`` and email them the link (see :func:`invitation_send`).
    Inviting an address again replaces its pending invitation (a new link, the new role)."""
    email = email.strip().lower()
    if Membership.objects.filter(team=team, user__email__iexact=email).exists():
        raise TeamError(f"{email} is already a member of this team.")
    if role not in Membership.Role.values:
        raise TeamError("Choose owner, admin or member.")
    with transaction.atomic():
        invitation = Invitation.objects.filter(team=team, email=email, accepted_at__isnull=True).first()
        if invitation is None:
            invitation = Invitation(team=team, email=email)
        invitation.role = role
        invitation.invited_by = invited_by
        link = _invitation_new_link(invitation, site_url)
    _invitation_email(invitation, link)
    return invitation


def invitation_send(*, invitation: Invitation, site_url: str) -> Invitation:
    """Email the invitation again, with a new link (the old one stops working)."""
    with transaction.atomic():
        link = _invitation_new_link(invitation, site_url)
    _invitation_email(invitation, link)
    return invitation


def _invitation_new_link(invitation: Invitation, site_url: str) -> str:
    """A new secret for the invitation (its sha256 stored) and the signed, expiring link that carries it."""
    secret = secrets.token_urlsafe(32)
    invitation.token_hash = invitation_token_hash(secret)
    invitation.sent_at = timezone.now()
    invitation.save()
    token = signing.dumps(secret, salt=INVITATION_SALT)
    return site_url.rstrip("/") + reverse("invitation_accept", kwargs={"token": token})


def _invitation_email(invitation: Invitation, link: str) -> None:
    inviter = invitation.invited_by
    who = _one_line(inviter.get_full_name() or inviter.username) if inviter else "A member"
    team = _one_line(invitation.team.name)
    role = Membership.Role(invitation.role).label.lower()
    body = (
        f"Hello,\n\n{who} invited you to join the team “{team}” on Chatsite as {'an' if role[0] in 'aeiou' else 'a'} "
        f"{role}.\n\nAccept the invitation (you can sign up or log in there):\n{link}\n\n"
        f"The link works for {settings.INVITATION_DAYS} days. If you did not expect it, ignore this email.\n"
    )
    try:
        send_mail(f"{who} invited you to {team} on Chatsite", body, None, [invitation.email])
    except (smtplib.SMTPException, OSError) as exc:
        logger.warning("invitation %s: the email could not be sent: %s", invitation.pk, exc)
        raise EmailNotSent(
            f"The invitation is saved, but the email to {invitation.email} could not be sent ({exc}). "
            "Press Resend to try again."
        ) from exc


def invitation_revoke(*, invitation: Invitation) -> None:
    invitation.delete()


def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """Join the invitation's team with its role (someone already a member keeps their role)."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at is not None:
            raise TeamError("This invitation has already been used.")
        membership, _ = Membership.objects.get_or_create(
            team_id=invitation.team_id, user=user, defaults={"role": invitation.role}
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def user_signup_invited(*, username: str, password: str, invitation: Invitation) -> tuple[User, Membership]:
    """A new account for the invited address, joining the invitation's team (no team of its own)."""
    with transaction.atomic():
        user = User.objects.create_user(username=username, email=invitation.email, password=password)
        membership = invitation_accept(invitation=invitation, user=user)
    return user, membership


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


def assistant_delete(*, assistant: Assistant) -> None:
    """The assistant and everything it owns: its sources, documents, conversations, keys to it (the
    cascade), its chunk partitions (dropped) and its uploaded and downloaded files (removed once the
    deletion is committed)."""
    folders = [upload_folder(source_id) for source_id in assistant.sources.values_list("pk", flat=True)]
    with transaction.atomic():
        for space in assistant.spaces.all():
            space_drop(space=space)
        assistant.delete()
        transaction.on_commit(lambda: _remove_folders(folders))


def _remove_folders(folders: list[Path]) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def conversation_for_visitor(
    *, assistant: Assistant, visitor_token: str, conversation_id: int | None, page_url: str = ""
) -> Conversation:
    """The visitor's conversation when the id is theirs, else a new one."""
    if conversation_id:
        conversation = Conversation.objects.filter(
            pk=conversation_id, assistant=assistant, visitor_token=visitor_token
        ).first()
        if conversation:
            conversation.assistant = assistant  # the one the query matched: not read again by the turn
            return conversation
    return Conversation.objects.create(assistant=assistant, visitor_token=visitor_token, page_url=page_url[:2000])


def message_add(*, conversation: Conversation, role: str, text: str, **fields) -> Message:
    """A message of the conversation; the team's ``message.created`` webhooks are sent after commit."""
    with transaction.atomic():
        message = Message.objects.create(conversation=conversation, role=role, text=text, **fields)
        Conversation.objects.filter(pk=conversation.pk).update(updated_at=message.created_at)
        webhooks.message_created(message)
    return message


def answer_rate(*, message: Message, rating: int, comment: str = "") -> Feedback:
    """The visitor's rating of an answer (1 or -1, with a comment); rating again replaces it. The team's
    ``conversation.rated`` webhooks are sent after commit."""
    with transaction.atomic():
        feedback, _ = Feedback.objects.update_or_create(
            message=message,
            kind=Feedback.Kind.RATING,
            defaults={"conversation": message.conversation, "rating": rating, "comment": comment},
        )
        question = (
            Message.objects.filter(conversation_id=message.conversation_id, role=Message.Role.USER, id__lt=message.pk)
            .order_by("-id")
            .values_list("text", flat=True)
            .first()
        )
        assistant = message.conversation.assistant
        webhooks.emit(
            team=assistant.team_id,
            event_type="conversation.rated",
            data={
                "conversation_id": message.conversation_id,
                "assistant_id": assistant.pk,
                "message_id": message.pk,
                "rating": rating,
                "comment": comment,
                "question": question or "",
                "answer": message.text,
                "rated_at": feedback.updated_at.isoformat(),
            },
        )
    return feedback


def assistant_access_code_set(*, assistant: Assistant, code: str | None) -> Assistant:
    """Set (a Django password hash) or clear (None) the code an internal assistant asks for first.
    Changing it signs every visitor out, as their pass is tied to the hash (see chat_views)."""
    from django.contrib.auth.hashers import make_password

    assistant.access_code_hash = make_password(code) if code else ""
    assistant.save(update_fields=["access_code_hash"])
    return assistant


def custom_domain_add(*, assistant: Assistant, host: str):
    """A custom host for the assistant, with a fresh verification token (unverified). Unverified claims of
    the host older than CUSTOM_DOMAIN_CLAIM_DAYS (anyone's) are removed: a claim nobody proved expires."""
    from django.conf import settings
    from django.utils import timezone

    from assistants.models import CustomDomain

    expired = timezone.now() - timedelta(days=settings.CUSTOM_DOMAIN_CLAIM_DAYS)
    CustomDomain.objects.filter(host=host, verified_at__isnull=True, created_at__lt=expired).delete()
    return CustomDomain.objects.create(
        assistant=assistant, host=host, verification_token="chatsite-verify-" + secrets.token_urlsafe(24)
    )


def custom_domain_verify(*, domain):
    """Check that the domain's owner published its token; record success or the reason it failed. The
    first claim to be verified takes the host; the other (unverified) claims of it are removed."""
    from django.conf import settings
    from django.utils import timezone

    from assistants.domains import verification as domains
    from assistants.models import CustomDomain

    if not domain.verified_at and domain.created_at < timezone.now() - timedelta(
        days=settings.CUSTOM_DOMAIN_CLAIM_DAYS
    ):
        error = f"This claim expired after {settings.CUSTOM_DOMAIN_CLAIM_DAYS} days: remove it and add the host again."
    else:
        error = domains.check_control(host=domain.host, token=domain.verification_token)
    with transaction.atomic():
        claims = list(CustomDomain.objects.select_for_update().filter(host=domain.host).order_by("pk"))
        if not error and any(claim.verified_at and claim.pk != domain.pk for claim in claims):
            error = "Another team has already verified this host."
        if error:
            domain.last_check_error = error[:300]
        else:
            domain.verified_at = domain.verified_at or timezone.now()
            domain.last_check_error = ""
            CustomDomain.objects.filter(host=domain.host, verified_at__isnull=True).exclude(pk=domain.pk).delete()
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
