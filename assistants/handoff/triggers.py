"""When a conversation goes to a person, and whether the team is there: pure functions of text, pages,
times and the assistant's ``HandoffSettings`` (no database), so each rule is tested on its own."""

from __future__ import annotations

import fnmatch
import re
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The visitor asks for a person, in the languages the chat speaks (and a few more): short phrases, so
# that "how do I talk to my team about it" does not count but "can I speak to a human" does.
_PERSON_PATTERNS = [
    # English
    r"\b(talk|speak|chat|connect|transfer|put)\b(\s+\w+){0,3}\s+(to|with)\s+(a|an|some|the|real|live|your)?\s*"
    r"(human|person|people|agent|operator|representative|someone|somebody|staff|support team)\b",
    r"\b(real|live|actual)\s+(human|person|agent)\b",
    r"\bhuman\s+(agent|support|help|being)\b",
    # French
    r"\b(parler|discuter|échanger)\b(\s+\S+){0,3}\s+(à|a|avec)\s+(un|une|quelqu'un|quelqu’un|un\.e)?\s*"
    r"(humain|personne|conseiller|conseillère|agent|opérateur|quelqu'un|quelqu’un)\b",
    r"\b(un|une)\s+(vrai|vraie)\s+(personne|humain)\b",
    # German
    r"\b(mit)\s+(einem|einer|jemandem)\s*(echten)?\s*(menschen|mensch|mitarbeiter|mitarbeiterin|person|berater|beraterin)?\b"
    r".{0,30}\b(sprechen|reden|verbinden|chatten)\b",
    r"\b(echten|echter)\s+(menschen|mensch|person)\b",
    # Spanish
    r"\b(hablar|habla|chatear|comunicarme)\b(\s+\S+){0,3}\s+(con)\s+(un|una|alguien|el|la)?\s*"
    r"(humano|humana|persona|agente|asesor|asesora|operador|alguien)\b",
    r"\b(persona|humano)\s+(real)\b",
    # Italian, Portuguese, Dutch
    r"\b(parlare)\b(\s+\S+){0,3}\s+(con)\s+(un|una|qualcuno)?\s*(operatore|persona|umano|qualcuno)\b",
    r"\b(falar)\b(\s+\S+){0,3}\s+(com)\s+(um|uma|alguém)?\s*(atendente|pessoa|humano|alguém)\b",
    r"\b(spreken|praten)\b(\s+\S+){0,3}\s+(met)\s+(een|iemand)?\s*(mens|medewerker|persoon|iemand)\b",
    # Chinese: 人工 (a human agent), 真人, 转人工, 客服 (customer service)
    r"(人工|真人|转人工|人工客服|找客服|联系客服)",
]
_PERSON = re.compile("|".join(f"(?:{pattern})" for pattern in _PERSON_PATTERNS), re.IGNORECASE)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_RULES = 50  # keywords and page patterns each


def asks_for_person(text: str) -> str:
    """The words by which the visitor asks for a person ("" when they do not)."""
    found = _PERSON.search(" ".join(str(text).split())[:2000])
    return found.group(0)[:100] if found else ""


def _keyword_found(keyword: str, text: str) -> bool:
    keyword = " ".join(keyword.casefold().split())
    if not keyword:
        return False
    if keyword.isascii():  # from the start of a word: "refund" matches "refunds", not "nonrefundable"
        return re.search(r"(?<!\w)" + re.escape(keyword), text) is not None
    return keyword in text  # scripts without spaces between words


def rule_matched(*, keywords: list, page_patterns: list, text: str, page_url: str) -> str:
    """The team's rule that hands this message to a person: ``keyword: refund`` or ``page: */enterprise*``
    ("" when none does). Keywords match at the start of a word, ignoring case; page patterns are
    shell-style wildcards over the whole address (``*`` anything)."""
    folded = " ".join(str(text).casefold().split())
    for keyword in [str(k) for k in keywords if isinstance(k, str)][:MAX_RULES]:
        if _keyword_found(keyword, folded):
            return f"keyword: {keyword.strip()[:80]}"
    for pattern in [str(p).strip() for p in page_patterns if isinstance(p, str)][:MAX_RULES]:
        if pattern and page_url and fnmatch.fnmatchcase(page_url.lower(), pattern.lower()):
            return f"page: {pattern[:200]}"
    return ""


def _clock(value) -> time | None:
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes)) if hours.isdigit() and minutes.isdigit() else None
    except ValueError:
        return None


def hours_valid(hours) -> str:
    """Why ``hours`` is not a valid week of opening hours ("" when it is): ``{"mon": ["09:00", "17:30"]}``."""
    if not isinstance(hours, dict):
        return "Hours are a mapping of weekdays to [opening, closing]."
    for day, span in hours.items():
        if day not in WEEKDAYS:
            return f"Unknown weekday {day!r}: use {', '.join(WEEKDAYS)}."
        if not (isinstance(span, list | tuple) and len(span) == 2 and all(_clock(v) for v in span)):
            return f"{day}: give an opening and a closing time as HH:MM."
        if _clock(span[0]) >= _clock(span[1]):
            return f"{day}: the closing time comes after the opening time."
    return ""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def within_hours(*, hours: dict, timezone: str, now: datetime) -> bool:
    """Whether the team is there at ``now`` (aware): always when it set no hours; otherwise on a day it
    listed, between its opening (included) and closing (excluded) time, in its time zone."""
    if not hours:
        return True
    local = now.astimezone(zone(timezone))
    span = hours.get(WEEKDAYS[local.weekday()])
    if not span or len(span) != 2:
        return False
    opening, closing = _clock(span[0]), _clock(span[1])
    return opening is not None and closing is not None and opening <= local.time().replace(tzinfo=None) < closing
