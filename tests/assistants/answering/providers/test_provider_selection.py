"""Which provider an assistant answers with, which key it may use, and what an answer costs."""

import pytest

from assistants.answering.providers import (
    AnthropicProvider,
    GeminiProvider,
    OpenAIProvider,
    Usage,
    api_key_for,
    provider_from_settings,
)
from assistants.models import Assistant


@pytest.fixture(autouse=True)
def operator(settings):
    """An operator who configured an OpenAI-compatible server and a key for each kind."""
    settings.LLM_PROVIDER = "openai"
    settings.LLM_BASE_URL = "https://llm.operator.test/v1"
    settings.LLM_MODEL = "gpt-4o-mini"
    settings.LLM_API_KEY = "sk-operator"
    settings.LLM_API_KEY_OPENAI = ""
    settings.LLM_API_KEY_ANTHROPIC = "sk-ant-operator"
    settings.LLM_API_KEY_GEMINI = "gm-operator"
    settings.LLM_TIMEOUT = 30.0


def test_an_assistant_without_overrides_uses_the_settings():
    for assistant in (None, Assistant()):
        provider = provider_from_settings(assistant)
        assert isinstance(provider, OpenAIProvider)
        config = provider.config
        assert (config.base_url, config.model, config.api_key, config.timeout) == (
            "https://llm.operator.test/v1",
            "gpt-4o-mini",
            "sk-operator",
            30.0,
        )


def test_an_assistant_can_pick_another_model_of_the_same_server():
    provider = provider_from_settings(Assistant(llm_model="gpt-4o"))
    assert provider.config.model == "gpt-4o" and provider.config.base_url == "https://llm.operator.test/v1"
    assert provider.config.api_key == "sk-operator"


def test_another_kind_goes_to_its_official_api_with_its_own_key():
    provider = provider_from_settings(Assistant(llm_provider="anthropic", llm_model="claude-sonnet-4-0"))
    assert isinstance(provider, AnthropicProvider)
    assert provider.config.base_url == "https://api.anthropic.com"
    assert provider.config.api_key == "sk-ant-operator"  # never the OpenAI key
    gemini = provider_from_settings(Assistant(llm_provider="gemini", llm_model="gemini-2.0-flash"))
    assert isinstance(gemini, GeminiProvider) and gemini.config.api_key == "gm-operator"
    # Another kind without a model keeps nothing of the settings' model: no provider.
    assert provider_from_settings(Assistant(llm_provider="anthropic")) is None


def test_a_base_url_typed_into_an_assistant_never_gets_the_operators_key():
    provider = provider_from_settings(Assistant(llm_base_url="https://evil.example/v1", llm_model="x"))
    assert provider.config.base_url == "https://evil.example/v1" and provider.config.api_key == ""
    other_port = provider_from_settings(Assistant(llm_base_url="https://llm.operator.test:8443/v1"))
    assert other_port.config.api_key == ""
    same_host = provider_from_settings(Assistant(llm_provider="anthropic", llm_base_url="https://llm.operator.test"))
    assert same_host is None  # anthropic without a model
    same_host = provider_from_settings(
        Assistant(llm_provider="anthropic", llm_base_url="https://llm.operator.test", llm_model="claude-x")
    )
    assert same_host.config.api_key == "sk-ant-operator"


def test_per_kind_keys_come_first_and_the_generic_key_only_serves_its_kind(settings):
    assert api_key_for("openai", "https://api.openai.com/v1") == "sk-operator"
    settings.LLM_API_KEY_OPENAI = "sk-openai-own"
    assert api_key_for("openai", "https://api.openai.com/v1") == "sk-openai-own"
    settings.LLM_API_KEY_GEMINI = ""
    assert api_key_for("gemini", "https://generativelanguage.googleapis.com") == ""


def test_an_unknown_kind_answers_offline(settings):
    assert provider_from_settings(Assistant(llm_provider="palm", llm_base_url="https://x.test", llm_model="m")) is None


def test_no_model_anywhere_answers_offline(settings):
    settings.LLM_BASE_URL = ""
    settings.LLM_MODEL = ""
    assert provider_from_settings(Assistant()) is None
    assert provider_from_settings(Assistant(llm_provider="openai")) is None


def test_usage_records_cost_from_the_price_table(settings):
    settings.LLM_PRICES = {
        "gpt-4o-mini": {"input": 0.15, "output": 0.60},
        "gemini-2.0-flash": {"input": 0.1, "output": 0.4},
    }
    assert Usage(1000, 200).record("gpt-4o-mini") == {
        "model": "gpt-4o-mini",
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "cost_usd": pytest.approx(0.00027),
    }
    assert Usage(1000, 200).record("models/gemini-2.0-flash")["cost_usd"] == pytest.approx(0.00018)
    assert "cost_usd" not in Usage(1000, 200).record("unknown-model")
    assert "cost_usd" not in Usage(1000, None).record("gpt-4o-mini")
