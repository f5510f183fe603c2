"""Prometheus metrics at ``/metrics`` (issue 12), with prometheus-client.

Counted as requests are answered (cheap: an increment in this process, or in its memory-mapped
file when gunicorn runs several workers): requests and their latency per route, method and
status, lookups per issuer and status, routing-plan sizes per issuer. Read from the database
when scraped (``StateCollector``, a few indexed counts): log size, the serving checkpoint's size
and age (seconds since its signed time line), witness cosignatures missing on the latest
checkpoint, webhook backlog, transfers pending past their deadline, and the replica's lag.

Several gunicorn workers: prometheus-client's multiprocess mode. ``PROMETHEUS_MULTIPROC_DIR``
names a directory every worker writes its values to (``deploy/gunicorn.conf.py`` sets it and
empties it when gunicorn starts); any worker answers a scrape with the sum over all of them.
Without it (tests, commands, ``runserver``) the values are this process's.

``/metrics`` is for the operator's Prometheus only: the client's address (through a trusted
proxy, the address it forwards) must be in ``METRICS_ALLOWED_ADDRESSES``, or the request must
carry ``Authorization: Bearer <METRICS_TOKEN>``.
"""

from __future__ import annotations

import hmac
import logging
import os
import time

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from registry.api.errors import problem_response
from registry.errors import ErrorCode
from registry.proxies import client_address, in_networks

logger = logging.getLogger("registry.metrics")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
PLAN_BUCKETS = (1, 10, 100, 1_000, 10_000, 50_000, 100_000)

REQUESTS = Counter(
    "vault_registry_requests",
    "HTTP requests answered, by route (URL pattern), method and status",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "vault_registry_request_duration_seconds",
    "Time to answer an HTTP request, by route (URL pattern) and method",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
LOOKUPS = Counter(
    "vault_registry_lookups",
    "Single vault lookups, by issuer (organisation id) and status",
    ["issuer", "status"],
)
PLAN_NUMBERS = Histogram(
    "vault_registry_plan_numbers",
    "Numbers asked per routing plan, by issuer (organisation id)",
    ["issuer"],
    buckets=PLAN_BUCKETS,
)

# Label children are looked up once per distinct label set: prometheus-client's ``labels()``
# takes a lock and builds a tuple on every call.
_requests: dict[tuple[str, str, int], Counter] = {}
_latency: dict[tuple[str, str], Histogram] = {}
_lookups: dict[tuple[str, int], Counter] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    counter = _requests.get((route, method, status))
    if counter is None:
        counter = _requests[(route, method, status)] = REQUESTS.labels(route, method, str(status))
    counter.inc()
    histogram = _latency.get((route, method))
    if histogram is None:
        histogram = _latency[(route, method)] = LATENCY.labels(route, method)
    histogram.observe(seconds)


def count_lookup(issuer: str, status: int) -> None:
    counter = _lookups.get((issuer, status))
    if counter is None:
        counter = _lookups[(issuer, status)] = LOOKUPS.labels(issuer, str(status))
    counter.inc()


def observe_plan(issuer: str, numbers: int) -> None:
    PLAN_NUMBERS.labels(issuer).observe(numbers)


def checkpoint_time(note: str) -> int | None:
    """The ``time`` extension line of a checkpoint's signed text (unix seconds)."""
    for line in note.split("\n\n", 1)[0].splitlines():
        if line.startswith("time "):
            value = line[5:]
            return int(value) if value.isascii() and value.isdigit() else None
    return None


class StateCollector:
    """What the database says, read when Prometheus scrapes (a few indexed queries)."""

    def collect(self):
        from django.utils import timezone

        from directory import checkpoints
        from directory.models import Checkpoint
        from registry import routers
        from registry.models import Message, Transfer, Webhook
        from registry.models.messages import DeliveryState

        up = GaugeMetricFamily(
            "vault_registry_database_up", "1 when the database answered this scrape's queries"
        )
        gauges = []
        try:
            now = timezone.now()
            size = checkpoints.log_size()
            gauges.append(("log_size", "Entries in the transparency log", size))
            serving = checkpoints.serving()
            if serving is not None:
                signed = checkpoint_time(serving.note)
                gauges.append(
                    ("checkpoint_size", "Log size of the checkpoint served", serving.size)
                )
                gauges.append(
                    (
                        "checkpoint_unsigned_entries",
                        "Log entries not yet signed by the checkpoint served",
                        size - serving.size,
                    )
                )
                if signed is not None:
                    gauges.append(
                        (
                            "checkpoint_age_seconds",
                            "Seconds since the time line of the checkpoint served",
                            max(0.0, time.time() - signed),
                        )
                    )
            latest = Checkpoint.objects.first()
            witnesses = len(settings.VAULT_WITNESSES)
            if latest is not None and witnesses:
                gauges.append(
                    (
                        "witness_cosignatures_missing",
                        "Configured witnesses that have not cosigned the latest checkpoint",
                        max(0, witnesses - len(latest.cosigners)),
                    )
                )
            live = Webhook.objects.live().values("provider")
            unacked = Message.objects.filter(acked_at__isnull=True, provider__in=live)
            gauges.append(
                (
                    "webhook_backlog",
                    "Messages due for delivery to a live webhook",
                    unacked.filter(
                        delivery_state=DeliveryState.PENDING, next_delivery_at__lte=now
                    ).count(),
                )
            )
            gauges.append(
                (
                    "webhook_abandoned",
                    "Unacknowledged messages whose webhook delivery was abandoned",
                    unacked.filter(delivery_state=DeliveryState.ABANDONED).count(),
                )
            )
            gauges.append(
                (
                    "transfer_backlog",
                    "Transfers pending past their deadline (process_transfers settles them)",
                    Transfer.objects.overdue(now).count(),
                )
            )
            if routers.replica_configured():
                lag = routers.replica_lag()
                gauges.append(
                    (
                        "replica_lag_seconds",
                        "The read replica's lag (+Inf when it cannot be asked)",
                        float("inf") if lag is None else lag,
                    )
                )
        except Exception:  # a scrape must say the database is down, not fail
            logger.exception("Metrics: the database could not be read")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, documentation, value in gauges:
            family = GaugeMetricFamily(f"vault_registry_{name}", documentation)
            family.add_metric([], value)
            yield family


class _ThisProcess:
    """The counters of this process, when there is no multiprocess directory."""

    def collect(self):
        yield from REGISTRY.collect()


def scrape() -> bytes:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(StateCollector())
    return generate_latest(registry)


def allowed(request) -> bool:
    """A bearer secret, or an allowed address."""
    token = settings.METRICS_TOKEN
    if token:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
            return True
    return in_networks(client_address(request), settings.METRICS_ALLOWED_NETWORKS)


@never_cache
@require_safe
def metrics_view(request):
    """The Prometheus text exposition; 403 problem+json for anyone else."""
    if not allowed(request):
        return problem_response(
            403,
            ErrorCode.PERMISSION_DENIED,
            "Metrics are served to the operator's monitoring only.",
            instance=request.path,
        )
    return HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)
