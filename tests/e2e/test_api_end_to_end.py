"""The whole path through the REST API alone: create an assistant, add the DRF site served on
loopback, follow the real worker's crawl, ask a question, and export the conversation."""

import csv
import io
import json

import pytest

from assistants.api.keys import api_key_create
from tests.assistants.api.conftest import Api
from tests.conftest import wait_for
from tests.factories import make_team

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = "How do I set the default pagination style?"
PAGE = "/api-guide/pagination/"


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True  # the site is served on 127.0.0.1 (the worker is told too)


def test_crawl_ask_and_export_through_the_api(celery_worker_process, drf_site, drf_vectors):
    _, raw_key = api_key_create(team=make_team(), name="e2e", scopes=["read", "write", "chat"])
    api = Api(raw_key)

    response = api.post("/assistants", {"name": "DRF docs"})
    assert response.status_code == 201, response.content
    assistant = response.json()

    # Start on the page that holds the answer: the crawl's page cap then surely includes it; the whole
    # site, not only the page's folder.
    response = api.post(
        f"/assistants/{assistant['id']}/sources",
        {"url": f"{drf_site}{PAGE}", "max_pages": 30, "max_depth": 1, "whole_site": True},
    )
    assert response.status_code == 201, response.content
    source = response.json()
    assert source["progress"]["run"]["status"] == "queued"

    def crawled():
        body = api.get(f"/sources/{source['id']}").json()
        return body if body["progress"]["run"]["status"] in {"done", "failed"} else None

    progress = wait_for(crawled, timeout=300, interval=1, message="the crawl to finish")["progress"]
    assert progress["run"]["status"] == "done", progress
    assert 20 <= progress["run"]["pages_fetched"] <= 30
    assert progress["documents"]["pending"] == 0 and progress["documents"]["chunks"] > 100

    response = api.post(f"/assistants/{assistant['id']}/chat", {"question": QUESTION})
    assert response.status_code == 200, response.content
    answer = response.json()
    cited = [citation["url"] for citation in answer["citations"]]
    assert any(PAGE in url for url in cited), cited
    assert "[1]" in answer["answer"] and all(url.startswith(drf_site) for url in cited)

    export = f"/assistants/{assistant['id']}/conversations/export"
    response = api.get(export, format="jsonl")
    assert response.status_code == 200 and response["Content-Type"] == "application/x-ndjson"
    rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [(row["conversation_id"], row["role"]) for row in rows] == [
        (answer["conversation_id"], "user"),
        (answer["conversation_id"], "assistant"),
    ]
    assert rows[0]["text"] == QUESTION
    assert rows[1]["text"] == answer["answer"] and rows[1]["citations"] == answer["citations"]

    response = api.get(export, format="csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["role"] for row in table] == ["user", "assistant"]
    assert table[1]["text"] == answer["answer"] and json.loads(table[1]["citations"]) == answer["citations"]
