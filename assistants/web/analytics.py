"""The Analytics section of the dashboard, team-wide and per assistant: overview, top questions and
topics, content gaps (with their page and re-check), source usage and the worst conversations; a CSV
export of every table. The figures come from the daily rollups (``assistants.analytics``)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from assistants import access
from assistants.analytics import metrics, selectors
from assistants.analytics import services as analytics_services
from assistants.analytics.forms import AnalyticsFilterForm
from chatsite.lib.csv_export import csv_lines

TABS = {
    "overview": "Overview",
    "questions": "Top questions",
    "gaps": "Content gaps",
    "sources": "Source usage",
    "conversations": "Worst conversations",
}


def _fmt(unit: str, value) -> str:
    if value is None:
        return "–"
    if unit == "rate":
        return f"{value * 100:.1f} %"
    if unit == "ms":
        return f"{value:,.0f} ms"
    if unit == "usd":
        return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"
    if unit == "tokens":
        return f"{value:,.0f}"
    return f"{value:,.0f}"


def _fmt_delta(unit: str, value) -> str:
    if value is None:
        return ""
    if unit == "rate":
        return f"{value * 100:+.1f} pts"
    if unit == "ms":
        return f"{value:+,.0f} ms"
    if unit == "usd":
        return f"{value:+,.4f} $"
    return f"{value:+,.0f}"


def _tone(metric, change) -> str:
    if not change or not metric.better:
        return "neutral"
    good = change > 0 if metric.better == "up" else change < 0
    return "good" if good else "bad"


def _tables(tab: str, *, assistant_ids: list[int], period, status: str, export: bool = False) -> dict:
    """The tab's data: ``tables`` (name → {"title", "columns", "rows"}, what the page and the CSV show)
    and anything else its template needs. The topic and gap lists show the ``selectors.PAGE_ROWS``
    largest on the page, every one in the export."""
    limit = None if export else selectors.PAGE_ROWS
    data: dict = {"tables": {}}
    tables = data["tables"]
    if tab == "overview":
        page = selectors.overview(assistant_ids=assistant_ids, period=period)
        for card in page["cards"]:
            metric = card["metric"]
            card["shown"] = _fmt(metric.unit, card["value"])
            card["shown_previous"] = _fmt(metric.unit, card["previous"])
            card["shown_delta"] = _fmt_delta(metric.unit, card["delta"])
            card["tone"] = _tone(metric, card["delta"])
        data.update(page)
        tables["metrics"] = {
            "title": "Metrics",
            "columns": ["Metric", "This period", "Previous period", "Change", "Formula"],
            "rows": [
                [c["metric"].label, c["value"], c["previous"], c["delta"], c["metric"].formula] for c in page["cards"]
            ],
        }
        tables["days"] = {
            "title": "Questions per day",
            "columns": ["Day", "Conversations", "Questions", "Unanswered"],
            "rows": [
                [r["day"].isoformat(), r["conversations"], r["questions"], r["unanswered"]] for r in page["series"]
            ],
        }
        tables["pages"] = {
            "title": "Top pages visitors ask from",
            "columns": ["Page", "Questions"],
            "rows": [[r["url"], r["questions"]] for r in page["pages"]],
        }
        tables["models"] = {
            "title": "Tokens and cost by provider and model",
            "columns": ["Provider · model", "Answers", "Prompt tokens", "Completion tokens", "Cost (USD)"],
            "rows": [
                [r["model"], r["answers"], r["tokens_in"], r["tokens_out"], round(r["cost_usd"], 6)]
                for r in page["models"]
            ],
        }
        handoffs = selectors.handoff_reasons(assistant_ids=assistant_ids, period=period)
        leads = selectors.lead_quality(assistant_ids=assistant_ids, period=period)
        data.update(handoffs=handoffs, lead_quality=leads)
        tables["handoff_reasons"] = {
            "title": "Handoffs by reason",
            "columns": ["Reason", "This period", "Previous period", "Change", "Share of the period's handoffs"],
            "rows": [
                [
                    r["label"],
                    r["count"],
                    r["previous"],
                    r["delta"],
                    None if r["share"] is None else round(r["share"], 4),
                ]
                for r in handoffs["reasons"]
            ],
        }
        tables["handoff_reasons_by_assistant"] = {
            "title": "Handoffs by reason and assistant",
            "columns": ["Assistant", "Reason", "This period", "Previous period"],
            "rows": [[r["assistant"], r["label"], r["count"], r["previous"]] for r in handoffs["per_assistant"]],
        }
        tables["lead_scores"] = {
            "title": "Lead scores",
            "columns": ["Score", "Leads this period", "Leads previous period"],
            "rows": [[b["label"], b["count"], b["previous"]] for b in leads["buckets"]],
        }
        tables["lead_pages"] = {
            "title": "Leads by page",
            "columns": ["Page", "Leads", "Average score"],
            "rows": [[r["url"], r["leads"], round(r["average"], 1)] for r in leads["pages"]],
        }
        tables["lead_topics"] = {
            "title": "Leads by topic",
            "columns": ["Topic", "Assistant", "Leads", "Average score"],
            "rows": [[r["label"], r["assistant"], r["leads"], round(r["average"], 1)] for r in leads["topics"]],
        }
    elif tab == "questions":
        builds, topics, total = selectors.topics(assistant_ids=assistant_ids, period=period, limit=limit)
        data.update(builds=builds, topics=topics, total=total)
        tables["topics"] = {
            "title": "Topics",
            "columns": [
                "Topic",
                "Assistant",
                "Questions",
                "Visitors",
                "Unanswered",
                "Rated down",
                "Trend",
                "Key terms",
            ],
            "rows": [
                [
                    t.label,
                    t.build.assistant.name,
                    t.questions,
                    t.visitors,
                    t.unanswered,
                    t.rated_down,
                    t.second_half - t.first_half,
                    ", ".join(t.terms),
                ]
                for t in topics
            ],
        }
    elif tab == "gaps":
        gaps, total = selectors.gaps(assistant_ids=assistant_ids, status=status, period=period, limit=limit)
        builds = selectors.period_builds(assistant_ids=assistant_ids, period=period)
        data.update(gaps=gaps, total=total, builds=builds)
        tables["gaps"] = {
            "title": "Content gaps",
            "columns": ["Gap", "Assistant", "Kind", "Visitors", "Questions", "Best page", "Rank", "Score", "Status"],
            "rows": [
                [
                    g.label,
                    g.assistant.name,
                    g.get_kind_display(),
                    g.visitors,
                    g.questions,
                    g.best_url,
                    g.best_rank,
                    round(g.best_score, 3) if g.best_score is not None else None,
                    g.get_status_display(),
                ]
                for g in gaps
            ],
        }
    elif tab == "sources":
        usage = selectors.source_usage(assistant_ids=assistant_ids, period=period)
        data.update(usage=usage)
        tables["cited"] = {
            "title": "Cited pages and documents",
            "columns": ["Title", "Address", "Cited", "In answers rated up", "In answers rated down", "Last cited"],
            "rows": [
                [r["title"], r["url"], r["cited"], r["up"], r["down"], r["last"].isoformat() if r["last"] else ""]
                for r in usage["cited"]
            ],
        }
        tables["stale"] = {
            "title": "Often cited, not changed for a year",
            "columns": ["Title", "Address", "Cited", "Last changed", "Known from"],
            "rows": [
                [
                    r["title"],
                    r["url"],
                    r["cited"],
                    r["changed"].date().isoformat(),
                    "crawls (content hash)" if r["basis"] == "crawl" else "Last-Modified",
                ]
                for r in usage["stale"]
            ],
        }
        tables["crawl"] = {
            "title": "The last crawl's failed and skipped pages",
            "columns": ["Source", "Address", "Failed or skipped", "Reason"],
            "rows": [[r["source"], r["url"], "failed", r["reason"]] for r in usage["crawl_failed"]]
            + [[r["source"], r["url"], "skipped", r["reason"]] for r in usage["crawl_skipped"]],
        }
        tables["never"] = {
            "title": "Never cited in the period",
            "columns": ["Title", "Address", "Assistant"],
            "rows": [[r["title"], r["url"], r["source__assistant__name"]] for r in usage["never"]],
        }
    elif tab == "conversations":
        worst = selectors.worst_conversations(assistant_ids=assistant_ids, period=period)
        data.update(worst=worst, quality_formula=metrics.QUALITY_FORMULA)
        tables["worst"] = {
            "title": "Worst conversations",
            "columns": [
                "Conversation",
                "First question",
                "Assistant",
                "Quality",
                "Unanswered",
                "Rated down",
                "Failed",
                "Started",
            ],
            "rows": [
                [
                    c.conversation_id,
                    c.first_question,
                    c.assistant.name,
                    c.quality,
                    c.unanswered,
                    c.thumbs_down,
                    c.errors,
                    c.started_at.isoformat(),
                ]
                for c in worst
            ],
        }
    return data


def _page(request, tab: str, *, team, assistant=None, export: bool = False):
    if tab not in TABS:
        raise Http404("No such page")
    team_assistants = list(team.assistants.order_by("name", "id")) if assistant is None else None
    query = request.GET.copy()
    if not query.get("start") and not query.get("end"):  # the inputs show the period the page shows
        default = selectors.default_period()
        query["start"], query["end"] = default.start.isoformat(), default.end.isoformat()
    form = AnalyticsFilterForm(query, assistants=team_assistants)
    valid = form.is_valid()
    period = form.cleaned_data["period"] if valid else form.default
    chosen = form.cleaned_data.get("assistant") if valid else None
    if assistant is not None:
        assistant_ids = [assistant.pk]
    elif chosen and any(a.pk == chosen for a in team_assistants):
        assistant_ids = [chosen]
    else:
        assistant_ids = [a.pk for a in team_assistants]
    status = form.cleaned_data.get("status", "") if valid else ""
    data = _tables(tab, assistant_ids=assistant_ids, period=period, status=status, export=export)
    kind, pk = ("assistant", assistant.pk) if assistant else ("team", team.pk)
    if export:
        return _export(request, data["tables"], name=(assistant or team).slug, tab=tab, period=period)
    return render(
        request,
        f"dashboard/analytics/{tab}.html",
        {
            "team": team,
            "assistant": assistant,
            "form": form,
            "period": period,
            "previous": period.previous(),
            "tab": tab,
            "tab_title": TABS[tab],
            "tabs": [(key, label, reverse(f"{kind}_analytics", args=[pk, key])) for key, label in TABS.items()],
            "export_url": reverse(f"{kind}_analytics_export", args=[pk, tab]),
            "filtered": any(value not in ("", None) for value in request.GET.values()),
            "can_manage": access.Permission.MANAGE in (assistant or team).viewer_can,
            "leads_url": reverse("team_leads", args=[team.pk]),
            "leads_assistant": assistant.pk if assistant else (assistant_ids[0] if len(assistant_ids) == 1 else ""),
            "team_assistants": team_assistants,
            **data,
        },
        status=200 if valid else 400,
    )


def _export(request, tables: dict, *, name: str, tab: str, period):
    table = request.GET.get("table") or next(iter(tables))
    if table not in tables:
        raise Http404("No such table")
    columns, rows = tables[table]["columns"], tables[table]["rows"]

    response = StreamingHttpResponse(csv_lines(columns, rows), content_type="text/csv; charset=utf-8")
    filename = f"{name}-{tab}-{table}-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_GET
def team_analytics(request, team_id: int, tab: str):
    return _page(request, tab, team=access.team_for(user=request.user, team_id=team_id))


@login_required
@require_GET
def team_analytics_export(request, team_id: int, tab: str):
    return _page(request, tab, team=access.team_for(user=request.user, team_id=team_id), export=True)


@login_required
@require_GET
def assistant_analytics(request, assistant_id: int, tab: str):
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id)
    return _page(request, tab, team=assistant.team, assistant=assistant)


@login_required
@require_GET
def assistant_analytics_export(request, assistant_id: int, tab: str):
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id)
    return _page(request, tab, team=assistant.team, assistant=assistant, export=True)


@login_required
@require_POST
def topics_rebuild(request, assistant_id: int):
    """Group the period's questions into topics now (on a worker) and find the gaps."""
    assistant = access.assistant_for(user=request.user, assistant_id=assistant_id, write=True)
    form = AnalyticsFilterForm(request.POST)
    period = form.cleaned_data["period"] if form.is_valid() else form.default
    analytics_services.topics_build_queue(assistant=assistant, start=period.start, end=period.end)
    messages.success(request, "Grouping the questions into topics; this page shows them in a minute.")
    query = f"?start={period.start.isoformat()}&end={period.end.isoformat()}"
    return redirect(reverse("assistant_analytics", args=[assistant.pk, "questions"]) + query)


def _gap_page(request, gap, *, qa_errors=None, status=200):
    checks = list(gap.checks.select_related("message__conversation").order_by("pk"))
    qa = gap.proposal.get("qa", {})
    return render(
        request,
        "dashboard/analytics/gap.html",
        {
            "gap": gap,
            "assistant": gap.assistant,
            "checks": checks,
            "outline": gap.proposal.get("outline", {}),
            "qa_question": request.POST.get("question", qa.get("question", "")),
            "qa_answer": request.POST.get("answer", qa.get("answer", "")),
            "qa_errors": qa_errors or {},
            "can_manage": access.Permission.MANAGE in gap.viewer_can,
            "answered": sum(1 for check in checks if check.answered),
        },
        status=status,
    )


@login_required
@require_GET
def gap_detail(request, gap_id: int):
    return _gap_page(request, access.gap_for(user=request.user, gap_id=gap_id))


@login_required
@require_POST
def gap_recheck(request, gap_id: int):
    """Ask the gap's questions again now, through the answering pipeline, on a worker."""
    gap = access.gap_for(user=request.user, gap_id=gap_id, write=True)
    analytics_services.gap_recheck_queue(gap=gap)
    messages.success(request, "Asking the questions again; the results appear here in a few seconds.")
    return redirect("gap_detail", gap_id=gap.pk)


@login_required
@require_POST
def gap_qa_add(request, gap_id: int):
    """Add the proposed Q&A pair to the library (the library's own service); once it is indexed the gap's
    questions are asked again."""
    from ingestion.services import IngestionError

    gap = access.gap_for(user=request.user, gap_id=gap_id, write=True)
    question, answer = request.POST.get("question", "").strip(), request.POST.get("answer", "").strip()
    errors = {}
    if not question:
        errors["question"] = "Write the question visitors ask."
    if not answer:
        errors["answer"] = "Write the answer the assistant should give."
    if not errors:
        try:
            analytics_services.gap_qa_add(gap=gap, question=question, answer=answer)
        except IngestionError as exc:
            errors["answer"] = str(exc)
    if errors:
        return _gap_page(request, gap, qa_errors=errors, status=400)
    messages.success(request, "Added to the Q&A library. Once it is indexed, the gap's questions are asked again.")
    return redirect("gap_detail", gap_id=gap.pk)
