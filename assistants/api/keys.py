"""Team API keys: ``cs_<prefix>_<secret>``, shown once, stored as a sha256."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from assistants.models import ApiKey, Team

SCOPES = frozenset(ApiKey.Scope.values)
TOUCH_INTERVAL = timedelta(minutes=1)  # last_used_at is written at most this often per key


def key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(*, team: Team, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """A new key and its full text, which is not stored and cannot be shown again."""
    scopes = sorted(set(scopes))
    if not scopes or not SCOPES.issuperset(scopes):
        raise ValueError(f"scopes must be a non-empty subset of {sorted(SCOPES)}")
    prefix = secrets.token_hex(4)
    raw_key = f"cs_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(team=team, name=name, prefix=prefix, key_hash=key_hash(raw_key), scopes=scopes)
    return key, raw_key


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    """Revoke the key for good; requests made with it are refused from now on."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The live key with this text (its team loaded), or None; notes when it was last used."""
    if not raw_key.startswith("cs_"):
        return None
    key = ApiKey.objects.select_related("team").filter(key_hash=key_hash(raw_key), revoked_at__isnull=True).first()
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or key.last_used_at <= now - TOUCH_INTERVAL:
        # Conditional, so concurrent requests of one key write once per interval, not once each.
        ApiKey.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - TOUCH_INTERVAL), pk=key.pk
        ).update(last_used_at=now)
        key.last_used_at = now
    return key
