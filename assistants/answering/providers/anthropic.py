"""The Anthropic Messages wire format."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from assistants.answering.providers.base import (
    ProviderError,
    SSEEvent,
    _Request,
    _StreamingProvider,
    _StreamState,
    _system_text,
)

_ANTHROPIC_ERROR_KINDS = {
    "rate_limit_error": "rate_limited",
    "authentication_error": "auth",
    "permission_error": "auth",
    "invalid_request_error": "bad_response",
    "not_found_error": "bad_response",
    "request_too_large": "bad_response",
}


class AnthropicProvider(_StreamingProvider):
    """``POST {base_url}/v1/messages`` with ``stream: true``."""

    name = "anthropic"

    def _build_request(self, messages: list[dict]) -> _Request:
        config = self.config
        body: dict[str, Any] = {"model": config.model, "max_tokens": config.max_tokens}
        system = _system_text(messages)
        if system:
            body["system"] = system
        body["messages"] = [{"role": m["role"], "content": m["content"]} for m in messages if m["role"] != "system"]
        body["stream"] = True
        body["temperature"] = config.temperature
        return _Request(
            url=f"{config.base_url.rstrip('/')}/v1/messages",
            headers={
                **({"x-api-key": config.api_key} if config.api_key else {}),
                "anthropic-version": "2023-06-01",
                "content-type": "application/json",
                "accept": "text/event-stream",
            },
            body=body,
        )

    def _handle_event(self, event: SSEEvent, state: _StreamState) -> Iterable[str]:
        payload = self._payload(event, state)
        if payload is None:
            return []
        kind = payload.get("type") or event.event
        if kind == "error":
            error = payload.get("error") or {}
            raise ProviderError(
                _ANTHROPIC_ERROR_KINDS.get(error.get("type"), "unavailable"),
                f"error in stream: {error.get('type')}: {error.get('message')}",
            )
        if kind == "message_start":
            usage = (payload.get("message") or {}).get("usage") or {}
            state.input_tokens = usage.get("input_tokens")
            state.output_tokens = usage.get("output_tokens")
        elif kind == "content_block_delta":
            delta = payload.get("delta") or {}
            if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                return [delta["text"]]
        elif kind == "message_delta":
            usage = payload.get("usage") or {}
            state.output_tokens = usage.get("output_tokens", state.output_tokens)
            if usage.get("input_tokens") is not None:
                state.input_tokens = usage["input_tokens"]
        elif kind == "message_stop":
            state.finished = state.stop_reading = True
        return []
