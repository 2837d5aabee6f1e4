"""The assistant's handoff settings as the dashboard edits them (``HandoffSettings``): lines of text
for the hours, keywords and pages, each checked at its field."""

from __future__ import annotations

import re

from django import forms

from assistants.handoff import triggers
from assistants.models import HandoffSettings

_HOURS_LINE = re.compile(
    r"^(mon|tue|wed|thu|fri|sat|sun)(?:\s*-\s*(mon|tue|wed|thu|fri|sat|sun))?\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})$"
)


def _lines(value: str) -> list[str]:
    return [line.strip() for line in str(value or "").splitlines() if line.strip()]


def hours_text(hours: dict) -> str:
    return "\n".join(f"{day} {span[0]}-{span[1]}" for day in triggers.WEEKDAYS if (span := hours.get(day)))


class HandoffSettingsForm(forms.Form):
    enabled = forms.BooleanField(
        required=False,
        label="Visitors can talk to a person here",
        help_text="Off: “Talk to a person” only asks for contact details, and nothing hands a conversation over.",
    )
    wait_minutes = forms.IntegerField(
        min_value=1,
        max_value=240,
        label="Minutes a visitor waits for someone",
        help_text="Then the chat says honestly that nobody is free, and offers to leave an email.",
    )
    timezone = forms.CharField(max_length=60, label="Time zone of your hours", help_text="For example Europe/Paris.")
    hours = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "mon-fri 09:00-17:30\nsat 10:00-13:00"}),
        label="Your team's hours",
        help_text="One line per day or range of days. Empty: always. Outside them visitors are told at once.",
    )
    keywords = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "refund\ncancel my contract"}),
        label="Words that hand over at once",
        help_text="One word or phrase per line, any language; a visitor's message containing one goes to your team.",
    )
    page_patterns = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "*/pricing/enterprise*"}),
        label="Pages that hand over at once",
        help_text="One address per line; * stands for anything.",
    )

    @classmethod
    def for_settings(cls, settings: HandoffSettings, data=None) -> HandoffSettingsForm:
        initial = {
            "enabled": settings.enabled,
            "wait_minutes": max(1, round(settings.wait_seconds / 60)),
            "timezone": settings.timezone,
            "hours": hours_text(settings.hours),
            "keywords": "\n".join(settings.keywords),
            "page_patterns": "\n".join(settings.page_patterns),
        }
        return cls(data, initial=initial)

    def clean_timezone(self) -> str:
        name = self.cleaned_data["timezone"].strip()
        if triggers.zone(name).key != name:
            raise forms.ValidationError("Use a time zone name such as Europe/Paris or America/New_York.")
        return name

    def clean_hours(self) -> dict:
        hours: dict = {}
        for line in _lines(self.cleaned_data["hours"].lower()):
            found = _HOURS_LINE.match(line)
            if not found:
                raise forms.ValidationError(
                    f"“{line[:40]}”: write a day (or days) and hours, like mon-fri 09:00-17:30."
                )
            first, last, opening, closing = found.groups()
            start, end = triggers.WEEKDAYS.index(first), triggers.WEEKDAYS.index(last or first)
            if end < start:
                raise forms.ValidationError(f"“{line[:40]}”: the days go from Monday to Sunday.")
            for day in triggers.WEEKDAYS[start : end + 1]:
                hours[day] = [opening.zfill(5), closing.zfill(5)]
        problem = triggers.hours_valid(hours)
        if problem:
            raise forms.ValidationError(problem)
        return hours

    def clean_keywords(self) -> list[str]:
        words = [line[:80] for line in _lines(self.cleaned_data["keywords"])]
        if len(words) > triggers.MAX_RULES:
            raise forms.ValidationError(f"At most {triggers.MAX_RULES} words or phrases.")
        return words

    def clean_page_patterns(self) -> list[str]:
        patterns = [line[:200] for line in _lines(self.cleaned_data["page_patterns"])]
        if len(patterns) > triggers.MAX_RULES:
            raise forms.ValidationError(f"At most {triggers.MAX_RULES} pages.")
        return patterns

    def settings_fields(self) -> dict:
        data = dict(self.cleaned_data)
        data["wait_seconds"] = data.pop("wait_minutes") * 60
        return data
