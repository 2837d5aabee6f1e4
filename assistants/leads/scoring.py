"""A lead's score, 0–100, from four parts kept beside it so the team sees why:

* intent (35): the buying-intent phrases in the visitor's messages (20 for one, 8 more for each other)
  or a request for a person (25);
* engagement (25): 5 per question the visitor asked, up to five;
* completeness (25): email 10, phone 6, name 5, company 4;
* answered (15): the share of the visitor's questions the assistant could answer from the content.
"""

from __future__ import annotations

PARTS_MAX = {"intent": 35, "engagement": 25, "completeness": 25, "answered": 15}
CONTACT_POINTS = {"email": 10, "phone": 6, "name": 5, "company": 4}


def score(*, intents: list[str], handoff: bool, questions: int, answers: int, unanswered: int, contact: dict) -> dict:
    """``{"score": n, "parts": {part: {"points", "max", "why"}}}`` for what is known of the lead."""
    if intents:
        intent_points = min(PARTS_MAX["intent"], 20 + 8 * (len(intents) - 1))
        intent_why = ", ".join(intents[:5])
    elif handoff:
        intent_points, intent_why = 25, "asked for a person"
    else:
        intent_points, intent_why = 0, "no buying intent"
    engagement = min(PARTS_MAX["engagement"], 5 * questions)
    given = [field for field in CONTACT_POINTS if str(contact.get(field) or "").strip()]
    completeness = sum(CONTACT_POINTS[field] for field in given)
    answered = answers - unanswered
    answered_points = round(PARTS_MAX["answered"] * answered / answers) if answers else 0
    parts = {
        "intent": {"points": intent_points, "max": PARTS_MAX["intent"], "why": intent_why},
        "engagement": {
            "points": engagement,
            "max": PARTS_MAX["engagement"],
            "why": f"{questions} question{'' if questions == 1 else 's'}",
        },
        "completeness": {"points": completeness, "max": PARTS_MAX["completeness"], "why": ", ".join(given) or "none"},
        "answered": {
            "points": answered_points,
            "max": PARTS_MAX["answered"],
            "why": f"{answered} of {answers} answered",
        },
    }
    return {"score": max(0, min(100, sum(part["points"] for part in parts.values()))), "parts": parts}
