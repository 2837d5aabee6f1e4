"""openapi.json describes the API that answers: every route and method, and real response shapes."""

import re

import pytest
from django.urls import URLPattern, get_resolver

from assistants.api.schema import OPENAPI
from assistants.models import Conversation, Message
from tests.assistants.api.jsonschema_subset import validate

pytestmark = pytest.mark.django_db


def api_routes() -> set[tuple[str, str]]:
    """(method, OpenAPI path) for every method every /api/v1/ URL answers."""
    include = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/v1/")
    routes = set()
    for pattern in include.url_patterns:
        assert isinstance(pattern, URLPattern)
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        routes |= {(method.lower(), path) for method in pattern.callback.api_methods}
    return routes


def documented() -> set[tuple[str, str]]:
    return {(method, path) for path, item in OPENAPI["paths"].items() for method in item}


def test_every_route_is_documented_and_nothing_else():
    assert api_routes() == documented()


def test_every_operation_documents_its_path_parameters_and_errors():
    for path, item in OPENAPI["paths"].items():
        for method, operation in item.items():
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert names == set(re.findall(r"{(\w+)}", path)), (method, path)
            if "x-scope" in operation:
                assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)


def test_the_served_document_is_the_schema(client):
    assert client.get("/api/v1/openapi.json").json() == OPENAPI


def test_the_docs_page_lists_every_operation(client):
    page = client.get("/api/v1/docs").content.decode()
    assert "<script" not in page
    for method, path in documented():
        assert f"{method.upper()} /api/v1{path}" in page


def _response_schema(method: str, path: str, status: int) -> dict:
    response = OPENAPI["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        response = OPENAPI["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response["content"]["application/json"]["schema"]


def test_responses_match_their_schemas(api, assistant):
    conversation = Conversation.objects.create(assistant=assistant, visitor_token="v" * 30)
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        text="Hi [1]",
        citations=[{"n": 1, "title": "T", "url": "u", "section": "", "chunk_id": 3}],
    )
    source = api.post(f"/assistants/{assistant.pk}/sources", {"url": "https://docs.example.com/"}).json()
    calls = [
        ("get", "/assistants", "/assistants"),
        ("get", "/assistants/{assistant_id}", f"/assistants/{assistant.pk}"),
        ("get", "/assistants/{assistant_id}/sources", f"/assistants/{assistant.pk}/sources"),
        ("get", "/sources/{source_id}", f"/sources/{source['id']}"),
        ("get", "/assistants/{assistant_id}/conversations", f"/assistants/{assistant.pk}/conversations"),
        ("get", "/conversations/{conversation_id}", f"/conversations/{conversation.pk}"),
        ("get", "/conversations/{conversation_id}", "/conversations/0"),
        ("patch", "/assistants/{assistant_id}", f"/assistants/{assistant.pk}"),
    ]
    for method, template, path in calls:
        response = api.request(method.upper(), path, {"primary_color": "nope"} if method == "patch" else None)
        body = response.json()
        errors = validate(body, _response_schema(method, template, response.status_code), OPENAPI)
        assert not errors, (method, path, errors)
    assert not validate(source, _response_schema("post", "/assistants/{assistant_id}/sources", 201), OPENAPI)
    assert validate(
        {"data": [{"id": "1"}]}, _response_schema("get", "/assistants", 200), OPENAPI
    )  # the validator bites
