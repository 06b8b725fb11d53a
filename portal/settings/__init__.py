"""Usher settings: every value comes from the environment, with safe defaults for the embedded run.

With nothing set, Usher runs on SQLite (WAL) under ``var/`` and a Celery broker on kombu's
filesystem transport under ``var/``. ``DATABASE_URL`` and ``REDIS_URL`` (or ``CELERY_BROKER_URL``)
switch the same code to PostgreSQL and Redis. ``DEBUG`` is off unless ``USHER_DEBUG=1``.
``USHER_PRODUCTION=1`` turns on production mode, which refuses to start without a strong
``SECRET_KEY``, with ``DEBUG`` on or with no ``ALLOWED_HOSTS``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

VAR_DIR = Path(env("USHER_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

PRODUCTION = env.bool("USHER_PRODUCTION", default=False)
# Django's debug pages (tracebacks, settings, URL patterns) only when asked for, also in development:
# by default every error is the portal's page or the API's JSON, as a user would meet it.
DEBUG = env.bool("USHER_DEBUG", default=False)
# The development key is generated per checkout and kept in var/, so no fixed secret ships.
_dev_key_file = VAR_DIR / "dev-secret-key"
if "SECRET_KEY" in env.ENVIRON:
    SECRET_KEY = env("SECRET_KEY")
elif PRODUCTION:
    raise ImproperlyConfigured("USHER_PRODUCTION=1 needs SECRET_KEY (50+ random characters).")
else:
    if not _dev_key_file.exists():
        import secrets

        _dev_key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = _dev_key_file.read_text().strip()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["*"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# A refused form post is the portal's 403 page (the API answers its own JSON 403).
CSRF_FAILURE_VIEW = "portal.views.csrf_failure"

if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("USHER_PRODUCTION=1 refuses to start with DEBUG on.")
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure"):
        raise ImproperlyConfigured("SECRET_KEY is too weak: use 50+ random characters.")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("USHER_PRODUCTION=1 needs ALLOWED_HOSTS.")

INSTALLED_APPS = [
    # unfold without its default app config (which would install a plain UnfoldAdminSite):
    # admin.site is the portal's own site (portal.sites.PortalAdminSite).
    "unfold.apps.BasicAppConfig",
    "unfold.contrib.filters",
    "portal.apps.PortalAdminConfig",
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
    "django_celery_beat",
    "django_celery_results",
    "django_prometheus",
    "axes",
    "csp",
    "portal",
    "recommender",
    "monitoring",
    "audits",
    "releases",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # After CommonMiddleware, so its answer comes first: /api/ paths redirect the other slash form.
    "portal.middleware.ApiSlashMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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

# --- database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'usher.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server, the worker and beat read while one of them writes; IMMEDIATE
    # transactions take the write lock up front so concurrent writers wait instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth ------------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "admin:index"
# Repeated failed logins lock the account for this user and client for a while (django-axes).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "portal/locked_out.html"
# The page above for the portal, the API's JSON 429 for POST /api/v1/auth/token.
AXES_LOCKOUT_CALLABLE = "portal.views.lockout_response"
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_VERBOSE = env.bool("AXES_VERBOSE", default=False)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("USHER_STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = not PRODUCTION
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = Path(env("USHER_MEDIA_ROOT", default=str(VAR_DIR / "media")))

# --- e-mail --------------------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="usher@localhost")

# --- celery --------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
_broker_default = REDIS_URL or "filesystem://"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=_broker_default)
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 3600,
        "socket_connect_timeout": 5,
        "socket_timeout": 10,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 5
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_BEAT_SCHEDULER = "portal.beat:UsherDatabaseScheduler"  # drops custom headers, skips unlisted tasks
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TIMEZONE = TIME_ZONE

# --- REST API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["portal.permissions.IsUsherUser"],
    # A JSON API: nested inputs cannot be expressed as form fields. A view that takes files or
    # text sets its own parser_classes.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.UsherPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "portal.api.pagination.StrictFilterBackend",
        "portal.api.pagination.StrictOrderingFilter",
        "portal.api.pagination.StrictSearchFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", default="60/min"),
        "user": env("API_THROTTLE_USER", default="6000/min"),
    },
    "DEFAULT_SCHEMA_CLASS": "portal.api.schema.UsherAutoSchema",
    "EXCEPTION_HANDLER": "portal.api.exceptions.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Usher API",
    "DESCRIPTION": "Operations portal for ML-enabled products: data, models, serving, monitoring, audits.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Only /recommend, health, metrics and login are public: the schema and its viewers need a login
    # (session or token), as the security audit's API-surface check expects.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Choice sets sharing a field name are named after their component by portal.api.schema's
    # hook; an explicit name here wins.
    "ENUM_NAME_OVERRIDES": {"ReviewStatusEnum": "portal.models.ReviewRequest.Status"},
    "POSTPROCESSING_HOOKS": ["portal.api.schema.postprocess_schema_enums"],
}

# The cache backs API throttling (portal.cache: it fails open when Redis is away). On Redis it shares REDIS_URL's database under its own key
# prefix, so it never collides with the broker's keys (and clearing it never drops queued tasks).
CACHE_URL = env("CACHE_URL", default=REDIS_URL)
if CACHE_URL:
    CACHES = {"default": {**env.cache_url_config(CACHE_URL), "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="usher")}}
    if CACHES["default"]["BACKEND"].endswith("RedisCache"):
        # With Redis away the cache fails open (a miss, a warning and a metric), never a 500; a
        # stopped Redis answers quickly instead of hanging a request.
        CACHES["default"]["BACKEND"] = "portal.cache.FailOpenRedisCache"
        CACHES["default"].setdefault("OPTIONS", {}).update({"socket_connect_timeout": 2, "socket_timeout": 2})
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Content-Security-Policy (django-csp; docs/security.md, "Pages") ---------------------------
# On every response. Measured with the portal's pages, the admin and /api/docs/ in Chromium
# (portal/tests/test_browser_xss.py); each directive is the narrowest that keeps them working.
from csp.constants import NONCE, NONE, SELF, UNSAFE_EVAL, UNSAFE_INLINE  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        # Everything comes from Usher itself: no CDN, no third party (the deployment is offline).
        "default-src": [SELF],
        # Scripts only from Usher's static files, never inline: the page scripts live in
        # */static/*.js and read their data from json_script elements. 'unsafe-eval' is there for
        # unfold's Alpine.js, which compiles its x-data/x-init/@click attribute expressions with
        # new Function() (without it the sidebar, theme switch and dropdowns stop working). The
        # nonce is for the few inline scripts a third-party template needs (Redoc's init).
        "script-src": [SELF, UNSAFE_EVAL, NONCE],
        # No inline event-handler attributes at all (onerror=, onclick=).
        "script-src-attr": [NONE],
        # unfold writes its theme colours in a <style> element and style= attributes; Alpine's
        # x-show, htmx's indicators, Swagger UI and Redoc set styles at run time. CSS cannot run
        # script in a current browser, so inline styles stay allowed; stylesheets only from Usher.
        "style-src": [SELF, UNSAFE_INLINE],
        # unfold's and Swagger UI's icons are inline SVG data: URIs.
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        # The pages' fetch()es (the monitoring API, run progress) go to Usher only.
        "connect-src": [SELF],
        # Redoc runs its search in a worker made from a blob: URL.
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        # No page may be framed (as X-Frame-Options: DENY says for older browsers).
        "frame-ancestors": [NONE],
    },
}

# --- production hardening (checked by `manage.py check --deploy`) ---------------------------
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$", r"^recommend/"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Usher's own knobs: one namespaced dict per app, read through one accessor ----------------
USHER = {
    "READYZ_TIMEOUT_SECONDS": env.float("READYZ_TIMEOUT_SECONDS", default=2.0),
    "REVIEW_DUE_DAYS": env.int("REVIEW_DUE_DAYS", default=3),
}
RECOMMENDER = {
    "ARTIFACT_ROOT": str(Path(env("USHER_ARTIFACT_ROOT", default=str(VAR_DIR / "artifacts")))),
    "EVENTS_MAX_LINES": env.int("EVENTS_MAX_LINES", default=10_000),
    "EVENTS_MAX_BYTES": env.int("EVENTS_MAX_BYTES", default=5 * 1024 * 1024),
    # Watch lines of one viewer and movie at most this many minutes apart belong to one session.
    "WATCH_SESSION_GAP_MINUTES": env.int("WATCH_SESSION_GAP_MINUTES", default=30),
    "INGEST_BATCH_SIZE": env.int("INGEST_BATCH_SIZE", default=5000),
    # De-duplication ledger rows are pruned this many days after the day they were written (0 = never).
    "INGEST_LEDGER_RETENTION_DAYS": env.int("INGEST_LEDGER_RETENTION_DAYS", default=30),
}
# The world simulator (recommender/simulator; docs/simulator.md): what `manage.py bootstrap` backfills
# on a fresh database (0 days = nothing), and the world's size and seed (the live simulator of
# `make run` uses the same world).
RECOMMENDER.update(
    {
        "BOOTSTRAP_SIMULATED_DAYS": env.float("USHER_BOOTSTRAP_SIMULATED_DAYS", default=7.0),
        "SIMULATOR_SEED": env.int("USHER_SIMULATOR_SEED", default=42),
        "SIMULATOR_VIEWERS": env.int("USHER_SIMULATOR_VIEWERS", default=500),
        "SIMULATOR_MOVIES": env.int("USHER_SIMULATOR_MOVIES", default=300),
        # The platform's metadata API (/user/<id>, /movie/<id>) for the admin's "fetch metadata again".
        "PLATFORM_METADATA_URL": env("PLATFORM_METADATA_URL", default=""),
    }
)
# Training and the model registry (recommender/training, recommender/registry; docs/training.md).
RECOMMENDER.update(
    {
        "REGISTERED_MODEL_NAME": env("REGISTERED_MODEL_NAME", default="movie-recommender"),
        # A run refuses a snapshot with fewer ratings, viewers or movies than these.
        "TRAINING_MIN_RATINGS": env.int("TRAINING_MIN_RATINGS", default=50),
        "TRAINING_MIN_VIEWERS": env.int("TRAINING_MIN_VIEWERS", default=3),
        "TRAINING_MIN_MOVIES": env.int("TRAINING_MIN_MOVIES", default=3),
        # Per-user lists precomputed for KNNBaseline and SlopeOne artifacts (memory: users x N x 8 bytes).
        "TOPN_PRECOMPUTED": env.int("TOPN_PRECOMPUTED", default=100),
        "EVAL_K": 20,
        "EVAL_MAX_USERS": env.int("EVAL_MAX_USERS", default=5000),
        "EVAL_LATENCY_SAMPLE": env.int("EVAL_LATENCY_SAMPLE", default=500),
        # A run in `running` whose heartbeat is older than this is failed by the repair task.
        "TRAINING_STUCK_MINUTES": env.int("TRAINING_STUCK_MINUTES", default=30),
        "TRAINING_MAX_ATTEMPTS": env.int("TRAINING_MAX_ATTEMPTS", default=3),
        # Implicit ratings from watch sessions (the rule is in docs/training.md).
        "IMPLICIT_MIN_MINUTES": env.int("IMPLICIT_MIN_MINUTES", default=5),
        "IMPLICIT_DEFAULT_RUNTIME": env.int("IMPLICIT_DEFAULT_RUNTIME", default=100),
        # Scheduled retraining: trains the production configuration (or this algorithm when nothing is
        # in production) on the last RETRAIN_WINDOW_DAYS (0 = all data), and opens a promotion review
        # when the candidate beats production on PROMOTION_METRIC by PROMOTION_MARGIN (absolute) and the
        # whole PROMOTION_CONFIDENCE interval of the gain (paired bootstrap over viewers,
        # PROMOTION_BOOTSTRAP_RESAMPLES draws seeded by PROMOTION_SEED) is above 0, both scored on the
        # release gate's evaluation set (at most PROMOTION_MAX_VIEWERS viewers; with fewer than
        # PROMOTION_MIN_VIEWERS production holds). docs/training.md, "Scheduled retraining".
        "RETRAIN_ALGORITHM": env("RETRAIN_ALGORITHM", default="svd"),
        "RETRAIN_WINDOW_DAYS": env.int("RETRAIN_WINDOW_DAYS", default=0),
        "PROMOTION_METRIC": env("PROMOTION_METRIC", default="ndcg_at_20"),
        "PROMOTION_MARGIN": env.float("PROMOTION_MARGIN", default=0.005),
        "PROMOTION_CONFIDENCE": env.float("PROMOTION_CONFIDENCE", default=0.95),
        "PROMOTION_BOOTSTRAP_RESAMPLES": env.int("PROMOTION_BOOTSTRAP_RESAMPLES", default=1000),
        "PROMOTION_SEED": env.int("PROMOTION_SEED", default=0),
        "PROMOTION_MAX_VIEWERS": env.int("PROMOTION_MAX_VIEWERS", default=2000),
        "PROMOTION_MIN_VIEWERS": env.int("PROMOTION_MIN_VIEWERS", default=30),
    }
)
MONITORING = {
    # Availability as the platform sees it: status 200 answered within this many ms.
    "AVAILABILITY_LATENCY_MS": env.int("MONITORING_AVAILABILITY_LATENCY_MS", default=600),
    # Telemetry rollups recompute this many recent minutes on each run (late batches, late lines).
    "ROLLUP_RECOMPUTE_MINUTES": env.int("MONITORING_ROLLUP_RECOMPUTE_MINUTES", default=5),
    # An hourly pass recomputes this many hours (prediction-log spills replayed late, late platform lines).
    "ROLLUP_LATE_HOURS": env.int("MONITORING_ROLLUP_LATE_HOURS", default=1),
    # Online quality: a served list succeeds when a watch of one of its movies starts within this.
    "ONLINE_QUALITY_WINDOW_MINUTES": env.int("MONITORING_ONLINE_QUALITY_WINDOW_MINUTES", default=30),
    # Above this many served lists, online quality samples viewers (all lists of one in n viewers).
    "ONLINE_QUALITY_MAX_LISTS": env.int("MONITORING_ONLINE_QUALITY_MAX_LISTS", default=200_000),
    # Data quality and drift reports made by beat look back this far.
    "DATA_QUALITY_WINDOW_MINUTES": env.int("MONITORING_DATA_QUALITY_WINDOW_MINUTES", default=60),
    "DRIFT_WINDOW_HOURS": env.int("MONITORING_DRIFT_WINDOW_HOURS", default=24),
    # Served lists sampled for the recommended-item distribution (JSON lists are parsed in Python).
    "DRIFT_MAX_LISTS": env.int("MONITORING_DRIFT_MAX_LISTS", default=20_000),
    # Read the reference and current windows of a drift report in two threads.
    "DRIFT_PARALLEL": env.bool("MONITORING_DRIFT_PARALLEL", default=True),
    # An event is late when it arrives this long after a later event of the same type.
    "LATE_EVENT_SECONDS": env.int("MONITORING_LATE_EVENT_SECONDS", default=300),
    # Feedback-loop snapshots: bucket length, points in the trend test, the test's alpha.
    "FEEDBACK_BUCKET_HOURS": env.int("MONITORING_FEEDBACK_BUCKET_HOURS", default=24),
    "FEEDBACK_TREND_POINTS": env.int("MONITORING_FEEDBACK_TREND_POINTS", default=14),
    "TREND_ALPHA": env.float("MONITORING_TREND_ALPHA", default=0.05),
    # Notifications: webhook timeout, attempts and the first retry delay (doubles each time).
    "WEBHOOK_TIMEOUT_SECONDS": env.float("MONITORING_WEBHOOK_TIMEOUT_SECONDS", default=5.0),
    # HMAC key for webhooks that have none of their own (e.g. release notifications to a URL).
    "WEBHOOK_SECRET": env("MONITORING_WEBHOOK_SECRET", default=""),
    # Webhooks may not reach loopback, link-local, private, multicast, reserved or cloud-metadata
    # addresses, except these host names, addresses or networks (CIDR): e.g. "hooks.internal,10.8.0.0/16".
    "WEBHOOK_ALLOWED_HOSTS": env.list("NOTIFICATIONS_ALLOWED_HOSTS", default=[]),
    "NOTIFY_MAX_ATTEMPTS": env.int("MONITORING_NOTIFY_MAX_ATTEMPTS", default=5),
    "NOTIFY_RETRY_SECONDS": env.int("MONITORING_NOTIFY_RETRY_SECONDS", default=30),
    # /metrics reads the rollups at most this often per process.
    "METRICS_CACHE_SECONDS": env.float("MONITORING_METRICS_CACHE_SECONDS", default=15.0),
    # Dashboard auto-refresh interval in the browser.
    "DASHBOARD_REFRESH_SECONDS": env.int("MONITORING_DASHBOARD_REFRESH_SECONDS", default=30),
}
AUDITS: dict = {}
# Serving (docs/serving.md): read through recommender.serving.conf.serving_settings().
RECOMMENDER["SERVING"] = {
    "DEPLOYMENT": env("SERVING_DEPLOYMENT", default="default"),
    "STATE_DIR": env("SERVING_STATE_DIR", default=str(VAR_DIR / "serving")),
    "K": env.int("SERVING_K", default=20),
    "MAX_K": env.int("SERVING_MAX_K", default=100),
    "POLL_SECONDS": env.float("SERVING_POLL_SECONDS", default=1.0),
    "SNAPSHOT_REFRESH_SECONDS": env.float("SERVING_SNAPSHOT_REFRESH_SECONDS", default=600.0),
    "SEEN_DELTA_SECONDS": env.float("SERVING_SEEN_DELTA_SECONDS", default=2.0),
    "FALLBACK_SIZE": env.int("SERVING_FALLBACK_SIZE", default=200),
    "FALLBACK_WINDOW_DAYS": env.float("SERVING_FALLBACK_WINDOW_DAYS", default=14.0),
    "FALLBACK_HALF_LIFE_DAYS": env.float("SERVING_FALLBACK_HALF_LIFE_DAYS", default=3.0),
    "LOG_FLUSH_SECONDS": env.float("PREDICTION_LOG_FLUSH_SECONDS", default=1.0),
    "LOG_BATCH": env.int("PREDICTION_LOG_BATCH", default=2000),
    "LOG_MAX_BUFFER": env.int("PREDICTION_LOG_MAX_BUFFER", default=50_000),
    "LOG_REPLAY_SECONDS": env.float("PREDICTION_LOG_REPLAY_SECONDS", default=15.0),
    "RATE_LIMIT_BACKEND": env("SERVING_RATE_LIMIT_BACKEND", default="local"),
    "RECOMMEND_RATE": env.float("SERVING_RECOMMEND_RATE", default=5000.0),
    "RECOMMEND_BURST": env.int("SERVING_RECOMMEND_BURST", default=10_000),
    "API_RATE": env.float("SERVING_API_RATE", default=20.0),
    "API_BURST": env.int("SERVING_API_BURST", default=60),
    "TRUSTED_PROXY_COUNT": env.int("SERVING_TRUSTED_PROXY_COUNT", default=0),
    "SHADOW_QUEUE": env.int("SERVING_SHADOW_QUEUE", default=1000),
    "AUTOSTART": env.bool("SERVING_AUTOSTART", default=True),
}

# Releases and experiments (releases/, docs/releases.md); every other knob of theirs has a
# default in releases/conf.py and can be set here too.
RECOMMENDER["RELEASES"] = {
    # Per-metric tolerance of the release gate against production, as JSON:
    # {"ndcg_at_20": {"better": "higher", "tolerance": 0.01, "required": false}, ...}
    **({"GATE_METRICS": env.json("RELEASE_GATE_METRICS")} if "RELEASE_GATE_METRICS" in env.ENVIRON else {}),
    "CANARY_STEPS": env.list("CANARY_STEPS", cast=int, default=[5, 25, 50, 100]),
    "CANARY_INTERVAL_SECONDS": env.int("CANARY_INTERVAL_SECONDS", default=3600),
    "CANARY_MIN_TRIALS": env.int("CANARY_MIN_TRIALS", default=200),
    "CANARY_ALPHA": env.float("CANARY_ALPHA", default=0.05),
    # The smallest drop in the success rate a canary must be able to detect (absolute), with this power:
    # the evidence each step needs follows from them (docs/releases.md).
    "CANARY_MIN_DETECTABLE_DEGRADATION": env.float("CANARY_MIN_DETECTABLE_DEGRADATION", default=0.02),
    "CANARY_POWER": env.float("CANARY_POWER", default=0.8),
    # A list's success window for canaries in minutes (empty: monitoring's ONLINE_QUALITY_WINDOW_MINUTES).
    "CANARY_QUALITY_WINDOW_MINUTES": env.int("CANARY_QUALITY_WINDOW_MINUTES", default=None),
    "EXPERIMENT_ALPHA": env.float("EXPERIMENT_ALPHA", default=0.05),
    "NOTIFY_EMAILS": env.list("RELEASE_NOTIFY_EMAILS", default=[]),
    "NOTIFY_WEBHOOKS": env.list("RELEASE_NOTIFY_WEBHOOKS", default=[]),
}

DATA_UPLOAD_MAX_MEMORY_SIZE = RECOMMENDER["EVENTS_MAX_BYTES"] + 1024

UNFOLD = {
    "SITE_TITLE": "Usher",
    "SITE_HEADER": "Usher",
    "SITE_SUBHEADER": "ML operations portal",
    "SITE_SYMBOL": "movie",
    "SHOW_HISTORY": True,
    "DASHBOARD_CALLBACK": "portal.views.dashboard_callback",
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": True,
        "navigation": "portal.navigation.sidebar_navigation",
    },
}
