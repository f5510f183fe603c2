"""gunicorn settings for Vault Registry: the GUNICORN_* variables below set the usual ones, and
GUNICORN_CMD_ARGS any other (gunicorn reads it itself)."""

import multiprocessing
import os

wsgi_app = "registry.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Restart workers now and then so that no slow leak can grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = 2000
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None  # empty: no access log
errorlog = "-"
# Request lines and headers are bounded; bodies are bounded by the API (413).
limit_request_line = 8190
limit_request_fields = 100


def on_starting(server):
    """Refuse to start without the signing keys: every lookup would otherwise answer 500."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
    django.setup()
    from directory import keys

    for purpose in keys.Purpose:
        keys.signing_key(purpose)  # ImproperlyConfigured: run `manage.py generate_keys`
