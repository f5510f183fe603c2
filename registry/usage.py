"""Who asked how many numbers: counted in memory per worker, written to ``IssuerUsage`` in bulk.

A lookup or a plan adds to this process's counters, keyed (issuer, minute, purpose): no write
on the hot path. With Redis the counters ride along the next rate-limit pipeline into Redis
hashes (``drain_into``), and ``manage.py flush_usage`` (a timer, deploy/systemd) moves them to
the table. Without Redis each worker writes its own counters to the table at most every
VAULT_USAGE_FLUSH_SECONDS, and when it exits (with Redis, a worker whose limiter is off
sends its counters on their own as often). Either way ``registry.services.usage`` adds them
up and flags issuers whose share of unknown numbers looks like enumeration.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from collections import defaultdict
from typing import Any

from django.conf import settings

Key = tuple[str, int, str]  # (issuer id, minute as Unix time, purpose)
FIELDS = ("lookups", "numbers", "unknown")
PENDING = "vault-registry:usage:pending"
HASH_PREFIX = "vault-registry:usage:"

_lock = threading.Lock()
_counts: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
_last_flush = time.monotonic()


def record(issuer_id: Any, purpose: str, *, numbers: int, unknown: int, now: float | None = None):
    """Count one request of ``numbers`` numbers (``unknown`` of them unknown) for an issuer."""
    minute = int((time.time() if now is None else now) // 60) * 60
    with _lock:
        counts = _counts[(str(issuer_id), minute, purpose or "")]
        counts[0] += 1
        counts[1] += numbers
        counts[2] += unknown
    if time.monotonic() - _last_flush >= settings.VAULT_USAGE_FLUSH_SECONDS:
        # Due: without Redis to the table; with Redis on their own (when no limiter carried
        # them, a limit being off).
        if settings.REDIS_URL:
            push_redis()
        else:
            flush_local()


def reset() -> None:
    """Forget this process's counters (tests)."""
    _take()


def _take() -> dict[Key, list[int]]:
    global _counts
    with _lock:
        taken, _counts = _counts, defaultdict(lambda: [0, 0, 0])
    return dict(taken)


def drain_into(pipe: Any) -> None:
    """Queue this worker's counters on a Redis pipeline (HINCRBY per field) and forget them."""
    if not _counts:
        return
    for (issuer, minute, purpose), counts in _take().items():
        name = f"{HASH_PREFIX}{issuer}:{minute}:{purpose}"
        for field, value in zip(FIELDS, counts, strict=True):
            pipe.hincrby(name, field, value)
        pipe.sadd(PENDING, name)


def push_redis() -> None:
    """Send this worker's counters to Redis now, in one pipeline."""
    global _last_flush
    from registry.ratelimit import redis_client

    _last_flush = time.monotonic()
    pipe = redis_client().pipeline(transaction=False)
    drain_into(pipe)
    pipe.execute()


def flush_local() -> int:
    """Write this worker's counters to the table; returns how many rows were touched."""
    global _last_flush
    _last_flush = time.monotonic()
    taken = _take()
    if not taken:
        return 0
    from registry.services.usage import usage_add

    return usage_add(taken)


def flush_redis() -> int:
    """Move every usage hash from Redis to the table (``manage.py flush_usage``)."""
    from registry.ratelimit import redis_client
    from registry.services.usage import usage_add

    client = redis_client()
    if client is None:
        return 0
    taken: dict[Key, list[int]] = {}
    for raw in client.smembers(PENDING):
        name = raw.decode()
        pipe = client.pipeline(transaction=True)  # read and delete at once: counted once
        pipe.hgetall(name)
        pipe.delete(name)
        pipe.srem(PENDING, name)
        values = pipe.execute()[0]
        issuer, minute, purpose = name[len(HASH_PREFIX) :].split(":", 2)
        counts = [int(values.get(field.encode(), 0)) for field in FIELDS]
        taken[(issuer, int(minute), purpose)] = counts
    return usage_add(taken) if taken else 0


def flush() -> int:
    """Everything this process can reach: its own counters and, with Redis, the shared ones."""
    if settings.REDIS_URL:
        push_redis()
        return flush_redis()
    return flush_local()


def _flush_at_exit() -> None:
    # A worker going down must not fail on its statistics.
    with contextlib.suppress(Exception):
        flush()


atexit.register(_flush_at_exit)
