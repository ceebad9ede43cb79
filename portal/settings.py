"""Tollway portal settings. Everything comes from the environment; see docs/operations.md."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from portal.core.validators import origin_of
from portal.env import celery_broker_settings, env, env_bool, env_int, env_list, env_redis_target, env_str

# Lets classes that are generic only in django-stubs (ModelAdmin[Model], ...) be
# subscripted at run time too, as the typed admin and helpers do.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (or set SECRET_KEY_FILE).")
    # Development only: DEBUG is on and nothing was given. Never used in production
    # because the check above refuses to start without a real key.
    SECRET_KEY = "insecure-dev-only-" + "x" * 40

# Keyed hash for API keys. Shared with the gateway (GATEWAY_KEY_HASH_SECRET), which
# hashes the presented key the same way to look it up. Falls back to SECRET_KEY.
KEY_HASH_SECRET = (env("TOLLWAY_KEY_HASH_SECRET") or SECRET_KEY).encode("utf-8")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "oauth2_provider",
    "django_htmx",
    "portal.core",
    "portal.accounts",
    "portal.audit",
    "portal.catalog",
    "portal.plans",
    "portal.keys",
    "portal.gateway_state",
    "portal.declarative",
    "portal.webhooks",
    "portal.demo",
    "analytics",
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
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last: the styled 404 page in DEBUG too (never Django's URL list); see its docstring.
    "portal.core.middleware.StyledNotFoundMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

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
                "portal.core.context_processors.portal",
            ],
        },
    },
]

# SQLite is the embedded default; PostgreSQL in production via DATABASE_URL.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'tollway.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60))}
except Exception as exc:  # dj_database_url raises several types for a bad URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent writers (portal + worker) on SQLite: wait rather than fail with "database is locked".
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["portal.accounts.backends.EmailBackend"]

# Every form of tollway/redis_url.py (redis://, rediss://, unix://, redis+sentinel://,
# redis+cluster://); checked here so that a bad URL stops the portal at start-up.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_TARGET = env_redis_target("REDIS_URL", REDIS_URL)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# Where collectstatic puts the files whitenoise serves when DEBUG is off (`make run` fills it).
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "var" / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG  # no collectstatic needed in development and tests

# Email: console by default, SMTP when EMAIL_HOST is set.
EMAIL_HOST = env("EMAIL_HOST") or ""
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Tollway <noreply@tollway.localhost>")

# Where developers reach the gateway (for docs, try-it and curl examples).
GATEWAY_PUBLIC_URL = env_str("GATEWAY_PUBLIC_URL", f"http://127.0.0.1:{env_int('GATEWAY_PORT', 8080)}")
# Where people reach the portal. Its origin is allowed cross-origin by every API version,
# so that the API reference's try-it can call the gateway from the browser. Defaults to
# the first CSRF_TRUSTED_ORIGINS entry, or in DEBUG to the address `make run` serves.
_DEV_PORTAL_URL = f"http://127.0.0.1:{env_int('PORTAL_PORT', 8000)}" if DEBUG else ""
PORTAL_PUBLIC_URL = env_str("PORTAL_PUBLIC_URL", CSRF_TRUSTED_ORIGINS[0] if CSRF_TRUSTED_ORIGINS else _DEV_PORTAL_URL)
if PORTAL_PUBLIC_URL:
    try:
        origin_of(PORTAL_PUBLIC_URL)
    except ValueError as exc:
        raise ImproperlyConfigured(f"PORTAL_PUBLIC_URL must be an http(s) URL, not {PORTAL_PUBLIC_URL!r}.") from exc

CACHES = {
    "default": {
        # Throttles and login limits must be shared across portal processes.
        "BACKEND": "portal.core.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "tollway-portal",
    }
}

# Content-Security-Policy (django-csp; Django 5.2 has no CSP middleware of its own).
# The portal's pages use no inline script or style: every script and stylesheet is a
# static file. connect-src admits the gateway so that the API reference's try-it can
# call it from the browser (CORS on those calls is the gateway's to answer).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'", GATEWAY_PUBLIC_URL],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Security headers and cookies. Production (DEBUG off) is strict by default.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SILENCED_SYSTEM_CHECKS = ["security.W021"] if not SECURE_HSTS_PRELOAD else []

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "oauth2_provider.contrib.rest_framework.OAuth2Authentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "portal.core.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.core.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "signup": env_str("THROTTLE_SIGNUP", "10/hour"),
        "login": env_str("THROTTLE_LOGIN", "20/min"),
        "key_create": env_str("THROTTLE_KEY_CREATE", "60/hour"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Tollway API",
    "DESCRIPTION": "Manage APIs, versions, plans, applications, keys and subscriptions.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"LifecycleStateEnum": "portal.catalog.models.LifecycleState"},
}

OAUTH2_PROVIDER = {
    "SCOPES": {"read": "Read your Tollway resources", "write": "Change your Tollway resources"},
    "DEFAULT_SCOPES": ["read"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": env_int("OAUTH_ACCESS_TOKEN_EXPIRE_SECONDS", 3600),
    "PKCE_REQUIRED": True,
    # Store only the SHA-256 of access and refresh tokens (RFC 9700): a database dump
    # then holds no usable token. The checksum is what the gateway looks tokens up by.
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    # The rest of RFC 9700 (OAuth 2.0 Security BCP): no implicit or password grants,
    # S256 PKCE only, tokens never in the query string, iss in responses, refresh
    # token replay revokes the family, https redirect URIs outside development.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": not DEBUG,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"] if DEBUG else ["https"],
}

OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"

# The broker may be a Redis of its own (CELERY_BROKER_URL), and must be when REDIS_URL is a
# cluster: kombu has no Cluster transport. Our URL forms are translated for kombu
# (redis+sentinel:// becomes its sentinel:// transport with master_name); kombu's own
# URLs (sentinel://…;sentinel://…, amqp://…) pass through, with CELERY_BROKER_MASTER_NAME.
_BROKER = celery_broker_settings(
    "CELERY_BROKER_URL" if env("CELERY_BROKER_URL") else "REDIS_URL",
    env_str("CELERY_BROKER_URL", REDIS_URL),
    eager=env_bool("CELERY_TASK_ALWAYS_EAGER", False),
)
CELERY_BROKER_URL = _BROKER.url
CELERY_BROKER_TRANSPORT_OPTIONS = _BROKER.transport_options
if _BROKER.use_ssl is not None:
    CELERY_BROKER_USE_SSL = _BROKER.use_ssl
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Periodic work, defined in code. Each app adds its own entries below.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Publishes whatever an after-commit flush could not (Redis was down). The task lives in
    # portal.gateway_state.tasks but keeps its old name, which queued messages carry.
    "publish-outbox": {"task": "portal.keys.tasks.publish_outbox_flush", "schedule": 5.0},
    "keys-republish-lapsed": {"task": "portal.keys.tasks.keys_republish_lapsed", "schedule": 60.0},
    # Webhooks: retries that fell due (and first attempts whose after-commit send was lost),
    # key.expiring notices, and pruning of old events.
    "webhooks-dispatch-due": {"task": "portal.webhooks.tasks.webhooks_dispatch_due", "schedule": 15.0},
    "webhooks-key-expiry": {"task": "portal.webhooks.tasks.webhooks_key_expiry_scan", "schedule": 600.0},
    "webhooks-prune": {"task": "portal.webhooks.tasks.webhooks_prune", "schedule": 3600.0},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"redact": {"()": "portal.core.logging.RedactSecrets"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # oauthlib logs issued access tokens in full at DEBUG: never let that through.
        "oauthlib": {"level": "WARNING"},
    },
}

TOLLWAY_DEMO_PASSWORD = env("TOLLWAY_DEMO_PASSWORD") or ""

# Webhooks (portal/webhooks, docs/webhooks.md). Signing secrets are stored encrypted under a
# key derived from this (default SECRET_KEY); old values in the fallbacks still decrypt.
WEBHOOK_SECRET_KEY = env("TOLLWAY_WEBHOOK_SECRET_KEY") or SECRET_KEY
WEBHOOK_SECRET_KEY_FALLBACKS = env_list("TOLLWAY_WEBHOOK_SECRET_KEY_FALLBACKS", "")
# Plain http targets: only for development (make run) and tests.
WEBHOOK_ALLOW_HTTP = env_bool("TOLLWAY_WEBHOOK_ALLOW_HTTP", DEBUG)
# Non-public networks webhooks may still reach (CIDRs); loopback in development only.
WEBHOOK_ALLOWED_NETWORKS = env_list("TOLLWAY_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128" if DEBUG else "")
for _network in WEBHOOK_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"TOLLWAY_WEBHOOK_ALLOWED_NETWORKS: {_network!r} is not a network.") from exc
WEBHOOK_TIMEOUT_SECONDS = env_int("TOLLWAY_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1, maximum=60)
# Seconds to wait after each failed attempt; the attempt count is one more than the list's length.
_retry = env_list("TOLLWAY_WEBHOOK_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000,36000")
try:
    WEBHOOK_RETRY_SCHEDULE = [int(item) for item in _retry]
except ValueError as exc:
    raise ImproperlyConfigured("TOLLWAY_WEBHOOK_RETRY_SCHEDULE must be whole seconds, comma-separated.") from exc
if any(delay < 0 for delay in WEBHOOK_RETRY_SCHEDULE):
    raise ImproperlyConfigured("TOLLWAY_WEBHOOK_RETRY_SCHEDULE must not contain negative delays.")
