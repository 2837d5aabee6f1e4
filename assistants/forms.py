from django import forms
from django.contrib.auth.models import User
from django.core.validators import URLValidator

from assistants.domains import allowed as domain_rules
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


LANGUAGES = [
    ("", "The visitor's browser"),
    ("en", "English"),
    ("fr", "Français"),
    ("de", "Deutsch"),
    ("es", "Español"),
    ("zh", "中文"),
]
LLM_PROVIDERS = [
    ("", "The server's default (LLM_PROVIDER)"),
    ("openai", "OpenAI-compatible"),
    ("anthropic", "Anthropic"),
    ("gemini", "Google Gemini"),
]
MAX_SUGGESTED_QUESTIONS = 6
MAX_SUGGESTED_QUESTION_CHARS = 120


class HttpUrlField(forms.URLField):
    """A web address for an image: http or https only, never javascript:, data: or ftp:."""

    default_validators = [URLValidator(schemes=["http", "https"])]

    def __init__(self, **kwargs):
        kwargs.setdefault("assume_scheme", "https")
        super().__init__(**kwargs)


class AssistantForm(forms.ModelForm):
    """An assistant's name, texts, colours and allowed domains (the REST API's fields)."""

    primary_color = forms.RegexField(
        regex=HEX_COLOR, initial="#2563eb", widget=forms.TextInput(attrs={"type": "color"})
    )
    background_color = forms.RegexField(
        regex=HEX_COLOR, initial="#ffffff", widget=forms.TextInput(attrs={"type": "color"})
    )
    allowed_domains = forms.CharField(
        required=False,
        help_text="Sites that may show the widget, one per line: www.example.com, *.example.com (every "
        "subdomain) or localhost:8080.",
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
        return allowed_domains_cleaned(self.cleaned_data.get("allowed_domains") or "")


def allowed_domains_cleaned(raw: str) -> list[str]:
    """The textarea's lines as allowed domains (assistants.domains.allowed says what one may be)."""
    try:
        return domain_rules.clean_allowed_domains(raw)
    except domain_rules.AllowedDomainError as exc:
        raise forms.ValidationError(str(exc)) from exc


class AllowedDomainsForm(forms.Form):
    """The Install page's list of the sites that may show the widget."""

    allowed_domains = forms.CharField(
        required=False,
        label="Allowed domains",
        help_text="One per line: www.example.com, *.example.com (every subdomain) or localhost:8080. "
        "The widget shows on these sites only.",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocapitalize": "off"}),
    )

    def __init__(self, *args, assistant: Assistant, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.setdefault("allowed_domains", "\n".join(assistant.allowed_domains or []))

    def clean_allowed_domains(self):
        return allowed_domains_cleaned(self.cleaned_data.get("allowed_domains") or "")


class AssistantBrandingForm(AssistantForm):
    """The dashboard's assistant form: AssistantForm plus the whole look of the widget and the full
    page, and the access code of an internal assistant."""

    avatar_url = HttpUrlField(required=False, max_length=500, label="Avatar URL", help_text="An image (http or https).")
    logo_url = HttpUrlField(required=False, max_length=500, label="Logo URL", help_text="An image (http or https).")
    launcher_position = forms.ChoiceField(
        choices=Assistant._meta.get_field("launcher_position").choices, required=False, initial="right"
    )
    launcher_icon = forms.ChoiceField(
        choices=Assistant._meta.get_field("launcher_icon").choices, required=False, initial="chat"
    )
    theme = forms.ChoiceField(choices=Assistant._meta.get_field("theme").choices, required=False, initial="auto")
    language = forms.ChoiceField(choices=LANGUAGES, required=False, initial="")
    suggested_questions = forms.CharField(
        required=False,
        help_text=f"Shown as buttons before the first question: one per line, at most {MAX_SUGGESTED_QUESTIONS}, "
        f"each at most {MAX_SUGGESTED_QUESTION_CHARS} characters.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    show_powered_by = forms.BooleanField(required=False, initial=True, label="Show “Powered by Chatsite”")
    access_code = forms.CharField(
        required=False,
        min_length=4,
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Makes the assistant internal: visitors must enter this code first. Leave empty to keep the current one.",
    )
    clear_access_code = forms.BooleanField(required=False, label="Remove the access code (make the assistant public)")
    llm_provider = forms.ChoiceField(choices=LLM_PROVIDERS, required=False, label="Language model provider")
    llm_model = forms.CharField(
        required=False, max_length=200, label="Model", help_text="e.g. gpt-4o-mini; empty: the server's LLM_MODEL."
    )
    llm_base_url = HttpUrlField(
        required=False,
        max_length=500,
        label="Provider base URL",
        help_text="Empty: the provider's official API. The server's API keys are never sent to a URL set here.",
    )
    reranker_model = forms.CharField(
        required=False,
        max_length=200,
        label="Reranker",
        help_text="Optional: a hub id or local folder of a cross-encoder or Qwen3-Reranker.",
    )

    class Meta(AssistantForm.Meta):
        fields = [
            "name",
            "avatar_url",
            "logo_url",
            "primary_color",
            "background_color",
            "launcher_position",
            "launcher_icon",
            "theme",
            "greeting",
            "suggested_questions",
            "system_prompt",
            "show_powered_by",
            "language",
            "allowed_domains",
            "llm_provider",
            "llm_model",
            "llm_base_url",
            "reranker_model",
        ]

    def clean_reranker_model(self):
        name = (self.cleaned_data.get("reranker_model") or "").strip()
        if name and name != self.instance.reranker_model:
            from ingestion.search.rerank import recipe_for

            try:
                recipe_for(name, local_files_only=True)  # a form never waits on the hub
            except ValueError as exc:  # a model, but not a reranker family we serve
                raise forms.ValidationError(f"{name!r} is not a reranker this server can run: {exc}.") from exc
            except Exception as exc:
                raise forms.ValidationError(
                    f"{name!r} is neither a known reranker, a local model folder, nor a model in this server's cache."
                ) from exc
        return name

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["suggested_questions"] = "\n".join(self.instance.suggested_questions or [])

    def clean_suggested_questions(self):
        raw = self.cleaned_data.get("suggested_questions") or ""
        questions = [" ".join(line.split()) for line in raw.splitlines() if line.strip()]
        if len(questions) > MAX_SUGGESTED_QUESTIONS:
            raise forms.ValidationError(f"At most {MAX_SUGGESTED_QUESTIONS} suggested questions.")
        if any(len(q) > MAX_SUGGESTED_QUESTION_CHARS for q in questions):
            raise forms.ValidationError(
                f"Each suggested question may have at most {MAX_SUGGESTED_QUESTION_CHARS} characters."
            )
        return questions

    def _clean_choice(self, name: str):
        return self.cleaned_data.get(name) or Assistant._meta.get_field(name).default

    def clean_launcher_position(self):
        return self._clean_choice("launcher_position")

    def clean_launcher_icon(self):
        return self._clean_choice("launcher_icon")

    def clean_theme(self):
        return self._clean_choice("theme")

    def split(self) -> tuple[dict, dict]:
        """The assistant's fields, and the access-code change: {"code": str} to set, {"code": None} to
        clear, {} to keep it."""
        data = dict(self.cleaned_data)
        code = data.pop("access_code", "")
        clear = data.pop("clear_access_code", False)
        if code:
            return data, {"code": code}
        return data, ({"code": None} if clear else {})


class WebsiteSourceForm(forms.Form):
    url = forms.URLField(label="Website address", assume_scheme="https")
    max_pages = forms.IntegerField(min_value=1, max_value=10000, initial=200)
    max_depth = forms.IntegerField(min_value=0, max_value=20, initial=5)
    schedule = forms.ChoiceField(
        choices=Source.Schedule.choices, initial=Source.Schedule.MANUAL, required=False, label="Recrawl"
    )
    render_javascript = forms.BooleanField(
        required=False,
        initial=False,
        label="Render JavaScript",
        help_text="For single-page apps whose text only appears after their scripts run (slower).",
    )

    def clean_schedule(self):
        return self.cleaned_data.get("schedule") or Source.Schedule.MANUAL


class WebsiteStartForm(forms.Form):
    """The first question after creating an assistant: its website (crawled with the defaults)."""

    url = forms.URLField(
        label="Your website's address",
        assume_scheme="https",
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://www.example.com", "autofocus": True}),
        help_text="We read its pages (up to 200) so that the assistant answers from them.",
    )


class CustomDomainForm(forms.Form):
    host = forms.CharField(max_length=253, label="Host name", help_text="e.g. help.example.com (no https://, no path)")

    def clean_host(self):
        from assistants.domains import verification as domains

        try:
            return domains.normalize_host(self.cleaned_data["host"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc


class AccessCodeForm(forms.Form):
    code = forms.CharField(max_length=128, strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "off"}))


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=120)
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple, initial=[ApiKey.Scope.READ]
    )
