"""Vault Registry settings, read from the environment.

One module for every deployment (NetBox, healthchecks): each knob is an environment variable with
a safe default for a single machine, and production secrets fail loudly when missing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def env_secret(name: str) -> str:
    """A secret from NAME, or from the file named by NAME_FILE (Docker/systemd credentials)."""
    value = os.environ.get(name, "")
    path = os.environ.get(f"{name}_FILE", "")
    if not value and path:
        try:
            value = Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path} cannot be read: {exc}") from exc
    return value


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY (or SECRET_KEY_FILE) must be set; `make run` creates var/secret_key."
        )
    SECRET_KEY = "insecure-debug-only-key-never-use-in-production"
elif len(SECRET_KEY) < 32 and not DEBUG:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# --- The federation -----------------------------------------------------------------------------
# ISO 3166-1 alpha-2 country of the federation, first two characters of every vault number.
VAULT_COUNTRY = env("VAULT_COUNTRY", "FR").upper()
# This registry's allocator code: 4 of A-Z0-9, first a letter (DESIGN.md §2).
VAULT_ALLOCATOR = env("VAULT_ALLOCATOR", "VLT1").upper()
# Allocator codes of other registries of the federation, whose numbers are valid but not ours.
VAULT_OTHER_ALLOCATORS = [code.upper() for code in env_list("VAULT_OTHER_ALLOCATORS")]
# Delivery transport profiles providers may publish endpoints for.
VAULT_TRANSPORT_PROFILES = env_list("VAULT_TRANSPORT_PROFILES", "vault-pivot-https/1")
# Document types an endpoint may declare it accepts (400 for any other). The default is the
# purposes issuers resolve numbers for (registry.models.organisations.Purpose; a test keeps the two
# in step).
VAULT_DOCUMENT_TYPES = env_list(
    "VAULT_DOCUMENT_TYPES", "bank_statement,payslip,invoice,tax_notice,insurance,other"
)
# Longest lifetime an admin may give an API token, in days.
VAULT_TOKEN_MAX_DAYS = env_int("VAULT_TOKEN_MAX_DAYS", 400)
# How long a worker trusts a token it checked: revocation and suspension take effect within it.
VAULT_TOKEN_CACHE_SECONDS = env_int("VAULT_TOKEN_CACHE_SECONDS", 5)
# Largest request body accepted by the API, in bytes (413 above).
VAULT_API_MAX_BODY = env_int("VAULT_API_MAX_BODY", 64 * 1024)
# Routing plans: most numbers in one plan, and largest body (413 above either).
VAULT_PLAN_MAX_NUMBERS = env_int("VAULT_PLAN_MAX_NUMBERS", 100_000)
VAULT_PLAN_MAX_BODY = env_int("VAULT_PLAN_MAX_BODY", 8 * 1024 * 1024)
# Django's own cap on a body read into memory (2.5 MiB by default) would refuse a plan or a state
# proof request that the API accepts (a 100,000-number state proof request is about 3 MB) with a
# 500. API bodies are bounded per view by ApiBodyLimitMiddleware instead (64 KiB by default).
DATA_UPLOAD_MAX_MEMORY_SIZE = VAULT_PLAN_MAX_BODY
# Largest PEM certificate accepted, in bytes.
VAULT_CERT_MAX_PEM = env_int("VAULT_CERT_MAX_PEM", 16 * 1024)

# --- Portability (DESIGN.md §5) -------------------------------------------------------------------
# The losing provider answers within this many working days, or the registry approves the move.
TRANSFER_WINDOW_WORKING_DAYS = env_int("TRANSFER_WINDOW_WORKING_DAYS", 3)
# Working days skip weekends and the public holidays of this country, counted in this time zone.
TRANSFER_HOLIDAYS_COUNTRY = env("TRANSFER_HOLIDAYS_COUNTRY", "FR").upper()
TRANSFER_TIME_ZONE = env("TRANSFER_TIME_ZONE", "Europe/Paris")
# A transfer code lives this many days and locks after this many wrong attempts.
TRANSFER_CODE_VALID_DAYS = env_int("TRANSFER_CODE_VALID_DAYS", 14)
TRANSFER_CODE_MAX_ATTEMPTS = env_int("TRANSFER_CODE_MAX_ATTEMPTS", 5)
# After a move the vault cannot move again for this many days, and lookups name the previous
# provider for this many days.
TRANSFER_LOCK_DAYS = env_int("TRANSFER_LOCK_DAYS", 30)
TRANSFER_GRACE_DAYS = env_int("TRANSFER_GRACE_DAYS", 30)
# Providers are told this many days before one of their certificates expires.
CERTIFICATE_EXPIRY_NOTICE_DAYS = env_int("CERTIFICATE_EXPIRY_NOTICE_DAYS", 30)
# Webhook delivery: at most this many attempts, waiting base * 2^(n-1) seconds (capped) between.
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 15)
WEBHOOK_BACKOFF_BASE_SECONDS = env_int("WEBHOOK_BACKOFF_BASE_SECONDS", 30)
WEBHOOK_BACKOFF_MAX_SECONDS = env_int("WEBHOOK_BACKOFF_MAX_SECONDS", 6 * 3600)
# Total time one delivery may take (connect, TLS, request, answer), not per socket read.
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
# Deliveries to different providers run in parallel, this many at a time.
WEBHOOK_CONCURRENCY = env_int("WEBHOOK_CONCURRENCY", 8)
# A claimed batch not recorded within this many seconds (its worker died) is claimed again.
WEBHOOK_LEASE_SECONDS = env_int("WEBHOOK_LEASE_SECONDS", 120)
# Webhooks may point to loopback, private or link-local addresses: for tests and closed networks
# only, never on a registry reachable from the Internet (registry.destinations).
VAULT_WEBHOOK_ALLOW_PRIVATE = env_bool("VAULT_WEBHOOK_ALLOW_PRIVATE", False)
# PEM file of the certificate authorities webhook receivers' certificates chain to; empty: the
# system's trust store. For closed networks with their own CA (and tests).
WEBHOOK_CA_FILE = env("WEBHOOK_CA_FILE", "")

# --- Transparency log and signed answers (DESIGN.md §6) -----------------------------------------
# Directory of the Ed25519 private keys (log and receipt) and their public manifest: keep it outside
# the repository and any backup that is not as protected as the keys; `manage.py generate_keys`.
VAULT_KEY_DIR = Path(env("VAULT_KEY_DIR", str(VAR_DIR / "keys")))
# First line of every checkpoint and the signed-note name of the log key (c2sp.org/tlog-checkpoint).
VAULT_LOG_ORIGIN = env("VAULT_LOG_ORIGIN", "vault-registry.example/log")
# A write is signed in a checkpoint within this many seconds, by a background thread of the
# process that wrote (0: at once, after the commit).
VAULT_CHECKPOINT_INTERVAL = env_int("VAULT_CHECKPOINT_INTERVAL", 2)
# A checkpoint of an unchanged log is re-signed (a new time line) when older than this, so that
# clients refusing stale checkpoints (vault-registry --max-age) keep working: run
# `publish_checkpoint` from a timer at least this often.
VAULT_CHECKPOINT_REFRESH = env_int("VAULT_CHECKPOINT_REFRESH", 300)
# The last checkpoint this server signed, kept outside the database: the next one must extend it
# (empty: not kept).
VAULT_CHECKPOINT_STATE_FILE = env(
    "VAULT_CHECKPOINT_STATE_FILE", str(VAR_DIR / "last-checkpoint.json")
)
# Witnesses asked to cosign each checkpoint: JSON list of {"name", "vkey", "url"} objects.
VAULT_WITNESSES = json.loads(env("VAULT_WITNESSES", "[]"))
# Answers are proven against the latest checkpoint with at least this many cosignatures.
VAULT_WITNESS_QUORUM = env_int("VAULT_WITNESS_QUORUM", 0)
# Seconds a publication waits for the witnesses' cosignatures, in total.
VAULT_WITNESS_TIMEOUT = env_int("VAULT_WITNESS_TIMEOUT", 5)
# Lifetime of a signed receipt, in seconds.
VAULT_RECEIPT_TTL = env_int("VAULT_RECEIPT_TTL", 600)
# Federation (README "Federation"): the federation keys pinned (note verifier keys, separated by
# spaces or commas); documents signed by none of them are refused.
VAULT_FEDERATION_KEYS = env("VAULT_FEDERATION_KEYS", "").replace(",", " ").split()
# Seconds a forwarded lookup, and a peer's share of a plan, may take before 504 / unavailable.
VAULT_FEDERATION_TIMEOUT = env_int("VAULT_FEDERATION_TIMEOUT", 10)
VAULT_FEDERATION_PLAN_TIMEOUT = env_int("VAULT_FEDERATION_PLAN_TIMEOUT", 60)
# Retry-After (seconds) of a 502/504 when a member registry is down or slow.
VAULT_FEDERATION_RETRY_AFTER = env_int("VAULT_FEDERATION_RETRY_AFTER", 30)

# --- Abuse limits and usage (registry.ratelimit, registry.usage) ------------------------------
# Per token and minute: single lookups, and numbers in routing plans (a plan costs its number
# count). An issuer's own limits (admin) replace these defaults; 0 turns a limit off.
VAULT_RATE_LOOKUP_PER_MINUTE = env_int("VAULT_RATE_LOOKUP_PER_MINUTE", 1200)
VAULT_RATE_PLAN_NUMBERS_PER_MINUTE = env_int("VAULT_RATE_PLAN_NUMBERS_PER_MINUTE", 300_000)
# Per client address and minute on the public endpoints (the log, tiles, state proofs,
# /.well-known), and per hour for onboarding applications.
VAULT_RATE_PUBLIC_PER_MINUTE = env_int("VAULT_RATE_PUBLIC_PER_MINUTE", 600)
VAULT_RATE_APPLICATIONS_PER_HOUR = env_int("VAULT_RATE_APPLICATIONS_PER_HOUR", 20)
# Without Redis, each worker writes its usage counts to the table at most this often (seconds).
VAULT_USAGE_FLUSH_SECONDS = env_int("VAULT_USAGE_FLUSH_SECONDS", 30)
# An issuer that asked at least MIN numbers over the last WINDOW minutes, more than SHARE percent
# of them unknown, is flagged to the federation admins (usage:enumeration_suspected).
VAULT_ENUMERATION_WINDOW_MINUTES = env_int("VAULT_ENUMERATION_WINDOW_MINUTES", 60)
VAULT_ENUMERATION_MIN_NUMBERS = env_int("VAULT_ENUMERATION_MIN_NUMBERS", 1000)
VAULT_ENUMERATION_UNKNOWN_PERCENT = env_int("VAULT_ENUMERATION_UNKNOWN_PERCENT", 50)

# --- The admin -----------------------------------------------------------------------------------
# Most records one admin action changes (a "select all" over a filtered list); above it the admin
# is asked to narrow the list. Vault batches are also capped by the service (10,000).
VAULT_ADMIN_BULK_MAX = env_int("VAULT_ADMIN_BULK_MAX", 10_000)

# --- Operations ---------------------------------------------------------------------------------
# A write the database refuses for concurrency (deadlock, serialisation failure) is tried this
# many times in all, then answered 503 retry_later with Retry-After of this many seconds.
VAULT_WRITE_ATTEMPTS = env_int("VAULT_WRITE_ATTEMPTS", 5)
VAULT_RETRY_AFTER_SECONDS = env_int("VAULT_RETRY_AFTER_SECONDS", 1)
# Retry-After (seconds) of /readyz's 503.
VAULT_READY_RETRY_AFTER = env_int("VAULT_READY_RETRY_AFTER", 5)
# Proxies whose X-Forwarded-For and X-Request-ID are believed (addresses or CIDR networks; `unix`
# for a Unix socket, as nginx reaches gunicorn in deploy/), for everything that needs the client's
# address: request ids, /metrics, the per-address rate limits. Anyone else's are ignored.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "unix,127.0.0.1,::1")
# VAULT_TRUSTED_PROXIES was the rate limits' own list: a deprecated alias, read only when
# TRUSTED_PROXIES is not set (registry/checks.py warns either way).
DEPRECATED_TRUSTED_PROXIES = env_list("VAULT_TRUSTED_PROXIES")
if DEPRECATED_TRUSTED_PROXIES and not env("TRUSTED_PROXIES"):
    TRUSTED_PROXIES = DEPRECATED_TRUSTED_PROXIES
# /metrics (Prometheus) answers these client addresses (through a trusted proxy, the address it
# forwards), and any request carrying `Authorization: Bearer <METRICS_TOKEN>`.
METRICS_ALLOWED_ADDRESSES = env_list("METRICS_ALLOWED_ADDRESSES", "127.0.0.1,::1")
METRICS_TOKEN = env_secret("METRICS_TOKEN")
# Log lines as JSON objects (one per line, for a log shipper) or as text (`make run`).
LOG_FORMAT = (env("LOG_FORMAT") or "json").lower()
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")


def _networks(name: str, items: list[str]):
    from registry.proxies import parse_networks

    try:
        return parse_networks(items)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from exc


_networks("TRUSTED_PROXIES", TRUSTED_PROXIES)  # refuse a malformed list at start
METRICS_ALLOWED_NETWORKS = _networks("METRICS_ALLOWED_ADDRESSES", METRICS_ALLOWED_ADDRESSES)

# --- Django -------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_otp",
    "registry.apps.TOTPConfig",  # django_otp.plugins.otp_totp, named for the admin
    "django_otp.plugins.otp_static",
    "axes",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "registry",
    "registry.portal",
    "directory",
    "directory.federation",
]

MIDDLEWARE = [
    # First: its latency and status cover the whole stack (request id, access line, metrics).
    "registry.middleware.RequestObservationMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "registry.api.middleware.ApiBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "registry.portal.middleware.PeopleTimeZoneMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "registry.portal.middleware.PortalIdleTimeoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "registry.middleware.PeopleTimeZoneMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "registry.urls"
WSGI_APPLICATION = "registry.wsgi.application"

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
                "django.template.context_processors.i18n",
                "registry.portal.context.portal",
            ],
        },
    },
]

# No DATABASE_URL: the embedded SQLite file under var/, in IMMEDIATE mode so that two writers
# queue on the database lock instead of failing half-way through a transaction.
_default_sqlite = f"sqlite:///{VAR_DIR / 'registry.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", _default_sqlite), conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60)
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    # A health check is a SELECT 1 round trip before every request's first query, as costly as
    # the lookup itself: off unless asked. A connection that broke fails one request and is
    # replaced at its end.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env_bool("DATABASE_CONN_HEALTH_CHECKS", False)
    # Server-side parameters, and statements prepared after a few runs: planning the lookup's
    # query costs ten times more than running it. Set DATABASE_PREPARE_THRESHOLD=0 behind a
    # pooler in transaction mode (PgBouncer), which cannot keep prepared statements.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["server_side_binding"] = True
    options["prepare_threshold"] = env_int("DATABASE_PREPARE_THRESHOLD", 5) or None
    # No JIT: registry queries are short, and compiling a 100,000-number plan's query costs more
    # (about half a second) than running it.
    options.setdefault("options", "-c jit=off")
    # A database that does not answer fails the request (and /readyz) after this many seconds,
    # instead of holding a worker until gunicorn's timeout ends it with an HTML 500.
    options.setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5))

# A streaming replica (DESIGN.md §8): the read side (lookups, plans, state proofs, log reads) is
# served from it while it lags the primary by at most DATABASE_REPLICA_MAX_LAG seconds, checked
# every DATABASE_REPLICA_LAG_CHECK seconds per process; every write, and every read outside the
# read side's views, goes to the primary (registry.routers).
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", "")
DATABASE_REPLICA_MAX_LAG = env_int("DATABASE_REPLICA_MAX_LAG", 5)
DATABASE_REPLICA_LAG_CHECK = env_int("DATABASE_REPLICA_LAG_CHECK", 2)
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(
        DATABASE_REPLICA_URL, conn_max_age=DATABASES["default"]["CONN_MAX_AGE"]
    )
    if DATABASES["replica"]["ENGINE"] != DATABASES["default"]["ENGINE"]:
        raise ImproperlyConfigured(
            "DATABASE_REPLICA_URL must name the same engine as DATABASE_URL."
        )
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = DATABASES["default"].get(
        "CONN_HEALTH_CHECKS", False
    )
    DATABASES["replica"]["OPTIONS"] = dict(DATABASES["default"].get("OPTIONS", {}))
    # Under tests the replica is the default database itself (no second test database).
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["registry.routers.ReplicaRouter"] if DATABASE_REPLICA_URL else []

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# French first: people whose browser asks for nothing get French; the switch keeps a choice.
LANGUAGE_CODE = env("LANGUAGE_CODE", "fr")
LANGUAGES = [("fr", "Français"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", "UTC")
# Pages for people (portal, public pages) show times here; the API always answers UTC.
PEOPLE_TIME_ZONE = env("PEOPLE_TIME_ZONE", "Europe/Paris")
# Times shown to people (the admin, pages outside /api/): transfer deadlines are counted in
# Paris working days, so they are shown in Paris time too.
DISPLAY_TIME_ZONE = PEOPLE_TIME_ZONE
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# The cache holds the rate limits' counters, shared by every worker (registry.ratelimit): Redis
# when REDIS_URL is set (production), else a database table (`manage.py createcachetable`, which
# `make run` runs), so that one machine works without Redis.
REDIS_URL = env("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "vault-registry",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "vault_registry_cache",
        }
    }

# --- Security -----------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG and env_bool("HTTPS", False))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HTTPS=true: plain HTTP is redirected (except the health checks a load balancer probes) and
# browsers are told to use HTTPS only for a year (HSTS).
HTTPS = env_bool("HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 31_536_000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD", True)
SECURE_REFERRER_POLICY = "same-origin"
# Each request renews the session (SESSION_COOKIE_AGE, below), so it ends after that long idle.
SESSION_SAVE_EVERY_REQUEST = True
LOGIN_URL = "portal:login"
# Content-Security-Policy on every answer (django-csp): nothing but this site's own files, no
# inline script or style; the API docs page widens style-src for Swagger UI only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# The portal's page for a locked-out login (django-axes; its limits are set below).
AXES_LOCKOUT_TEMPLATE = "portal/locked.html"
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    if env_bool("BEHIND_TLS_PROXY", False)
    else ("REMOTE_ADDR",)
)
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", "Vault Registry")
# TOTP secrets (keys and QR codes) are never shown in the admin once a device exists.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# Sessions (the admin's, the portal's) last 8 hours at most, and end when the browser closes.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", True)
# A member's portal session also ends after this long without a request
# (registry.portal.middleware.PortalIdleTimeoutMiddleware); the admin keeps SESSION_COOKIE_AGE.
PORTAL_IDLE_SECONDS = env_int("PORTAL_IDLE_SECONDS", 30 * 60)

# --- Login throttling (django-axes) -----------------------------------------------------------
# Every login form (the admin's; the portal's as it comes) authenticates through django-axes:
# after AXES_FAILURE_LIMIT failures for one username from one address, further attempts answer
# 429 for AXES_COOLOFF_TIME hours, whether the password was right or not. A wrong TOTP code
# after a right password counts as a failure too (registry.admin.site.AdminLoginForm).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_TIME", 1)  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The client's address: REMOTE_ADDR, or behind the TLS proxy the address it saw.
AXES_CLIENT_IP_CALLABLE = "registry.middleware.client_ip"
# --- end of login throttling ------------------------------------------------------------------

# --- API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["registry.api.auth.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["registry.api.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "registry.api.parsers.ContentNegotiation",
    "DEFAULT_SCHEMA_CLASS": "registry.api.openapi.RegistryAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "registry.api.pagination.CursorPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "registry.api.errors.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Vault Registry API",
    "DESCRIPTION": (
        "Maps portable vault numbers to the provider hosting them, and providers to their "
        "delivery endpoints and certificates. Errors are RFC 9457 problem+json."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "TransferStateEnum": "registry.models.transfers.TransferState.choices",
        "TransferCodeStateEnum": "registry.models.transfers.TransferCodeState.choices",
        "TransferSideEnum": "registry.models.transfers.TransferSide.choices",
        "RejectionReasonEnum": "registry.models.transfers.RejectionReason.choices",
        "MessageKindEnum": "registry.models.messages.MessageKind.choices",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"main": {"()": f"registry.logs.{LOG_FORMAT.capitalize()}Formatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "main"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.server": {"level": "WARNING"},
        # Django logs every 4xx as a WARNING and every 5xx as an ERROR: the access line of
        # registry.requests says each once, 4xx at INFO; Django keeps the 5xx tracebacks.
        "django.request": {"level": "ERROR"},
    },
}

# --- Portal -------------------------------------------------------------------------------------
# A routing plan run from the issuer portal keeps its answer this long for download, then it is
# deleted (the registry's record keeps only its hashes).
PORTAL_PLAN_DIR = Path(env("PORTAL_PLAN_DIR", str(VAR_DIR / "portal-plans")))
PORTAL_PLAN_KEEP_SECONDS = env_int("PORTAL_PLAN_KEEP_SECONDS", 3600)
