"""Reads of webhooks for the dashboard."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from assistants.models import Team, WebhookDelivery, WebhookEndpoint


def endpoints_for_team(*, team: Team) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(team=team).annotate(
        delivered=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.SUCCEEDED)),
        failed=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.FAILED)),
        pending=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.PENDING)),
    )


def deliveries_for_endpoint(*, endpoint: WebhookEndpoint, limit: int = 50) -> list[WebhookDelivery]:
    """The endpoint's latest deliveries, each with its attempts (newest delivery first)."""
    return list(endpoint.deliveries.prefetch_related("attempt_log").order_by("-created_at", "-id")[:limit])
