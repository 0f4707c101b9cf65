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

Static files at image build time: `collectstatic` needs neither a database nor a real secret, but these
settings still refuse to load without SECRET_KEY when DEBUG is off (there is no code path that weakens that
rule). The build therefore runs that one command with a throwaway key in its own environment only, e.g.
    RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
        python manage.py collectstatic --noinput
so no key is written into any layer, the image config or `docker history`.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

from airline import env

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env.boolean(os.environ, "DEBUG", default=False)

SECRET_KEY = os.environ.get("SECRET_KEY", "").strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set and DEBUG is off. Set the SECRET_KEY environment variable to a long "
            "random value, e.g. "
            "SECRET_KEY=\"$(python -c 'import secrets; print(secrets.token_urlsafe(50))')\" "
            "(on Heroku: heroku config:set SECRET_KEY=...), or set DEBUG=true for local development."
        )
    # Development only: a fresh key per process; sessions do not survive a restart, which is fine there.
    SECRET_KEY = "django-insecure-" + get_random_secret_key()

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
    "flights",
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
    },
}
