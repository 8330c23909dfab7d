"""Baton settings, read from the environment with django-environ.

Integrations (email, Slack) stay off unless their variable is set; no secret
lives in the repository. Defaults are the safe ones: DEBUG is off unless
asked for, and a production run must pass ``manage.py check --deploy``.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

import environ
from django.core.management.utils import get_random_secret_key
from tom_common.default_settings import *  # noqa: F403  (TOM's allauth/MFA/account defaults)
from tom_common.default_settings import (
    TOMTOOLKIT_AUTHENTICATION_BACKENDS,
    TOMTOOLKIT_INSTALLED_APPS,
    TOMTOOLKIT_MIDDLEWARE,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)

# A production deployment must set SECRET_KEY. A development process without
# one gets a random key: sessions do not outlive it, which is the point.
SECRET_KEY = env.str("SECRET_KEY", default="") or (get_random_secret_key() if DEBUG else "")
if not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SECRET_KEY is not set (set DEBUG=1 for a throwaway development key).")
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

TOM_NAME = "Baton"

INSTALLED_APPS = [
    *TOMTOOLKIT_INSTALLED_APPS,
    "django_celery_beat",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "tom_alerts",
    "tomsite",
    # Baton's own apps (see the README's architecture section).
    "observatories",
    "observatories.simnet",
    "candidates",
    "policies",
    "notifications",
    "sharing",
    # Last, so its demo requests go to the teams the policies demo made.
    "observatories.scheduling",
    # Rehearsals of a campaign in a schema of their own, driving all of the above.
    "drills",
]

SITE_ID = 1

MIDDLEWARE = list(TOMTOOLKIT_MIDDLEWARE)
# WhiteNoise serves static files in production, right after SecurityMiddleware.
MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")
# The simulator's API answers a bad token with a JSON 403, as a facility's API would (TOM's redirects it to login).
MIDDLEWARE[MIDDLEWARE.index("tom_common.middleware.Raise403Middleware")] = "tomsite.middleware.Raise403Middleware"

ROOT_URLCONF = "tomsite.urls"
WSGI_APPLICATION = "tomsite.wsgi.application"
ASGI_APPLICATION = "tomsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            # Project templates, then the apps' (TOM's base template with its CDN script served locally).
            "loaders": [("django.template.loaders.cached.Loader", [
                "django.template.loaders.filesystem.Loader",
                "tomsite.template_loaders.OfflineAssetsLoader",
            ])],
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Database: PostgreSQL only (the devstack starts an embedded one when unset).
DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/baton"),
}
# A Unix-socket directory travels URL-encoded in the host part (postgres://user@%2Fpath%2Fto%2Fdir/db).
DATABASES["default"]["HOST"] = urllib.parse.unquote(DATABASES["default"].get("HOST", ""))
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# TOM Toolkit's apps use AutoField; a project-wide BigAutoField would make Django see pending migrations
# in them. Baton's own apps choose BigAutoField in their AppConfig.
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# --- Redis: Celery's broker and Django's cache.
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHE_KEY_PREFIX = env.str("CACHE_KEY_PREFIX", default="baton")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": CACHE_KEY_PREFIX,
        "TIMEOUT": 300,
    }
}

# --- Celery (namespace CELERY_ in this module, read by tomsite/celery.py).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None  # the database is the source of truth; tasks record their outcome there
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="baton")
CELERY_TASK_ACKS_LATE = True  # a task lost with its worker is redelivered; tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Periodic tasks every Baton app needs; django-celery-beat copies them into the
# database, where admins can edit them. Apps add theirs in their own settings block.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "baton-heartbeat": {"task": "tomsite.heartbeat", "schedule": 60.0},
    # --- observatories (facility status, simulated network) ---
    "observatories-status-poll": {
        "task": "observatories.facility_status_poll",
        "schedule": env.float("OBSERVATORIES_STATUS_POLL_S", default=120.0),
    },
    "simnet-tick": {"task": "simnet.tick", "schedule": env.float("SIMNET_TICK_S", default=60.0)},
    # --- scheduling (planner, dispatch polling, reconciler) ---
    "scheduling-plan": {"task": "scheduling.network_plan", "schedule": 300.0},  # LCO re-plans every ~5 min
    "scheduling-poll": {"task": "scheduling.dispatches_poll", "schedule": 60.0},
    "scheduling-reconcile": {"task": "scheduling.reconcile", "schedule": 120.0},
    # --- candidates (broker polls) ---
    "candidates-polls": {"task": "candidates.broker_polls_due", "schedule": 60.0},  # runs due saved broker queries
    "candidates-reconcile": {"task": "candidates.batches_reconcile", "schedule": 120.0},  # batches a lost message left
    # --- policies (claim expiry, ledger) ---
    "policies-claims-expire": {"task": "policies.claims_expire_due", "schedule": 300.0},
    "policies-data-release": {"task": "policies.data_release_due", "schedule": 300.0},  # proprietary periods ending
    "policies-grants-reconcile": {"task": "policies.grants_reconcile", "schedule": 3600.0},
    # --- notifications ---
    # Releases held notifications, sends due digests, re-drives due retries and lost tasks.
    "notifications-outbox-due": {"task": "notifications.outbox_due", "schedule": 60.0},
    # --- sharing (released data pushed to partner TOMs and Hermes) ---
    # Re-drives due retries, sends a lost task left pending, takes back sends a dead worker left.
    "sharing-outbox-due": {"task": "sharing.outbox_due", "schedule": 60.0},
    # --- drills ---
    "drills-start-due": {"task": "drills.start_due", "schedule": 60.0},  # scheduled rehearsals
}

# TOM Toolkit's own background work (django-tasks) goes through Celery as well.
TASKS = {"default": {"BACKEND": "tomsite.task_backend.CeleryTaskBackend"}}

# --- Auth
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
AUTHENTICATION_BACKENDS = [*TOMTOOLKIT_AUTHENTICATION_BACKENDS]

# Team data is not public: every page needs a login. The API authenticates on
# its own (tokens), the simulated observatory speaks its own token API, and the
# health probe is for load balancers; the admin has its own staff login.
AUTH_STRATEGY = "LOCKED"
OPEN_URLS = ["/api/*", "/sim/*", "/health/", "/admin/login/"]

# --- i18n / time: UTC everywhere, aware datetimes only.
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
FORMAT_MODULE_PATH = ["tom_base.formats"]

# --- Static and media
STATIC_URL = "/static/"
# Bootstrap served from Baton's own static files (tomsite/static/vendor, MIT licence): observatory
# networks and this project's machines may have no route to a CDN, and pages must still look right.
BOOTSTRAP5 = {
    "css_url": {"url": f"{STATIC_URL}vendor/bootstrap-5.3.8/bootstrap.min.css"},
    "javascript_url": {"url": f"{STATIC_URL}vendor/bootstrap-5.3.8/bootstrap.bundle.min.js"},
}
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / ".baton" / "static")
STATICFILES_DIRS: list[Path] = []
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / ".baton" / "media")
MEDIA_URL = "/data/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedStaticFilesStorage"
        )
    },
}

# --- Email: EMAIL_URL (smtp://user:pass@host:port, or smtp+tls://...) turns it on.
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST", "")
EMAIL_PORT = _email.get("EMAIL_PORT", 25)
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Baton <baton@localhost>")

# --- Slack: off unless a webhook or a bot token is set.
SLACK_WEBHOOK_URL = env.str("SLACK_WEBHOOK_URL", default="")
SLACK_BOT_TOKEN = env.str("SLACK_BOT_TOKEN", default="")
SLACK_API_URL = env.str("SLACK_API_URL", default="https://slack.com/api/")

# The address people use to reach this Baton, for links in notifications.
BATON_BASE_URL = env.str("BATON_BASE_URL", default="http://127.0.0.1:8000")

# --- Security: strict unless DEBUG; every knob can be set from the environment.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Submitting a domain to the browsers' HSTS preload list is the operator's decision, made
# once and hard to undo; Baton does not make it for them (SECURE_HSTS_PRELOAD=1 opts in).
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# A broker batch of LSST alerts is large; the ingest API enforces its own cap.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=64 * 1024 * 1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"timestamped": {"format": "[{asctime}] {levelname} {name}: {message}", "style": "{"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "timestamped"}},
    "loggers": {"": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")}},
}

# --- REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tom_common.accounts.api_auth.TomTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        # Basic auth only where a partner TOM's DATA_SHARING shares in (api/targets/, api/reduceddatums/),
        # only over HTTPS when SECURE_SSL_REDIRECT is on: TOM's sharing sends nothing else.
        "sharing.incoming.PartnerBasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Baton's API speaks JSON (TOM's own views set their parsers where they need forms).
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "tomsite.pagination.StrictLimitOffsetPagination",
    # An unknown ?format= is ignored (DRF's 404 is no answer an operation documents); exports check theirs.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "tomsite.negotiation.UnknownFormatIgnored",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Baton API",
    "DESCRIPTION": (
        "Follow-up coordination for time-domain astronomy: candidates in, redundant observing "
        "requests out. Authenticate with `Authorization: Token <key>` (your profile page shows it)."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],  # the API's description is public
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tomsite.schema.document_pagination_errors",
    ],
}

# --- TOM Toolkit configuration
TARGET_TYPE = "SIDEREAL"
MATCH_MANAGERS: dict[str, str] = {}
FACILITIES: dict[str, dict] = {}
# TOM's Gemini module (a copy at Gemini through its ToO trigger API) reads FACILITIES["GEM"] when imported.
if env.str("GEMINI_USER_EMAIL", default=""):
    FACILITIES["GEM"] = {
        "portal_url": {"GS": env.str("GEMINI_GS_URL", default="https://gsodb.gemini.edu:8443"),
                       "GN": env.str("GEMINI_GN_URL", default="https://gnodb.gemini.edu:8443")},
        "api_key": {"GS": env.str("GEMINI_GS_KEY", default=""), "GN": env.str("GEMINI_GN_KEY", default="")},
        "user_email": env.str("GEMINI_USER_EMAIL"),
        "programs": env.json("GEMINI_PROGRAMS", default={}),
    }
TOM_FACILITY_CLASSES: list[str] = []
DATA_PRODUCT_TYPES = {
    "photometry": ("photometry", "Photometry"),
    "fits_file": ("fits_file", "FITS File"),
    "spectroscopy": ("spectroscopy", "Spectroscopy"),
    "image_file": ("image_file", "Image File"),
}
DATA_PROCESSORS = {
    "photometry": "tom_dataproducts.processors.photometry_processor.PhotometryProcessor",
    "spectroscopy": "tom_dataproducts.processors.spectroscopy_processor.SpectroscopyProcessor",
}
EXTRA_FIELDS: list[dict] = []
GENERAL_SEARCH_FUNCTIONS: dict[str, str] = {}
SELECTION_EXTRA_FIELDS: list[str] = []
# Per-datum permissions (django-guardian): team policies grant each datum to whom they share it with
# (policies/grants.py). With True, TOM would show every datum of a visible target (check policies.E002).
TARGET_PERMISSIONS_ONLY = False
TARGET_DEFAULT_PERMISSION = "PRIVATE"
TARGET_LIST_COLUMNS = ["name", "type", "observations", "saved_data"]
HOOKS = {
    "target_post_save": "tom_common.hooks.target_post_save",
    "observation_change_state": "tom_common.hooks.observation_change_state",
    "data_product_post_upload": "tom_dataproducts.hooks.data_product_post_upload",
    "data_product_post_save": "tom_dataproducts.hooks.data_product_post_save",
    "multiple_data_products_post_save": "tom_dataproducts.hooks.multiple_data_products_post_save",
}
AUTO_THUMBNAILS = False
THUMBNAIL_MAX_SIZE = (0, 0)
THUMBNAIL_DEFAULT_SIZE = (200, 200)
HINTS_ENABLED = False
HINT_LEVEL = 20
PLOTLY_THEME = "plotly_white"
SHOW_PAGINATION_INFO = True

# Where the devstack keeps embedded services, secrets and logs (git-ignored).
BATON_STATE_DIR = Path(os.environ.get("BATON_STATE_DIR", BASE_DIR / ".baton"))

# --- scheduling ---
# Dotted paths the scheduler calls for policies and notifications (empty: neutral; see
# observatories/scheduling/hooks.py).
BATON_SCHEDULING_HOOKS = {
    "team_factor": env.str("BATON_HOOK_TEAM_FACTOR", default="policies.services.team_priority_factor"),
    "allocation_check": env.str("BATON_HOOK_ALLOCATION_CHECK", default="policies.services.allocation_check"),
    "usage_record": env.str("BATON_HOOK_USAGE_RECORD", default="policies.services.usage_record"),
    "proposal_for": env.str("BATON_HOOK_PROPOSAL_FOR", default="policies.services.proposal_for"),
    "request_act": env.str("BATON_HOOK_REQUEST_ACT", default="policies.access.request_act_allowed"),
    "data_record": env.str("BATON_HOOK_DATA_RECORD", default="policies.services.data_record_ownership"),
    "interest_record": env.str("BATON_HOOK_INTEREST_RECORD", default="policies.services.target_record_interest"),
    "requests_visible": env.str("BATON_HOOK_REQUESTS_VISIBLE", default="policies.access.requests_visible_q"),
    "notify": env.str("BATON_HOOK_NOTIFY", default="notifications.adapters.scheduling_notify"),
}
# Called with (facility, old_state, new_state, reason) when a facility changes state (after the
# planner has been asked to re-plan); empty: none.
OBSERVATORIES_STATUS_CHANGE_HOOK = env.str(
    "OBSERVATORIES_STATUS_CHANGE_HOOK", default="notifications.adapters.facility_notify"
)

# --- observatories ---
# Facility adapters: every HTTP call to a portal has this timeout (s); transient failures are
# retried this many more times, with exponential backoff from OBSERVATORIES_HTTP_BACKOFF_S.
OBSERVATORIES_HTTP_TIMEOUT_S = env.float("OBSERVATORIES_HTTP_TIMEOUT_S", default=10.0)
OBSERVATORIES_HTTP_RETRIES = env.int("OBSERVATORIES_HTTP_RETRIES", default=2)
OBSERVATORIES_HTTP_BACKOFF_S = env.float("OBSERVATORIES_HTTP_BACKOFF_S", default=1.0)
# A facility status older than this reads as unknown; status rows older than KEEP_DAYS are pruned.
OBSERVATORIES_STATUS_STALE_AFTER_S = env.int("OBSERVATORIES_STATUS_STALE_AFTER_S", default=900)
OBSERVATORIES_STATUS_KEEP_DAYS = env.int("OBSERVATORIES_STATUS_KEEP_DAYS", default=30)
# The simulated network (/sim/): its API token (empty: derived from SECRET_KEY) and weather seed.
SIMNET_TOKEN = env.str("SIMNET_TOKEN", default="")
SIMNET_SEED = env.int("SIMNET_SEED", default=2016)
# Proposals the simulated portal knows besides its facilities' default proposals (a request naming another is
# refused, as a real portal refuses an unknown proposal).
SIMNET_PROPOSALS = env.list("SIMNET_PROPOSALS", default=[])
# As LCO's portal: a failed observation is retried within its windows, no sooner than this after the failure,
# until this many attempts have failed (then FAILURE_LIMIT_REACHED).
SIMNET_RETRY_DELAY_S = env.float("SIMNET_RETRY_DELAY_S", default=1800.0)
SIMNET_FAILURE_LIMIT = env.int("SIMNET_FAILURE_LIMIT", default=5)

# --- policies ---
BATON_POLICIES = {
    # Channels a notification rule may name: name -> NotificationChannel subclass (check policies.E001).
    # The notifications app replaces the log placeholders with real email and Slack delivery.
    "NOTIFICATION_CHANNELS": {
        "inbox": "policies.hooks.InboxChannel",
        "email": "policies.hooks.LogChannel",
        "slack": "policies.hooks.LogChannel",
    },
    # Who delivers policy notifications: a dotted path notify(event, teams, payload, *, now) (check policies.E003):
    # the notifications app (its rules, channels, quiet hours and digests, one inbox for everything);
    # empty: policies' own minimal inbox (policies.hooks.inbox_notify), for a deployment without notifications.
    "NOTIFY": env.str("BATON_POLICIES_NOTIFY", default="notifications.adapters.policies_notify"),
    # Told when data is released (hook(*, team, now, ownership), check policies.E004): the sharing app's
    # outbox pushes it to the destinations the policy names; empty: nothing leaves Baton.
    "RELEASE_HOOK": env.str("BATON_POLICIES_RELEASE_HOOK", default="sharing.services.outbox_enqueue_released"),
    # Data recorded this long after its release date counts as withheld (a breach).
    "WITHHOLD_GRACE_HOURS": env.float("BATON_WITHHOLD_GRACE_HOURS", default=48.0),
    # Contribution ledger: credits per datum given / hour used / breach, the window that counts,
    # and the fair-share factor 1 + SPAN * tanh(balance / SCALE), within [1 - SPAN, 1 + SPAN].
    "LEDGER_WEIGHTS": {"photometry": 0.1, "spectra": 0.5, "hour": 1.0, "breach": 10.0},
    "LEDGER_WINDOW_DAYS": env.int("BATON_LEDGER_WINDOW_DAYS", default=365),
    "PRIORITY_SPAN": 0.5,
    "PRIORITY_SCALE": 50.0,
    # The TargetExtra key holding a target's object class (claims on a class of objects).
    "TARGET_CLASS_EXTRA": "classification",
}
# Stable OpenAPI names for the policies' choice sets (fields named "state", "kind", "role" recur in other apps).
_enum_overrides = SPECTACULAR_SETTINGS.get("ENUM_NAME_OVERRIDES")
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    **(_enum_overrides if isinstance(_enum_overrides, dict) else {}),
    "ClaimStateEnum": "policies.models.ClaimState",
    "TeamRoleEnum": "policies.models.Role",
    "UsageKindEnum": "policies.models.UsageKind",
    "LedgerKindEnum": "policies.models.LedgerKind",
    "NotificationStatusEnum": "policies.models.NotificationStatus",
    "ConsentDecisionEnum": "policies.models.ConsentDecision",
    "AudienceEnum": "policies.models.Audience",
}

# --- sharing ---
# Pushing released data to partner TOMs / Batons and Hermes (sharing/conf.py has the defaults): attempts
# before an item is marked failed, the exponential backoff (s) and its cap, every HTTP call's timeout (s).
BATON_SHARING = {
    "MAX_ATTEMPTS": env.int("BATON_SHARING_MAX_ATTEMPTS", default=20),
    "RETRY_BACKOFF_S": env.float("BATON_SHARING_RETRY_BACKOFF_S", default=30.0),
    "RETRY_BACKOFF_MAX_S": env.float("BATON_SHARING_RETRY_BACKOFF_MAX_S", default=3600.0),
    "HTTP_TIMEOUT_S": env.float("BATON_SHARING_HTTP_TIMEOUT_S", default=10.0),
}
_enum_overrides = SPECTACULAR_SETTINGS.get("ENUM_NAME_OVERRIDES")
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    **(_enum_overrides if isinstance(_enum_overrides, dict) else {}),
    "DestinationKindEnum": "sharing.models.DestinationKind",
    "OutboxStatusEnum": "sharing.models.OutboxStatus",
}

# --- candidates ---
# Cone-match radius for joining an alert to a known target, arcsec (check candidates.E002: at most 10).
BATON_CANDIDATES_MATCH_RADIUS_ARCSEC = env.float("BATON_CANDIDATES_MATCH_RADIUS_ARCSEC", default=1.5)
# Dotted path of factory(*, firing) -> ObservingRequest (default: the scheduler's); empty: firings are recorded only.
BATON_TRIGGER_REQUEST_FACTORY = env.str(
    "BATON_TRIGGER_REQUEST_FACTORY", default="observatories.scheduling.services.triggers.request_from_firing"
)
# Dotted path of hook(*, match_ids) told about new matches (notifications); empty: none.
BATON_CANDIDATES_MATCH_HOOK = env.str(
    "BATON_CANDIDATES_MATCH_HOOK", default="notifications.adapters.candidates_matches_notify"
)
# Dotted path of hook(*, event, request, **payload) told "trigger.fired" when a rule made a request; empty: none.
BATON_CANDIDATES_FIRED_HOOK = env.str("BATON_CANDIDATES_FIRED_HOOK", default="notifications.adapters.scheduling_notify")
# TOM broker classes polled by saved queries (ALeRCE as TOM ships it; add tom-* plugins here).
TOM_ALERT_CLASSES = [
    "tom_alerts.brokers.alerce.ALeRCEBroker",
    "tom_alerts.brokers.lasair.LasairBroker",
    "tom_alerts.brokers.fink.FinkBroker",
    "tom_alerts.brokers.antares.ANTARESBroker",
]

# --- notifications ---
# Delivery channels: name -> NotificationChannel subclass (check notifications.E001). Policy rules and
# preferences name channels by these keys.
BATON_NOTIFICATION_CHANNELS = {
    "email": "notifications.channels.EmailChannel",
    "slack": "notifications.channels.SlackChannel",
    "inbox": "notifications.channels.InboxChannel",
}
BATON_NOTIFICATIONS = {
    # The default rule (a group that is not a policies team, or a person's own matches): these channels.
    "DEFAULT_CHANNELS": env.list("BATON_NOTIFY_DEFAULT_CHANNELS", default=["email", "inbox"]),
    # Urgent unless the producer says otherwise: these pass quiet hours, digests and the rate limit.
    "URGENT_EVENTS": env.list("BATON_NOTIFY_URGENT_EVENTS", default=["request.failed", "request.expired"]),
    # Rate limit per address and channel: past MESSAGES in WINDOW_S, the burst folds into one digest
    # sent BURST_DIGEST_DELAY_S after it began.
    "RATE_LIMIT_MESSAGES": env.int("BATON_NOTIFY_RATE_LIMIT_MESSAGES", default=10),
    "RATE_LIMIT_WINDOW_S": env.int("BATON_NOTIFY_RATE_LIMIT_WINDOW_S", default=3600),
    "BURST_DIGEST_DELAY_S": env.int("BATON_NOTIFY_BURST_DIGEST_DELAY_S", default=300),
    # Daily digests arrive at this local hour (a person may choose another).
    "DAILY_DIGEST_HOUR": env.int("BATON_NOTIFY_DAILY_DIGEST_HOUR", default=8),
    # Quiet hours of people who set none (HH:MM, both or neither; empty: none), and their time zone.
    "QUIET_HOURS_START": env.str("BATON_NOTIFY_QUIET_START", default=""),
    "QUIET_HOURS_END": env.str("BATON_NOTIFY_QUIET_END", default=""),
    "DEFAULT_TIMEZONE": env.str("BATON_NOTIFY_DEFAULT_TIMEZONE", default="UTC"),
    # Retries of transient failures: backoff from RETRY_BACKOFF_S doubling to RETRY_BACKOFF_MAX_S, at most
    # MAX_ATTEMPTS sends (20: about 14 hours of outage) before a row is marked failed.
    "MAX_ATTEMPTS": env.int("BATON_NOTIFY_MAX_ATTEMPTS", default=20),
    "RETRY_BACKOFF_S": env.int("BATON_NOTIFY_RETRY_BACKOFF_S", default=30),
    "RETRY_BACKOFF_MAX_S": env.int("BATON_NOTIFY_RETRY_BACKOFF_MAX_S", default=3600),
    # Retries up to this far off wait in Celery (below the broker's visibility timeout); later ones in the pump.
    "CELERY_RETRY_MAX_S": 300,
    # A send claimed this long ago is presumed lost with its worker (must exceed CELERY_TASK_TIME_LIMIT).
    "SENDING_STALE_S": 900,
    # A pending row whose task has not run for this long is enqueued again.
    "PENDING_STALE_S": 120,
    # Timeout of every Slack HTTP call (email uses EMAIL_TIMEOUT), seconds.
    "HTTP_TIMEOUT_S": env.int("BATON_NOTIFY_HTTP_TIMEOUT_S", default=10),
    # Where the bot token posts when neither the person nor the team names a destination (empty: nowhere).
    "SLACK_DEFAULT_CHANNEL": env.str("SLACK_DEFAULT_CHANNEL", default=""),
    # Notifications listed in one digest message (the rest: "and N more in your inbox").
    "DIGEST_MAX_ITEMS": 50,
}
