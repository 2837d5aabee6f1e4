"""What the operator commands share: finding an assistant by the slug an operator types."""

from django.core.management.base import CommandError

from assistants.models import Assistant


def assistant_for_slug(slug: str) -> Assistant:
    assistant = Assistant.objects.filter(slug=slug).first()
    if assistant is None:
        raise CommandError(f"No assistant with the slug {slug!r}.")
    return assistant
