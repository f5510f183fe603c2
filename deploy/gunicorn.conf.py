"""gunicorn settings for Vault Registry: the GUNICORN_* variables below set the usual ones, and
GUNICORN_CMD_ARGS any other (gunicorn reads it itself)."""

import multiprocessing
import os

wsgi_app = "registry.wsgi:application"
# Under systemd (deploy/systemd/vault-registry.socket) the listening socket is passed in
# (LISTEN_FDS) and this is not used: the socket outlives every gunicorn, so a restart after a
# crash never finds the address taken by orphaned workers.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Restart workers now and then so that no slow leak can grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = 2000
errorlog = "-"
# Request lines and headers are bounded; bodies are bounded by the API (413). nginx
# (deploy/nginx/vault-registry.conf: large_client_header_buffers 4 8k) refuses first what is
# larger, with a problem+json page: gunicorn's own refusals are HTML, so its limits are the
# same, never smaller (a request line or a header line of at most 8 KB).
limit_request_line = 8190
limit_request_field_size = 8190
# nginx bounds the headers by size (4 x 8 KB), not by count, and adds its own X-Forwarded-*.
limit_request_fields = 200

# gunicorn 24 and later open a control socket, by default ~/.gunicorn/gunicorn.ctl, one path
# shared by every instance the user runs: off, unless GUNICORN_CONTROL_SOCKET names this
# instance's own (e.g. /run/vault-registry/gunicorn.ctl). Older versions ignore both names.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket
if not control_socket:
    del control_socket


# Django logs each request itself (logger registry.requests: request id, route, status, latency,
# caller); GUNICORN_ACCESSLOG=- adds gunicorn's own access lines.
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "") or None
# gunicorn's own lines in the format of Django's (LOG_FORMAT, registry/logs.py).
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "main": {
            "()": f"registry.logs.{os.environ.get('LOG_FORMAT', 'json').capitalize()}Formatter"
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "main",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
}

# Prometheus (registry/metrics.py): every worker writes its counters to files in this
# directory, and any worker answers /metrics with their sum. Set here, before the workers start
# and import prometheus-client; emptied when gunicorn starts (values of a previous run would
# otherwise be added to this one's).
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    os.path.join(os.environ.get("VAR_DIR", "var"), "prometheus"),
)


def on_starting(server):
    """Empty the metrics directory; refuse to start without the signing keys: every lookup
    would otherwise answer 500."""
    import shutil

    metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir, mode=0o700, exist_ok=True)

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
    django.setup()
    from directory import keys

    for purpose in keys.Purpose:
        keys.signing_key(purpose)  # ImproperlyConfigured: run `manage.py generate_keys`


def when_ready(server):
    """Say where the registry really answers: the address of each socket gunicorn bound (the
    port PORT=8010 make run or GUNICORN_BIND asked for, one the system chose for port 0, or
    the socket systemd passed), never the one this file defaults to."""
    from registry.serving import announce

    for line in announce(server.LISTENERS, https=server.cfg.is_ssl):
        server.log.info(line)


def child_exit(server, worker):
    """A worker's live gauges end with it (prometheus-client's multiprocess mode)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
