"""The analytics metrics, defined once: what each one counts and its formula, as the page shows it.

Every figure of the analytics pages comes from :func:`compute` over the sums of the period's daily
rollups (:func:`totals_of`), so a figure means the same on every page, per assistant and per team.
Counting rules (``assistants.analytics.services.rollups_compute``):

* days are UTC days; a conversation counts on the day it started, a question or an answer on the day
  it was sent, a rating on the day of the answer it rates;
* an *answer* is an assistant message; it is *answered* when it has text, no provider error and is
  not flagged unanswered (weak evidence or an unsupported answer: ``Message.unanswered``);
* the gap re-check's own conversations (visitor token ``gap-recheck-…``) are left out;
* a conversation is *resolved* by the assistant alone when it has at least one answered answer, no
  unanswered answer, no answer rated down and no handoff.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# The gap re-check's own conversations (removed when it is done) count in no figure.
RECHECK_VISITOR_PREFIX = "gap-recheck-"

COUNTERS = (
    "conversations",
    "resolved",
    "questions",
    "answers",
    "answered",
    "unanswered",
    "errors",
    "thumbs_up",
    "thumbs_down",
    "handoffs",
    "leads",
    "tokens_in",
    "tokens_out",
    "cost_usd",
)


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``; None (shown "–") when there is nothing to divide by."""
    return numerator / denominator if denominator else None


def percentile(samples: list[float], q: float) -> float | None:
    """The nearest-rank percentile: the smallest sample with at least ``q`` % of the samples at or below it."""
    if not samples:
        return None
    ordered = sorted(samples)
    return float(ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)])


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    formula: str
    unit: str  # "count", "rate", "ms", "usd", "tokens"
    value: Callable[[dict], float | None]
    better: str = "up"  # which way of a change is good: "up", "down", or "" (neither)


METRICS: tuple[Metric, ...] = (
    Metric("conversations", "Conversations", "conversations started", "count", lambda t: t["conversations"], ""),
    Metric("questions", "Questions", "visitor messages", "count", lambda t: t["questions"], ""),
    Metric(
        "answered_rate",
        "Answered",
        "answered ÷ answers (an answer with text, no error, not flagged unanswered)",
        "rate",
        lambda t: ratio(t["answered"], t["answers"]),
    ),
    Metric(
        "unanswered_rate",
        "Unanswered",
        "unanswered ÷ answers (no evidence in the content, or an answer it does not support)",
        "rate",
        lambda t: ratio(t["unanswered"], t["answers"]),
        "down",
    ),
    Metric(
        "resolved_rate",
        "Resolved by the assistant",
        "conversations with an answered turn and no unanswered turn, no thumbs down, no handoff ÷ conversations",
        "rate",
        lambda t: ratio(t["resolved"], t["conversations"]),
    ),
    Metric(
        "handoff_rate",
        "Handed off",
        "conversations handed to a person ÷ conversations",
        "rate",
        lambda t: ratio(t["handoffs"], t["conversations"]),
        "down",
    ),
    Metric("thumbs_up", "Thumbs up", "answers rated helpful", "count", lambda t: t["thumbs_up"]),
    Metric("thumbs_down", "Thumbs down", "answers rated not helpful", "count", lambda t: t["thumbs_down"], "down"),
    Metric(
        "satisfaction",
        "Satisfaction",
        "thumbs up ÷ (thumbs up + thumbs down)",
        "rate",
        lambda t: ratio(t["thumbs_up"], t["thumbs_up"] + t["thumbs_down"]),
    ),
    Metric("leads", "Leads", "contact details left by visitors", "count", lambda t: t["leads"]),
    Metric(
        "lead_conversion",
        "Lead conversion",
        "leads ÷ conversations",
        "rate",
        lambda t: ratio(t["leads"], t["conversations"]),
    ),
    Metric(
        "ttft_median",
        "Time to first token (median)",
        "median of the answers' time to first token",
        "ms",
        lambda t: t["first_token_p50"],
        "down",
    ),
    Metric(
        "ttft_p95",
        "Time to first token (p95)",
        "95th percentile (nearest rank) of the answers' time to first token",
        "ms",
        lambda t: t["first_token_p95"],
        "down",
    ),
    Metric(
        "tokens_per_answer",
        "Tokens per answer",
        "(prompt + completion tokens) ÷ answers",
        "tokens",
        lambda t: ratio(t["tokens_in"] + t["tokens_out"], t["answers"]),
        "",
    ),
    Metric(
        "cost_per_answer",
        "Cost per answer",
        "model cost (LLM_PRICES) ÷ answers",
        "usd",
        lambda t: ratio(t["cost_usd"], t["answers"]),
        "down",
    ),
    Metric("cost", "Cost", "model cost of the period (LLM_PRICES)", "usd", lambda t: t["cost_usd"], "down"),
    Metric(
        "cost_per_day",
        "Cost per day",
        "cost ÷ days in the period",
        "usd",
        lambda t: ratio(t["cost_usd"], t["days"]),
        "down",
    ),
)
BY_KEY = {metric.key: metric for metric in METRICS}


def empty_totals(days: int = 0) -> dict:
    return {
        **dict.fromkeys(COUNTERS, 0),
        "first_token_ms": [],
        "by_model": {},
        "pages": {},
        "citations": {},
        "first_token_p50": None,
        "first_token_p95": None,
        "days": days,
    }


def totals_of(rows: Iterable, days: int) -> dict:
    """The sums of daily rollups (rows with the ``DailyRollup`` fields) over a period of ``days`` days."""
    totals = empty_totals(days)
    for row in rows:
        for name in COUNTERS:
            totals[name] += getattr(row, name)
        totals["first_token_ms"].extend(row.first_token_ms)
        for model, figures in row.by_model.items():
            into = totals["by_model"].setdefault(
                model, {"answers": 0, "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0}
            )
            for name, value in figures.items():
                into[name] = into.get(name, 0) + value
        for page, count in row.pages.items():
            totals["pages"][page] = totals["pages"].get(page, 0) + count
        for url, cited in row.citations.items():
            into = totals["citations"].setdefault(
                url, {"title": cited["title"], "cited": 0, "up": 0, "down": 0, "last": ""}
            )
            for name in ("cited", "up", "down"):
                into[name] += cited[name]
            into["last"] = max(into["last"], cited["last"])
    totals["first_token_p50"] = percentile(totals["first_token_ms"], 50)
    totals["first_token_p95"] = percentile(totals["first_token_ms"], 95)
    return totals


ROLLUP_FIELDS = (*COUNTERS, "first_token_ms", "by_model", "pages", "citations")


def rollup_sum(rows: Iterable) -> dict:
    """The sum of daily rollup rows (a team's day from its assistants' days): the ``RollupFigures``
    fields, breakdowns merged as ``totals_of`` merges them, the first-token samples kept in row order."""
    totals = totals_of(rows, 0)
    figures = {name: totals[name] for name in ROLLUP_FIELDS}
    figures["cost_usd"] = round(figures["cost_usd"], 8)
    return figures


def compute(totals: dict) -> dict[str, float | None]:
    """Every metric's value for the period's totals."""
    return {metric.key: metric.value(totals) for metric in METRICS}


def delta(current: float | None, previous: float | None) -> float | None:
    """The change from the previous period (current − previous); None when either side is missing."""
    if current is None or previous is None:
        return None
    return current - previous


# Conversation quality: one score per conversation from its signals (the worst ones are listed for review).
QUALITY_FORMULA = (
    "100 − 30 × answers rated down − 25 × unanswered answers − 15 × failed answers − 40 if handed off"
    " + 5 × answers rated up, kept between 0 and 100"
)


def conversation_quality(*, down: int, unanswered: int, errors: int, up: int, handed_off: bool = False) -> int:
    score = 100 - 30 * down - 25 * unanswered - 15 * errors - (40 if handed_off else 0) + 5 * up
    return max(0, min(100, score))
