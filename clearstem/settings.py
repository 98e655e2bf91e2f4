"""ClearStem settings: everything comes from environment variables with safe defaults.

Embedded default (no variables set): SQLite, local media, an in-process Dramatiq worker on a
stub broker, the weights-free separator and a dev signing key, all under CLEARSTEM_DATA_DIR.
Production: DATABASE_URL (PostgreSQL), CLEARSTEM_BROKER_URL (Redis), separate worker
processes, S3 storage when CLEARSTEM_S3_BUCKET is set, and the secure-cookie/HSTS settings.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DATA_DIR = Path(env.str("CLEARSTEM_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """Production passes DJANGO_SECRET_KEY; the embedded default keeps one per data dir."""
    if key := env.str("DJANGO_SECRET_KEY", default=""):
        return key
    path = DATA_DIR / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Behind TLS in production; the embedded default serves plain HTTP on loopback.
SECURE = env.bool("CLEARSTEM_SECURE", default=False)
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_SSL_REDIRECT = SECURE and env.bool("CLEARSTEM_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # probes speak plain HTTP inside the network
SECURE_HSTS_SECONDS = 31536000 if SECURE else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SECURE else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_dramatiq",
    "clearstem.accounts",
    "clearstem.uploads",
    "clearstem.jobs",
    "fingerprint",
    "licensing",
    "separation",
    "provenance",
    "clearstem.ops",
    "clearstem.web",
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

ROOT_URLCONF = "clearstem.urls"
WSGI_APPLICATION = "clearstem.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "web:signin"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:signin"
SESSION_COOKIE_AGE = env.int("CLEARSTEM_SESSION_SECONDS", default=12 * 3600)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "clearstem.web.context.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'clearstem.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The in-process worker writes from other threads: wait for locks instead of failing, and
    # take the write lock at BEGIN so two writers never deadlock on a lock upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))

# Files: a local folder by default, an S3-compatible bucket when configured. Web and GPU workers
# run on different machines in production, so every file goes through this storage.
MEDIA_ROOT = DATA_DIR / "media"
S3_BUCKET = env.str("CLEARSTEM_S3_BUCKET", default="")
if S3_BUCKET:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env.str("CLEARSTEM_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("CLEARSTEM_S3_REGION", default="") or None,
            "access_key": env.str("CLEARSTEM_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("CLEARSTEM_S3_SECRET_ACCESS_KEY", default="") or None,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_URL = "static/"
# WhiteNoise serves static files from the web process itself (collected into STATIC_ROOT in the
# image; straight from the apps when nothing was collected, as in the embedded default).
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = env.str("CLEARSTEM_STATIC_ROOT", default=str(DATA_DIR / "static"))
if not Path(STATIC_ROOT).exists():
    Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # WhiteNoise expects it, collected or not

# Uploads always spool to disk (never whole in memory); the hashing handler streams SHA-256.
FILE_UPLOAD_HANDLERS = ["clearstem.uploads.handlers.HashingUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
FILE_UPLOAD_TEMP_DIR = env.str("CLEARSTEM_UPLOAD_TEMP_DIR", default="") or None
CLEARSTEM_MAX_UPLOAD_BYTES = env.int("CLEARSTEM_MAX_UPLOAD_BYTES", default=1024**3)
CLEARSTEM_MAX_UPLOAD_SECONDS = env.float("CLEARSTEM_MAX_UPLOAD_SECONDS", default=2 * 3600)

# Identification (fingerprint.matcher.MatchParams): a match is a run of aligned items whose
# smoothed bit error rate stays <= MAX_BER for MIN_SECONDS, in which at least MIN_NEAR_FRACTION
# of the items differ in <= NEAR_BITS bits. Every identification stores these on the upload.
CLEARSTEM_MATCH_MAX_BER = env.float("CLEARSTEM_MATCH_MAX_BER", default=0.30)
CLEARSTEM_MATCH_MIN_SECONDS = env.float("CLEARSTEM_MATCH_MIN_SECONDS", default=5.0)
CLEARSTEM_MATCH_NEAR_BITS = env.int("CLEARSTEM_MATCH_NEAR_BITS", default=4)
CLEARSTEM_MATCH_MIN_NEAR_FRACTION = env.float("CLEARSTEM_MATCH_MIN_NEAR_FRACTION", default=0.15)
# Fingerprint uploads at 12 extra speeds (±3 % in 0.5 % steps) so sped-up copies are found.
CLEARSTEM_MATCH_SPEED_VARIANTS = env.bool("CLEARSTEM_MATCH_SPEED_VARIANTS", default=True)
# The catalog's persistent inverted index (one per machine; rebuilt from the database if lost).
CLEARSTEM_INDEX_DIR = env.str("CLEARSTEM_INDEX_DIR", default=str(DATA_DIR / "fingerprint-index"))

# Separation
CLEARSTEM_MODEL_DIR = env.str("CLEARSTEM_MODEL_DIR", default=str(DATA_DIR / "models"))
CLEARSTEM_DEFAULT_MODEL = env.str("CLEARSTEM_DEFAULT_MODEL", default="dsp")
CLEARSTEM_SEPARATION_DEVICE = env.str("CLEARSTEM_SEPARATION_DEVICE", default="auto")

# Jobs: retries, leases and the reconciler that re-sends work a broker lost.
CLEARSTEM_JOB_MAX_ATTEMPTS = env.int("CLEARSTEM_JOB_MAX_ATTEMPTS", default=3)
CLEARSTEM_JOB_RESEND_AFTER_S = env.int("CLEARSTEM_JOB_RESEND_AFTER_S", default=120)
# A separating worker beats every HEARTBEAT_S seconds (from its own thread, so model loading
# and long chunks beat too); a job that missed HEARTBEAT_TIMEOUT_S is re-queued.
CLEARSTEM_JOB_HEARTBEAT_S = env.float("CLEARSTEM_JOB_HEARTBEAT_S", default=10.0)
CLEARSTEM_JOB_HEARTBEAT_TIMEOUT_S = env.int("CLEARSTEM_JOB_HEARTBEAT_TIMEOUT_S", default=60)

# Provenance signing: a PEM file or variable in production; the embedded default creates a
# dev key (mode 0600) on first use and says so.
CLEARSTEM_SIGNING_KEY_FILE = env.str(
    "CLEARSTEM_SIGNING_KEY_FILE", default=str(DATA_DIR / "keys" / "signing-ed25519.pem")
)
CLEARSTEM_SIGNING_KEY_PEM = env.str("CLEARSTEM_SIGNING_KEY_PEM", default="")
CLEARSTEM_AUTO_CREATE_DEV_KEY = env.bool("CLEARSTEM_AUTO_CREATE_DEV_KEY", default=True)
CLEARSTEM_VERIFY_KEY_FILES = env.list("CLEARSTEM_VERIFY_KEY_FILES", default=[])
# The log's name in its checkpoints (C2SP tlog-checkpoint origin).
CLEARSTEM_LEDGER_ORIGIN = env.str("CLEARSTEM_LEDGER_ORIGIN", default="clearstem.local/provenance-ledger")
# How stale the public tree head may be while the log grows (bundles always get a covering one).
CLEARSTEM_TREE_HEAD_MAX_AGE_S = env.float("CLEARSTEM_TREE_HEAD_MAX_AGE_S", default=10.0)

# Dramatiq: Redis in production; a stub broker with an in-process worker otherwise.
CLEARSTEM_BROKER_URL = env.str("CLEARSTEM_BROKER_URL", default="")
_dramatiq_middleware = [
    "dramatiq.middleware.AgeLimit",
    "dramatiq.middleware.TimeLimit",
    "dramatiq.middleware.Callbacks",
    "dramatiq.middleware.Retries",
    "dramatiq.middleware.CurrentMessage",
    "django_dramatiq.middleware.DbConnectionsMiddleware",
]
if CLEARSTEM_BROKER_URL:
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.redis.RedisBroker",
        "OPTIONS": {"url": CLEARSTEM_BROKER_URL},
        "MIDDLEWARE": _dramatiq_middleware,
    }
else:
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.stub.StubBroker",
        "OPTIONS": {},
        "MIDDLEWARE": _dramatiq_middleware,
    }
CLEARSTEM_EMBEDDED_WORKER = not CLEARSTEM_BROKER_URL
DRAMATIQ_AUTODISCOVER_MODULES = ("actors",)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "clearstem.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ClearStem API",
    "DESCRIPTION": "Rights-aware stem separation with signed provenance.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {
        "PurposeEnum": "licensing.engine.PURPOSES",
        "StemEnum": "licensing.engine.STEM_CHOICES",
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("CLEARSTEM_LOG_LEVEL", default="WARNING")},
    "loggers": {"clearstem": {"level": env.str("CLEARSTEM_LOG_LEVEL", default="INFO")}},
}
