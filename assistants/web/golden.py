"""Dashboard pages of the golden set: its questions, visitors' candidates, evaluations."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from assistants import access
from assistants.golden import selectors as golden_selectors
from assistants.golden import services as golden_services
from assistants.golden.evaluation import GoldenError
from assistants.models import GoldenQuestion, GoldenRun, Message


@login_required
def golden_set(request, assistant_id: int):
    """The golden set: its questions, candidates from visitors, and the latest evaluations."""
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id)
    runs = list(assistant.golden_runs.all()[:6])
    latest = next((run for run in runs if run.status == GoldenRun.Status.DONE), None)
    return render(
        request,
        "dashboard/golden_set.html",
        {
            "assistant": assistant,
            "questions": assistant.golden_questions.all(),
            "candidates": golden_selectors.golden_candidates(assistant=assistant),
            "runs": runs,
            "latest": latest,
            "busy": any(run.status in (GoldenRun.Status.QUEUED, GoldenRun.Status.RUNNING) for run in runs),
        },
    )


@login_required
@require_POST
def golden_question_add(request, assistant_id: int):
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id, write=True)
    origin = request.POST.get("origin", GoldenQuestion.Origin.TEAM)
    message = None
    if origin != GoldenQuestion.Origin.TEAM:  # collected from a visitor: that visitor's message, of this assistant
        message = Message.objects.filter(
            pk=request.POST.get("message_id") if str(request.POST.get("message_id", "")).isdigit() else None,
            conversation__assistant=assistant,
            role=Message.Role.USER,
        ).first()
        if origin not in GoldenQuestion.Origin.values or message is None:
            origin, message = GoldenQuestion.Origin.TEAM, None
    try:
        golden_services.golden_question_add(
            assistant=assistant,
            question=request.POST.get("question", ""),
            expected_urls=request.POST.get("expected_urls", "").splitlines(),
            origin=origin,
            message=message,
        )
    except GoldenError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Added to the golden set.")
    return redirect("golden_set", assistant_id=assistant.pk)


@login_required
@require_POST
def golden_question_delete(request, golden_id: int):
    golden = access.golden_question_for(user=request.user, golden_id=golden_id, write=True)
    assistant_id = golden.assistant_id
    golden_services.golden_question_delete(golden=golden)
    return redirect("golden_set", assistant_id=assistant_id)


@login_required
@require_POST
def golden_run_start(request, assistant_id: int):
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id, write=True)
    if not assistant.golden_questions.exists():
        messages.error(request, "Add questions to the golden set first.")
    else:
        golden_services.golden_run_start(assistant=assistant)
    return redirect("golden_set", assistant_id=assistant.pk)
