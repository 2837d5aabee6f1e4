"""Teams, their assistants, and the conversations visitors have with them."""

import secrets

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import models


def _public_key() -> str:
    return "pk_" + secrets.token_urlsafe(18)


class Team(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="membership_unique_team_user")]


class Invitation(models.Model):
    """An owner's invitation to join their team with a role, sent by email as a signed, expiring link
    (``assistants.services.invitation_create``). Only the sha256 of the link's secret is stored."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=10, choices=Membership.Role.choices, default=Membership.Role.MEMBER)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField()  # when the current link was made (and its age is counted from)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "email"], condition=models.Q(accepted_at__isnull=True), name="invitation_one_pending"
            )
        ]


class Assistant(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="assistants")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    # Identifies the assistant in the widget and the public chat: it allows chatting, nothing else.
    public_key = models.CharField(max_length=64, unique=True, default=_public_key, editable=False)
    system_prompt = models.TextField(
        blank=True,
        default="You are a helpful assistant for this website. Answer from the sources; be concise and friendly.",
    )
    greeting = models.CharField(max_length=300, blank=True, default="Hi! Ask me anything about this site.")
    primary_color = models.CharField(max_length=7, default="#2563eb")
    background_color = models.CharField(max_length=7, default="#ffffff")
    allowed_domains = models.JSONField(default=list, blank=True)
    # Branding, applied to the widget and the full page alike.
    avatar_url = models.URLField(max_length=500, blank=True, default="")
    logo_url = models.URLField(max_length=500, blank=True, default="")
    launcher_position = models.CharField(
        max_length=5, choices=[("right", "Bottom right"), ("left", "Bottom left")], default="right"
    )
    launcher_icon = models.CharField(
        max_length=10, choices=[("chat", "Chat bubble"), ("help", "Question mark"), ("spark", "Spark")], default="chat"
    )
    theme = models.CharField(
        max_length=5, choices=[("auto", "Auto"), ("light", "Light"), ("dark", "Dark")], default="auto"
    )
    suggested_questions = models.JSONField(default=list, blank=True)  # up to a few short strings
    show_powered_by = models.BooleanField(default=True)
    language = models.CharField(max_length=10, blank=True, default="")  # "" = the visitor's browser
    # An internal assistant's full page asks for this code first (a Django password hash; "" = open).
    access_code_hash = models.CharField(max_length=200, blank=True, default="")
    # Answering: the LLM ("" = the LLM_* settings, or the extractive default) and an optional reranker.
    llm_provider = models.CharField(max_length=30, blank=True, default="")
    llm_model = models.CharField(max_length=200, blank=True, default="")
    llm_base_url = models.URLField(max_length=500, blank=True, default="")
    reranker_model = models.CharField(max_length=200, blank=True, default="")
    # When the widget's loader was last allowed to open on a site, and that site's origin: the
    # dashboard's "installed" (recorded at most every few minutes, see services.widget_seen_record).
    widget_seen_at = models.DateTimeField(null=True, blank=True)
    widget_seen_origin = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    @property
    def embedding_model(self) -> str:
        """The model of the active embedding space (what answers are searched with)."""
        return self.spaces.filter(status="active").values_list("model_name", flat=True).first() or ""


class CustomDomain(models.Model):
    """A customer's own host (``help.customer.com``) serving an assistant's full page once verified."""

    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="domains")
    # Lower-case, no port. Several assistants may claim a host while it is unverified (so a stale claim
    # blocks nobody); the first to prove control has it, and the others' claims go.
    host = models.CharField(max_length=253, db_index=True)
    verification_token = models.CharField(max_length=64)
    verified_at = models.DateTimeField(null=True, blank=True)
    last_check_error = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["host"], condition=models.Q(verified_at__isnull=False), name="domain_one_verified_claim"
            ),
            models.UniqueConstraint(fields=["assistant", "host"], name="domain_claimed_once_per_assistant"),
        ]

    def __str__(self) -> str:
        return self.host


class Conversation(models.Model):
    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="conversations")
    # An opaque token held by the visitor's browser: resumes the conversation, proves nothing else.
    visitor_token = models.CharField(max_length=64, db_index=True)
    page_url = models.URLField(max_length=2000, blank=True, default="")
    # Who answers: the assistant (bot), or the team (a person asked for: pending; taken: open); see
    # assistants/handoff/ and HandoffEvent, which records every change.
    handoff_state = models.CharField(max_length=10, default="bot", db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["assistant", "-updated_at"])]


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "Visitor"
        ASSISTANT = "assistant", "Assistant"
        AGENT = "agent", "Team member"  # a person of the team, during a handoff (``author``)

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=10, choices=Role.choices)
    text = models.TextField()
    # The team member who wrote an ``agent`` message.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # [{"n": 1, "title": ..., "url": ..., "anchor": ..., "chunk_id": ...}]
    citations = models.JSONField(default=list, blank=True)
    # {"retrieve_ms": .., "first_token_ms": .., "total_ms": ..}
    timings = models.JSONField(default=dict, blank=True)
    provider = models.CharField(max_length=60, blank=True, default="")
    error = models.CharField(max_length=300, blank=True, default="")
    # {"supported": bool, "score": float, "sentences": [{"text", "cites", "score", "supported"}]}
    grounding = models.JSONField(default=dict, blank=True)
    # The question found no supported answer in the content: the dashboard's content-gap signal.
    unanswered = models.BooleanField(default=False, db_index=True)
    # {"prompt_tokens": .., "completion_tokens": .., "cost_usd": ..}
    usage = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # The conversation log's search over questions and answers (assistants.selectors.conversation_log).
            GinIndex(SearchVector("text", config="simple"), name="message_text_search"),
        ]


class Feedback(models.Model):
    """What a visitor tells the team: a rating of an answer, or their contact details for a person."""

    class Kind(models.TextChoices):
        RATING = "rating", "Rating"
        CONTACT = "contact", "Contact request"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="feedback")
    # The rated answer; empty for a contact request.
    message = models.ForeignKey(Message, on_delete=models.CASCADE, null=True, blank=True, related_name="feedback")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    rating = models.SmallIntegerField(null=True, blank=True)  # 1 (helpful) or -1 (not helpful)
    comment = models.TextField(blank=True, default="")
    # A contact request's {"name": .., "email": .., "message": .., "page_url": ..}
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message"], condition=models.Q(kind="rating"), name="feedback_one_rating_per_message"
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="rating") | models.Q(rating__in=[1, -1]),
                name="feedback_rating_is_1_or_minus_1",
            ),
        ]


class ApiKey(models.Model):
    """A team's key to the REST API (``/api/v1/``), see ``assistants.api.keys``.

    The key reads ``cs_<prefix>_<secret>``; it is shown once, when created, and only its sha256 is
    stored. The prefix identifies it in lists.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Write"
        CHAT = "chat", "Chat"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=120)
    prefix = models.CharField(max_length=8)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)  # a subset of Scope's values
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} (cs_{self.prefix}_…)"


class GoldenQuestion(models.Model):
    """A question the team expects the assistant to answer from known pages: the golden set that
    measures its retrieval (see assistants/golden/)."""

    class Origin(models.TextChoices):
        TEAM = "team", "Entered by the team"
        THUMBS_DOWN = "thumbs_down", "From a thumbs-down answer"
        HANDOFF = "handoff", "From a handoff to a person"

    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="golden_questions")
    question = models.TextField()
    # Addresses of the pages that answer it (any one found counts); fragments are ignored.
    expected_urls = models.JSONField(default=list)
    origin = models.CharField(max_length=12, choices=Origin.choices, default=Origin.TEAM)
    # The visitor's question it was collected from, if any.
    message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["assistant", "question"], name="golden_question_once")]


class GoldenRun(models.Model):
    """One evaluation of an assistant's retrieval on its golden set, run by a worker."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="golden_runs")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    # {"modes": [{"mode", "label", "ndcg_10", "recall_10", "mrr_10", "in_answer"}], "questions": [...], ...}
    # in_answer: the share of questions whose answer cites an expected page (golden.evaluation)
    results = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


# Handoff ---------------------------------------------------------------------------------------------
# A person of the team takes over a conversation (assistants/handoff/, docs/handoff.md).


class HandoffState(models.TextChoices):
    """``Conversation.handoff_state``: the assistant answers (bot) → a person was asked for (pending) →
    a team member has it (open) → resolved; a resolved conversation the visitor writes to again goes
    back to the assistant."""

    BOT = "bot", "Assistant"
    PENDING = "pending", "Waiting for a person"
    OPEN = "open", "With a person"
    RESOLVED = "resolved", "Resolved"


class HandoffSettings(models.Model):
    """An assistant's handoff rules: how long visitors wait for a person, the team's hours, and the
    words and pages that hand a conversation to the team at once. No row: the defaults."""

    assistant = models.OneToOneField(Assistant, on_delete=models.CASCADE, related_name="handoff_settings")
    enabled = models.BooleanField(default=True)  # off: "talk to a person" only leaves contact details
    wait_seconds = models.PositiveIntegerField(default=300)  # then the visitor is offered to leave an email
    timezone = models.CharField(max_length=60, default="UTC")
    # {"mon": ["09:00", "17:30"], ...}: the team's hours per weekday in ``timezone``; {} = always.
    hours = models.JSONField(default=dict, blank=True)
    keywords = models.JSONField(default=list, blank=True)  # words or phrases that hand off (any language)
    page_patterns = models.JSONField(default=list, blank=True)  # page addresses ("*/pricing/enterprise*")


class Handoff(models.Model):
    """One handoff of a conversation to the team: why, a summary for the person, who took it, when."""

    class Reason(models.TextChoices):
        MISSING_KNOWLEDGE = "missing_knowledge", "Missing knowledge"
        VISITOR_ASKED = "visitor_asked", "Visitor asked"
        NEGATIVE_FEEDBACK = "negative_feedback", "Negative feedback"
        RULE = "rule", "Team rule"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="handoffs")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    trigger = models.CharField(max_length=300, blank=True, default="")  # the words, the rule, the rating
    summary = models.TextField(blank=True, default="")
    summary_by = models.CharField(max_length=60, blank=True, default="")  # "extractive" or the model
    page_url = models.URLField(max_length=2000, blank=True, default="")
    requested_at = models.DateTimeField(auto_now_add=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # When the visitor was told that nobody could take it now (the wait ran out, or outside hours).
    unavailable_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]


class HandoffEvent(models.Model):
    """Every change of a conversation's handoff state (who, when, from, to, why), and the notices the
    visitor is shown (nobody available). The ids order the live streams (assistants/handoff/live.py)."""

    class Kind(models.TextChoices):
        STATE = "state", "State change"
        ASSIGNED = "assigned", "Assigned"
        UNAVAILABLE = "unavailable", "Nobody available"

    class Actor(models.TextChoices):
        VISITOR = "visitor", "Visitor"
        AGENT = "agent", "Team member"
        SYSTEM = "system", "System"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="handoff_events")
    handoff = models.ForeignKey(Handoff, on_delete=models.CASCADE, null=True, blank=True, related_name="events")
    # The team, for the inbox's stream (its events in one index scan).
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.STATE)
    from_state = models.CharField(max_length=10, choices=HandoffState.choices)
    to_state = models.CharField(max_length=10, choices=HandoffState.choices)
    actor = models.CharField(max_length=8, choices=Actor.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["team", "id"])]
