"""Teams, their assistants, and the conversations visitors have with them."""

import secrets

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import models
from pgvector.django import VectorField


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
    # On duty: gets the "a visitor asks for a person" emails (nobody on duty: every owner and admin does).
    on_duty = models.BooleanField(default=False)

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
        TAKEN_OVER = "taken_over", "Taken over by a member"  # the visitor never asked: a member stepped in

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


# Leads and webhooks


class LeadCapture(models.Model):
    """How an assistant asks visitors for their contact details (assistants/leads/): which fields, the
    consent text, and when (after N answers, on buying intent, on a handoff request; none = never)."""

    class Trigger(models.TextChoices):
        ANSWERS = "answers", "After a number of answers"
        INTENT = "intent", "On buying intent (pricing, demo, quote, trial…)"
        HANDOFF = "handoff", "When the visitor asks for a person"

    FIELD_NAMES = ("name", "email", "phone", "company")

    assistant = models.OneToOneField(Assistant, on_delete=models.CASCADE, related_name="lead_capture")
    triggers = models.JSONField(default=list, blank=True)  # a subset of Trigger's values; [] = never ask
    after_answers = models.PositiveSmallIntegerField(default=3)
    # {"name": "required" | "optional" | "off", "email": ..., "phone": ..., "company": ...}
    fields = models.JSONField(default=dict, blank=True)
    # [{"key": "budget", "label": "Budget", "required": false}]
    custom_fields = models.JSONField(default=list, blank=True)
    consent_text = models.CharField(max_length=500, blank=True, default="")  # "" = no consent checkbox
    # {"en": ["pricing", "price", "demo", ...], "fr": [...]}: words and phrases of buying intent by language
    intent_phrases = models.JSONField(default=dict, blank=True)
    title = models.CharField(max_length=200, blank=True, default="")  # the form's first line ("" = the default)
    updated_at = models.DateTimeField(auto_now=True)


class LeadPrompt(models.Model):
    """The one time a conversation was asked for contact details, and how it ended."""

    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="lead_prompt")
    trigger = models.CharField(max_length=10, choices=LeadCapture.Trigger.choices)
    intent = models.CharField(max_length=100, blank=True, default="")  # the phrase that showed buying intent
    asked_at = models.DateTimeField(auto_now_add=True)
    declined_at = models.DateTimeField(null=True, blank=True)


class Lead(models.Model):
    """A visitor's contact details with their consent, the conversation they came from, and a score."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        CONTACTED = "contacted", "Contacted"
        QUALIFIED = "qualified", "Qualified"
        CLOSED = "closed", "Closed"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="leads")
    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="leads")
    conversation = models.OneToOneField(
        Conversation, on_delete=models.SET_NULL, null=True, blank=True, related_name="lead"
    )
    name = models.CharField(max_length=200, blank=True, default="")
    email = models.EmailField(max_length=254, blank=True, default="")
    phone = models.CharField(max_length=40, blank=True, default="")
    company = models.CharField(max_length=200, blank=True, default="")
    custom = models.JSONField(default=dict, blank=True)  # {"budget": "…"} by the custom field's key
    consent_text = models.CharField(max_length=500, blank=True, default="")  # as shown to the visitor
    consent_at = models.DateTimeField(null=True, blank=True)
    page_url = models.URLField(max_length=2000, blank=True, default="")
    trigger = models.CharField(max_length=10, blank=True, default="")  # LeadCapture.Trigger, or "" (the API)
    intent = models.CharField(max_length=100, blank=True, default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    notes = models.TextField(blank=True, default="")
    score = models.PositiveSmallIntegerField(default=0)  # 0–100, the sum of score_parts' points
    # {"intent": {"points", "max", "why"}, "engagement": ..., "completeness": ..., "answered": ...}
    score_parts = models.JSONField(default=dict, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)  # the team's admins were emailed
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["team", "-score", "-created_at"])]


class WebhookEndpoint(models.Model):
    """A team's URL that receives the events it asks for, signed per Standard Webhooks (assistants/webhooks/)."""

    class Event(models.TextChoices):
        LEAD_CREATED = "lead.created", "lead.created"
        HANDOFF_REQUESTED = "handoff.requested", "handoff.requested"
        HANDOFF_RESOLVED = "handoff.resolved", "handoff.resolved"
        CONVERSATION_RATED = "conversation.rated", "conversation.rated"
        MESSAGE_CREATED = "message.created", "message.created"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True, default="")
    events = models.JSONField(default=list)  # a subset of Event's values
    secret = models.CharField(max_length=100)  # "whsec_" + base64 of 24 random bytes
    # After a rotation the old secret signs too, until previous_secret_expires_at.
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    # The first failed attempt since the last success: past WEBHOOK_DISABLE_AFTER_DAYS the endpoint is disabled.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_notified_at = models.DateTimeField(null=True, blank=True)  # the team's admins were emailed
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class WebhookDelivery(models.Model):
    """One event for one endpoint, tried until it succeeds or the retry schedule ends."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    message_id = models.CharField(max_length=40, unique=True)  # the webhook-id header: "msg_…"
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()  # {"type", "timestamp", "data"}: the body sent
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Failed tries since it was created or replayed: the index of the next wait in WEBHOOK_RETRY_SCHEDULE.
    schedule_step = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]


class WebhookAttempt(models.Model):
    """One POST of a delivery: what came back (or why nothing did) and how long it took."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["number", "id"]


class MemberNotifications(models.Model):
    """A member's choice of emails from one team: the daily digest (opt-in)."""

    membership = models.OneToOneField(Membership, on_delete=models.CASCADE, related_name="notifications")
    daily_digest = models.BooleanField(default=False)
    digest_sent_on = models.DateField(null=True, blank=True)  # the day (UTC) the last digest went out


# Analytics (assistants/analytics/): daily rollups, question embeddings, topics and content gaps.


class RollupFigures(models.Model):
    """The figures of a day's rollup (one assistant's, or one team's)."""

    day = models.DateField()
    conversations = models.PositiveIntegerField(default=0)  # conversations started that day
    resolved = models.PositiveIntegerField(
        default=0
    )  # of those: answered, no unanswered turn, no thumbs down, no handoff
    questions = models.PositiveIntegerField(default=0)  # visitor messages
    answers = models.PositiveIntegerField(default=0)  # assistant messages
    answered = models.PositiveIntegerField(default=0)  # answers with text, no error, not unanswered
    unanswered = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)  # answers whose provider call failed
    thumbs_up = models.PositiveIntegerField(default=0)  # ratings of that day's answers
    thumbs_down = models.PositiveIntegerField(default=0)
    handoffs = models.PositiveIntegerField(default=0)  # hooks: counted once those tables exist
    leads = models.PositiveIntegerField(default=0)
    tokens_in = models.BigIntegerField(default=0)
    tokens_out = models.BigIntegerField(default=0)
    cost_usd = models.FloatField(default=0.0)
    # Time to first token of each answer (ms, whole numbers), for the period's median and p95.
    first_token_ms = ArrayField(models.IntegerField(), default=list, blank=True)  # int[]: unnested fast
    # {"provider · model": {"answers": n, "tokens_in": n, "tokens_out": n, "cost_usd": x}}
    by_model = models.JSONField(default=dict, blank=True)
    # {page url: questions asked from it}
    pages = models.JSONField(default=dict, blank=True)
    # {cited page url: {"title": .., "cited": n, "up": n, "down": n, "last": ISO time}}: the answers
    # that cited it, those rated up and down, and the last time it was cited
    citations = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class DailyRollup(RollupFigures):
    """One assistant's day (UTC), summed from its conversations, messages and ratings by
    ``assistants.analytics.services.rollups_compute`` (recomputed whole: idempotent). The analytics
    pages read these rows, never the raw messages; the formulas are in ``assistants.analytics.metrics``."""

    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="rollups")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["assistant", "day"], name="rollup_one_per_assistant_day")]


class TeamDailyRollup(RollupFigures):
    """One team's day: the sum of its assistants' ``DailyRollup`` rows of that day, stored by
    ``rollups_compute`` right after them (recomputed whole: idempotent), so the whole-team pages read
    one row a day instead of one per assistant and day."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="rollups")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "day"], name="rollup_one_per_team_day")]


class AnalyticsCursor(models.Model):
    """How far the incremental rollup has read (``name`` "rollups"): rows changed since ``at`` are
    the days to recompute."""

    name = models.CharField(max_length=40, unique=True)
    at = models.DateTimeField()


class QuestionEmbedding(models.Model):
    """A visitor question's vector in its assistant's active embedding model, made once on a worker."""

    message = models.OneToOneField(Message, on_delete=models.CASCADE, primary_key=True, related_name="embedding")
    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="+")
    model_name = models.CharField(max_length=200)
    vector = ArrayField(models.FloatField())
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["assistant", "created_at"])]


class TopicBuild(models.Model):
    """One clustering of an assistant's questions over a period (``assistants.analytics.topics``)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="topic_builds")
    start = models.DateField()
    end = models.DateField()  # inclusive
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    questions = models.PositiveIntegerField(default=0)
    threshold = models.FloatField(default=0.0)
    seconds = models.FloatField(default=0.0)
    model_name = models.CharField(max_length=200, blank=True, default="")  # the embedding model clustered
    error = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)


class Topic(models.Model):
    """A group of questions asking the same thing, labelled by its most central question and key terms."""

    build = models.ForeignKey(TopicBuild, on_delete=models.CASCADE, related_name="topics")
    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="+")
    label = models.TextField()
    terms = models.JSONField(default=list)
    questions = models.PositiveIntegerField(default=0)
    visitors = models.PositiveIntegerField(default=0)
    unanswered = models.PositiveIntegerField(default=0)
    rated_down = models.PositiveIntegerField(default=0)
    first_half = models.PositiveIntegerField(default=0)  # the trend: questions in each half of the period
    second_half = models.PositiveIntegerField(default=0)
    message_ids = models.JSONField(default=list)  # the questions (Message ids)
    examples = models.JSONField(default=list)
    # The mean of the questions' unit vectors in the build's model: new questions join the nearest
    # topic between rebuilds (``services.topic_join``) when within the clustering threshold.
    centroid = VectorField(null=True, blank=True)
    joined = models.PositiveIntegerField(default=0)  # questions that joined since the build

    class Meta:
        indexes = [
            # Which topic holds a question (message_ids @> [id]): the joins and the failure counts.
            GinIndex(fields=["message_ids"], opclasses=["jsonb_path_ops"], name="topic_message_ids"),
        ]


class ContentGap(models.Model):
    """A topic the assistant failed on, what kind of failure it is, the fix proposed, and whether the
    content added since answers its questions (the re-check)."""

    class Kind(models.TextChoices):
        NO_PAGE = "no_page", "No page covers it"
        ANSWER_FAILED = "answer_failed", "A page covers it but the answer failed"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CHECKING = "checking", "Re-checking"
        CLOSED = "closed", "Closed"

    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="content_gaps")
    topic = models.ForeignKey(Topic, on_delete=models.SET_NULL, null=True, blank=True, related_name="gaps")
    label = models.TextField()
    terms = models.JSONField(default=list)
    kind = models.CharField(max_length=14, choices=Kind.choices)
    visitors = models.PositiveIntegerField(default=0)
    questions = models.PositiveIntegerField(default=0)
    unanswered = models.PositiveIntegerField(default=0)
    rated_down = models.PositiveIntegerField(default=0)
    # The closest page the search found for the topic's central question: its rank and similarity.
    best_title = models.CharField(max_length=500, blank=True, default="")
    best_url = models.URLField(max_length=2000, blank=True, default="")
    best_rank = models.PositiveIntegerField(null=True, blank=True)
    best_score = models.FloatField(null=True, blank=True)
    # {"outline": [{"heading", "questions", "passages"}], "qa": {"question", "answer"}}
    proposal = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)  # the last re-check was queued
    checked_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["assistant", "status"])]


class GapQuestion(models.Model):
    """One of a gap's questions, and what asking it again through the pipeline gave."""

    gap = models.ForeignKey(ContentGap, on_delete=models.CASCADE, related_name="checks")
    message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    text = models.TextField()
    answered = models.BooleanField(null=True)  # None: not asked again yet
    source_title = models.CharField(max_length=500, blank=True, default="")
    source_url = models.URLField(max_length=2000, blank=True, default="")
    checked_at = models.DateTimeField(null=True, blank=True)


class ConversationQuality(models.Model):
    """A conversation that went wrong somewhere (an unanswered, failed or down-rated answer, a handoff),
    with its quality score (``assistants.analytics.metrics.conversation_quality``); kept by the rollups
    for the worst-conversations list."""

    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, primary_key=True, related_name="+")
    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="+")
    started_at = models.DateTimeField()
    quality = models.SmallIntegerField()
    unanswered = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    thumbs_up = models.PositiveIntegerField(default=0)
    thumbs_down = models.PositiveIntegerField(default=0)
    handed_off = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["assistant", "started_at", "quality"])]
