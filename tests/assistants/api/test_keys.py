"""API keys: shown once, stored hashed, refused once revoked, limited to their scopes."""

import hashlib
from datetime import timedelta

import pytest

from assistants.api.keys import api_key_create, api_key_revoke
from assistants.models import ApiKey
from tests.assistants.api.conftest import Api, assert_error

pytestmark = pytest.mark.django_db


def test_a_key_is_shown_once_and_stored_hashed(team):
    key, raw = api_key_create(team=team, name="ci", scopes=["read", "read", "chat"])
    assert raw.startswith(f"cs_{key.prefix}_") and len(key.prefix) == 8 and len(raw) > 40
    stored = ApiKey.objects.get(pk=key.pk)
    assert stored.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert stored.scopes == ["chat", "read"]
    assert raw not in str([getattr(stored, field.attname) for field in ApiKey._meta.fields])
    assert Api(raw).get("/assistants").status_code == 200


def test_only_known_scopes_are_granted(team):
    for scopes in ([], ["admin"], ["read", "delete"]):
        with pytest.raises(ValueError):
            api_key_create(team=team, name="bad", scopes=scopes)
    assert not ApiKey.objects.exists()


def test_a_revoked_key_is_refused(team, key):
    api_key_revoke(key=key[0])
    response = Api(key[1]).get("/assistants")
    assert_error(response, 401, "unauthorized")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer cs_nope_nope", "Basic dXNlcjpwYXNz", "Token {key}", "Bearer {key}x"],
)
def test_a_missing_or_wrong_key_is_refused(key, authorization):
    api = Api(None)
    if authorization is not None:
        api.headers = {"Authorization": authorization.format(key=key[1])}
    assert_error(api.get("/assistants"), 401, "unauthorized")


def test_a_key_without_the_scope_is_forbidden(team, assistant, api_with):
    reader = api_with(team, ["read"])
    assert reader.get(f"/assistants/{assistant.pk}").status_code == 200
    details = assert_error(reader.patch(f"/assistants/{assistant.pk}", {"name": "x"}), 403, "insufficient_scope")
    assert details == {"required": "write", "granted": ["read"]}
    assert_error(reader.post(f"/assistants/{assistant.pk}/chat", {"question": "hi"}), 403, "insufficient_scope")
    assert_error(api_with(team, ["chat"]).get("/assistants"), 403, "insufficient_scope")


def test_last_used_is_written_at_most_once_a_minute(key, api):
    api.get("/assistants")
    first = ApiKey.objects.get(pk=key[0].pk).last_used_at
    assert first is not None
    api.get("/assistants")
    assert ApiKey.objects.get(pk=key[0].pk).last_used_at == first
    ApiKey.objects.filter(pk=key[0].pk).update(last_used_at=first - timedelta(minutes=2))
    api.get("/assistants")
    assert ApiKey.objects.get(pk=key[0].pk).last_used_at > first
