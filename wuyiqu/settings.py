"""Settings, all from the environment.

WUYIQU_ENV      production (default) | demo | test. Production refuses to start without real secrets.
DATABASE_URL    postgres://... or sqlite:///path; absent: the embedded SQLite file in WUYIQU_DATA_DIR.
WUYIQU_DATA_DIR where the embedded database, uploads and demo secrets live (default ./var).
WUYIQU_SECRET_KEY   Django's signing key.
WUYIQU_DATA_KEY     base64 of 32 bytes: encrypts ID-card numbers and phones, keys their lookup hashes.
WUYIQU_OLD_DATA_KEYS comma-separated former data keys, still accepted for decryption (key rotation).
WUYIQU_LOOKUP_KEY   base64 of 32 bytes: keys the lookup hashes (default: the data key). It does not
                    rotate: set it to the first data key before rotating (`wuyiqu rotate-keys --help`).
WUYIQU_DEBUG        1/0.
WUYIQU_ALLOWED_HOSTS comma-separated.
WUYIQU_EMAIL_BACKEND dotted path of Django's mail backend (default: SMTP to localhost:25 in production,
                    the console backend elsewhere).
WUYIQU_LOG_LEVEL    root log level (default WARNING).
WUYIQU_SESSION_SECONDS session lifetime in seconds (default 8 hours).
WUYIQU_SESSION_IDLE_SECONDS a session left unused this long is signed out (default 30 minutes).
WUYIQU_DB_CONN_MAX_AGE seconds a database connection is kept (default 0).
WUYIQU_IMPORT_MAX_UPLOAD_BYTES largest import file, uploaded or given to `wuyiqu import` (default 200 MiB).
WUYIQU_IMPORT_MAX_ROWS, WUYIQU_IMPORT_MAX_COLUMNS, WUYIQU_IMPORT_MAX_CELL_CHARS data rows (default 5,000,000),
                    columns (200) and characters in one cell (10,000, at most 131,072) of an import file.
WUYIQU_IMPORT_MAX_EMPTY_ROWS rows of only empty cells an import file may have (default 100,000).
WUYIQU_IMPORT_XLSX_MAX_UNPACKED_BYTES, WUYIQU_IMPORT_XLSX_MAX_RATIO an XLSX's unpacked size (default 512 MiB)
                    and any member's unpacked:packed ratio (default 100): beyond them, a zip bomb, refused.
WUYIQU_IMPORT_XLSX_MAX_MEMORY_BYTES, WUYIQU_IMPORT_XLSX_MAX_SECONDS the child process that reads an XLSX
                    (default 480 MiB of address space, which bounds its memory; 600 s). See docs/reliability.md, Hostile files.
WUYIQU_ATTACHMENT_MAX_BYTES largest attachment or inspection photo (default 10 MiB).
WUYIQU_EVALUATE_CONCURRENT 1/0 (default 1): on PostgreSQL a whole-tree evaluation outside a transaction
                    runs its nucleic-acid participation query on a second connection, beside the rest.
WUYIQU_TASKS        database (default in production: `wuyiqu worker` runs them) | immediate (default in
                    demo and test: run at once, in the process that enqueues them).
WUYIQU_SUPERVISE_AT HH:MM, Asia/Shanghai, when `wuyiqu worker` enqueues the daily supervision (default 01:30).
WUYIQU_BEHIND_PROXY 1/0 (default 1 in production): trust X-Forwarded-Proto from nginx (docs/deploy.md).
WUYIQU_SSL_REDIRECT 1/0 (default 1 in production): redirect plain HTTP to HTTPS.
WUYIQU_SECURE_COOKIES 1/0 (default 1 in production): session and CSRF cookies only over HTTPS.
WUYIQU_HSTS_SECONDS Strict-Transport-Security max-age (default one year in production, 0 elsewhere);
WUYIQU_HSTS_INCLUDE_SUBDOMAINS, WUYIQU_HSTS_PRELOAD 1/0 (default 1).

A bad value stops the process at start with a message naming the variable.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
import django
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected 1/0, true/false, yes/no or on/off")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number") from None


WUYIQU_ENV = os.environ.get("WUYIQU_ENV", "production")
if WUYIQU_ENV not in ("production", "demo", "test"):
    raise ImproperlyConfigured(f"WUYIQU_ENV={WUYIQU_ENV!r}: expected production, demo or test")

DATA_DIR = Path(os.environ.get("WUYIQU_DATA_DIR") or Path.cwd() / "var").resolve()

DEBUG = _env_bool("WUYIQU_DEBUG", WUYIQU_ENV == "demo")

SECRET_KEY = os.environ.get("WUYIQU_SECRET_KEY", "")
if not SECRET_KEY:
    if WUYIQU_ENV == "test":
        SECRET_KEY = "test-only-secret-key-not-for-production-0123456789abcdef"
    else:
        raise ImproperlyConfigured(
            "WUYIQU_SECRET_KEY is not set (`wuyiqu demo` makes one for the demo; production must set it)"
        )

DATA_KEY = os.environ.get("WUYIQU_DATA_KEY", "")
if not DATA_KEY:
    if WUYIQU_ENV == "test":
        DATA_KEY = "dGVzdC1vbmx5LWRhdGEta2V5LTMyLWJ5dGVzLWxvbmc="  # 32 bytes, tests only
    else:
        raise ImproperlyConfigured("WUYIQU_DATA_KEY is not set (base64 of 32 random bytes)")
OLD_DATA_KEYS = [k.strip() for k in os.environ.get("WUYIQU_OLD_DATA_KEYS", "").split(",") if k.strip()]


def _check_data_key(b64: str, name: str) -> None:
    # wuyiqu.lib.crypto decodes the keys only on the first encryption; checking here makes a bad
    # key stop the process at start rather than on the first import hours later.
    try:
        key = base64.b64decode(b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{name} is not valid base64 (expected base64 of 32 random bytes)") from None
    if len(key) != 32:
        raise ImproperlyConfigured(f"{name} must decode to 32 bytes, not {len(key)}")


LOOKUP_KEY = os.environ.get("WUYIQU_LOOKUP_KEY", "").strip()

_check_data_key(DATA_KEY, "WUYIQU_DATA_KEY")
for _i, _old in enumerate(OLD_DATA_KEYS):
    _check_data_key(_old, f"WUYIQU_OLD_DATA_KEYS[{_i}]")
if LOOKUP_KEY:
    _check_data_key(LOOKUP_KEY, "WUYIQU_LOOKUP_KEY")
elif OLD_DATA_KEYS:
    # Without it the lookup hashes would follow the new data key, and every stored hash (the only
    # identity of unregistered people's facts) would stop matching: refuse rather than lose them.
    raise ImproperlyConfigured(
        "WUYIQU_OLD_DATA_KEYS is set (a data key rotation) but WUYIQU_LOOKUP_KEY is not: set "
        "WUYIQU_LOOKUP_KEY to the data key the lookup hashes were made with (the installation's first "
        "WUYIQU_DATA_KEY); see `wuyiqu rotate-keys --help`"
    )

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("WUYIQU_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
if WUYIQU_ENV == "test":
    ALLOWED_HOSTS = ["*"]
    if os.environ.get("TEST_NOW"):  # a process started by the test suite run at a frozen moment
        from wuyiqu.lib.testclock import start_clock

        start_clock(os.environ["TEST_NOW"])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "wuyiqu.accounts",
    "wuyiqu.audit",
    "wuyiqu.units",
    "wuyiqu.health",
    "wuyiqu.inspections",
    "wuyiqu.applications",
    "wuyiqu.certification",
    "wuyiqu.notifications",
    "wuyiqu.standards",
    "wuyiqu.supervision",
    "wuyiqu.imports",
    "wuyiqu.web",
    "wuyiqu.api",
    "wuyiqu.dashboard",
    "wuyiqu.ops",
    "django_tasks_db",
]

MIDDLEWARE = [
    "wuyiqu.ops.middleware.ForwardedClientMiddleware",  # the client's address from nginx (docs/deploy.md)
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "wuyiqu.ops.middleware.RefuseNulMiddleware",  # before anything looks a value up in the database
    "django.contrib.sessions.middleware.SessionMiddleware",
    "wuyiqu.web.middleware.ChineseUnlessChosenMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "wuyiqu.ops.middleware.NoStoreMiddleware",  # after the user is known: signed-in pages never cached
    "django.contrib.messages.middleware.MessageMiddleware",
    "wuyiqu.accounts.middleware.SessionLimitsMiddleware",
    "wuyiqu.accounts.middleware.PasswordChangeRequiredMiddleware",  # after a reset or a new account
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Django 6 has its own; Django 5.2 (Python 3.11) gets the same header from a small one of ours.
    "django.middleware.csp.ContentSecurityPolicyMiddleware" if django.VERSION >= (6, 0)
    else "wuyiqu.web.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "wuyiqu.urls"
WSGI_APPLICATION = "wuyiqu.wsgi.application"

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
                "wuyiqu.notifications.context_processors.unread",
                "wuyiqu.web.navigation.navigation",  # the header's links per role
            ],
        },
    },
]

_db_url = os.environ.get("DATABASE_URL", "")
if not _db_url:
    DATA_DIR.mkdir(parents=True, exist_ok=True)  # the embedded database lives here
    _db_url = f"sqlite:///{DATA_DIR / 'wuyiqu.sqlite3'}"


def _redacted(url: str) -> str:
    """The URL without its password, fit for an error message that lands in logs."""
    try:
        parts = urlsplit(url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
            return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    return url


try:
    _db = dj_database_url.parse(_db_url, conn_max_age=_env_int("WUYIQU_DB_CONN_MAX_AGE", 0))
except Exception as exc:  # dj_database_url raises several types for bad URLs
    raise ImproperlyConfigured(f"DATABASE_URL={_redacted(_db_url)!r} is not a database URL: {exc}") from None
if _db["ENGINE"] not in ("django.db.backends.postgresql", "django.db.backends.sqlite3"):
    raise ImproperlyConfigured(
        f"DATABASE_URL={_redacted(_db_url)!r}: only PostgreSQL (postgres://) and SQLite (sqlite:///path) are supported"
    )
if _db["ENGINE"] == "django.db.backends.postgresql" and not _db["NAME"]:
    raise ImproperlyConfigured(f"DATABASE_URL={_redacted(_db_url)!r} names no database (postgres://user@host:port/NAME)")
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers go on while an import writes; IMMEDIATE transactions make writers queue for
    # the lock instead of failing with "database is locked" half-way through.
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
IS_POSTGRES = _db["ENGINE"] == "django.db.backends.postgresql"
if IS_POSTGRES:
    # Django's backend, grouping district-keyed tables by their columns (wuyiqu/lib/pgbackend/base.py).
    _db["ENGINE"] = "wuyiqu.lib.pgbackend"
DATABASES = {"default": _db}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:login"

# Argon2 (memory-hard) for every new password; a PBKDF2 hash from before is still accepted and is
# rehashed with Argon2 at the next sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
if WUYIQU_ENV == "test":
    # Hashing strength is not what the tests exercise; a fast hasher keeps them quick.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [  # checked by do_create_user and Django's password commands
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SESSION_COOKIE_AGE = _env_int("WUYIQU_SESSION_SECONDS", 8 * 3600)
# Signed out after this long without a request (wuyiqu.accounts.middleware, which also holds the
# lifetime above from the sign-in, however active the session).
SESSION_IDLE_SECONDS = _env_int("WUYIQU_SESSION_IDLE_SECONDS", 30 * 60)
for _name, _seconds in (("WUYIQU_SESSION_SECONDS", SESSION_COOKIE_AGE), ("WUYIQU_SESSION_IDLE_SECONDS", SESSION_IDLE_SECONDS)):
    if _seconds < 60:
        raise ImproperlyConfigured(f"{_name}={_seconds}: expected at least 60 seconds")
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every response: scripts, styles and everything else from this site only,
# no inline script or style (the templates have none; tests/test_reliability_csp.py keeps it so), no
# plugins, no framing, forms post only here. ``data:`` images: the icons inside the vendored CSS.
SECURE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"  # `wuyiqu collectstatic` fills it for production
if WUYIQU_ENV == "test":
    # The finders serve the files (WHITENOISE_USE_FINDERS); without this WhiteNoise warns on every
    # test client about a collectstatic directory that tests never make.
    STATIC_ROOT = None
STATICFILES_DIRS = [BASE_DIR / "static"]  # wuyiqu/static: the hand-written CSS and vendored htmx
WHITENOISE_USE_FINDERS = True
# Uploaded files (attachments, inspection photos) are sealed at rest: wuyiqu.lib.sealed_storage.
STORAGES = {
    "default": {"BACKEND": "wuyiqu.lib.sealed_storage.SealedStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if WUYIQU_ENV == "production":
    # `wuyiqu collectstatic` writes hashed, pre-compressed copies that WhiteNoise serves with far-future
    # cache headers; the finders are for demo and tests, which never collect.
    STORAGES["staticfiles"] = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}
    WHITENOISE_USE_FINDERS = False
MEDIA_ROOT = DATA_DIR / "uploads"  # never served directly; attachments go through scoped views

DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
IMPORT_MAX_UPLOAD_BYTES = _env_int("WUYIQU_IMPORT_MAX_UPLOAD_BYTES", 200 * 1024 * 1024)
IMPORT_MAX_ROWS = _env_int("WUYIQU_IMPORT_MAX_ROWS", 5_000_000)
IMPORT_MAX_COLUMNS = _env_int("WUYIQU_IMPORT_MAX_COLUMNS", 200)
IMPORT_MAX_CELL_CHARS = _env_int("WUYIQU_IMPORT_MAX_CELL_CHARS", 10_000)
IMPORT_MAX_EMPTY_ROWS = _env_int("WUYIQU_IMPORT_MAX_EMPTY_ROWS", 100_000)
if not 1 <= IMPORT_MAX_CELL_CHARS <= 131_072:  # the csv module's own field limit
    raise ImproperlyConfigured(f"WUYIQU_IMPORT_MAX_CELL_CHARS={IMPORT_MAX_CELL_CHARS}: expected 1 to 131072")
IMPORT_XLSX_MAX_UNPACKED_BYTES = _env_int("WUYIQU_IMPORT_XLSX_MAX_UNPACKED_BYTES", 512 * 1024 * 1024)
IMPORT_XLSX_MAX_RATIO = _env_int("WUYIQU_IMPORT_XLSX_MAX_RATIO", 100)
# 480 MiB: the child's resident memory stays below it, so every import file within the limits is read in
# under 512 MiB (issue 14); an .xlsx is streamed and needs far less, an .xls or .ods sheet is held whole.
IMPORT_XLSX_MAX_MEMORY_BYTES = _env_int("WUYIQU_IMPORT_XLSX_MAX_MEMORY_BYTES", 480 * 1024 * 1024)
IMPORT_XLSX_MAX_SECONDS = _env_int("WUYIQU_IMPORT_XLSX_MAX_SECONDS", 600)
ATTACHMENT_MAX_BYTES = _env_int("WUYIQU_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)
WUYIQU_EVALUATE_CONCURRENT = _env_bool("WUYIQU_EVALUATE_CONCURRENT", True)

# --- background work, shared cache, HTTPS behind nginx (docs/deploy.md) ----------------------------
_tasks = os.environ.get("WUYIQU_TASKS") or ("database" if WUYIQU_ENV == "production" else "immediate")
if _tasks not in ("database", "immediate"):
    raise ImproperlyConfigured(f"WUYIQU_TASKS={_tasks!r}: expected database or immediate")
# Django 6 has the task framework; Django 5.2 (Python 3.11) has it from the django-tasks backport.
_TASKS_PACKAGE = "django.tasks" if django.VERSION >= (6, 0) else "django_tasks"
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend" if _tasks == "database"
        else f"{_TASKS_PACKAGE}.backends.immediate.ImmediateBackend",
    }
}
SUPERVISE_AT = os.environ.get("WUYIQU_SUPERVISE_AT") or "01:30"
try:
    _hour, _minute = (int(part) for part in SUPERVISE_AT.split(":"))
    if not (0 <= _hour < 24 and 0 <= _minute < 60):
        raise ValueError
except ValueError:
    raise ImproperlyConfigured(f"WUYIQU_SUPERVISE_AT={SUPERVISE_AT!r}: expected HH:MM, e.g. 01:30") from None

# The dashboard's cached numbers are shared by every gunicorn worker and the task worker: a table in
# the database (`wuyiqu createcachetable` at deploy). Tests keep a per-process memory cache.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "wuyiqu_cache",
        "OPTIONS": {"MAX_ENTRIES": 20000, "CULL_FREQUENCY": 4},
    }
}
if WUYIQU_ENV == "test":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

_production = WUYIQU_ENV == "production"
if _env_bool("WUYIQU_BEHIND_PROXY", _production):
    # nginx terminates TLS and says so in X-Forwarded-Proto; gunicorn listens on loopback only, so
    # only nginx can set that header (docs/deploy.md).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = _env_bool("WUYIQU_SSL_REDIRECT", _production)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _env_bool("WUYIQU_SECURE_COOKIES", _production)
SECURE_HSTS_SECONDS = _env_int("WUYIQU_HSTS_SECONDS", 365 * 24 * 3600 if _production else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("WUYIQU_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = _env_bool("WUYIQU_HSTS_PRELOAD", True)

# Production sends through SMTP to the machine's own mail relay (localhost:25; docs/deploy.md), since
# Django's deployment checks refuse the console backend; demo and tests print or keep the mail.
_email_backend = os.environ.get("WUYIQU_EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend" if WUYIQU_ENV == "production"
    else "django.core.mail.backends.console.EmailBackend")
if django.VERSION >= (6, 1):
    # Django 6.1 replaced EMAIL_BACKEND (deprecated, removed in 2028) with MAILERS.
    MAILERS = {"default": {"BACKEND": _email_backend}}
else:  # Django 5.2 LTS, on Python 3.11
    EMAIL_BACKEND = _email_backend

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("WUYIQU_LOG_LEVEL", "WARNING")},
}
