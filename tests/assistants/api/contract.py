"""The OpenAPI document as /api/v1/openapi.json serves it, and validation of real bodies against its
schemas (JSON Schema 2020-12, the dialect of OpenAPI 3.1, formats included)."""

import jsonschema_rs
from django.test import Client


def served_document() -> dict:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json", response.content[:300]
    return response.json()


def schema_errors(instance, schema: dict, document: dict) -> list[str]:
    """The ways ``instance`` breaks ``schema``, whose $refs point into ``document``; empty when valid."""
    validator = jsonschema_rs.validator_for({**schema, "components": document["components"]}, validate_formats=True)
    return [f"{'/'.join(map(str, error.instance_path))}: {error.message}" for error in validator.iter_errors(instance)]


def response_schema(document: dict, method: str, path: str, status: int, media: str = "application/json") -> dict:
    """The documented schema of ``method path``'s ``status`` response in ``media``."""
    response = document["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response["content"][media]["schema"]
