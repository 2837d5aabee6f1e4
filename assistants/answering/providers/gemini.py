"""Google Gemini's streamGenerateContent wire format."""

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


class GeminiProvider(_StreamingProvider):
    """``POST {base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse``."""

    name = "gemini"

    def _build_request(self, messages: list[dict]) -> _Request:
        config = self.config
        model = config.model.removeprefix("models/")
        body: dict[str, Any] = {
            "contents": [
                {"role": "model" if m["role"] == "assistant" else "user", "parts": [{"text": m["content"]}]}
                for m in messages
                if m["role"] != "system"
            ]
        }
        system = _system_text(messages)
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        body["generationConfig"] = {"temperature": config.temperature, "maxOutputTokens": config.max_tokens}
        return _Request(
            url=f"{config.base_url.rstrip('/')}/v1beta/models/{model}:streamGenerateContent",
            params={"alt": "sse"},
            headers={"Accept": "text/event-stream", **({"x-goog-api-key": config.api_key} if config.api_key else {})},
            body=body,
        )

    def _handle_event(self, event: SSEEvent, state: _StreamState) -> Iterable[str]:
        payload = self._payload(event, state)
        if payload is None:
            return []
        if "error" in payload:
            error = payload["error"] if isinstance(payload["error"], dict) else {"message": payload["error"]}
            kind = "rate_limited" if error.get("status") == "RESOURCE_EXHAUSTED" else "unavailable"
            raise ProviderError(kind, f"error in stream: {error.get('status')}: {error.get('message')}")
        usage = payload.get("usageMetadata")
        if isinstance(usage, dict):
            state.input_tokens = usage.get("promptTokenCount")
            state.output_tokens = usage.get("candidatesTokenCount")
        block_reason = (payload.get("promptFeedback") or {}).get("blockReason")
        if block_reason:
            raise ProviderError("bad_response", f"prompt blocked: {block_reason}")
        texts = []
        for candidate in (payload.get("candidates") or [])[:1]:
            for part in (candidate.get("content") or {}).get("parts") or []:
                if isinstance(part.get("text"), str) and not part.get("thought"):
                    texts.append(part["text"])
            if candidate.get("finishReason"):
                state.finished = True
        return texts
