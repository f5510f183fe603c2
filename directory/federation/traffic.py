"""Forwarded traffic per peer, counted in memory per worker and written to ``PeerTraffic`` in
bulk, as ``registry.usage`` counts issuers: the forwarding hot path never writes.

Each worker adds to its counters keyed (peer, minute, direction) and remembers the last error
and the last answer of each peer; at most every ``VAULT_USAGE_FLUSH_SECONDS`` (checked after
each request), and when it exits, it adds them to the tables (``federation_traffic_add``).
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from collections import defaultdict

from django.conf import settings

OUT, IN = "out", "in"
LOOKUP, PLAN = "lookup", "plan"

Key = tuple[str, int, str]  # (member, minute as Unix time, direction)

_lock = threading.Lock()
_counts: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # lookups plans numbers errors
_seen: dict[str, dict] = {}  # member → {"ok": time, "error": (time, message)}
_last_flush = time.monotonic()


def count(
    member: str,
    direction: str,
    kind: str,
    numbers: int,
    *,
    error: str | None = None,
    now: float | None = None,
) -> None:
    """One forwarded lookup or plan of ``numbers`` numbers; ``error``: why the peer did not
    answer (outgoing requests)."""
    now = time.time() if now is None else now
    with _lock:
        counts = _counts[(member, int(now // 60) * 60, direction)]
        counts[0 if kind == LOOKUP else 1] += 1
        counts[2] += numbers
        if direction == OUT:
            seen = _seen.setdefault(member, {})
            if error is None:
                seen["ok"] = now
            else:
                counts[3] += 1
                seen["error"] = (now, error[:500])


def flush_if_due(**_signal) -> None:
    """Flush when due: run after every request (``request_finished``), in the request's
    thread, never in the plan's pool threads that count."""
    if (_counts or _seen) and time.monotonic() - _last_flush >= settings.VAULT_USAGE_FLUSH_SECONDS:
        flush()


def _take() -> tuple[dict[Key, list[int]], dict[str, dict]]:
    global _counts, _seen
    with _lock:
        counts, seen = dict(_counts), _seen
        _counts, _seen = defaultdict(lambda: [0, 0, 0, 0]), {}
    return counts, seen


def reset() -> None:
    """Forget this process's counters (tests)."""
    _take()


def flush() -> int:
    """Add this worker's counters to the tables; how many traffic rows were touched."""
    global _last_flush
    _last_flush = time.monotonic()
    counts, seen = _take()
    if not counts and not seen:
        return 0
    from directory.federation.services import federation_traffic_add

    return federation_traffic_add(counts, seen)


def _flush_at_exit() -> None:
    with contextlib.suppress(Exception):  # a worker going down must not fail on statistics
        flush()


atexit.register(_flush_at_exit)
