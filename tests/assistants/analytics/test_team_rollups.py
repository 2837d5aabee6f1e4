"""The team's daily rollups: the sum of its assistants' rows of each day, stored with them, read by the
whole-team pages (the seed: tests/assistants/analytics/seed.py)."""

import pytest

from assistants.analytics import metrics, selectors, services
from assistants.models import DailyRollup, TeamDailyRollup
from tests.assistants.analytics.seed import DAY1, DAY2, seed

pytestmark = pytest.mark.django_db


def strip(rows):
    return [{k: v for k, v in row.items() if k not in ("id", "computed_at")} for row in rows]


def test_a_team_day_is_the_sum_of_its_assistants_days_as_computed_by_hand():
    s = seed()
    services.rollups_compute(start=DAY1, end=DAY2)
    day = TeamDailyRollup.objects.get(team=s.team, day=DAY1)
    # A's DAY1 (4 conversations, 5 questions, ...) plus B's one conversation with one answer (ttft 400).
    assert (day.conversations, day.resolved, day.questions, day.answers) == (5, 2, 6, 6)
    assert (day.answered, day.unanswered, day.errors) == (4, 1, 1)
    assert (day.thumbs_up, day.thumbs_down) == (1, 1)
    assert (day.tokens_in, day.tokens_out, day.cost_usd) == (300, 50, pytest.approx(0.003))
    assert sorted(day.first_token_ms) == [100, 200, 300, 400, 500]
    assert day.pages == {"https://ex.example/pricing": 2, "https://ex.example/docs": 1}
    assert day.by_model["extractive"] == {"answers": 3, "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0}
    assert day.by_model["openai · gpt-4o-mini"]["answers"] == 2
    assert day.citations["https://ex.example/install"]["cited"] == 2
    second = TeamDailyRollup.objects.get(team=s.team, day=DAY2)
    assert (second.conversations, second.questions, second.first_token_ms) == (1, 1, [900])
    other = TeamDailyRollup.objects.get(team=s.other.team, day=DAY1)
    assert (other.conversations, other.first_token_ms) == (1, [50])
    assert TeamDailyRollup.objects.count() == 3
    # Every counter equals the sum of the assistants' rows of that team and day.
    for row in TeamDailyRollup.objects.all():
        parts = DailyRollup.objects.filter(assistant__team=row.team, day=row.day)
        summed = metrics.rollup_sum(parts)
        for name in metrics.COUNTERS:
            assert getattr(row, name) == pytest.approx(summed[name]), name
        assert sorted(row.first_token_ms) == sorted(v for part in parts for v in part.first_token_ms)


def test_recomputing_gives_the_same_team_rows_and_follows_a_change():
    s = seed()
    services.rollups_compute(start=DAY1, end=DAY2)
    first = strip(TeamDailyRollup.objects.order_by("team_id", "day").values())
    services.rollups_compute(start=DAY1, end=DAY2)
    services.rollups_compute(start=DAY1, end=DAY1, assistant_ids=[s.b.pk])  # one assistant's day again
    assert strip(TeamDailyRollup.objects.order_by("team_id", "day").values()) == first
    # B's conversation goes: recomputing B alone updates the team's day from A's unchanged row.
    s.b.conversations.all().delete()
    services.rollups_compute(start=DAY1, end=DAY1, assistant_ids=[s.b.pk])
    day = TeamDailyRollup.objects.get(team=s.team, day=DAY1)
    assert (day.conversations, day.questions, sorted(day.first_token_ms)) == (4, 5, [100, 200, 300, 500])


def test_the_whole_team_pages_read_the_team_rows_and_show_the_same_figures():
    s = seed()
    services.rollups_compute(start=DAY1, end=DAY2)
    period = selectors.Period(DAY1, DAY2)
    ids = [s.a.pk, s.b.pk]
    assert selectors._scope(ids).model is TeamDailyRollup
    assert selectors._scope([s.a.pk]).model is DailyRollup
    assert selectors._scope([s.a.pk, s.other.pk]).model is DailyRollup  # not one team's assistants
    team = selectors.overview(assistant_ids=ids, period=period)
    in_python = metrics.totals_of(DailyRollup.objects.filter(assistant_id__in=ids), period.days)
    assert team["values"] == pytest.approx(metrics.compute(in_python))
    assert team["values"]["conversations"] == 6 and team["values"]["ttft_median"] == 300  # [100..500, 900]
    assert [row["questions"] for row in team["series"]] == [6, 1]
    assert team["pages"] == [
        {"url": "https://ex.example/pricing", "questions": 3},
        {"url": "https://ex.example/docs", "questions": 1},
    ]
    usage = selectors.source_usage(assistant_ids=ids, period=period)
    cited = {row["url"]: row["cited"] for row in usage["cited"]}
    assert cited == {url: figures["cited"] for url, figures in in_python["citations"].items()}


def test_a_deleted_assistant_leaves_its_teams_rows(django_capture_on_commit_callbacks):
    from assistants.services import assistant_delete

    s = seed()
    services.rollups_compute(start=DAY1, end=DAY2)
    with django_capture_on_commit_callbacks(execute=True):
        assistant_delete(assistant=s.b)
    day = TeamDailyRollup.objects.get(team=s.team, day=DAY1)
    assert (day.conversations, day.questions, sorted(day.first_token_ms)) == (4, 5, [100, 200, 300, 500])
    with django_capture_on_commit_callbacks(execute=True):
        s.team.delete()  # the team's own rows go with it, none is written again
    assert not TeamDailyRollup.objects.filter(team_id=day.team_id).exists()
