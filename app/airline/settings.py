"""Settings of the airline, read from the environment (twelve-factor).

Variables (all optional unless stated):
  SECRET_KEY            required when DEBUG is off
  DEBUG                 true/false (default false); any other value is an error
  DATABASE_URL          postgres://USER:PASSWORD@HOST:PORT/NAME; required to serve (a system check says so),
                        not to collect static files
  DB_CONN_MAX_AGE       seconds a connection is kept between requests (default 60)
  DB_CONNECT_TIMEOUT    seconds to wait for PostgreSQL to accept a connection (default 3)
  DB_SSL_REQUIRE        true: connect to PostgreSQL over TLS only (sslmode=require; default false)
  ALLOWED_HOSTS         comma-separated host names this site answers to
  CSRF_TRUSTED_ORIGINS  comma-separated origins, e.g. https://airline.example.com
  SECURE_PROXY_SSL_HEADER  e.g. HTTP_X_FORWARDED_PROTO,https behind a proxy that terminates TLS
  SECURE_SSL_REDIRECT   redirect plain HTTP to HTTPS (default: on when DEBUG is off); /healthz is exempt
  SECURE_COOKIES        send session and CSRF cookies over HTTPS only (default: on when DEBUG is off)
  SECURE_HSTS_SECONDS   Strict-Transport-Security max-age (default: one year when DEBUG is off, else 0)
  SECURE_HSTS_INCLUDE_SUBDOMAINS, SECURE_HSTS_PRELOAD   (default: on)
  LOG_LEVEL             DEBUG, INFO, WARNING, ERROR or CRITICAL (default INFO); logs go to stdout
  LOAD_SAMPLE_DATA      true: the release phase (`manage.py release`) loads the sample data (demo stacks)

E-mail (booking confirmations, sent by the worker process):
  EMAIL_BACKEND         smtp, console, file, locmem or dummy (default: file when EMAIL_FILE_PATH is set,
                        else console when DEBUG is on, else smtp)
  EMAIL_FILE_PATH       directory the file backend writes one file per message to
  EMAIL_HOST, EMAIL_PORT  the SMTP server (default localhost, 25)
  EMAIL_HOST_USER, EMAIL_HOST_PASSWORD  its login (default: none)
  EMAIL_USE_TLS         STARTTLS (default false); EMAIL_USE_SSL: implicit TLS (default false), not both
  EMAIL_TIMEOUT         seconds before a silent SMTP server counts as failed (default 10)
  DEFAULT_FROM_EMAIL    the From address (default webmaster@localhost)

Scheduled jobs (run by the scheduler process), cron schedules in UTC: five fields, or six with seconds last:
  CLEANUP_CRON          expired sessions and finished jobs removed (default '0 3 * * *': 03:00 daily)
  STALLED_JOBS_CRON     jobs of a worker that died mid-task queued again (default '* * * * *': every minute)
The worker processes also take procrastinate's own PROCRASTINATE_WORKER_CONCURRENCY (jobs at once, default 1)
and PROCRASTINATE_WORKER_SHUTDOWN_GRACEFUL_TIMEOUT (seconds a stopping worker waits for its jobs).

Static files at image build time: `collectstatic` needs neither a database nor a real secret, but these
settings still refuse to load without SECRET_KEY when DEBUG is off (there is no code path that weakens that
rule, and a key Django would call weak, check security.W009, is refused too). The build therefore runs that
one command with a throwaway key in its own environment only, e.g.
    RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
        python manage.py collectstatic --noinput
so no key is written into any layer, the image config or `docker history`.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

from airline import env

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env.boolean(os.environ, "DEBUG", default=False)

MAKE_A_KEY = (
    "Set the SECRET_KEY environment variable to a long random value, e.g. "
    "SECRET_KEY=\"$(python -c 'import secrets; print(secrets.token_urlsafe(50))')\" "
    "(on Heroku: heroku config:set SECRET_KEY=...), or set DEBUG=true for local development."
)
SECRET_KEY = os.environ.get("SECRET_KEY", "").strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(f"SECRET_KEY is not set and DEBUG is off. {MAKE_A_KEY}")
    # Development only: a fresh key per process; sessions do not survive a restart, which is fine there.
    SECRET_KEY = "django-insecure-" + get_random_secret_key()
elif not DEBUG and (weakness := env.weak_secret_key(SECRET_KEY)):
    # Sessions, password resets and CSRF tokens are only as strong as this key: refuse, don't warn.
    raise ImproperlyConfigured(f"SECRET_KEY is too weak for DEBUG off: {weakness}. {MAKE_A_KEY}")

# Empty with DEBUG on means Django's own localhost defaults. Health probes must send one of these hosts
# in their Host header: /healthz gets no exemption from host validation.
ALLOWED_HOSTS = env.items(os.environ, "ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.items(os.environ, "CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "csp",
    "axes",
    # Before the apps whose tasks it discovers (their tasks modules), as procrastinate asks.
    "procrastinate.contrib.django",
    "flights",
]

MIDDLEWARE = [
    # First, so that every response carries the policy: redirects, static files and errors too.
    "csp.middleware.CSPMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it answers a locked-out login attempt with 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "airline.urls"
WSGI_APPLICATION = "airline.wsgi.application"

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
            ],
        },
    },
]

# No DATABASE_URL leaves Django's dummy backend, so commands that need no database (collectstatic) run;
# flights.checks reports the missing variable to every command that does.
DATABASES = {}
if database_url := os.environ.get("DATABASE_URL", "").strip():
    DATABASES["default"] = dj_database_url.parse(
        database_url,
        conn_max_age=env.integer(os.environ, "DB_CONN_MAX_AGE", 60),
        # Persistent connections are checked before each request reuses them, so a restarted database
        # costs one reconnect instead of a failed request.
        conn_health_checks=True,
        ssl_require=env.boolean(os.environ, "DB_SSL_REQUIRE", default=False),
    )
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # A short connect timeout keeps /healthz (and requests) from hanging on an unreachable database;
        # a connect_timeout in the URL's query string wins.
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
            "connect_timeout", env.integer(os.environ, "DB_CONNECT_TIMEOUT", 3, minimum=1)
        )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: refuses every login attempt, right or wrong, while its username and client are locked out.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Login throttling: after 5 wrong passwords for one username from one client address, that pair is refused
# (HTTP 429) for 15 minutes, even with the right password; other usernames and addresses are unaffected.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The client address: the app is reached through exactly one proxy (Caddy on swarm, Heroku's router), which
# appends the address it was connected from to X-Forwarded-For. Only that right-most entry is trusted;
# anything a client wrote into the header itself stands to its left and is ignored. In django-ipware's
# terms: no proxy addresses follow the client's (the proxy's own is REMOTE_ADDR), and entries before it are
# skipped rather than making the header untrusted (IPWARE_STRICT). REMOTE_ADDR is the fallback for requests
# that did not come through the proxy (runserver in development).
AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
AXES_IPWARE_PROXY_COUNT = 0
IPWARE_STRICT = False

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

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names (so whitenoise may cache them for ten years) and pre-compressed copies.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# HTTPS. Behind a proxy or router that terminates TLS, SECURE_PROXY_SSL_HEADER tells Django which
# requests came in over HTTPS; health probes come over plain HTTP straight to the container, so /healthz
# is never redirected.
SECURE_PROXY_SSL_HEADER = env.proxy_ssl_header(os.environ, "SECURE_PROXY_SSL_HEADER")
SECURE_SSL_REDIRECT = env.boolean(os.environ, "SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.integer(os.environ, "SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.boolean(os.environ, "SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.boolean(os.environ, "SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.boolean(os.environ, "SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy: scripts, styles, images, fonts and requests from this site only, no inline script
# or style unless it carries the response's nonce (`nonce="{{ request.csp_nonce }}"`; the header names a
# nonce only on responses that use one), no plugins, no framing, forms post back here only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

# E-mail: Django's mail framework, configured from the environment (see the top of this file).
EMAIL_BACKENDS = {  # EMAIL_BACKEND's short names: Django's modules under django.core.mail.backends
    "smtp": "smtp",
    "console": "console",
    "file": "filebased",
    "locmem": "locmem",
    "dummy": "dummy",
}
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", "").strip() or None
_email_backend = env.choice(
    os.environ,
    "EMAIL_BACKEND",
    tuple(EMAIL_BACKENDS),
    "file" if EMAIL_FILE_PATH else "console" if DEBUG else "smtp",
)
if _email_backend == "file" and not EMAIL_FILE_PATH:
    raise ImproperlyConfigured(
        "EMAIL_BACKEND=file needs EMAIL_FILE_PATH, the directory to write messages to, e.g. /tmp/mail"
    )
EMAIL_BACKEND = f"django.core.mail.backends.{EMAIL_BACKENDS[_email_backend]}.EmailBackend"
EMAIL_HOST = os.environ.get("EMAIL_HOST", "").strip() or "localhost"
EMAIL_PORT = env.integer(os.environ, "EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "").strip()
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env.boolean(os.environ, "EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.boolean(os.environ, "EMAIL_USE_SSL", default=False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured(
        "EMAIL_USE_TLS and EMAIL_USE_SSL are both on; set one: EMAIL_USE_TLS=true for STARTTLS "
        "(usually port 587), EMAIL_USE_SSL=true for implicit TLS (usually port 465)"
    )
# Without a timeout a silent SMTP server would hold a worker's job for ever.
EMAIL_TIMEOUT = env.integer(os.environ, "EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "").strip() or "webmaster@localhost"

# Background tasks (procrastinate, in this database): tasks modules of the apps are found by themselves;
# the housekeeping jobs live in airline.tasks. Periodic jobs go to their own queue, which only the scheduler
# process works on (see app/Procfile).
PROCRASTINATE_IMPORT_PATHS = ["airline.tasks"]
SCHEDULED_QUEUE = "scheduled"
CLEANUP_CRON = env.cron(os.environ, "CLEANUP_CRON", "0 3 * * *")
STALLED_JOBS_CRON = env.cron(os.environ, "STALLED_JOBS_CRON", "* * * * *")

LOG_LEVEL = env.log_level(os.environ, "LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "plain"},
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own default handlers would also print to stderr; route everything through root.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        # Both announce what they load at every start of every command (on stdout, where commands' output
        # goes too); their warnings, e.g. axes' lockouts, still pass.
        "axes.apps": {"level": "WARNING"},
        "procrastinate.blueprints": {"level": "WARNING"},
    },
}
