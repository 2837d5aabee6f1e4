"""The dashboard's Test tab: a question answered as a visitor would get it, with what the answer was
made from and why it was (or was not) given, and nothing stored.

It runs the chat's own steps (``pipeline``: the question's language, the search query, hybrid
retrieval held to the assistant's calibrated gate, the provider or the offline answerer, the
citations, the grounding check) but keeps no conversation, no message and no usage: a team trying
its assistant adds nothing to the conversation log or the analytics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings

from assistants.answering.extractive import extractive_tokens, language_name, no_answer
from assistants.answering.pipeline import (
    MAX_QUESTION_CHARS,
    _grounding_record,
    _languages,
    _offline_answer,
    cited_hits,
    section_of,
)
from assistants.answering.prompt import build_messages
from assistants.answering.query_rewrite import search_queries
from assistants.answering.retrieval import retrieve_with_evidence
from assistants.models import Assistant
from chatsite.lib.language import language_of

PASSAGE_CHARS = 600  # of each retrieved passage shown
HISTORY_KEPT = 12  # the last messages of a trial conversation carried to the next question (the chat's
# rewriter reads the last 4, its prompt the last 6)
TURN_CHARS = 4000  # of each of them


@dataclass(frozen=True)
class Turn:
    """One earlier message of a trial conversation: what the chat reads of a stored ``Message``."""

    role: str  # "user" or "assistant"
    text: str


def history_from(items) -> list[Turn]:
    """Earlier turns from their plain form (``[{"role": ..., "text": ...}]``, as the Test tab carries them
    between questions); anything else in it is left out."""
    turns = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("role") in ("user", "assistant") and isinstance(item.get("text"), str):
            turns.append(Turn(item["role"], item["text"][:TURN_CHARS]))
    return turns[-HISTORY_KEPT:]


def history_after(history: list[Turn], trial: Trial) -> list[dict]:
    """The conversation after ``trial``, in its plain form, for the next question."""
    turns = [*history, Turn("user", trial.question), Turn("assistant", trial.answer)]
    return [{"role": turn.role, "text": turn.text[:TURN_CHARS]} for turn in turns[-HISTORY_KEPT:]]


@dataclass
class Trial:
    question: str
    query: str = ""  # what was searched: a follow-up rewritten with the conversation
    answer: str = ""
    provider: str = ""
    error: str = ""
    citations: list[dict] = field(default_factory=list)
    passages: list[dict] = field(default_factory=list)
    evidence: dict = field(default_factory=dict)
    grounding: dict = field(default_factory=dict)
    unanswered: bool = False
    reranked: bool = False  # the assistant's reranker ordered the passages
    verdict: str = ""  # in one sentence, why the answer was or was not given
    reasons: list[str] = field(default_factory=list)  # the numbers behind it


def _passages(hits, cited: set[int]) -> list[dict]:
    return [
        {
            "n": n,
            "title": hit.title or hit.url,
            "section": section_of(hit),
            "url": hit.link,
            "text": hit.text if len(hit.text) <= PASSAGE_CHARS else hit.text[:PASSAGE_CHARS].rstrip() + "…",
            # with a reranker, ``score`` is the reranker's and the fused score moved to ``fused_score``
            "fused": getattr(hit, "fused_score", hit.score),
            "rerank": hit.score if "rerank" in hit.ranks else None,
            "lexical": hit.leg_scores.get("lexical"),
            "dense": hit.leg_scores.get("dense"),
            "lexical_rank": hit.ranks.get("lexical"),
            "dense_rank": hit.ranks.get("dense"),
            "cited": n in cited,
        }
        for n, hit in enumerate(hits, start=1)
    ]


def _explain(trial: Trial, has_content: bool) -> None:
    evidence, grounding = trial.evidence, trial.grounding
    similarity, threshold = float(evidence.get("similarity") or 0), float(evidence.get("threshold") or 0)
    gate = "learned from this content" if evidence.get("calibrated") else "the embedding model's default"
    if not has_content:
        trial.verdict = "Not answered: the assistant has no indexed content yet."
        return
    trial.reasons.append(f"Closest passage: similarity {similarity:.2f}; the gate asks for {threshold:.2f} ({gate}).")
    trial.reasons.append(f"{float(evidence.get('coverage') or 0):.0%} of the question's words are in the passages.")
    if evidence.get("agreement"):
        trial.reasons.append("Keyword search and meaning search both put the same passage first.")
    if evidence.get("translated"):
        trial.reasons.append(f"Also searched in the content's language as “{evidence['translated']}”.")
    if evidence.get("weak"):
        trial.verdict = (
            "Not answered: no passage matched the question well enough, so a visitor hears that the assistant "
            "does not know and is offered a person."
        )
        return
    if trial.error:
        trial.verdict = f"The model could not answer ({trial.error}); a visitor is offered a person."
        return
    if grounding.get("supported"):
        trial.verdict = "Answered: the passages passed the gate and the answer is supported by what it cites."
    else:
        unsupported = [s for s in grounding.get("sentences") or [] if s.get("supported") is False]
        trial.verdict = "Answered, but flagged unanswered: the sources it cites do not support " + (
            f"{len(unsupported)} of its sentences." if unsupported else "it well enough."
        )
    if grounding.get("score") is not None:
        trial.reasons.append(
            f"Grounding score {float(grounding['score']):.2f}, its weakest checked sentence's support; "
            f"each must reach {settings.GROUNDING_MIN_SCORE:.2f}."
        )


async def try_question(*, assistant: Assistant, question: str, history: list[Turn] | None = None) -> Trial:
    """The answer a visitor would get to ``question`` (from no particular page), with the retrieved
    passages and their lexical, dense and fused scores, and why it was or was not given. ``history``: the
    earlier turns of this trial conversation; a follow-up is rewritten with them and answered with them,
    as the chat does with a stored conversation."""
    history = list(history or [])
    from assistants.answering.providers import ProviderError, Usage, provider_from_settings

    question = question.strip()[:MAX_QUESTION_CHARS]
    trial = Trial(question=question)
    content_language, expected = await sync_to_async(_languages)(assistant)
    language = language_of(question, expected)
    translate_to = language_name(content_language, "en") if content_language and language != content_language else ""
    query, translated = await search_queries(assistant, question, history, translate_to=translate_to)
    trial.query = query
    retrieval = await sync_to_async(retrieve_with_evidence)(
        assistant, query, page_url="", language=language, translated=translated
    )
    provider = None if retrieval.evidence.weak else await sync_to_async(provider_from_settings)(assistant)
    if provider is None:
        trial.provider = "extractive"
        if retrieval.evidence.weak:
            text = no_answer(language)
        else:
            text = await sync_to_async(_offline_answer)(question, retrieval)
        tokens = extractive_tokens(text)
    else:
        trial.provider = f"{provider.name} · {provider.config.model}"
        reply_in = language_name(language, "en") if language else ""
        tokens = provider.stream(build_messages(assistant, question, retrieval.hits, history, language=reply_in))
    parts = []
    try:
        async for item in tokens:
            if not isinstance(item, Usage):
                parts.append(item)
    except ProviderError as exc:
        trial.error = exc.kind
    finally:
        await tokens.aclose()
    trial.answer = "".join(parts)
    trial.citations = cited_hits(trial.answer, retrieval.hits)

    grounding, trial.unanswered = await sync_to_async(_grounding_record)(retrieval, trial.answer, trial.error)
    trial.evidence = grounding.pop("retrieval", {})
    trial.grounding = grounding
    trial.passages = _passages(retrieval.hits, {c["n"] for c in trial.citations})
    trial.reranked = any(passage["rerank"] is not None for passage in trial.passages)
    if query != question:
        trial.reasons.append(f"A follow-up: searched as “{query}”, rewritten with the conversation so far.")
    if trial.reranked:
        trial.reasons.append(f"The passages were reordered by the reranker {assistant.reranker_model}.")
    _explain(trial, has_content=bool(retrieval.hits))
    return trial
