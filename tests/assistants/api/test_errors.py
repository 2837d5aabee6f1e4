"""Every refusal has the one error shape and the status that says what went wrong."""

import json

import pytest

from assistants.api.http import MAX_BODY_BYTES
from assistants.models import Assistant
from tests.assistants.api.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_unknown_methods_are_405_with_allow(api, assistant):
    response = api.request("PUT", f"/assistants/{assistant.pk}", {"name": "x"})
    details = assert_error(response, 405, "method_not_allowed")
    assert details == {"allowed": ["DELETE", "GET", "PATCH"]} and response["Allow"] == "DELETE, GET, PATCH"
    assert_error(api.get(f"/assistants/{assistant.pk}/chat"), 405, "method_not_allowed")
    assert_error(api.post("/openapi.json"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("{not json", "application/json"),
        ("[1, 2]", "application/json"),
        ("name=x", "application/x-www-form-urlencoded"),
    ],
)
def test_bodies_must_be_json_objects(api, data, content_type):
    response = api.client.post("/api/v1/assistants", data=data, content_type=content_type, headers=api.headers)
    assert_error(response, 400, "invalid_request")
    assert not Assistant.objects.exists()


def test_a_body_over_the_limit_is_413(api):
    response = api.post("/assistants", {"name": "x", "system_prompt": "a" * MAX_BODY_BYTES})
    assert_error(response, 413, "payload_too_large")


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(api, settings, team, api_with):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    assert [api.get("/assistants").status_code for _ in range(3)] == [200, 200, 200]
    response = api.get("/assistants")
    details = assert_error(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60 and details["limit"] == 3
    assert api_with(team, ["read"]).get("/assistants").status_code == 200  # each key has its own window


def test_the_description_is_public(client):
    assert json.loads(client.get("/api/v1/openapi.json").content)["openapi"].startswith("3.1")
    assert client.get("/api/v1/docs").status_code == 200


@pytest.mark.parametrize("path", ["/", "/nope", "/assistants/-1", "/assistants/1/nope", "/docs/extra"])
def test_unknown_paths_are_404_in_the_error_shape(api, path):
    assert_error(api.get(path), 404, "not_found")


def test_an_idempotency_key_over_255_characters_is_refused(api):
    response = api.post("/assistants", {"name": "Docs Bot"}, headers={"Idempotency-Key": "k" * 256})
    assert assert_error(response, 400, "invalid_request") == {"header": "Idempotency-Key"}
    assert not Assistant.objects.exists()


def test_query_parameters_are_refused_by_name(api, assistant):
    details = assert_error(api.get(f"/assistants/{assistant.pk}/documents", limit="2.5"), 400, "invalid_request")
    assert details == {"parameter": "limit"}
