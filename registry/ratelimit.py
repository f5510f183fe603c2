"""Rate limits shared by every worker: fixed windows counted in the shared cache.

A limit is ``limit`` units per window (a minute for lookups and plans, where a lookup costs 1 and
a plan its number count). With Redis (``REDIS_URL``) a hit is one round trip: INCRBY and EXPIRE
in one pipeline, which also carries the usage counts this worker gathered since (registry.usage).
Without Redis the counters live in Django's cache (the database table of ``make run``): correct
across workers, two or three queries a hit, and an increment that can lose a race (the limit
is then a little soft), which is why production runs Redis.

A token with a high limit (a bulk issuer: 256 lookups a minute or more) does not pay that round
trip on every lookup: a worker that counts a lookup also reserves a *lease* of up to 64 more units
(limit / 256) in the same INCRBY, and spends it locally for at most 2 seconds before asking
again. Every unit served was counted in Redis while the count was within the limit, so a
window never serves more than its limit; units leased and not spent (at most 64 per worker, at
most 1/256 of the limit each) are counted without being served, so a busy token may be refused
up to that much early. Near the limit the lease is given back and hits are counted one by one.

Answers carry ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds to
the window's end, draft-ietf-httpapi-ratelimit-headers); a refusal is 429 ``rate_limited`` with
``Retry-After``. A refused hit is given back, so hammering does not eat the next request's budget.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache as django_cache

from registry.errors import ErrorCode, TooManyRequests
from registry.proxies import client_address

KEY_PREFIX = "vault-registry:rl:"


@dataclass(frozen=True, slots=True)
class Window:
    """One counter's state after a hit."""

    limit: int
    used: int
    reset: int  # seconds until the window ends

    @property
    def allowed(self) -> bool:
        return self.used <= self.limit

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.limit - self.used)),
            "RateLimit-Reset": str(self.reset),
        }


def redis_client() -> Any | None:
    """The raw Redis client of the cache, or None when the cache is not Redis."""
    if not settings.REDIS_URL:
        return None
    from django_redis import get_redis_connection

    return get_redis_connection("default")


LEASE_MAX = 64  # units a worker may reserve ahead in one round trip
LEASE_SHARE = 256  # ... and at most this fraction of the limit
LEASE_SECONDS = 2.0  # a lease not spent by then is abandoned (its units stay counted)

_leases: dict[str, list] = {}  # window key → [units left, deadline (monotonic), used seen]
_leases_lock = threading.Lock()


def _from_lease(name: str, cost: int, limit: int, reset: int) -> Window | None:
    """Serve a hit from this worker's lease of ``name``, if it holds enough and is still fresh."""
    with _leases_lock:
        lease = _leases.get(name)
        if lease is None or lease[0] < cost or lease[1] <= time.monotonic():
            return None
        lease[0] -= cost
        lease[2] += cost
        return Window(limit=limit, used=lease[2], reset=reset)


def _keep_lease(name: str, extra: int, used: int) -> None:
    with _leases_lock:
        if len(_leases) > 10_000:  # windows of tokens long gone
            _leases.clear()
        if extra:
            _leases[name] = [extra, time.monotonic() + LEASE_SECONDS, used]
        else:
            _leases.pop(name, None)


def hit(key: str, cost: int, limit: int, *, period: int = 60, now: float | None = None) -> Window:
    """Count ``cost`` units against ``key``'s window of ``period`` seconds; a refused hit (over
    ``limit``) is given back."""
    from registry import usage

    now = time.time() if now is None else now
    window, reset = int(now // period), period - int(now % period)
    name = f"{KEY_PREFIX}{key}:{period}:{window}"
    client = redis_client()
    if client is not None:
        if (served := _from_lease(name, cost, limit, reset)) is not None:
            return served
        extra = min(LEASE_MAX, limit // LEASE_SHARE) if cost == 1 else 0  # lookups, not plans
        pipe = client.pipeline(transaction=False)
        pipe.incrby(name, cost + extra)
        pipe.expire(name, period + 1)
        usage.drain_into(pipe)  # this worker's usage counts ride along: no extra round trip
        used = pipe.execute()[0]
        if used > limit and extra:  # near the limit: the lease goes back, this hit alone
            used = client.decrby(name, extra)
            extra = 0
        if used > limit:
            client.decrby(name, cost)
        else:
            used -= extra
            _keep_lease(name, extra, used)
    else:
        django_cache.add(name, 0, period + 1)
        try:
            used = django_cache.incr(name, cost)
        except ValueError:  # expired between add and incr
            django_cache.set(name, cost, period + 1)
            used = cost
        if used > limit:
            django_cache.decr(name, cost)
    return Window(limit=limit, used=used, reset=reset)


def refuse(window: Window, detail: str) -> TooManyRequests:
    return TooManyRequests(
        ErrorCode.RATE_LIMITED,
        detail,
        extra={"limit": window.limit, "retry_after": window.reset},
        headers={**window.headers(), "Retry-After": str(window.reset)},
    )


def charge_issuer(principal: Any, *, plan_numbers: int | None = None) -> Window | None:
    """Charge one lookup, or a plan of ``plan_numbers`` numbers, to the caller's token against
    its issuer's limit; raise 429 ``rate_limited`` over it. None when the limit is off (0)."""
    issuer = principal.issuer
    if plan_numbers is None:
        limit, cost, kind = issuer.rate_lookups_per_minute, 1, "lookup"
        limit = settings.VAULT_RATE_LOOKUP_PER_MINUTE if limit is None else limit
    else:
        limit, cost, kind = issuer.rate_plan_numbers_per_minute, plan_numbers, "plan"
        limit = settings.VAULT_RATE_PLAN_NUMBERS_PER_MINUTE if limit is None else limit
    if not limit:
        return None
    window = hit(f"{kind}:{principal.token.pk}", cost, limit)
    if not window.allowed:
        raise refuse(
            window,
            f"This token may ask {limit} numbers a minute for {kind}s; "
            f"try again in {window.reset} s.",
        )
    return window


def charge_address(request: Any, scope: str, limit: int, period: int) -> Window | None:
    """Charge one request of the caller's address to ``scope``; 429 over ``limit``."""
    if not limit:
        return None
    window = hit(f"{scope}:{client_address(request)}", 1, limit, period=period)
    if not window.allowed:
        raise refuse(window, f"Too many requests from your address; try again in {window.reset} s.")
    return window
