"""The middleware chain runs in one thread per request, with no trip to it per hook
(``chatsite.lib.one_thread``), through Django's ASGI request path (``AsyncClient``: the same chain
``ASGIHandler`` builds)."""

from __future__ import annotations

import asyncio

import asgiref.sync
import pytest
from django.test import AsyncClient

pytestmark = pytest.mark.django_db


def _trips(monkeypatch) -> list[str]:
    """The names of the functions sent to a thread by ``sync_to_async`` from now on."""
    trips: list[str] = []
    original = asgiref.sync.SyncToAsync.__init__

    def counting(self, func, *args, **kwargs):
        trips.append(getattr(func, "__qualname__", repr(func)))
        original(self, func, *args, **kwargs)

    monkeypatch.setattr(asgiref.sync.SyncToAsync, "__init__", counting)
    return trips


def test_no_middleware_hook_is_sent_to_a_thread_of_its_own(monkeypatch):
    trips = _trips(monkeypatch)
    # Refused by the async chat view at once: only the middleware and the request's signals run.
    response = asyncio.run(AsyncClient().post("/a/no-such/chat", "x", content_type="application/json"))
    assert response.status_code == 400
    hooks = [name for name in trips if "process_request" in name or "process_response" in name]
    assert hooks == [], f"{len(hooks)} middleware hooks went to a thread one by one: {hooks}"


def test_the_chain_still_runs_every_middleware(client):
    """Security headers, the session and CSRF still apply to a page (the chain runs synchronously)."""
    response = client.get("/login/")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "csrftoken" in response.cookies
