"""Writes of lead capture: an assistant's settings, the one prompt per conversation, and leads."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from assistants.leads import intent, scoring
from assistants.leads.forms import form_spec
from assistants.leads.selectors import lead_payload
from assistants.models import Assistant, Conversation, Lead, LeadCapture, LeadPrompt, Message
from assistants.webhooks.services import emit


def lead_capture_save(*, assistant: Assistant, **values) -> LeadCapture:
    capture, _ = LeadCapture.objects.update_or_create(assistant=assistant, defaults=values)
    return capture


def _conversation_facts(conversation: Conversation) -> dict:
    messages = list(conversation.messages.values_list("role", "text", "unanswered"))
    questions = [text for role, text, _ in messages if role == Message.Role.USER]
    answers = [unanswered for role, text, unanswered in messages if role == Message.Role.ASSISTANT and text]
    return {"questions": questions, "answers": len(answers), "unanswered": sum(1 for u in answers if u)}


def lead_prompt_check(*, conversation: Conversation, handoff: bool = False) -> dict | None:
    """Whether to ask this conversation's visitor for their details now: the form to show (with the
    trigger and the intent that fired) or None. Asks once per conversation; a conversation with a lead
    or a prompt already is never asked again."""
    capture = LeadCapture.objects.filter(assistant_id=conversation.assistant_id).first()
    if capture is None or not capture.triggers:
        return None
    if (
        LeadPrompt.objects.filter(conversation=conversation).exists()
        or Lead.objects.filter(conversation=conversation).exists()
    ):
        return None
    facts = _conversation_facts(conversation)
    trigger, found = "", ""
    if handoff and LeadCapture.Trigger.HANDOFF in capture.triggers:
        trigger = LeadCapture.Trigger.HANDOFF
    elif LeadCapture.Trigger.INTENT in capture.triggers and facts["questions"]:
        hits = intent.matches(facts["questions"][-1], intent.phrases_for(capture.intent_phrases))
        if hits:
            trigger, found = LeadCapture.Trigger.INTENT, hits[0]
    if not trigger and LeadCapture.Trigger.ANSWERS in capture.triggers and facts["answers"] >= capture.after_answers:
        trigger = LeadCapture.Trigger.ANSWERS
    if not trigger:
        return None
    try:
        with transaction.atomic():
            LeadPrompt.objects.create(conversation=conversation, trigger=trigger, intent=found)
    except IntegrityError:  # asked by a concurrent request
        return None
    return {"trigger": trigger, "intent": found, **form_spec(capture)}


def lead_prompt_decline(*, conversation: Conversation) -> None:
    LeadPrompt.objects.filter(conversation=conversation, declined_at__isnull=True).update(declined_at=timezone.now())


def lead_score(*, conversation: Conversation | None, contact: dict, trigger: str, phrases: dict) -> dict:
    facts = _conversation_facts(conversation) if conversation else {"questions": [], "answers": 0, "unanswered": 0}
    found: list[str] = []
    for question in facts["questions"]:
        for hit in intent.matches(question, phrases):
            if hit not in found:
                found.append(hit)
    return scoring.score(
        intents=found,
        handoff=trigger == LeadCapture.Trigger.HANDOFF,
        questions=len(facts["questions"]),
        answers=facts["answers"],
        unanswered=facts["unanswered"],
        contact=contact,
    )


def lead_create(
    *, conversation: Conversation, contact: dict, custom: dict, consented: bool, page_url: str = ""
) -> Lead:
    """The visitor's lead, scored, from the conversation's prompt; the team's admins are emailed and
    the ``lead.created`` webhook is sent once the transaction commits. One lead per conversation: a
    second submission updates the first."""
    from assistants.tasks import lead_notify_task

    assistant = conversation.assistant
    capture = LeadCapture.objects.filter(assistant=assistant).first()
    prompt = LeadPrompt.objects.filter(conversation=conversation).first()
    trigger = prompt.trigger if prompt else ""
    spec = form_spec(capture)
    result = lead_score(
        conversation=conversation,
        contact=contact,
        trigger=trigger,
        phrases=intent.phrases_for(capture.intent_phrases if capture else None),
    )
    now = timezone.now()
    with transaction.atomic():
        lead, created = Lead.objects.update_or_create(
            conversation=conversation,
            defaults={
                "team_id": assistant.team_id,
                "assistant": assistant,
                **{name: contact.get(name, "") for name in ("name", "email", "phone", "company")},
                "custom": custom,
                "consent_text": spec["consent"] if consented else "",
                "consent_at": now if consented else None,
                "page_url": (page_url or conversation.page_url)[:2000],
                "trigger": trigger,
                "intent": prompt.intent if prompt else "",
                "score": result["score"],
                "score_parts": result["parts"],
            },
        )
        if created:
            emit(team=assistant.team_id, event_type="lead.created", data=lead_payload(lead))
            transaction.on_commit(lambda: lead_notify_task.delay(lead.pk))
    return lead


def lead_update(*, lead: Lead, status: str | None = None, notes: str | None = None) -> Lead:
    fields = []
    if status is not None:
        if status not in Lead.Status.values:
            raise ValueError(f"unknown status {status!r}")
        lead.status = status
        fields.append("status")
    if notes is not None:
        lead.notes = notes[:10000]
        fields.append("notes")
    if fields:
        lead.save(update_fields=[*fields, "updated_at"])
    return lead
