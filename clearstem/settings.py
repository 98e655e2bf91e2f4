"""ClearStem settings: everything comes from environment variables with safe defaults.

Embedded default (no variables set): SQLite, local media, an in-process Dramatiq worker on a
stub broker, the weights-free separator and a dev signing key, all under CLEARSTEM_DATA_DIR.
Production: DATABASE_URL (PostgreSQL), CLEARSTEM_BROKER_URL (Redis), separate worker
processes, S3 storage when CLEARSTEM_S3_BUCKET is set, and the secure-cookie/HSTS settings.
"""
from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

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
if "localhost" not in ALLOWED_HOSTS:  # health probes from inside the container (compose)
    ALLOWED_HOSTS.append("localhost")
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
    "axes",
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
    "clearstem.notifications",
    "clearstem.ops",
    "clearstem.web",
]

MIDDLEWARE = [
    # first: JSON errors and request ids for everything under /api/, whoever fails
    "clearstem.api.middleware.ApiMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # last, as django-axes asks: turns a sign-in lockout into the lockout page
    "axes.middleware.AxesMiddleware",
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
    # A kept connection that PostgreSQL has ended (a restart, a failover) is tested with a
    # `SELECT 1` at its first use in each request or message and replaced, instead of failing
    # that request with a 503 (tests/test_faults.py measures both).
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", env.bool("DATABASE_CONN_HEALTH_CHECKS", default=True))
# PostgreSQL runs with two roles (clearstem.ops.dbroles): DATABASE_URL is the runtime role (web,
# workers, reconciler: no DDL, no rewriting of the ledger or of license terms); the owner's
# DATABASE_OWNER_URL is set only where migrations run — `manage.py migrate` then connects as
# the owner and grants the runtime role its privileges. SQLite (the embedded default) has no roles.
DATABASE_OWNER_URL = env.str("DATABASE_OWNER_URL", default="")

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
# How much of an open catalog recording producers may hear before asking for a license.
CLEARSTEM_EXCERPT_SECONDS = env.float("CLEARSTEM_EXCERPT_SECONDS", default=8.0)

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
# Spectral-peak landmarks beside Chromaprint, for catalog songs inside mixtures (issue 17;
# fingerprint.landmarks / fingerprint.fusion). A landmark match needs score >= MIN_SCORE;
# candidates from REVIEW_SCORE up, and near-miss Chromaprint runs, send a job to review.
CLEARSTEM_LANDMARKS = env.bool("CLEARSTEM_LANDMARKS", default=True)
CLEARSTEM_LANDMARK_INDEX_DIR = env.str("CLEARSTEM_LANDMARK_INDEX_DIR", default=str(DATA_DIR / "landmark-index"))
# Every stem the platform makes is landmark-printed into its own index, so an auditor can find
# it from a re-encoded, cut or overdubbed copy (clearstem.jobs.stem_prints).
CLEARSTEM_STEM_PRINTS = env.bool("CLEARSTEM_STEM_PRINTS", default=True)
CLEARSTEM_STEM_INDEX_DIR = env.str("CLEARSTEM_STEM_INDEX_DIR", default=str(DATA_DIR / "stem-index"))
# Finding a stem by sound also looks the dropped file up through its separated views (the `dsp`
# engine's parts: a stem under louder music), for files up to this many seconds (0: never):
# the lookup is synchronous and views cost ~0.12 s per second of audio on 2 cores.
CLEARSTEM_FIND_VIEWS_MAX_SECONDS = env.float("CLEARSTEM_FIND_VIEWS_MAX_SECONDS", default=180.0)
CLEARSTEM_LANDMARK_MIN_SCORE = env.float("CLEARSTEM_LANDMARK_MIN_SCORE", default=0.836)
#: the bar for a landmark match over a segment of 10 s or more that holds >= 25 % of the
#: recording's tonal peaks (fingerprint.landmarks.LandmarkParams)
CLEARSTEM_LANDMARK_LONG_MIN_SCORE = env.float("CLEARSTEM_LANDMARK_LONG_MIN_SCORE", default=0.643)
CLEARSTEM_LANDMARK_REVIEW_SCORE = env.float("CLEARSTEM_LANDMARK_REVIEW_SCORE", default=0.592)
#: hits a landmark lookup reads per query hash, the rarest hash values first (0: no bound): the
#: trade between a query's cost and finding songs buried under others in a large catalog
#: (fingerprint.landmarks.HITS_PER_HASH; README, "Identification in mixtures", at scale)
CLEARSTEM_LANDMARK_HITS_PER_HASH = env.float("CLEARSTEM_LANDMARK_HITS_PER_HASH", default=8.0)
# Chromaprint matches scoring below CONFIRM_BELOW must be corroborated by the landmarks (the
# recording's peaks at Chromaprint's alignment and speed score >= CORROBORATE_SCORE), or they
# become suspects; > 1 = every match, 0 = none (fingerprint.fusion).
CLEARSTEM_MATCH_CONFIRM_BELOW = env.float("CLEARSTEM_MATCH_CONFIRM_BELOW", default=1.01)
CLEARSTEM_MATCH_CORROBORATE_SCORE = env.float("CLEARSTEM_MATCH_CORROBORATE_SCORE", default=0.30)
# ... and below REJECT_BELOW the peaks contradict the match: rejected, not suspected.
CLEARSTEM_MATCH_REJECT_BELOW = env.float("CLEARSTEM_MATCH_REJECT_BELOW", default=0.15)

# Separation
# A job attempt's stems are written here before they go to storage. A worker killed mid-job
# (out of memory, a deploy) leaves its folder behind, up to GBs for an hour of audio: the next
# job on the machine removes folders untouched for CLEARSTEM_SCRATCH_MAX_AGE_S.
CLEARSTEM_SCRATCH_DIR = env.str("CLEARSTEM_SCRATCH_DIR", default=str(DATA_DIR / "scratch"))
CLEARSTEM_SCRATCH_MAX_AGE_S = env.float("CLEARSTEM_SCRATCH_MAX_AGE_S", default=6 * 3600.0)
CLEARSTEM_MODEL_DIR = env.str("CLEARSTEM_MODEL_DIR", default=str(DATA_DIR / "models"))
# empty: the shipped separator when its weights verify, else dsp (separation.registry.default_model)
CLEARSTEM_DEFAULT_MODEL = env.str("CLEARSTEM_DEFAULT_MODEL", default="")
CLEARSTEM_SEPARATION_DEVICE = env.str("CLEARSTEM_SEPARATION_DEVICE", default="auto")
# A worker process keeps one separation pipeline per model: decoder processes (0: one per spare
# core, at most 12, on a GPU; 1 on CPU) and chunks per forward pass (0: the engine's default).
# Jobs running at once on the worker's threads share its batches.
CLEARSTEM_SEPARATION_DECODERS = env.int("CLEARSTEM_SEPARATION_DECODERS", default=0)
CLEARSTEM_SEPARATION_BATCH = env.int("CLEARSTEM_SEPARATION_BATCH", default=0)
# torch's CPU threads for the model (0: torch's default, every core or OMP_NUM_THREADS). Set it
# below the free cores where the worker shares them (the embedded default's web and identification
# work, a second worker): OpenMP threads waiting on a busy core slow a band-split model 2-3x.
CLEARSTEM_SEPARATION_THREADS = env.int("CLEARSTEM_SEPARATION_THREADS", default=0)
if CLEARSTEM_SEPARATION_THREADS < 0:
    raise ImproperlyConfigured(
        f"CLEARSTEM_SEPARATION_THREADS must be 0 (torch's default) or more, not {CLEARSTEM_SEPARATION_THREADS}")
# Passes averaged per chunk by band-split models (1, 2 or 4; `separation.bandsplit.PassAverage`):
# 2 or 4 trade a half or three quarters of the speed for cleaner stems; other models run one.
CLEARSTEM_SEPARATION_PASSES = env.int("CLEARSTEM_SEPARATION_PASSES", default=1)
if CLEARSTEM_SEPARATION_PASSES not in (1, 2, 4):  # separation.registry.PASS_COUNTS (no torch here)
    raise ImproperlyConfigured(f"CLEARSTEM_SEPARATION_PASSES must be 1, 2 or 4, not {CLEARSTEM_SEPARATION_PASSES}")

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
# C2PA content credentials in every delivered stem, signed with the same key. Production: the
# operator's chain for it (leaf first; see the README); the embedded default makes a dev CA and
# leaf beside the dev key. Trust anchors: what our own checks (audit page, verifier) trust.
CLEARSTEM_C2PA = env.bool("CLEARSTEM_C2PA", default=True)
CLEARSTEM_C2PA_CERT_CHAIN_FILE = env.str(
    "CLEARSTEM_C2PA_CERT_CHAIN_FILE", default=str(DATA_DIR / "keys" / "c2pa-signing-chain.pem")
)
CLEARSTEM_C2PA_DEV_CA = CLEARSTEM_AUTO_CREATE_DEV_KEY and not env.str("CLEARSTEM_C2PA_CERT_CHAIN_FILE", default="")
CLEARSTEM_C2PA_TRUST_ANCHORS_FILE = env.str("CLEARSTEM_C2PA_TRUST_ANCHORS_FILE", default="")
# The log's name in its checkpoints (C2SP tlog-checkpoint origin).
CLEARSTEM_LEDGER_ORIGIN = env.str("CLEARSTEM_LEDGER_ORIGIN", default="clearstem.local/provenance-ledger")
# How stale the public tree head may be while the log grows (bundles always get a covering one).
CLEARSTEM_TREE_HEAD_MAX_AGE_S = env.float("CLEARSTEM_TREE_HEAD_MAX_AGE_S", default=10.0)
# Witnessed tree heads: every new signed checkpoint is also written, never overwritten, under
# this prefix of the default storage (media folder or S3 bucket), and POSTed to each witness
# URL when any are listed (off by default; failures are logged and retried by a worker).
CLEARSTEM_CHECKPOINT_PREFIX = env.str("CLEARSTEM_CHECKPOINT_PREFIX", default="checkpoints")
CLEARSTEM_WITNESS_URLS = env.list("CLEARSTEM_WITNESS_URLS", default=[])

# E-mail (invitations, password resets, notifications). The embedded default prints messages
# to the console; production sets EMAIL_URL, e.g. smtp+tls://user:pass@smtp.example.com:587.
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
for _k, _v in _email.items():
    if _k != "EMAIL_BACKEND" and _v not in (None, ""):
        globals()[_k] = _v
DEFAULT_FROM_EMAIL = env.str("CLEARSTEM_FROM_EMAIL", default="ClearStem <no-reply@clearstem.local>")
# Absolute links in e-mails and webhooks (the web server does not know its public name).
CLEARSTEM_PUBLIC_URL = env.str("CLEARSTEM_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")
# How long an invitation link works (password-reset links: PASSWORD_RESET_TIMEOUT, in seconds).
CLEARSTEM_INVITATION_DAYS = env.int("CLEARSTEM_INVITATION_DAYS", default=7)
PASSWORD_RESET_TIMEOUT = env.int("CLEARSTEM_PASSWORD_RESET_S", default=24 * 3600)
# At most one reset e-mail per address this often (0: no limit; the form answers the same either way).
CLEARSTEM_PASSWORD_RESET_EVERY_S = env.int("CLEARSTEM_PASSWORD_RESET_EVERY_S", default=60)

# Webhooks (clearstem.notifications): each POST waits at most TIMEOUT_S; a delivery the receiver
# does not answer with a 2xx is tried up to MAX_ATTEMPTS times, BACKOFF_S after the first try,
# doubling each time up to MAX_BACKOFF_S (30 s, 1, 2, 4, 8 min by default).
CLEARSTEM_WEBHOOK_TIMEOUT_S = env.float("CLEARSTEM_WEBHOOK_TIMEOUT_S", default=5.0)
CLEARSTEM_WEBHOOK_MAX_ATTEMPTS = env.int("CLEARSTEM_WEBHOOK_MAX_ATTEMPTS", default=6)
CLEARSTEM_WEBHOOK_BACKOFF_S = env.float("CLEARSTEM_WEBHOOK_BACKOFF_S", default=30.0)
CLEARSTEM_WEBHOOK_MAX_BACKOFF_S = env.float("CLEARSTEM_WEBHOOK_MAX_BACKOFF_S", default=3600.0)
# Whether webhooks may target loopback and private addresses (internal services): off unless set
# (a receiver on the same machine or network needs it). Checked when added and, after DNS, when
# posting; link-local (cloud metadata) and unspecified addresses are refused even when on.
CLEARSTEM_WEBHOOK_ALLOW_PRIVATE = env.bool("CLEARSTEM_WEBHOOK_ALLOW_PRIVATE", default=False)

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
    # drf-spectacular's, plus the error responses of each operation (clearstem.api.schema)
    "DEFAULT_SCHEMA_CLASS": "clearstem.api.schema.ApiSchema",
    "EXCEPTION_HANDLER": "clearstem.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "clearstem.api.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    # JSON only: no HTML (browsable API) ever comes out under /api/
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's parsers, refusing control characters in every text value (clearstem.api.inputs)
    "DEFAULT_PARSER_CLASSES": [
        "clearstem.api.parsers.JSONParser",
        "clearstem.api.parsers.FormParser",
        "clearstem.api.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["clearstem.api.throttling.WriteRateThrottle"],
    "UNAUTHENTICATED_USER": None,
}
# Limits of the API (README "Limits"): the largest page a list returns (larger `limit`s clamp),
# and write rates per user and scope ("N/s|min|hour|day"; empty = unlimited), counted in the
# cache below so every web process shares them.
CLEARSTEM_API_MAX_PAGE_SIZE = env.int("CLEARSTEM_API_MAX_PAGE_SIZE", default=200)
CLEARSTEM_THROTTLE_RATES = {
    "uploads": env.str("CLEARSTEM_THROTTLE_UPLOADS", default="60/min"),
    "jobs": env.str("CLEARSTEM_THROTTLE_JOBS", default="120/min"),
    "license-requests": env.str("CLEARSTEM_THROTTLE_LICENSE_REQUESTS", default="60/min"),
    # invitations sent per admin, and accept attempts per client address (no sign-in there)
    "invitations": env.str("CLEARSTEM_THROTTLE_INVITATIONS", default="60/hour"),
    "invitations-accept": env.str("CLEARSTEM_THROTTLE_INVITATION_ACCEPTS", default="20/min"),
}
# The cache (throttle counts): Redis when CLEARSTEM_CACHE_URL or the broker is set, else files
# under the data dir, which every process of the embedded default shares.
CLEARSTEM_CACHE_URL = env.str("CLEARSTEM_CACHE_URL", default="") or CLEARSTEM_BROKER_URL
if CLEARSTEM_CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": CLEARSTEM_CACHE_URL, "KEY_PREFIX": "clearstem"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(DATA_DIR / "cache")}}

# Sign-in throttling (django-axes, state in the database): after SIGNIN_FAILURE_LIMIT wrong
# passwords for one account within SIGNIN_LOCKOUT_S seconds, or SIGNIN_IP_FAILURE_LIMIT from one
# address over any accounts, sign-in is refused (the right password too) until those failures
# are SIGNIN_LOCKOUT_S old; attempts refused meanwhile are not counted, so a lockout ends at
# most SIGNIN_LOCKOUT_S after it began. Behind a reverse proxy, CLEARSTEM_TRUSTED_PROXY_COUNT says how many proxies
# append to X-Forwarded-For (0: the client is REMOTE_ADDR, nothing a client sends is trusted).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "clearstem.accounts.signin.SignInLockoutHandler"
AXES_FAILURE_LIMIT = env.int("CLEARSTEM_SIGNIN_FAILURE_LIMIT", default=5)
CLEARSTEM_SIGNIN_IP_FAILURE_LIMIT = env.int("CLEARSTEM_SIGNIN_IP_FAILURE_LIMIT", default=50)
AXES_COOLOFF_TIME = timedelta(seconds=env.int("CLEARSTEM_SIGNIN_LOCKOUT_S", default=15 * 60))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = False  # a success must not wipe an address's failures on other accounts
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # hammering cannot keep an account locked
AXES_LOCKOUT_CALLABLE = "clearstem.web.views.common.signin_locked_out"
if _proxies := env.int("CLEARSTEM_TRUSTED_PROXY_COUNT", default=0):
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    AXES_IPWARE_PROXY_COUNT = _proxies

SPECTACULAR_SETTINGS = {
    "TITLE": "ClearStem API",
    "DESCRIPTION": "Rights-aware stem separation with signed provenance.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # request and response components apart (a grant's status: draft/active in, any out; files
    # are binary in, absent out)
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "PurposeEnum": "licensing.engine.PURPOSES",
        "StemEnum": "licensing.engine.STEM_CHOICES",
        # a grant's status: any in responses, draft or active when creating one
        "LicenseGrantStatusEnum": "licensing.models.LicenseGrant.Status",
        "LicenseGrantInitialStatusEnum": ["draft", "active"],
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
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s%(request_id)s: %(message)s"}},
    # request_id: " [id]" for lines written while an API request runs (its X-Request-ID)
    "filters": {"request_id": {"()": "clearstem.api.middleware.RequestIdLogFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env.str("CLEARSTEM_LOG_LEVEL", default="WARNING")},
    "loggers": {"clearstem": {"level": env.str("CLEARSTEM_LOG_LEVEL", default="INFO")}},
}
