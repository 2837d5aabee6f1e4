"""Buying intent in what a visitor writes: words and phrases per language, editable per assistant."""

from __future__ import annotations

import re

# Phrases that show buying intent, by language; an assistant's own lists replace a language's.
DEFAULT_PHRASES: dict[str, list[str]] = {
    "en": [
        "pricing",
        "price",
        "prices",
        "how much",
        "cost",
        "quote",
        "demo",
        "trial",
        "free trial",
        "buy",
        "purchase",
        "subscription",
        "plans",
        "contact sales",
        "enterprise plan",
    ],
    "fr": ["prix", "tarif", "tarifs", "combien", "devis", "démo", "essai", "acheter", "abonnement"],
    "de": ["preis", "preise", "kosten", "wie viel", "angebot", "demo", "testversion", "kaufen", "abonnement"],
    "es": ["precio", "precios", "cuánto", "presupuesto", "cotización", "demo", "prueba", "comprar", "suscripción"],
    "zh": ["价格", "多少钱", "报价", "演示", "试用", "购买", "订阅"],
}
LANGUAGES = {"en": "English", "fr": "French", "de": "German", "es": "Spanish", "zh": "Chinese"}
MAX_PHRASES = 60
MAX_PHRASE_CHARS = 60


def phrases_cleaned(raw: str) -> list[str]:
    """Phrases typed one per line or separated by commas: trimmed, lower case, de-duplicated."""
    seen: list[str] = []
    for piece in re.split(r"[,\n]", raw or ""):
        phrase = " ".join(piece.split()).lower()[:MAX_PHRASE_CHARS]
        if phrase and phrase not in seen:
            seen.append(phrase)
    return seen[:MAX_PHRASES]


def phrases_for(configured: dict | None) -> dict[str, list[str]]:
    """The phrases in use: the assistant's own list for a language where it set one, else the default."""
    configured = configured or {}
    return {lang: list(configured.get(lang, DEFAULT_PHRASES[lang])) for lang in DEFAULT_PHRASES}


def _pattern(phrase: str) -> re.Pattern:
    if any("\u3000" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" for ch in phrase):  # CJK: no word breaks
        return re.compile(re.escape(phrase))
    return re.compile(r"(?<!\w)" + r"\s+".join(re.escape(word) for word in phrase.split()) + r"(?!\w)", re.IGNORECASE)


def matches(text: str, phrases: dict[str, list[str]]) -> list[str]:
    """The phrases of any language found in ``text``, in the order of the lists, each once."""
    found: list[str] = []
    for phrase_list in phrases.values():
        for phrase in phrase_list:
            if phrase not in found and _pattern(phrase).search(text or ""):
                found.append(phrase)
    return found
