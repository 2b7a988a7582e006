"""Settings for hal0 spend control: every knob comes from the environment.

Defaults are safe for a laptop: SQLite and the data folder under ``var/`` next to this
checkout. Production sets ``DATABASE_URL``, ``SECRET_KEY``, ``ALLOWED_HOSTS`` and leaves
``DEBUG`` off; ``manage.py check --deploy`` is clean then.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("HAL0_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.is_file():
    environ.Env.read_env(str(env_file))

DEBUG = env.bool("DEBUG", default=False)
# pytest >= 8.2 exports PYTEST_VERSION for the whole session; the test suite may use a
# throwaway key, nothing else may start without one unless DEBUG is on.
_TESTING = "PYTEST_VERSION" in os.environ

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not (DEBUG or _TESTING):
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off; set it in the environment."
        )
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production-3f9c1e7a5b2d4f6a8c0e"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Where persona files and JSONL ledger mirrors live (DESIGN.md section 3).
HAL0_DATA_DIR = Path(env.str("HAL0_DATA_DIR", default=str(VAR_DIR / "data")))
# Default lifetime of a hold when the check body gives none, and the longest allowed.
HAL0_HOLD_TTL_S = env.int("HAL0_HOLD_TTL_S", default=300)
# Refused checks are tallied in memory per process and written at most this often, by a
# background thread (budgets.reports.refused); 0 = no thread, written when an admin page
# reads the tally or the process exits (the tests' setting).
HAL0_REFUSED_FLUSH_S = env.float("HAL0_REFUSED_FLUSH_S", default=5.0)
HAL0_HOLD_TTL_MAX_S = env.int("HAL0_HOLD_TTL_MAX_S", default=86_400)
# The background worker (manage.py worker): idle poll, heartbeat period, and the age of the
# newest heartbeat after which /readyz reports the worker down (docs/alerts.md).
HAL0_WORKER_POLL_S = env.float("HAL0_WORKER_POLL_S", default=1.0)
HAL0_WORKER_BEAT_S = env.float("HAL0_WORKER_BEAT_S", default=10.0)
HAL0_WORKER_STALE_S = env.float("HAL0_WORKER_STALE_S", default=60.0)
# Off: /readyz ignores the worker (web nodes stay in the load balancer while it is down).
HAL0_READY_REQUIRES_WORKER = env.bool("HAL0_READY_REQUIRES_WORKER", default=True)
# Addresses or networks that may read /metrics without a key (default none: an operator
# key is needed; behind a reverse proxy every client has the proxy's address).
HAL0_METRICS_ALLOW = env.list("HAL0_METRICS_ALLOW", default=[])
# Webhook delivery (docs/alerts.md): request timeout, how long a claimed delivery stays
# with its worker, the backoff between attempts (full jitter, doubling from BASE up to
# MAX), how long to keep trying after the event, and deliveries claimed per turn.
HAL0_WEBHOOK_TIMEOUT_S = env.float("HAL0_WEBHOOK_TIMEOUT_S", default=10.0)
HAL0_WEBHOOK_LEASE_S = env.float("HAL0_WEBHOOK_LEASE_S", default=60.0)
HAL0_WEBHOOK_BACKOFF_BASE_S = env.float("HAL0_WEBHOOK_BACKOFF_BASE_S", default=5.0)
HAL0_WEBHOOK_BACKOFF_MAX_S = env.float("HAL0_WEBHOOK_BACKOFF_MAX_S", default=3600.0)
HAL0_WEBHOOK_RETRY_FOR_S = env.float("HAL0_WEBHOOK_RETRY_FOR_S", default=86_400.0)
HAL0_WEBHOOK_BATCH = env.int("HAL0_WEBHOOK_BATCH", default=20)
# An endpoint with this many failed attempts in a row shows as failing in the admin.
HAL0_WEBHOOK_FAILING_AFTER = env.int("HAL0_WEBHOOK_FAILING_AFTER", default=3)
# PostgreSQL: the check's statements are prepared once per connection (hal0/statements.py);
# off for a connection pooler that cannot keep prepared statements.
HAL0_DB_PREPARE = env.bool("HAL0_DB_PREPARE", default=True)
# API keys are required unless an operator explicitly runs an open local service.
HAL0_REQUIRE_API_KEY = env.bool("HAL0_REQUIRE_API_KEY", default=True)

INSTALLED_APPS = [
    # Django's admin with the operators' Spend page (budgets/admin/site.py).
    "budgets.apps.Hal0AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "personas",
    "budgets",
]

MIDDLEWARE = [
    # First, so it times the whole chain (Prometheus: docs/alerts.md).
    "budgets.monitoring.middleware.RequestMetricsMiddleware",
    # Then: an API call with a Host not served here or over plain HTTP from another host
    # gets a JSON error that names the setting to change (hal0/middleware.py).
    "hal0.middleware.ApiArrivalMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it watches admin logins for brute force.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "hal0.urls"
WSGI_APPLICATION = "hal0.wsgi.application"

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
                # The over-cap banner on every admin page (lazy: admin pages only).
                "budgets.admin.context_processors.spend_alerts",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'hal0.sqlite3'}"),
}
if "DATABASE_URL" not in os.environ:
    # The embedded default keeps everything under var/; make sure it exists.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # Every transaction takes the write lock at BEGIN, so check-with-reserve and charge
        # serialize instead of failing with "database is locked" half way through.
        "transaction_mode": "IMMEDIATE",
        "timeout": env.int("SQLITE_BUSY_TIMEOUT_S", default=20),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
    }
    # Race tests need a real file that several threads and processes can open; one file
    # per test process so parallel runs never share it.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"hal0-test-{os.getpid()}.sqlite3"),
    }
else:
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend with a health check that needs no round trip while the server
        # has not closed the connection (hal0/postgresql/base.py).
        DATABASES["default"]["ENGINE"] = "hal0.postgresql"
    # A dropped connection is noticed before a request uses it.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "hal0.postgresql" and HAL0_DB_PREPARE:
        # Django passes no threshold, which turns prepared statements off on the
        # connection altogether; this one lets the check's statements be prepared on
        # request (hal0/statements.py) and never prepares any other by itself.
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options.setdefault("prepare_threshold", 2**31 - 1)
        # And planned once for any values (a generic plan). Left to choose, PostgreSQL
        # planned the check's statement afresh on every execution, its plan for the
        # values at hand looking cheaper, and planning cost more than running it. Only
        # those statements are prepared, so this changes nothing else.
        startup = options.get("options", "")
        options["options"] = f"{startup} -c plan_cache_mode=force_generic_plan".strip()
# Connections are kept between requests on both engines: opening one per request was
# about 60 % of a check's time on SQLite (open the file, run init_command, register
# functions; docs/benchmarks.md).
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Times in the admin with their timezone (hal0/formats/en/formats.py).
FORMAT_MODULE_PATH = ["hal0.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or _TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Bodies larger than this are refused with 413 request.too_large.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("HAL0_MAX_BODY_BYTES", default=64 * 1024)

REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "hal0.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["hal0.parsers.Hal0JSONParser"],
    # DRF's negotiation, without parsing the Accept headers API clients send (*/*, JSON).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "hal0.negotiation.UsualAcceptNegotiation",
    # Bearer API keys on every API view (budgets/auth.py, docs/api-keys.md); with
    # HAL0_REQUIRE_API_KEY off, a request without a key acts as an operator.
    "DEFAULT_AUTHENTICATION_CLASSES": ["budgets.auth.BearerApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["budgets.auth.ApiKeyPermission"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "hal0 spend control API",
    "DESCRIPTION": "Per-persona LLM spend caps: check before a call, charge after it.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Run states and hold states are both fields named "state", and events and checkpoints
    # both have a "kind": name each set.
    "ENUM_NAME_OVERRIDES": {
        "RunStateEnum": ["active", "needs_budget", "closed"],
        "ScopeKindEnum": ["persona", "agent", "platform", "run"],
    },
    # The default enum hook, then hal0/query.py's rule in the schema: an empty query
    # parameter is the same as one left out, so a list of values includes "".
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "hal0.query.empty_in_enums",
    ],
}

# django-axes: lock an admin login out after repeated failures.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# Locked per (username, address) pair, never per username alone: a lock on the name would
# let anyone who knows it keep the operator out from any address (docs/admin.md).
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"

# Production hardening; each can be turned off from the environment behind a proxy that
# already does it.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG and not _TESTING)
# Never redirected: the API (hal0.middleware serves a same-host call over plain HTTP and
# refuses any other with a JSON error; a client would not follow a 301 with its POST
# body), and probes and scrapers, which often speak plain HTTP to the node itself.
SECURE_REDIRECT_EXEMPT = [r"^api/", r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG and not _TESTING)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG and not _TESTING)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# "preload" only marks the site as eligible for the browsers' HSTS preload list; submitting
# it stays the domain owner's decision. Set SECURE_HSTS_PRELOAD=false to leave it out.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
# Off, X-Forwarded-Proto is trusted from nobody: not here, and not by gunicorn either
# (hal0/wsgi.py undoes the https scheme gunicorn derives from it for 127.0.0.1).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
