"""Settings, all from the environment (every variable is listed in README.md).

Only DATABASE_URL and REDIS_URL matter to run; ./dev fills both in with embedded
servers when they are unset.
"""

import warnings
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_database_url, env_float, env_host_ports, env_int, env_list, env_str, process_name, program

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DCPORTAL_DEBUG", default=False)
# Signs sessions and CSRF tokens: required in production (system check dcportal.E001 when DEBUG is off).
# ./dev up keeps one per checkout (RUN_DIR/secret-key); the OCF agents pass it through env_file.
INSECURE_SECRET_KEY = "dev-insecure-change-me"
SECRET_KEY = env_str("DCPORTAL_SECRET_KEY", default=INSECURE_SECRET_KEY)
ALLOWED_HOSTS = env_list("DCPORTAL_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DCPORTAL_CSRF_TRUSTED_ORIGINS", default=[])

# -- HTTPS deployment (README.md, docs/ha.md); `manage.py check --deploy` is clean with DCPORTAL_HTTPS on -----
# Served over HTTPS (directly or behind a TLS proxy): secure cookies, HSTS, and a redirect of plain HTTP.
HTTPS = env_bool("DCPORTAL_HTTPS", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = env_bool("DCPORTAL_SSL_REDIRECT", default=HTTPS)
# The OCF monitors and Prometheus ask over plain HTTP on the node itself: never redirected.
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^metrics/?$"]
SECURE_HSTS_SECONDS = env_int("DCPORTAL_HSTS_SECONDS", default=31536000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DCPORTAL_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env_bool("DCPORTAL_HSTS_PRELOAD", default=False)
# A TLS-terminating proxy's header saying the client used HTTPS, e.g. X-Forwarded-Proto (its value must be "https").
# Only behind a proxy that always sets (overwrites) it: a client could send it itself otherwise.
PROXY_SSL_HEADER = env_str("DCPORTAL_PROXY_SSL_HEADER")
if PROXY_SSL_HEADER:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + PROXY_SSL_HEADER.upper().replace("-", "_"), "https")
# The pages read the CSRF token from their forms, never from the cookie.
CSRF_COOKIE_HTTPONLY = True
# No inline script, style or handler anywhere (the pages, the admin, the API docs): only files from this origin.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],  # the live websocket: same origin (CSP3 'self' covers ws: / wss:)
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # state before channels: its runworker command handles dcmanager-state.
    "accounts",
    "subclouds",
    "state",
    "api",
    "identity",
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
    # /v1.0 errors as upstream dcmanager's HTML page for the dcmanager client (api/errors.py).
    "api.errors.DcmanagerErrorPages",
    "csp.middleware.CSPMiddleware",
    # After authentication (and DRF's, which sets request.user): Cache-Control on authenticated responses.
    "dcportal.middleware.PrivateCacheMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the 429 page (accounts/lockout.py).
    "axes.middleware.AxesMiddleware",
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
                "portal.vocabulary.context",
            ],
        },
    },
]

# PostgreSQL only: select_for_update is the concurrency control of the state
# service and does nothing on SQLite.
# A multi-host URL with target_session_attrs=read-write finds the primary after a failover (docs/ha.md);
# env_database_url checks every host, port and option strictly.
DATABASES = {"default": env_database_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/dcportal")}
# Server-side parameter binding: the state worker sends arrays of thousands
# of values per statement, and client-side quoting of those cost ~1 ms per row.
DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
# Each process names its connections (pg_stat_activity.application_name): DCPORTAL_PROCESS_NAME, set by
# the launchers, or derived from the command line (dcportal-api, dcportal-state-<name>, dcportal-audit...).
PROCESS_NAME = process_name()
DATABASES["default"]["OPTIONS"]["application_name"] = PROCESS_NAME
# Long-lived processes (daphne, state workers) use psycopg's pool; the
# connection of a process is reused instead of reconnecting per message.
DB_POOL_MAX = env_int("DCPORTAL_DB_POOL_MAX", default=4, minimum=0)
# Celery processes never pool: a pool inherited across prefork's fork breaks (celery#9953, #10554),
# so they use persistent connections with health checks instead.
if program()[0] == "celery":
    DB_POOL_MAX = 0
# Nor does `manage.py healthcheck` (the OCF monitors): one connection, and a refused one must fail the check at
# once rather than after the pool's timeout, so that the check fits in the agent's check_timeout during an outage.
if program()[0] == "manage" and program()[1][:1] == ["healthcheck"]:
    DB_POOL_MAX = 0
# Health checks in both cases: a connection to a server that died (a PostgreSQL failover, docs/ha.md) is
# dropped when it is next handed out (psycopg_pool's check_connection; Django's for persistent connections)
# instead of failing the request that gets it.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DB_POOL_MAX > 0:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_MAX,
        "timeout": env_float("DCPORTAL_DB_POOL_TIMEOUT", default=10.0, minimum=0.1),
        # psycopg_pool retries a failed connection after 1, 2, 4, 8... s until reconnect_timeout (5 min by
        # default): after a 10 s failover its next try came 15 s after the kill. Giving up after 2 s instead
        # lets the next request start a fresh attempt at once (tests/test_ha_pg_failover.py, docs/ha.md).
        "reconnect_timeout": 2.0,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = 60
# Child processes started by tests point at the test database with this.
if env_str("DCPORTAL_DATABASE_NAME"):
    DATABASES["default"]["NAME"] = env_str("DCPORTAL_DATABASE_NAME")
if env_str("DCPORTAL_TEST_DB_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": env_str("DCPORTAL_TEST_DB_NAME")}

REDIS_URL = env_str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Redis Sentinel (docs/ha.md): every Redis client (channel layer, Celery, audit leases, socket slots) asks
# these sentinels for the current master of REDIS_SENTINEL["master_name"]; REDIS_URL then gives only the
# DB index and the password. Both variables or neither.
REDIS_SENTINEL = None
if env_str("DCPORTAL_REDIS_SENTINELS") or env_str("DCPORTAL_REDIS_SENTINEL_MASTER"):
    if not (env_host_ports("DCPORTAL_REDIS_SENTINELS") and env_str("DCPORTAL_REDIS_SENTINEL_MASTER")):
        raise ImproperlyConfigured("DCPORTAL_REDIS_SENTINELS and DCPORTAL_REDIS_SENTINEL_MASTER go together: set both or neither")
    _redis = urlsplit(REDIS_URL)
    _redis_db = _redis.path.strip("/")
    REDIS_SENTINEL = {
        "sentinels": env_host_ports("DCPORTAL_REDIS_SENTINELS"),
        "master_name": env_str("DCPORTAL_REDIS_SENTINEL_MASTER"),
        "db": int(_redis_db) if _redis_db.isascii() and _redis_db.isdigit() else 0,
        "password": unquote(_redis.password) if _redis.password else None,
    }
CHANNEL_PREFIX = env_str("DCPORTAL_CHANNEL_PREFIX", default="asgi")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # socket_timeout None: blocking reads must never time out (channels_redis#422).
            "hosts": [{**REDIS_SENTINEL, "socket_timeout": None} if REDIS_SENTINEL else
                      {"address": REDIS_URL, "socket_timeout": None}],
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
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# -- Login throttling (django-axes): every password check goes through authenticate(request=...) ------
# The axes backend comes first: it refuses a locked-out username or address before any password is checked.
# accounts.lockout.LockoutBackend is axes.backends.AxesStandaloneBackend seeing through DRF's Request.
AUTHENTICATION_BACKENDS = ["accounts.lockout.LockoutBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "accounts.lockout.LockoutHandler"
# Failed passwords counted separately per username and per client address; either reaching the limit locks.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = env_int("DCPORTAL_LOGIN_FAILURE_LIMIT", default=5, minimum=1)
LOGIN_COOLOFF_MINUTES = env_float("DCPORTAL_LOGIN_COOLOFF_MINUTES", default=15.0, minimum=0.01)
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES)
# The client address: REMOTE_ADDR unless a proxy in front is trusted to set this header (e.g. X-Real-IP).
LOGIN_CLIENT_IP_HEADER = env_str("DCPORTAL_LOGIN_CLIENT_IP_HEADER", default="")
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
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

# The built-in identity endpoint (/identity/v3, identity/): where clients reach this product, as its
# Keystone catalog names it (the dcmanager endpoint is <public URL>/v1.0), and the catalog's region.
PUBLIC_URL = env_str("DCPORTAL_PUBLIC_URL", default="http://127.0.0.1:8119").rstrip("/")
REGION_NAME = env_str("DCPORTAL_REGION_NAME", default="SystemController")
# Projects a token may be scoped to (by name in the Default domain, or by id); any role opens any of them.
IDENTITY_PROJECTS = env_list("DCPORTAL_IDENTITY_PROJECTS", default=["admin", "services"])
IDENTITY_TOKEN_SECONDS = env_int("DCPORTAL_IDENTITY_TOKEN_SECONDS", default=3600, minimum=60)
# An external Keystone (accounts/keystone.py): with a URL, a token dcportal did not issue is validated there
# with these service credentials, the answer kept KEYSTONE_CACHE_SECONDS (so a revoked token stops working
# within that bound); only tokens scoped to KEYSTONE_PROJECTS (in KEYSTONE_PROJECT_DOMAIN) are accepted.
KEYSTONE_URL = env_str("DCPORTAL_KEYSTONE_URL").rstrip("/")
KEYSTONE_USERNAME = env_str("DCPORTAL_KEYSTONE_USERNAME", default="dcmanager")
KEYSTONE_PASSWORD = env_str("DCPORTAL_KEYSTONE_PASSWORD")
KEYSTONE_PROJECT = env_str("DCPORTAL_KEYSTONE_PROJECT", default="services")
KEYSTONE_USER_DOMAIN = env_str("DCPORTAL_KEYSTONE_USER_DOMAIN", default="Default")
KEYSTONE_PROJECT_DOMAIN = env_str("DCPORTAL_KEYSTONE_PROJECT_DOMAIN", default="Default")
KEYSTONE_PROJECTS = env_list("DCPORTAL_KEYSTONE_PROJECTS", default=["admin", "services"])
KEYSTONE_CACHE_SECONDS = env_int("DCPORTAL_KEYSTONE_CACHE_SECONDS", default=30, minimum=0, maximum=3600)
KEYSTONE_TIMEOUT_SECONDS = env_float("DCPORTAL_KEYSTONE_TIMEOUT_SECONDS", default=5.0, minimum=0.1)
# Keystone role -> dcportal role, "[project:]keystone_role=dcportal_role,..." (parsed by accounts/keystone.py);
# an entry naming a project wins there over a plain one. The strongest mapped role of a token is the user's.
KEYSTONE_ROLE_MAP = env_str(
    "DCPORTAL_KEYSTONE_ROLE_MAP",
    default="services:admin=service,services:service=service,"
    "admin=operator,operator=operator,configurator=operator,reader=reader,member=reader",
)
# Largest request body the server takes (dcportal/server.py): a larger one gets 413 before it is buffered or parsed.
# Room above Django's own limit on a non-file body (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MiB; a bulk of
# STATE_BULK_MAX updates is about 0.6 MiB) for the multipart files `dcmanager subcloud add` sends.
MAX_BODY_BYTES = env_int("DCPORTAL_MAX_BODY_BYTES", default=4 * 2**20, minimum=1)

# The state service.
STATE_WORKER_BATCH = env_int("DCPORTAL_STATE_BATCH", default=250, minimum=1)
STATE_SWEEP_SECONDS = env_float("DCPORTAL_STATE_SWEEP_SECONDS", default=2.0, minimum=0.01)
STATE_HEARTBEAT_SECONDS = env_float("DCPORTAL_STATE_HEARTBEAT_SECONDS", default=5.0, minimum=0.1)
STATE_BULK_MAX = 1000
# Applied intake rows (the acceptance log) and change-log rows (history,
# websocket resync) are pruned by the state workers after these ages.
STATE_KEEP_APPLIED_HOURS = env_float("DCPORTAL_STATE_KEEP_APPLIED_HOURS", default=24.0, minimum=0)
STATE_KEEP_CHANGES_HOURS = env_float("DCPORTAL_STATE_KEEP_CHANGES_HOURS", default=24.0 * 7, minimum=0)
# Incidents (state/incidents.py), derived from the change log on request: many subclouds leaving
# "online" within the window open one, for the fleet (a count) or for a group (a share of a large enough group).
INCIDENT_WINDOW_SECONDS = env_float("DCPORTAL_INCIDENT_WINDOW_SECONDS", default=60.0, minimum=1)
INCIDENT_MIN_SUBCLOUDS = env_int("DCPORTAL_INCIDENT_MIN_SUBCLOUDS", default=20, minimum=2)
INCIDENT_GROUP_SHARE = env_float("DCPORTAL_INCIDENT_GROUP_SHARE", default=0.5, minimum=0.01, maximum=1)
INCIDENT_GROUP_MIN_SIZE = env_int("DCPORTAL_INCIDENT_GROUP_MIN_SIZE", default=5, minimum=2)

# The live-status websocket (portal/feed.py, docs/websockets.md).
# Fallback poll of the change log when a doorbell is lost.
PORTAL_FEED_POLL_SECONDS = env_float("DCPORTAL_FEED_POLL_SECONDS", default=0.4, minimum=0.01)
# Change-log rows read per query by a process's feed.
PORTAL_FEED_BATCH = env_int("DCPORTAL_FEED_BATCH", default=5000, minimum=1)
# How long a new socket waits for its process's feed to find the end of the log.
PORTAL_FEED_READY_TIMEOUT = env_float("DCPORTAL_FEED_READY_TIMEOUT", default=15.0, minimum=0.1)
# On average at most one message per socket per interval (portal.consumers.Pace): bursts are merged (20 messages/s).
# Twice a 10-commits/s stream's rate, so that the bucket refills after a burst (at 0.1 s such a stream stayed
# phase-locked behind the pace, 60-75 ms late: BENCHMARKS.md, issue 13).
PORTAL_WS_MIN_INTERVAL = env_float("DCPORTAL_WS_MIN_INTERVAL", default=0.05, minimum=0)
# A resync needing more changes than this gets a fresh snapshot instead.
PORTAL_WS_RESYNC_MAX = env_int("DCPORTAL_WS_RESYNC_MAX", default=50000, minimum=0)
# Larger messages go out in parts; must stay within daphne's --websocket_max_message_size (1 MiB).
PORTAL_WS_MAX_MESSAGE_BYTES = env_int("DCPORTAL_WS_MAX_MESSAGE_BYTES", default=1000000, minimum=1024)
# Every so often each process re-checks the credentials of all its open sockets at once (one batch):
# a revoked token, deactivated user, removed role or ended session closes its socket (4401).
PORTAL_WS_RECHECK_SECONDS = env_float("DCPORTAL_WS_RECHECK_SECONDS", default=2.0, minimum=0.1)
# A socket older than this is closed (4408) and its client reconnects with ?since=.
PORTAL_WS_MAX_LIFETIME_SECONDS = env_float("DCPORTAL_WS_MAX_LIFETIME_SECONDS", default=24 * 3600.0, minimum=1)
# At most one full snapshot per socket per interval: a resync needing one sooner waits, and requests meanwhile merge.
PORTAL_WS_SNAPSHOT_INTERVAL = env_float("DCPORTAL_WS_SNAPSHOT_INTERVAL", default=5.0, minimum=0)
# Open sockets per user, over every daphne process (counted in Redis); one more is closed at once (4429).
PORTAL_WS_MAX_SOCKETS_PER_USER = env_int("DCPORTAL_WS_MAX_SOCKETS_PER_USER", default=20, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s[%(process)d] %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("DCPORTAL_LOG_LEVEL", default="INFO")},
    # axes.apps logs a banner at every start (each manage.py command); its failure warnings stay (axes.handlers).
    "loggers": {"django.db.backends": {"level": "INFO"}, "axes.apps": {"level": "WARNING"}},
}

# -- Audit and outbound notifications: Celery (dcportal/celery.py, audit/) ---------------------------
# Seconds between audit cycles; a cycle still running when the next is due delays it (cycles never overlap).
AUDIT_INTERVAL = env_float("DCPORTAL_AUDIT_INTERVAL", default=20.0, minimum=0.1)
# Probes in flight at once per audit task, and each probe's whole deadline (no retries within a cycle).
AUDIT_CONNECTIONS = env_int("DCPORTAL_AUDIT_CONNECTIONS", default=100, minimum=1)
AUDIT_TIMEOUT = env_float("DCPORTAL_AUDIT_TIMEOUT", default=5.0, minimum=0.1)
# Subclouds per audit task: a cycle fans out over every worker process (and host) in chunks of this size.
AUDIT_CHUNK = env_int("DCPORTAL_AUDIT_CHUNK", default=1000, minimum=1)
# Expiry of the cycle lock, renewed while the cycle runs: a cycle whose worker died stops blocking after this.
AUDIT_LOCK_SECONDS = env_float("DCPORTAL_AUDIT_LOCK_SECONDS", default=max(60.0, 3 * AUDIT_INTERVAL), minimum=1)
# Each subcloud is re-sent as an update-state-only refresh about once per this period (domain.md, Audit).
AUDIT_REFRESH_SECONDS = env_float("DCPORTAL_AUDIT_REFRESH_SECONDS", default=3600.0, minimum=1)
# Worker and beat heartbeats (file for the OCF monitors, WorkerHeartbeat row for /v1.0/state/stats).
AUDIT_HEARTBEAT_SECONDS = env_float("DCPORTAL_AUDIT_HEARTBEAT_SECONDS", default=STATE_HEARTBEAT_SECONDS, minimum=0.1)
# The file the Celery worker or beat touches (set per process by its OCF agent); empty: none.
AUDIT_HEARTBEAT_FILE = env_str("DCPORTAL_HEARTBEAT_FILE")
# Outbound notifications (audit/outbox.py); an empty URL means that receiver is not told (logged once).
DCORCH_URL = env_str("DCPORTAL_DCORCH_URL", default="")
CERTMON_URL = env_str("DCPORTAL_CERTMON_URL", default="")
OUTBOX_POLL_SECONDS = env_float("DCPORTAL_OUTBOX_POLL_SECONDS", default=1.0, minimum=0.01)
OUTBOX_TIMEOUT = env_float("DCPORTAL_OUTBOX_TIMEOUT", default=5.0, minimum=0.1)
OUTBOX_BATCH = env_int("DCPORTAL_OUTBOX_BATCH", default=1000, minimum=1)
# Retry backoff while a receiver is down: doubles from the first value up to the second.
OUTBOX_BACKOFF = (env_float("DCPORTAL_OUTBOX_BACKOFF_MIN", default=0.5, minimum=0.01),
                  env_float("DCPORTAL_OUTBOX_BACKOFF_MAX", default=30.0, minimum=0.01))


def _redis_db_url(url, db):
    """The Redis of `url` with DB index `db`, spelled for kombu (unix sockets are redis+socket://)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"redis+socket://{parts.path}?virtual_host={db}"
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


# Where `manage.py simulate_control` finds the development subcloud simulator (simulator/fleet.py).
SIMULATOR_URL = env_str("DCPORTAL_SIMULATOR_URL", default="http://127.0.0.1:8120")

# The broker shares the channel layer's Redis on its own DB index.
CELERY_REDIS_DB = env_int("DCPORTAL_CELERY_REDIS_DB", default=1, minimum=0)
CELERY_BROKER_URL = env_str("DCPORTAL_CELERY_BROKER_URL", default="") or _redis_db_url(REDIS_URL, CELERY_REDIS_DB)
if REDIS_SENTINEL and not env_str("DCPORTAL_CELERY_BROKER_URL"):
    # kombu's sentinel transport: one sentinel:// URL per sentinel, joined by ";"; the master by name below.
    _auth = f":{quote(REDIS_SENTINEL['password'], safe='')}@" if REDIS_SENTINEL["password"] else ""
    CELERY_BROKER_URL = ";".join(f"sentinel://{_auth}{f'[{h}]' if ':' in h else h}:{p}/{CELERY_REDIS_DB}"
                                 for h, p in REDIS_SENTINEL["sentinels"])
# Prefix of every broker and audit key (tests give each run its own).
CELERY_KEY_PREFIX = env_str("DCPORTAL_CELERY_PREFIX", default="dcportal:")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "global_keyprefix": CELERY_KEY_PREFIX,
    # Tasks are short and ETA-free: an unacked one is redelivered after 5 minutes, not an hour.
    "visibility_timeout": 300,
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
    "health_check_interval": 25,
    "retry_on_timeout": True,
}
if REDIS_SENTINEL and CELERY_BROKER_URL.startswith("sentinel://"):
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = REDIS_SENTINEL["master_name"]
CELERY_BROKER_CONNECTION_TIMEOUT = 5
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = env_int("DCPORTAL_AUDIT_WORKER_CONCURRENCY", default=3, minimum=1)
# The audit worker's nice value (0 = as the rest): audits and outbox deliveries are background work, so on a
# saturated controller the state path (intake, state workers, websocket) gets the cores first (dcportal/celery.py).
AUDIT_NICE = env_int("DCPORTAL_AUDIT_NICE", default=10, minimum=0, maximum=19)
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
