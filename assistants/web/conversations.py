"""The conversation log (per assistant and across the team), its export, and one conversation's page
with everything the visitor left and "fix this answer"."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from assistants import access, forms, selectors
from assistants.api.export import FORMATS, export_lines
from assistants.leads import selectors as lead_selectors
from assistants.models import Conversation, Message
from ingestion import services as ingestion_services

PAGE_SIZE = 25


def _filtered(request, *, team, assistant=None):
    """The log's filter form (bound to the query string) and the conversations it selects (None when
    a filter is not valid)."""
    assistants = None if assistant else list(team.assistants.order_by("name", "id"))
    form = forms.ConversationFilterForm(request.GET, assistants=assistants, flags=selectors.CONVERSATION_FLAGS)
    if not form.is_valid():
        return form, None
    conversations = Conversation.objects.filter(assistant__team=team)
    if assistant is not None:
        conversations = conversations.filter(assistant=assistant)
    elif form.cleaned_data.get("assistant"):
        conversations = conversations.filter(assistant_id=form.cleaned_data["assistant"])
    return form, selectors.conversation_log(conversations=conversations, **form.filters())


def _log_page(request, *, team, assistant=None):
    form, log = _filtered(request, team=team, assistant=assistant)
    page = None
    if log is not None:
        page = Paginator(log, PAGE_SIZE).get_page(request.GET.get("page"))
        for conversation in page:
            conversation.flags = selectors.flags_of(conversation)
    kind, pk = ("assistant", assistant.pk) if assistant else ("team", team.pk)
    return render(
        request,
        "dashboard/conversations.html",
        {
            "team": team,
            "assistant": assistant,
            "form": form,
            "page": page,
            "filtered": any(value not in ("", None) for key, value in request.GET.items() if key != "page"),
            "export_url": reverse(f"{kind}_conversations_export", args=[pk]),
        },
        status=200 if page is not None else 400,
    )


@login_required
@require_GET
def team_conversations(request, team_id: int):
    return _log_page(request, team=access.team_for(user=request.user, team_id=team_id))


@login_required
@require_GET
def assistant_conversations(request, assistant_id: int):
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id)
    return _log_page(request, team=assistant.team, assistant=assistant)


def _export(request, *, team, assistant=None, name: str):
    """The log's conversations, as filtered, in the API's export format (``format`` csv or jsonl)."""
    export_format = request.GET.get("format", "csv")
    form, log = _filtered(request, team=team, assistant=assistant)
    if log is None or export_format not in FORMATS:
        if export_format not in FORMATS:
            messages.error(request, f"Export as {' or '.join(FORMATS)}.")
        return _log_page(request, team=team, assistant=assistant)
    rows = selectors.conversation_export_rows(conversations=log)
    response = StreamingHttpResponse(export_lines(rows, export_format), content_type=FORMATS[export_format])
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="{name}-conversations-{stamp}.{export_format}"'
    return response


@login_required
@require_GET
def team_conversations_export(request, team_id: int):
    team = access.team_for(user=request.user, team_id=team_id)
    return _export(request, team=team, name=team.slug)


@login_required
@require_GET
def assistant_conversations_export(request, assistant_id: int):
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id)
    return _export(request, team=assistant.team, assistant=assistant, name=assistant.slug)


def _conversation_page(request, conversation, *, fix_form=None, status=200):
    """The conversation's page; ``fix_form``: a “fix this answer” form sent with errors, shown at its answer."""
    transcript = selectors.conversation_transcript(conversation=conversation)
    can_work = access.Permission.WORK in conversation.viewer_can
    lead = lead_selectors.lead_of_conversation(conversation=conversation)
    for message in transcript["transcript"]:
        if can_work and message.role == Message.Role.ASSISTANT and message.question is not None:
            auto_id = f"fix{message.pk}_%s"
            if fix_form is not None and str(fix_form.data.get("message_id")) == str(message.pk):
                fix_form.auto_id = auto_id
                message.fix_form = fix_form
            else:
                initial = {"message_id": message.pk, "question": " ".join(message.question.text.split())[:500]}
                message.fix_form = forms.FixAnswerForm(initial=initial, auto_id=auto_id)
    return render(
        request,
        "dashboard/conversation_detail.html",
        {
            "conversation": conversation,
            "assistant": conversation.assistant,
            "can_work": can_work,
            "lead": lead,
            "lead_parts": lead_selectors.score_parts_shown(lead) if lead else [],
            **transcript,
        },
        status=status,
    )


@login_required
@require_GET
def conversation_detail(request, conversation_id: int):
    return _conversation_page(request, access.conversation_for(user=request.user, conversation_id=conversation_id))


@login_required
@require_POST
def conversation_fix(request, conversation_id: int):
    """“Fix this answer”: the right answer to the visitor's question, added as a Q&A pair and queued
    for indexing at once."""
    conversation = access.conversation_for(user=request.user, conversation_id=conversation_id, write=True)
    form = forms.FixAnswerForm(request.POST)
    answer = None
    if form.is_valid():
        answer = conversation.messages.filter(pk=form.cleaned_data["message_id"], role=Message.Role.ASSISTANT).first()
        if answer is None:
            form.add_error(None, "That answer is not part of this conversation.")
    if form.is_valid():
        try:
            ingestion_services.qa_add(
                assistant=conversation.assistant,
                question=form.cleaned_data["question"],
                answer=form.cleaned_data["answer"],
            )
        except ingestion_services.IngestionError as exc:
            form.add_error("answer", str(exc))
    if not form.is_valid():
        return _conversation_page(request, conversation, fix_form=form, status=400)
    messages.success(
        request, "Added to the Q&A library. It is being indexed now; the assistant answers from it in a few seconds."
    )
    return redirect(reverse("conversation_detail", args=[conversation.pk]) + f"#message-{answer.pk}")
