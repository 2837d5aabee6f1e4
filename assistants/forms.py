from django import forms
from django.contrib.auth.models import User

from assistants.models import ApiKey, Assistant
from ingestion.models import Source

HEX_COLOR = r"^#[0-9a-fA-F]{6}$"


class SignupForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField()
    password = forms.CharField(widget=forms.PasswordInput, min_length=8)
    team_name = forms.CharField(max_length=120, label="Team name")

    def clean_username(self):
        username = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("That username is taken.")
        return username


class TeamForm(forms.Form):
    name = forms.CharField(max_length=120)


class AssistantForm(forms.ModelForm):
    primary_color = forms.RegexField(regex=HEX_COLOR, initial="#2563eb", widget=forms.TextInput(attrs={"type": "color"}))
    background_color = forms.RegexField(regex=HEX_COLOR, initial="#ffffff", widget=forms.TextInput(attrs={"type": "color"}))
    allowed_domains = forms.CharField(
        required=False,
        help_text="Sites that may embed the assistant, one per line (e.g. www.example.com).",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    class Meta:
        model = Assistant
        fields = ["name", "greeting", "system_prompt", "primary_color", "background_color", "allowed_domains"]
        widgets = {"system_prompt": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["allowed_domains"] = "\n".join(self.instance.allowed_domains)

    def clean_allowed_domains(self):
        raw = self.cleaned_data.get("allowed_domains") or ""
        return [line.strip().lower() for line in raw.splitlines() if line.strip()]


class WebsiteSourceForm(forms.Form):
    url = forms.URLField(label="Website address", assume_scheme="https")
    max_pages = forms.IntegerField(min_value=1, max_value=10000, initial=200)
    max_depth = forms.IntegerField(min_value=0, max_value=20, initial=5)
    schedule = forms.ChoiceField(
        choices=Source.Schedule.choices, initial=Source.Schedule.MANUAL, required=False, label="Recrawl"
    )

    def clean_schedule(self):
        return self.cleaned_data.get("schedule") or Source.Schedule.MANUAL


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=120)
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple, initial=[ApiKey.Scope.READ]
    )
