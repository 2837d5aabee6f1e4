"""An API client that sends a team key, and the keys and teams the API tests use."""

import json

import pytest
from django.test import Client

from assistants.api.keys import api_key_create
from tests.factories import make_assistant, make_team

ALL_SCOPES = ["read", "write", "chat"]


class Api:
    """A Django test client for ``/api/v1/``: JSON in, the key in the Authorization header."""

    def __init__(self, raw_key: str | None):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {raw_key}"} if raw_key else {}

    def request(self, method: str, path: str, body=None, headers: dict | None = None, **extra):
        data = json.dumps(body) if body is not None else ""
        return self.client.generic(
            method,
            f"/api/v1{path}",
            data=data,
            content_type="application/json",
            headers=self.headers | (headers or {}),
            **extra,
        )

    def get(self, path: str, **params):
        return self.client.get(f"/api/v1{path}", params, headers=self.headers)

    def post(self, path: str, body=None, **kwargs):
        return self.request("POST", path, {} if body is None else body, **kwargs)

    def patch(self, path: str, body, **kwargs):
        return self.request("PATCH", path, body, **kwargs)

    def delete(self, path: str):
        return self.request("DELETE", path)


def assert_error(response, status: int, code: str) -> dict:
    """The one error shape, with this status and code; returns its details."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code and body["error"]["message"] and isinstance(body["error"]["details"], dict), (
        body
    )
    return body["error"]["details"]


@pytest.fixture
def team():
    return make_team()


@pytest.fixture
def assistant(team):
    return make_assistant(team, name="Acme Help")


@pytest.fixture
def key(team):
    """(ApiKey, raw key) with every scope."""
    return api_key_create(team=team, name="ci", scopes=ALL_SCOPES)


@pytest.fixture
def api(key):
    return Api(key[1])


@pytest.fixture
def api_with():
    """An Api whose key, on ``team``, has only ``scopes``."""

    def build(team, scopes):
        return Api(api_key_create(team=team, name="limited", scopes=scopes)[1])

    return build
