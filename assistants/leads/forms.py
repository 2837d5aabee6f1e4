"""The forms of lead capture: the visitor's inline form (built from the assistant's settings) and the
team's settings section."""

from __future__ import annotations

import re

from django import forms

from assistants.leads import intent
from assistants.models import LeadCapture

FIELD_LABELS = {"name": "Name", "email": "Email", "phone": "Phone", "company": "Company"}
FIELD_CHOICES = [("required", "Required"), ("optional", "Optional"), ("off", "Not asked")]
DEFAULT_FIELDS = {"name": "optional", "email": "required", "phone": "off", "company": "optional"}
DEFAULT_CONSENT = "I agree that the team may contact me about my request."
DEFAULT_TITLE = "Leave your details and the team will get back to you."
MAX_CUSTOM_FIELDS = 5
PHONE_DIGITS = re.compile(r"\d")
PHONE_SHAPE = re.compile(r"^\+?[\d\s().\-/]+$")


def fields_in_use(capture: LeadCapture | None) -> dict[str, str]:
    configured = (capture.fields if capture else None) or {}
    return {name: configured.get(name, DEFAULT_FIELDS[name]) for name in DEFAULT_FIELDS}


def form_spec(capture: LeadCapture | None) -> dict:
    """What the chat shows: the fields in order (key, label, type, required), the consent text, the title."""
    fields = []
    for name, mode in fields_in_use(capture).items():
        if mode != "off":
            fields.append(
                {
                    "key": name,
                    "label": FIELD_LABELS[name],
                    "type": {"email": "email", "phone": "tel"}.get(name, "text"),
                    "required": mode == "required",
                }
            )
    for custom in (capture.custom_fields if capture else None) or []:
        fields.append(
            {
                "key": "custom_" + custom["key"],
                "label": custom["label"],
                "type": "text",
                "required": bool(custom.get("required")),
            }
        )
    consent = capture.consent_text if capture else DEFAULT_CONSENT
    return {"title": (capture.title if capture else "") or DEFAULT_TITLE, "fields": fields, "consent": consent}


def phone_cleaned(value: str) -> str:
    value = " ".join(value.split())
    digits = len(PHONE_DIGITS.findall(value))
    if not PHONE_SHAPE.match(value) or not 7 <= digits <= 15:
        raise forms.ValidationError("Enter a phone number of 7 to 15 digits, e.g. +33 6 12 34 56 78.")
    return value


class LeadForm(forms.Form):
    """The visitor's details, as the assistant's settings ask for them; errors come back by field."""

    def __init__(self, *args, capture: LeadCapture | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.spec = form_spec(capture)
        for field in self.spec["fields"]:
            key, required = field["key"], field["required"]
            if key == "email":
                self.fields[key] = forms.EmailField(
                    max_length=254,
                    required=required,
                    error_messages={"invalid": "Enter a valid email address, e.g. name@example.com."},
                )
            elif key == "phone":
                self.fields[key] = forms.CharField(max_length=40, required=required)
            else:
                self.fields[key] = forms.CharField(max_length=200, required=required)
            self.fields[key].error_messages["required"] = f"{field['label']} is required."
        if self.spec["consent"]:
            self.fields["consent"] = forms.BooleanField(
                required=True, error_messages={"required": "Please tick the box to agree to be contacted."}
            )

    def clean_phone(self):
        value = self.cleaned_data.get("phone", "").strip()
        return phone_cleaned(value) if value else ""

    def contact(self) -> dict:
        data = self.cleaned_data
        return {name: str(data.get(name) or "").strip() for name in DEFAULT_FIELDS}

    def custom(self) -> dict:
        return {
            key.removeprefix("custom_"): str(value).strip()
            for key, value in self.cleaned_data.items()
            if key.startswith("custom_") and str(value).strip()
        }


class LeadCaptureSettingsForm(forms.Form):
    """The Lead capture section of an assistant's settings."""

    triggers = forms.MultipleChoiceField(
        choices=LeadCapture.Trigger.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Ask for contact details",
        help_text="Once per conversation, inside the chat; the visitor can say no. None ticked: never ask.",
    )
    after_answers = forms.IntegerField(min_value=1, max_value=50, initial=3, label="After how many answers")
    title = forms.CharField(
        max_length=200, required=False, label="The form's first line", help_text=f"Empty: “{DEFAULT_TITLE}”"
    )
    consent_text = forms.CharField(
        max_length=500,
        required=False,
        label="Consent checkbox text",
        help_text="Stored with each lead, with the time it was ticked. Empty: no consent box.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    custom_fields = forms.CharField(
        required=False,
        label="Custom fields",
        help_text="One per line, at most five; end a line with * to make it required, e.g. “Team size *”.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, capture: LeadCapture | None = None, **kwargs):
        capture_fields = fields_in_use(capture)
        phrases = intent.phrases_for(capture.intent_phrases if capture else None)
        initial = {
            "triggers": capture.triggers if capture else [],
            "after_answers": capture.after_answers if capture else 3,
            "title": capture.title if capture else "",
            "consent_text": capture.consent_text if capture else DEFAULT_CONSENT,
            "custom_fields": "\n".join(
                f"{c['label']}{' *' if c.get('required') else ''}"
                for c in (capture.custom_fields if capture else []) or []
            ),
            **{f"field_{name}": mode for name, mode in capture_fields.items()},
            **{f"intent_{lang}": "\n".join(words) for lang, words in phrases.items()},
        }
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        fields = {}
        for name, label in FIELD_LABELS.items():
            fields[f"field_{name}"] = forms.ChoiceField(choices=FIELD_CHOICES, label=label, widget=forms.RadioSelect)
        for lang, language in intent.LANGUAGES.items():
            fields[f"intent_{lang}"] = forms.CharField(
                required=False,
                label=f"Buying-intent words ({language})",
                help_text="One word or phrase per line; a question with one of them asks for details."
                if lang == "en"
                else "",
                widget=forms.Textarea(attrs={"rows": 3}),
            )
        self.fields.update(fields)
        self.order_fields(
            [
                "triggers",
                "after_answers",
                *[f"field_{n}" for n in FIELD_LABELS],
                "custom_fields",
                "title",
                "consent_text",
            ]
        )

    def clean_custom_fields(self):
        rows = []
        keys = set()
        for line in (self.cleaned_data.get("custom_fields") or "").splitlines():
            label = " ".join(line.split())
            if not label:
                continue
            required = label.endswith("*")
            label = label.rstrip("* ").strip()[:60]
            key = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:30] or f"field_{len(rows) + 1}"
            if key in keys or key in FIELD_LABELS:
                raise forms.ValidationError(f"“{label}” is there twice (or is one of the fields above).")
            keys.add(key)
            rows.append({"key": key, "label": label, "required": required})
        if len(rows) > MAX_CUSTOM_FIELDS:
            raise forms.ValidationError(f"At most {MAX_CUSTOM_FIELDS} custom fields.")
        return rows

    def clean(self):
        data = super().clean()
        if data.get("field_email") == "off" and data.get("field_phone") == "off":
            self.add_error("field_email", "Ask for an email or a phone number, or the team cannot reply.")
        return data

    def values(self) -> dict:
        data = self.cleaned_data
        return {
            "triggers": list(data["triggers"]),
            "after_answers": data["after_answers"],
            "title": data["title"].strip(),
            "consent_text": " ".join(data["consent_text"].split()),
            "custom_fields": data["custom_fields"],
            "fields": {name: data[f"field_{name}"] for name in FIELD_LABELS},
            "intent_phrases": {lang: intent.phrases_cleaned(data[f"intent_{lang}"]) for lang in intent.LANGUAGES},
        }
