"""Streaming chat-completion clients for the language-model APIs an assistant can answer with:
one module per wire format (``openai``, ``anthropic``, ``gemini``) over what they share (``base``:
retries, timeouts, the SSE parser, errors and usage). This module picks and configures one."""

from __future__ import annotations

import logging

import httpx
from django.conf import settings

from assistants.answering.providers.anthropic import AnthropicProvider
from assistants.answering.providers.base import ChatProvider, ProviderConfig, ProviderError, Usage, _StreamingProvider
from assistants.answering.providers.gemini import GeminiProvider
from assistants.answering.providers.openai import OpenAIProvider

__all__ = [
    "AnthropicProvider",
    "ChatProvider",
    "GeminiProvider",
    "OpenAIProvider",
    "ProviderConfig",
    "ProviderError",
    "Usage",
    "api_key_for",
    "provider_from_config",
    "provider_from_settings",
]

logger = logging.getLogger(__name__)

_PROVIDERS: dict[str, type[_StreamingProvider]] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
}


def provider_from_config(config: ProviderConfig) -> ChatProvider:
    """The provider for ``config.kind``; ValueError for an unknown kind."""
    try:
        provider_class = _PROVIDERS[config.kind]
    except KeyError:
        choices = ", ".join(_PROVIDERS)
        raise ValueError(f"unknown LLM provider {config.kind!r} (use one of {choices})") from None
    return provider_class(config)


#: Where each kind's official API lives, for an assistant that names a model but no base URL.
DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
}


def provider_from_settings(assistant=None, **overrides) -> ChatProvider | None:
    """The provider an assistant answers with, or None when no model is configured (the caller
    then answers with the offline extractive answerer).

    The LLM_* settings give the default; an assistant's ``llm_provider``, ``llm_model`` and
    ``llm_base_url`` override them one by one. An assistant that switches to another kind without a
    base URL gets that kind's official API (``DEFAULT_BASE_URLS``); one that switches kind keeps
    nothing of the settings' model or URL. ``overrides`` set other ``ProviderConfig`` fields
    (the query rewriter's short timeout, say). The API key comes from :func:`api_key_for`.
    """
    kind = settings.LLM_PROVIDER or "openai"
    base_url = settings.LLM_BASE_URL
    model = settings.LLM_MODEL
    if assistant is not None and (assistant.llm_provider or assistant.llm_model or assistant.llm_base_url):
        if assistant.llm_provider and assistant.llm_provider != kind:
            kind, base_url, model = assistant.llm_provider, DEFAULT_BASE_URLS.get(assistant.llm_provider, ""), ""
        base_url = assistant.llm_base_url or base_url or DEFAULT_BASE_URLS.get(kind, "")
        model = assistant.llm_model or model
    if not base_url or not model:
        return None
    if kind not in _PROVIDERS:
        logger.warning("unknown LLM provider %r: answering without a model", kind)
        return None
    options = {"timeout": settings.LLM_TIMEOUT, **overrides}
    return provider_from_config(
        ProviderConfig(kind=kind, base_url=base_url, api_key=api_key_for(kind, base_url), model=model, **options)
    )


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    return parsed.scheme, parsed.host, parsed.port


def api_key_for(kind: str, base_url: str) -> str:
    """The operator's API key for ``kind``, but only for a URL the operator trusts with it.

    ``LLM_API_KEY_<KIND>`` (OPENAI, ANTHROPIC, GEMINI) first, then ``LLM_API_KEY`` when ``kind``
    is the settings' own provider. A key is only ever sent to the kind's official API or to the
    host of ``LLM_BASE_URL``: a base URL typed into an assistant's form (a team's own vLLM, say)
    gets no key, so nobody can point an assistant at their server to collect the operator's key.
    """
    trusted = {_origin(DEFAULT_BASE_URLS[kind])} if kind in DEFAULT_BASE_URLS else set()
    if settings.LLM_BASE_URL:
        trusted.add(_origin(settings.LLM_BASE_URL))
    if _origin(base_url) is None or _origin(base_url) not in trusted:
        return ""
    key = {
        "openai": settings.LLM_API_KEY_OPENAI,
        "anthropic": settings.LLM_API_KEY_ANTHROPIC,
        "gemini": settings.LLM_API_KEY_GEMINI,
    }.get(kind, "")
    if not key and kind == (settings.LLM_PROVIDER or "openai"):
        key = settings.LLM_API_KEY
    return key
