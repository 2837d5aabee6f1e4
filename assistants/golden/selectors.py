"""Reads for the golden set: a question of the user's teams, and visitors' questions worth adding."""

from __future__ import annotations

from django.db.models import Q

from assistants.models import Assistant, Feedback, GoldenQuestion, Message

GOLDEN_CANDIDATES = 50


def golden_candidates(*, assistant: Assistant) -> list[dict]:
    """Visitors' questions worth adding to the golden set, newest first: those whose answer got a
    thumbs down, and the last question before each request for a person (a handoff). Questions
    already in the set are left out. Each: {"question", "origin", "message_id", "answer", "cited"}."""
    taken = set(GoldenQuestion.objects.filter(assistant=assistant).values_list("question", flat=True))
    feedback = list(
        Feedback.objects.filter(conversation__assistant=assistant)
        .filter(Q(kind=Feedback.Kind.RATING, rating=-1) | Q(kind=Feedback.Kind.CONTACT))
        .select_related("message")
        .order_by("-created_at")[: GOLDEN_CANDIDATES * 2]
    )
    asked_in: dict[int, list] = {}  # conversation → its visitor's messages, oldest first (one query for all)
    for message in Message.objects.filter(
        conversation_id__in={item.conversation_id for item in feedback}, role=Message.Role.USER
    ).order_by("created_at", "id"):
        asked_in.setdefault(message.conversation_id, []).append(message)
    out: list[dict] = []
    for item in feedback:
        if item.kind == Feedback.Kind.RATING:
            answer, origin = item.message, "thumbs_down"
            bound = (answer.created_at, answer.id)  # the question just before the rated answer
        else:
            answer, origin = None, "handoff"
            bound = (item.created_at, float("inf"))  # the last question asked by the time of the request
        earlier = [
            message for message in asked_in.get(item.conversation_id, []) if (message.created_at, message.id) < bound
        ]
        asked = earlier[-1] if earlier else None
        if asked is None:
            continue
        question = " ".join(asked.text.split())[:500]
        if question in taken:
            continue
        taken.add(question)
        out.append(
            {
                "question": question,
                "origin": origin,
                "message_id": asked.pk,
                "answer": answer.text if answer else "",
                "cited": [citation.get("url", "") for citation in (answer.citations if answer else [])][:3],
            }
        )
        if len(out) >= GOLDEN_CANDIDATES:
            break
    return out
