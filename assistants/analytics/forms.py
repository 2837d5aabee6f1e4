"""The analytics pages' filters (GET): the period, the assistant (on the team's pages), a gap status."""

from __future__ import annotations

import datetime as dt

from django import forms

from assistants.analytics.selectors import Period, default_period
from assistants.models import ContentGap

MAX_DAYS = 366
# Dates outside these are refused (the previous period and the day after the end must stay valid dates).
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2999, 12, 31)


class AnalyticsFilterForm(forms.Form):
    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    assistant = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Assistant")
    status = forms.ChoiceField(required=False, label="Status", choices=[("", "All gaps"), *ContentGap.Status.choices])

    def __init__(self, *args, assistants=None, today: dt.date | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.default = default_period(today)
        if assistants is None:
            del self.fields["assistant"]
        else:
            self.fields["assistant"].choices = [("", "All assistants")] + [(a.pk, a.name) for a in assistants]

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        for name, day in (("start", start), ("end", end)):
            if day and not FIRST_DAY <= day <= LAST_DAY:
                self.add_error(name, f"A date from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}.")
                return data | {"period": self.default}
        if start and not end:
            end = min(self.default.end, start + dt.timedelta(days=MAX_DAYS - 1))
        if end and not start:
            start = end - dt.timedelta(days=self.default.days - 1)
        if start and end:
            if end < start:
                self.add_error("end", "The end date is before the start date.")
            elif (end - start).days + 1 > MAX_DAYS:
                self.add_error("end", f"A period is at most {MAX_DAYS} days.")
        data["period"] = Period(start, end) if start and end else self.default
        return data
