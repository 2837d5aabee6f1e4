"""Which language a text is in: the question's (to answer in it, and to search the content in its
own language) and the content's (measured once per assistant, when its gate is calibrated).

py3langid's naive Bayes model, ships in the package (no download), a tenth of a millisecond a
question. Short texts are ambiguous ("Does Django scale?" scores Italian a hair above English), so a
text counts as being in another language than the one expected only when the detector prefers it
by ``MIN_LOG_ODDS`` (natural log-likelihood ratio, about 20,000 to 1): "Django è scalabile?" clears
it by 25, every English question of the Django FAQ ties at 0 or stays under 2.
"""

from __future__ import annotations

import functools
from collections import Counter

# The languages told apart (the web's most used); others fall to the nearest of these.
LANGUAGES = "en it fr de es pt nl sv da no fi pl cs sk ru uk tr el ja zh ko ar he hi id vi ro hu ca bg hr sl".split()
MIN_LOG_ODDS = 10.0
NAMES = dict(
    zip(
        LANGUAGES,
        "English Italian French German Spanish Portuguese Dutch Swedish Danish Norwegian Finnish Polish Czech "
        "Slovak Russian Ukrainian Turkish Greek Japanese Chinese Korean Arabic Hebrew Hindi Indonesian "
        "Vietnamese Romanian Hungarian Catalan Bulgarian Croatian Slovenian".split(),
    )
)


@functools.lru_cache(maxsize=1)
def _identifier():
    import py3langid.langid as langid

    identifier = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=False)
    identifier.set_languages(list(LANGUAGES))
    return identifier


def scores(text: str) -> dict[str, float]:
    """Log-likelihood of ``text`` under each language."""
    return {language: float(score) for language, score in _identifier().rank(text)}


def detect(text: str) -> str:
    """The most likely language of ``text`` ("" for a text without letters)."""
    if not any(ch.isalpha() for ch in text):
        return ""
    ranked = scores(text)
    return max(ranked, key=ranked.get)


def language_of(text: str, expected: str = "") -> str:
    """The language of ``text``: ``expected`` unless another is more likely by ``MIN_LOG_ODDS``."""
    if not any(ch.isalpha() for ch in text):
        return expected
    ranked = scores(text)
    best = max(ranked, key=ranked.get)
    if expected in ranked and ranked[best] - ranked[expected] < MIN_LOG_ODDS:
        return expected
    return best


def majority_language(texts: list[str]) -> str:
    """The language most of ``texts`` are in ("" without any)."""
    counts = Counter(language for language in map(detect, texts) if language)
    return counts.most_common(1)[0][0] if counts else ""
