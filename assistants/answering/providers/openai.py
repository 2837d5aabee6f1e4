"""The OpenAI-compatible chat-completions wire format (OpenAI, DeepSeek, Grok, DashScope, GLM,
Groq, Together, vLLM, Ollama, ...)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from assistants.answering.providers.base import (
    ProviderError,
    SSEEvent,
    _Request,
    _StreamingProvider,
    _StreamState,
)


class OpenAIProvider(_StreamingProvider):
    """``POST {base_url}/chat/completions`` with ``stream: true``, as OpenAI and its imitators speak it."""

    name = "openai"

    def _build_request(self, messages: list[dict]) -> _Request:
        config = self.config
        return _Request(
            url=f"{config.base_url.rstrip('/')}/chat/completions",
            headers={
                "Accept": "text/event-stream",
                **({"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}),
            },
            body={
                "model": config.model,
                "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
                "stream": True,
                "temperature": config.temperature,
                "max_tokens": config.max_tokens,
                "stream_options": {"include_usage": True},
            },
        )

    def _handle_event(self, event: SSEEvent, state: _StreamState) -> Iterable[str]:
        if event.data.strip() == "[DONE]":
            state.finished = state.stop_reading = True
            return []
        payload = self._payload(event, state)
        if payload is None:
            return []
        if "error" in payload:
            raise _openai_stream_error(payload["error"])
        usage = payload.get("usage")
        if isinstance(usage, dict):
            state.input_tokens = usage.get("prompt_tokens")
            state.output_tokens = usage.get("completion_tokens")
        texts = []
        for choice in payload.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            content = (choice.get("delta") or {}).get("content")
            if isinstance(content, str):
                texts.append(content)
            if choice.get("finish_reason"):
                state.finished = True
        return texts


def _openai_stream_error(error: Any) -> ProviderError:
    """An ``{"error": {...}}`` object sent inside an OpenAI-style stream."""
    if not isinstance(error, dict):
        error = {"message": str(error)}
    label = f"{error.get('type') or ''} {error.get('code') or ''}".lower()
    kind = "rate_limited" if "rate_limit" in label else "unavailable"
    return ProviderError(kind, f"error in stream: {error.get('message') or error}")
