"""Settings, all from the environment (every variable is listed in README.md).

Only DATABASE_URL and REDIS_URL matter to run; ./dev fills both in with embedded
servers when they are unset.
"""

import warnings
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DCPORTAL_DEBUG", default=False)
SECRET_KEY = env.str("DCPORTAL_SECRET_KEY", default="dev-insecure-change-me")
ALLOWED_HOSTS = env.list("DCPORTAL_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DCPORTAL_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # state before channels: its runworker command handles dcmanager-state.
    "accounts",
    "subclouds",
    "state",
    "api",
    "audit",
    "portal",
    "ops",
    "simulator",
    "channels",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The pages' and the admin's static files, straight from daphne.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The dcmanager client uses trailing slashes, scripts often don't: both paths
# are routed explicitly and nothing redirects.
APPEND_SLASH = False

ROOT_URLCONF = "dcportal.urls"
ASGI_APPLICATION = "dcportal.asgi.application"
WSGI_APPLICATION = None

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

# PostgreSQL only: select_for_update is the concurrency control of the state
# service and does nothing on SQLite.
DATABASES = {"default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/dcportal")}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
# libpq's unix-socket form, postgres://user@/db?host=/socket/dir (what pgserver prints).
if "host" in DATABASES["default"].get("OPTIONS", {}):
    DATABASES["default"]["HOST"] = DATABASES["default"]["OPTIONS"].pop("host")
# Server-side parameter binding: the state worker sends arrays of thousands
# of values per statement, and client-side quoting of those cost ~1 ms per row.
DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
# Long-lived processes (daphne, state workers) use psycopg's pool; the
# connection of a process is reused instead of reconnecting per message.
DB_POOL_MAX = env.int("DCPORTAL_DB_POOL_MAX", default=4)
if DB_POOL_MAX > 0:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_MAX,
        "timeout": env.float("DCPORTAL_DB_POOL_TIMEOUT", default=10.0),
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = 60
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Child processes started by tests point at the test database with this.
if env.str("DCPORTAL_DATABASE_NAME", default=""):
    DATABASES["default"]["NAME"] = env.str("DCPORTAL_DATABASE_NAME")
if env.str("DCPORTAL_TEST_DB_NAME", default=""):
    DATABASES["default"]["TEST"] = {"NAME": env.str("DCPORTAL_TEST_DB_NAME")}

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CHANNEL_PREFIX = env.str("DCPORTAL_CHANNEL_PREFIX", default="asgi")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # socket_timeout None: blocking reads must never time out (channels_redis#422).
            "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
            "prefix": CHANNEL_PREFIX,
            "capacity": 1000,
            "expiry": 300,
            "group_expiry": 4 * 3600,
            "channel_capacity": {"dcmanager-state*": 10000},
        },
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/portal/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []
# Served from the app directories as they are: no collectstatic step needed to run
# (so WhiteNoise's warning about a missing STATIC_ROOT is expected and silenced).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
warnings.filterwarnings("ignore", message="No directory at: .*staticfiles", category=UserWarning)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsReader"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "dcportal API",
    "DESCRIPTION": "Subcloud inventory and state service, wire-compatible with dcmanager API v1.0.",
    "VERSION": "1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {
        "EndpointTypeEnum": "subclouds.choices.EndpointType",
        "SyncStatusEnum": "subclouds.choices.SyncStatus",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# Largest request body the server takes (dcportal/server.py): a larger one gets 413 before it is buffered or parsed.
# Room above Django's own limit on a non-file body (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MiB; a bulk of
# STATE_BULK_MAX updates is about 0.6 MiB) for the multipart files `dcmanager subcloud add` sends.
MAX_BODY_BYTES = env.int("DCPORTAL_MAX_BODY_BYTES", default=4 * 2**20)
if MAX_BODY_BYTES < 1:
    raise ImproperlyConfigured(f"DCPORTAL_MAX_BODY_BYTES must be a positive number of bytes, not {MAX_BODY_BYTES}")

# The state service.
STATE_WORKER_BATCH = env.int("DCPORTAL_STATE_BATCH", default=250)
STATE_SWEEP_SECONDS = env.float("DCPORTAL_STATE_SWEEP_SECONDS", default=2.0)
STATE_HEARTBEAT_SECONDS = env.float("DCPORTAL_STATE_HEARTBEAT_SECONDS", default=5.0)
STATE_BULK_MAX = 1000
# Applied intake rows (the acceptance log) and change-log rows (history,
# websocket resync) are pruned by the state workers after these ages.
STATE_KEEP_APPLIED_HOURS = env.float("DCPORTAL_STATE_KEEP_APPLIED_HOURS", default=24.0)
STATE_KEEP_CHANGES_HOURS = env.float("DCPORTAL_STATE_KEEP_CHANGES_HOURS", default=24.0 * 7)

# The live-status websocket (portal/feed.py, docs/websockets.md).
# Fallback poll of the change log when a doorbell is lost.
PORTAL_FEED_POLL_SECONDS = env.float("DCPORTAL_FEED_POLL_SECONDS", default=0.4)
# Change-log rows read per query by a process's feed.
PORTAL_FEED_BATCH = env.int("DCPORTAL_FEED_BATCH", default=5000)
# How long a new socket waits for its process's feed to find the end of the log.
PORTAL_FEED_READY_TIMEOUT = env.float("DCPORTAL_FEED_READY_TIMEOUT", default=15.0)
# On average at most one message per socket per interval (portal.consumers.Pace): bursts are merged (10 messages/s).
PORTAL_WS_MIN_INTERVAL = env.float("DCPORTAL_WS_MIN_INTERVAL", default=0.1)
# A resync needing more changes than this gets a fresh snapshot instead.
PORTAL_WS_RESYNC_MAX = env.int("DCPORTAL_WS_RESYNC_MAX", default=50000)
# Larger messages go out in parts; must stay within daphne's --websocket_max_message_size (1 MiB).
PORTAL_WS_MAX_MESSAGE_BYTES = env.int("DCPORTAL_WS_MAX_MESSAGE_BYTES", default=1000000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s[%(process)d] %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DCPORTAL_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# -- Audit and outbound notifications: Celery (dcportal/celery.py, audit/) ---------------------------
# Seconds between audit cycles; a cycle still running when the next is due delays it (cycles never overlap).
AUDIT_INTERVAL = env.float("DCPORTAL_AUDIT_INTERVAL", default=20.0)
# Probes in flight at once per audit task, and each probe's whole deadline (no retries within a cycle).
AUDIT_CONNECTIONS = env.int("DCPORTAL_AUDIT_CONNECTIONS", default=100)
AUDIT_TIMEOUT = env.float("DCPORTAL_AUDIT_TIMEOUT", default=5.0)
# Subclouds per audit task: a cycle fans out over every worker process (and host) in chunks of this size.
AUDIT_CHUNK = env.int("DCPORTAL_AUDIT_CHUNK", default=1000)
# Expiry of the cycle lock, renewed while the cycle runs: a cycle whose worker died stops blocking after this.
AUDIT_LOCK_SECONDS = env.float("DCPORTAL_AUDIT_LOCK_SECONDS", default=max(60.0, 3 * AUDIT_INTERVAL))
# Each subcloud is re-sent as an update-state-only refresh about once per this period (domain.md, Audit).
AUDIT_REFRESH_SECONDS = env.float("DCPORTAL_AUDIT_REFRESH_SECONDS", default=3600.0)
# Worker and beat heartbeats (file for the OCF monitors, WorkerHeartbeat row for /v1.0/state/stats).
AUDIT_HEARTBEAT_SECONDS = env.float("DCPORTAL_AUDIT_HEARTBEAT_SECONDS", default=STATE_HEARTBEAT_SECONDS)
# Outbound notifications (audit/outbox.py); an empty URL means that receiver is not told (logged once).
DCORCH_URL = env.str("DCPORTAL_DCORCH_URL", default="")
CERTMON_URL = env.str("DCPORTAL_CERTMON_URL", default="")
OUTBOX_POLL_SECONDS = env.float("DCPORTAL_OUTBOX_POLL_SECONDS", default=1.0)
OUTBOX_TIMEOUT = env.float("DCPORTAL_OUTBOX_TIMEOUT", default=5.0)
OUTBOX_BATCH = env.int("DCPORTAL_OUTBOX_BATCH", default=1000)
# Retry backoff while a receiver is down: doubles from the first value up to the second.
OUTBOX_BACKOFF = (env.float("DCPORTAL_OUTBOX_BACKOFF_MIN", default=0.5), env.float("DCPORTAL_OUTBOX_BACKOFF_MAX", default=30.0))


def _redis_db_url(url, db):
    """The Redis of `url` with DB index `db`, spelled for kombu (unix sockets are redis+socket://)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"redis+socket://{parts.path}?virtual_host={db}"
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


# The broker shares the channel layer's Redis on its own DB index.
CELERY_REDIS_DB = env.int("DCPORTAL_CELERY_REDIS_DB", default=1)
CELERY_BROKER_URL = env.str("DCPORTAL_CELERY_BROKER_URL", default="") or _redis_db_url(REDIS_URL, CELERY_REDIS_DB)
# Prefix of every broker and audit key (tests give each run its own).
CELERY_KEY_PREFIX = env.str("DCPORTAL_CELERY_PREFIX", default="dcportal:")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "global_keyprefix": CELERY_KEY_PREFIX,
    # Tasks are short and ETA-free: an unacked one is redelivered after 5 minutes, not an hour.
    "visibility_timeout": 300,
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
    "health_check_interval": 25,
    "retry_on_timeout": True,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 5
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = env.int("DCPORTAL_AUDIT_WORKER_CONCURRENCY", default=3)
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_TASK_TIME_LIMIT = 180
CELERY_WORKER_SEND_TASK_EVENTS = False
# Exactly one beat process, with this static schedule; its scheduler also writes its heartbeat.
CELERY_BEAT_SCHEDULER = "audit.beat:HeartbeatScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = AUDIT_HEARTBEAT_SECONDS
CELERY_BEAT_SCHEDULE = {
    "audit-cycle": {
        "task": "audit.tasks.audit_cycle",
        "schedule": AUDIT_INTERVAL,
        # A tick the worker could not take in time is dropped, not stacked up.
        "options": {"expires": AUDIT_INTERVAL},
    },
    "deliver-outbox": {
        "task": "audit.tasks.deliver_outbox",
        "schedule": OUTBOX_POLL_SECONDS,
        "options": {"expires": max(5.0, 3 * OUTBOX_POLL_SECONDS)},
    },
}
