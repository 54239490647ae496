"""Settings, all from the environment (every variable is listed in README.md).

Only DATABASE_URL and REDIS_URL matter to run; ./dev fills both in with embedded
servers when they are unset.
"""

from pathlib import Path

import environ

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
    # state before channels: its runworker command handles dcmanager-state.
    "accounts",
    "subclouds",
    "state",
    "channels",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsReader"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "subclouds.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "dcportal API",
    "DESCRIPTION": "Subcloud inventory and state service, wire-compatible with dcmanager API v1.0.",
    "VERSION": "1.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# The state service.
STATE_WORKER_BATCH = env.int("DCPORTAL_STATE_BATCH", default=1000)
STATE_SWEEP_SECONDS = env.float("DCPORTAL_STATE_SWEEP_SECONDS", default=2.0)
STATE_HEARTBEAT_SECONDS = env.float("DCPORTAL_STATE_HEARTBEAT_SECONDS", default=5.0)
STATE_BULK_MAX = 1000

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s[%(process)d] %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DCPORTAL_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
