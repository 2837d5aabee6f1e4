"""The handoff's triggers and the team's hours, as pure functions."""

from datetime import UTC, datetime

import pytest

from assistants.handoff import triggers


@pytest.mark.parametrize(
    "text",
    [
        "Can I talk to a human please?",
        "I want to speak to a person",
        "let me chat with someone",
        "Is there a real person there?",
        "connect me to an agent",
        "Je voudrais parler à un conseiller",
        "Puis-je parler avec quelqu'un ?",
        "Kann ich mit einem Menschen sprechen?",
        "Quiero hablar con una persona",
        "我要转人工",
        "可以找客服吗",
    ],
)
def test_a_visitor_asking_for_a_person_is_recognised(text):
    assert triggers.asks_for_person(text)


@pytest.mark.parametrize(
    "text",
    [
        "How do I install the gadget?",
        "What does the Business plan cost?",
        "Does it talk to my phone?",
        "The person icon in the app does nothing",
        "",
    ],
)
def test_ordinary_questions_are_not_a_request_for_a_person(text):
    assert triggers.asks_for_person(text) == ""


def test_team_rules_match_keywords_from_the_start_of_a_word_and_page_patterns():
    rules = {"keywords": ["refund", "Kündigung", "  "], "page_patterns": ["*/pricing/enterprise*"]}
    assert triggers.rule_matched(**rules, text="I want REFUNDS now", page_url="") == "keyword: refund"
    assert triggers.rule_matched(**rules, text="Eine Kündigung bitte", page_url="") == "keyword: Kündigung"
    assert triggers.rule_matched(**rules, text="nonrefundable?", page_url="") == ""
    assert (
        triggers.rule_matched(**rules, text="hello", page_url="https://shop.example/pricing/enterprise/")
        == "page: */pricing/enterprise*"
    )
    assert triggers.rule_matched(**rules, text="hello", page_url="https://shop.example/pricing/") == ""
    assert triggers.rule_matched(keywords=[None, 3], page_patterns=[{}], text="refund", page_url="x") == ""


def test_the_team_is_there_within_its_hours_in_its_time_zone():
    hours = {"mon": ["09:00", "17:00"]}
    monday_8_utc = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # 09:00 in Paris (UTC+1)
    assert triggers.within_hours(hours=hours, timezone="Europe/Paris", now=monday_8_utc)
    assert not triggers.within_hours(hours=hours, timezone="UTC", now=monday_8_utc)
    assert not triggers.within_hours(hours=hours, timezone="UTC", now=datetime(2026, 11, 30, 17, 0, tzinfo=UTC))
    assert not triggers.within_hours(hours=hours, timezone="UTC", now=datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    assert triggers.within_hours(hours={}, timezone="UTC", now=monday_8_utc)
    assert triggers.within_hours(hours=hours, timezone="No/Such_Zone", now=datetime(2026, 11, 30, 9, 0, tzinfo=UTC))


def test_hours_are_checked():
    assert triggers.hours_valid({"mon": ["09:00", "17:00"]}) == ""
    assert "weekday" in triggers.hours_valid({"monday": ["09:00", "17:00"]})
    assert "HH:MM" in triggers.hours_valid({"mon": ["9", "17:00"]})
    assert "after" in triggers.hours_valid({"mon": ["17:00", "09:00"]})
