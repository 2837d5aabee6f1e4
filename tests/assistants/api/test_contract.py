"""openapi.json describes the API that answers: every route and method, real response shapes, choices,
limits and defaults as the models and settings have them, examples that fit; and the reference page
that draws it is served by us alone, under a strict Content-Security-Policy."""

import json
import re
from html.parser import HTMLParser

import pytest
from django.core.management import call_command
from django.urls import URLPattern, get_resolver

from assistants.answering.pipeline import MAX_QUESTION_CHARS
from assistants.forms import LANGUAGE_CHOICES, WebsiteSourceForm
from assistants.models import ApiKey, Assistant, Conversation, Feedback, Message
from assistants.selectors import LANGUAGES
from ingestion.models import CrawlRun, Document, Source
from tests.assistants.api.contract import response_schema, schema_errors, served_document

pytestmark = pytest.mark.django_db


@pytest.fixture
def document():
    return served_document()


def api_routes() -> set[tuple[str, str]]:
    """(method, OpenAPI path) for every method every /api/v1/ URL answers."""
    include = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/v1/")
    routes = set()
    for pattern in include.url_patterns:
        assert isinstance(pattern, URLPattern)
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        routes |= {(method.lower(), path) for method in pattern.callback.api_methods}
    return routes


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def test_every_route_is_documented_and_nothing_else(document):
    assert api_routes() == {(method, path) for method, path, _ in operations(document)}


def test_the_exported_document_is_the_served_one(document, tmp_path):
    call_command("export_openapi_schema", "--api", "assistants.api.urls.api", "--output", str(tmp_path / "api.json"))
    assert json.loads((tmp_path / "api.json").read_text()) == document


def test_every_operation_documents_its_parameters_refusals_and_an_example_call(document):
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids)) == len(api_routes())
    for method, path, operation in operations(document):
        where = f"{method} {path}"
        names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert names == set(re.findall(r"{(\w+)}", path)), where
        assert operation["summary"] and operation["tags"], where
        statuses = set(operation["responses"])
        if "x-scope" in operation:
            assert {"401", "403", "429"} <= statuses and operation["security"] == [{"TeamKey": []}], where
        else:
            assert operation["security"] == [] and path in ("/openapi.json", "/docs"), where
        if names:
            assert "404" in statuses, where
        if "requestBody" in operation:
            assert {"400", "413"} <= statuses, where
        for status, response in operation["responses"].items():
            if "$ref" in response:
                response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
                assert int(status) >= 400 and response["description"], where
        sample = operation["x-codeSamples"][0]["source"]
        assert sample.startswith(f"curl -X {method.upper()} ") and "/api/v1" + path.split("{")[0] in sample, where
        assert ("Authorization: Bearer" in sample) == ("x-scope" in operation), where


def _property(document: dict, schema: str, name: str) -> dict:
    return document["components"]["schemas"][schema]["properties"][name]


def _enum(document: dict, schema: str, name: str) -> list:
    return _property(document, schema, name)["enum"]


def test_choices_limits_and_defaults_come_from_the_models_and_settings(document, settings):
    assert _enum(document, "Source", "status") == Source.Status.values
    assert _enum(document, "Source", "kind") == Source.Kind.values
    assert (
        _enum(document, "Source", "schedule") == _enum(document, "SourceCreate", "schedule") == Source.Schedule.values
    )
    assert _enum(document, "CrawlProgress", "status") == CrawlRun.Status.values
    assert _enum(document, "Document", "status") == Document.Status.values
    assert _enum(document, "Feedback", "kind") == Feedback.Kind.values
    assert _enum(document, "Message", "role") == Message.Role.values
    for name in ("launcher_position", "launcher_icon", "theme"):
        values = [value for value, _ in Assistant._meta.get_field(name).choices]
        assert _enum(document, "Assistant", name) == _enum(document, "AssistantUpdate", name) == values
    assert _enum(document, "AssistantUpdate", "language") == ["", *LANGUAGES] == [v for v, _ in LANGUAGE_CHOICES]
    assert {operation.get("x-scope") for _, _, operation in operations(document)} - {None} == set(ApiKey.Scope.values)

    form = WebsiteSourceForm()
    for name, setting in (("max_pages", settings.CRAWL_MAX_PAGES), ("max_depth", settings.CRAWL_MAX_DEPTH)):
        documented = _property(document, "SourceCreate", name)
        assert documented["default"] == form[name].initial == setting
        assert (documented["minimum"], documented["maximum"]) == (
            form.fields[name].min_value,
            form.fields[name].max_value,
        )
    limit = next(
        p
        for p in document["paths"]["/assistants/{assistant_id}/documents"]["get"]["parameters"]
        if p["name"] == "limit"
    )
    assert (limit["schema"]["default"], limit["schema"]["maximum"]) == (
        settings.API_PAGE_SIZE,
        settings.API_MAX_PAGE_SIZE,
    )
    assert _property(document, "Question", "question")["maxLength"] == MAX_QUESTION_CHARS
    assert str(settings.API_RATE_LIMIT_PER_MINUTE) in document["info"]["description"]
    settings.CRAWL_MAX_PAGES, settings.CRAWL_MAX_DEPTH = 123, 4  # the dashboard reads them when it shows the form
    assert (WebsiteSourceForm()["max_pages"].initial, WebsiteSourceForm()["max_depth"].initial) == (123, 4)


def test_the_document_built_once_follows_the_settings_it_states(document, settings):
    """The process keeps the document it built; a changed limit or site address is served at once."""
    served = served_document()
    assert served == document and served is not document  # each caller its own copy
    served["info"]["title"] = "changed by a caller"
    settings.API_RATE_LIMIT_PER_MINUTE, settings.SITE_URL = 7_654_321, "https://help.example.org"
    again = served_document()
    assert again["info"]["title"] == document["info"]["title"]
    assert "7654321 requests a minute" in again["info"]["description"]
    samples = [s["source"] for item in again["paths"].values() for op in item.values() for s in op["x-codeSamples"]]
    assert samples and all("https://help.example.org/api/v1/" in sample for sample in samples)


def test_every_example_fits_its_schema(document):
    checked = 0
    for name, schema in document["components"]["schemas"].items():
        for example in schema.get("examples", []):
            assert not schema_errors(example, {"$ref": f"#/components/schemas/{name}"}, document), name
            checked += 1
    for name, response in document["components"]["responses"].items():
        content = response["content"]["application/json"]
        assert not schema_errors(content["example"], content["schema"], document), name
        checked += 1
    for method, path, operation in operations(document):
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        for sample in operation["x-codeSamples"]:
            sent = re.search(r"-d '(.*)'$", sample["source"])
            assert bool(sent) == bool(body), (method, path)
            if sent:
                assert not schema_errors(json.loads(sent.group(1)), body["schema"], document), (method, path)
                checked += 1
    assert checked > 20
    assert schema_errors({"name": "x", "colour": "red"}, {"$ref": "#/components/schemas/AssistantCreate"}, document)


def test_responses_match_their_schemas(api, assistant):
    document = served_document()
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
        ("get", "/assistants/{assistant_id}/documents", f"/assistants/{assistant.pk}/documents?limit=0"),
        ("patch", "/assistants/{assistant_id}", f"/assistants/{assistant.pk}"),
    ]
    for method, template, path in calls:
        response = api.request(method.upper(), path, {"primary_color": "nope"} if method == "patch" else None)
        errors = schema_errors(
            response.json(), response_schema(document, method, template, response.status_code), document
        )
        assert not errors, (method, path, errors)
    assert not schema_errors(
        source, response_schema(document, "post", "/assistants/{assistant_id}/sources", 201), document
    )
    assert schema_errors({"data": [{"id": "1"}]}, response_schema(document, "get", "/assistants", 200), document)


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.assets, self.inline_scripts = [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href", "spec-url"):
            if attrs.get(name):
                self.assets.append(attrs[name])
        if tag == "script" and not attrs.get("src"):
            self.inline_scripts += 1


def test_the_docs_page_loads_only_what_we_serve_under_a_strict_csp(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    page = _Assets()
    page.feed(response.content.decode())
    assert page.inline_scripts == 0
    assert any(asset.endswith(".js") for asset in page.assets) and "openapi.json" in page.assets
    for asset in page.assets:
        assert not re.match(r"^(?:[a-z][a-z0-9+.-]*:|//)", asset, re.IGNORECASE), f"not ours: {asset}"
        served = client.get(asset if asset.startswith("/") else f"/api/v1/{asset}")
        assert served.status_code == 200, asset
        body = b"".join(served.streaming_content) if served.streaming else served.content
        assert body, asset
    policy = dict(directive.strip().split(" ", 1) for directive in response["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert not any("http" in sources or "unsafe-eval" in sources for sources in policy.values())
