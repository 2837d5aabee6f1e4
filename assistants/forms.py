from django import forms
from django.conf import settings
from django.contrib.auth.models import User
from django.core.validators import URLValidator

from assistants.domains import allowed as domain_rules
from assistants.models import ApiKey, Assistant, Membership
from assistants.selectors import LANGUAGES
from ingestion.models import Source

HEX_COLOR = r"^#[0-9a-fA-F]{6}$"
# A site that may embed the widget: a host, a "*." for its subdomains, a port (as the widget's CSP reads them).


class SignupForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField()
    password = forms.CharField(widget=forms.PasswordInput, min_length=8, help_text="At least 8 characters.")
    team_name = forms.CharField(max_length=120, label="Team name")

    def clean_username(self):
        username = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("That username is taken.")
        return username


class TeamForm(forms.Form):
    name = forms.CharField(max_length=120, label="Team name")


LANGUAGE_CHOICES = [("", "The visitor's browser"), *LANGUAGES.items()]
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
    default_error_messages = {"invalid": "Enter an http or https address, e.g. https://www.example.com/logo.png."}

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
    language = forms.ChoiceField(choices=LANGUAGE_CHOICES, required=False, initial="")
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
            from ingestion.embedding.recipes import ModelNotAllowed
            from ingestion.search.rerank import recipe_for

            try:
                recipe_for(name, local_files_only=True)  # a form never waits on the hub
            except ModelNotAllowed as exc:
                raise forms.ValidationError(f"{exc}.") from exc
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


MAX_PATTERNS = 50
MAX_PATTERN_CHARS = 200


class PatternsField(forms.CharField):
    """Path patterns, one per line in the form (a list from the API): shell-style globs on a URL's path
    and query, each starting with ``/`` or ``*`` (``/docs/*``, ``*?print=*``)."""

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocapitalize": "off"})

    def to_python(self, value):
        if isinstance(value, list | tuple):
            value = "\n".join(str(item) for item in value)
        return super().to_python(value)

    def clean(self, value):
        text = super().clean(value) or ""
        patterns = [line.strip() for line in text.splitlines() if line.strip()]
        if len(patterns) > MAX_PATTERNS:
            raise forms.ValidationError(f"At most {MAX_PATTERNS} patterns.")
        for pattern in patterns:
            if len(pattern) > MAX_PATTERN_CHARS:
                raise forms.ValidationError(f"Each pattern may have at most {MAX_PATTERN_CHARS} characters.")
            if not pattern.startswith(("/", "*")):
                raise forms.ValidationError(
                    f"“{pattern}” must start with / or * (it is matched against the path, e.g. /docs/*)."
                )
        return patterns


class WebsiteSourceForm(forms.Form):
    url = forms.URLField(
        label="Website address",
        assume_scheme="https",
        max_length=2000,
        error_messages={"invalid": "Enter the address of a website, e.g. https://www.example.com."},
        help_text="The crawl starts here and stays under its folder: https://example.com/help/ reads /help/… only.",
    )
    # The defaults are the server's (CRAWL_MAX_PAGES, CRAWL_MAX_DEPTH), read when the form is shown.
    max_pages = forms.IntegerField(
        min_value=1, max_value=10000, initial=lambda: settings.CRAWL_MAX_PAGES, label="Max pages"
    )
    max_depth = forms.IntegerField(
        min_value=0,
        max_value=20,
        initial=lambda: settings.CRAWL_MAX_DEPTH,
        label="Max depth",
        help_text="How many links away from the address the crawl goes (0: the address alone).",
    )
    schedule = forms.ChoiceField(
        choices=Source.Schedule.choices, initial=Source.Schedule.MANUAL, required=False, label="Recrawl"
    )
    include = PatternsField(
        required=False,
        label="Only pages matching",
        help_text="One pattern per line, e.g. /docs/* — with any, only matching pages are read (and the "
        "crawl may leave the address's folder).",
    )
    exclude = PatternsField(
        required=False,
        label="Never pages matching",
        help_text="One pattern per line, e.g. /blog/* or *?print=* (* matches anything, / included).",
    )
    sitemap_url = forms.URLField(
        required=False,
        assume_scheme="https",
        max_length=2000,
        label="Sitemap address",
        help_text="Optional: read this sitemap instead of the ones robots.txt lists (on the same site).",
    )
    whole_site = forms.BooleanField(
        required=False, initial=False, label="Read the whole site, not only the address's folder"
    )
    render_javascript = forms.BooleanField(
        required=False,
        initial=False,
        label="Render JavaScript",
        help_text="For single-page apps whose text only appears after their scripts run (slower).",
    )

    def clean_schedule(self):
        return self.cleaned_data.get("schedule") or Source.Schedule.MANUAL

    def clean(self):
        data = super().clean()
        url, sitemap = data.get("url"), data.get("sitemap_url")
        if url and sitemap:
            from urllib.parse import urlsplit

            a, b = urlsplit(url), urlsplit(sitemap)
            if (a.hostname, a.port) != (b.hostname, b.port):
                self.add_error("sitemap_url", "The sitemap must be on the same site as the address.")
        return data

    @classmethod
    def initial_for(cls, source: Source) -> dict:
        """The form's values for an existing source."""
        options = source.settings or {}
        return {
            "url": source.url,
            "max_pages": options.get("max_pages", settings.CRAWL_MAX_PAGES),
            "max_depth": options.get("max_depth", settings.CRAWL_MAX_DEPTH),
            "schedule": source.schedule,
            "include": "\n".join(options.get("include") or []),
            "exclude": "\n".join(options.get("exclude") or []),
            "sitemap_url": options.get("sitemap_url", ""),
            "whole_site": bool(options.get("whole_site")),
            "render_javascript": bool(options.get("render_javascript")),
        }


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
    name = forms.CharField(max_length=120, label="Name", help_text="What uses it, e.g. “CMS sync”.")
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple, initial=[ApiKey.Scope.READ]
    )


# --- The assistant's settings, one form per section ----------------------------------------------

SETTINGS_SECTIONS = {
    # section: (title, what it holds, the fields of AssistantBrandingForm it edits)
    "branding": (
        "Branding",
        "How the widget and the full page look.",
        [
            "name",
            "logo_url",
            "avatar_url",
            "primary_color",
            "background_color",
            "theme",
            "launcher_position",
            "launcher_icon",
            "show_powered_by",
        ],
    ),
    "behaviour": (
        "Behaviour",
        "What the assistant says first, how it answers, and in which language.",
        ["greeting", "system_prompt", "language", "suggested_questions"],
    ),
    "model": (
        "Model",
        "Which language model writes the answers, and how your content is searched.",
        ["llm_provider", "llm_model", "llm_base_url", "reranker_model"],
    ),
    "access": (
        "Access",
        "Who may chat with the assistant, and which sites may embed it.",
        ["access_code", "clear_access_code", "allowed_domains"],
    ),
    # Its own form (assistants.leads.forms.LeadCaptureSettingsForm), stored in a LeadCapture row.
    "leads": (
        "Lead capture",
        "When the assistant asks visitors for their contact details, inside the chat, and which ones.",
        [],
    ),
    "danger": ("Danger zone", "What cannot be undone.", []),
}

# Plain words for the settings pages (the API keeps the short help texts of AssistantBrandingForm).
SETTINGS_LABELS = {
    "system_prompt": (
        "Instructions and tone",
        "How the assistant should answer: its tone, what to stress, what to avoid. "
        "It always answers from your content and cites it.",
    ),
    "greeting": ("Greeting", "The first message visitors see."),
    "language": ("Language", "The language of the chat's buttons and messages. Answers follow the visitor's question."),
    "primary_color": ("Main colour", "Buttons, the launcher and links."),
    "background_color": ("Background colour", "The chat's background in the light theme."),
    "theme": ("Theme", "Auto follows the visitor's system setting."),
    "launcher_position": ("Launcher position", "Where the chat button sits on your pages."),
    "launcher_icon": ("Launcher icon", ""),
    "llm_provider": (
        "Provider",
        "The company or server whose language model writes the answers. "
        "The server's default is set by whoever runs Chatsite.",
    ),
    "llm_model": ("Model", "The model's name at that provider, e.g. gpt-4o-mini. Empty: the server's default model."),
    "llm_base_url": (
        "Provider address",
        "Only for a self-hosted or compatible server (e.g. an Ollama or vLLM address "
        "ending in /v1). Empty: the provider's official API. The server's API keys are never sent to an "
        "address set here.",
    ),
    "reranker_model": (
        "Reranker",
        "Optional. A second model that re-reads the best search results and puts the most "
        "relevant first: better answers, a little slower. A hub id or a folder on the server, "
        "e.g. BAAI/bge-reranker-v2-m3.",
    ),
    "allowed_domains": (
        "Sites that may embed the assistant",
        "One per line, e.g. www.example.com, or *.example.com for every subdomain; localhost:8000 while testing. "
        "The widget opens only on these sites; the full page (/a/…) opens everywhere.",
    ),
    "access_code": (
        "Access code",
        "Makes the assistant internal: visitors must type this code before they can chat. "
        "At least 4 characters. Leave empty to keep the current code.",
    ),
}


class AssistantSettingsForm(AssistantBrandingForm):
    """One section of the assistant's settings: AssistantBrandingForm's validation, with only that
    section's fields (the others keep their values)."""

    def __init__(self, *args, section: str, **kwargs):
        super().__init__(*args, **kwargs)
        keep = SETTINGS_SECTIONS[section][2]
        for name in list(self.fields):
            if name not in keep:
                del self.fields[name]
        for name, (label, help_text) in SETTINGS_LABELS.items():
            if name in self.fields:
                self.fields[name].label = label
                self.fields[name].help_text = help_text
        if "system_prompt" in self.fields:
            self.fields["system_prompt"].widget.attrs["rows"] = 5
        if "clear_access_code" in self.fields and not self.instance.access_code_hash:
            del self.fields["clear_access_code"]  # nothing to remove
        self.order_fields(keep)


class EmbeddingSwitchForm(forms.Form):
    """Another embedding model for the assistant (the view starts the switch, which reads the model)."""

    model_name = forms.CharField(
        max_length=200,
        label="Switch to another embedding model",
        help_text="A hub id or a folder on the server, e.g. thenlper/gte-base. Your content is read again with it in "
        "the background; answers keep using the current model until it is done, then switch by themselves.",
        widget=forms.TextInput(attrs={"placeholder": "thenlper/gte-base"}),
    )

    def clean_model_name(self):
        from pathlib import Path

        name = self.cleaned_data["model_name"].strip()
        if name.startswith(("/", "./", "../", "~")) and not Path(name).expanduser().is_dir():
            raise forms.ValidationError(f"There is no folder {name} on this server.")
        return name


class AssistantDeleteForm(forms.Form):
    confirm_name = forms.CharField(max_length=120, label="Type the assistant's name to confirm")

    def __init__(self, *args, assistant: Assistant, **kwargs):
        super().__init__(*args, **kwargs)
        self.assistant = assistant

    def clean_confirm_name(self):
        typed = self.cleaned_data["confirm_name"]
        if typed.strip() != self.assistant.name.strip():
            raise forms.ValidationError(f"Type {self.assistant.name} exactly, to be sure you delete the right one.")
        return typed


# --- Conversations --------------------------------------------------------------------------------

RATING_FILTERS = [("", "Any rating"), ("up", "Thumbs up"), ("down", "Thumbs down"), ("none", "Not rated")]


class ConversationFilterForm(forms.Form):
    """The conversation log's filters (GET); ``assistants`` offers the assistant filter (the team's log)."""

    q = forms.CharField(required=False, max_length=200, label="Search questions and answers")
    assistant = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Assistant")
    rating = forms.ChoiceField(required=False, choices=RATING_FILTERS, label="Rating")
    flags = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Only")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, assistants=None, flags=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["flags"].choices = [(flag.name, flag.label) for flag in flags]
        if assistants is None:
            del self.fields["assistant"]
        else:
            self.fields["assistant"].choices = [("", "All assistants")] + [(a.pk, a.name) for a in assistants]

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The end date is before the start date.")
        return data

    def filters(self) -> dict:
        """The valid filters, as assistants.selectors.conversation_log takes them."""
        data = self.cleaned_data
        return {
            "search": data.get("q") or "",
            "flags": data.get("flags") or [],
            "rating": data.get("rating") or "",
            "since": data.get("since"),
            "until": data.get("until"),
        }


class FixAnswerForm(forms.Form):
    """“Fix this answer”: the visitor's question and the answer it should have had, as a Q&A pair."""

    message_id = forms.IntegerField(widget=forms.HiddenInput)
    question = forms.CharField(max_length=500, label="Question", help_text="As the visitor asked it; you may tidy it.")
    answer = forms.CharField(
        max_length=20_000,
        label="The right answer",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Added to the Q&A library and indexed at once: the assistant answers from it from now on.",
        error_messages={"required": "Write the answer the assistant should have given."},
    )


# --- Teams, invitations, accounts -----------------------------------------------------------------

INVITE_ROLES = [(value, label) for value, label in Membership.Role.choices]


class InvitationForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)
    role = forms.ChoiceField(choices=INVITE_ROLES, initial=Membership.Role.MEMBER, label="Role")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=INVITE_ROLES, label="Role")


class InvitedSignupForm(forms.Form):
    """An account for an invited address (the email is the invitation's)."""

    username = forms.CharField(max_length=150, label="Choose a username")
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), label="Choose a password"
    )

    def clean_username(self):
        username = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("That username is taken.")
        return username

    def clean_password(self):
        from django.contrib.auth.password_validation import validate_password

        password = self.cleaned_data["password"]
        validate_password(password)
        return password
