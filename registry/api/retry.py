"""Retrying a write the database refused for concurrency, then answering 503 ``retry_later``.

Services take their locks in one order (``registry.services.common``), so deadlocks between
them should not happen; a serialisation failure, or a deadlock with something outside the
services (an operator's SQL, a future service that breaks the order), still may. Both roll the
whole transaction back, so running the service call again is safe. ``RetryWritesMixin`` is the
one mechanism: every handler of a view that writes runs under ``retry_transient`` (GET too: the
provider API's reads may settle overdue transfers first).
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import OperationalError, connection

from registry.errors import ErrorCode, RetryLater

logger = logging.getLogger("registry.api")

F = TypeVar("F", bound=Callable[..., Any])

# SQLSTATE of PostgreSQL's serialization_failure and deadlock_detected (psycopg's
# errors.SerializationFailure and errors.DeadlockDetected).
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
HANDLERS = ("get", "post", "put", "patch", "delete")


def is_transient(exc: BaseException) -> bool:
    """A failure that a new attempt of the same transaction may not meet: a deadlock or a
    serialisation failure on PostgreSQL (Django's OperationalError wrapping psycopg's), a busy
    database on SQLite."""
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) in TRANSIENT_SQLSTATES:
        return True
    return connection.vendor == "sqlite" and "database is locked" in str(exc)


def retry_transient(func: F) -> F:
    """Run ``func`` again, up to VAULT_WRITE_ATTEMPTS times in all, while it fails transiently,
    waiting a short random time between attempts; then raise RetryLater (503 ``retry_later``).

    Inside a transaction opened by the caller nothing can be retried (the transaction is
    broken): the failure is answered 503 at once.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        attempts = max(1, settings.VAULT_WRITE_ATTEMPTS)
        for attempt in range(1, attempts + 1):
            try:
                return func(*args, **kwargs)
            except OperationalError as exc:
                if not is_transient(exc):
                    raise
                if attempt == attempts or connection.in_atomic_block:
                    logger.warning("Write refused after %d attempt(s): %s", attempt, exc)
                    raise RetryLater(
                        ErrorCode.RETRY_LATER,
                        "The registry is busy with concurrent changes; nothing was changed. "
                        "Try again shortly.",
                        retry_after=settings.VAULT_RETRY_AFTER_SECONDS,
                    ) from exc
                # Up to 50 ms, growing: rivals that collided do not collide again in step.
                time.sleep(random.uniform(0, 0.05 * attempt))  # noqa: S311 (jitter, not a secret)
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper  # type: ignore[return-value]


class RetryWritesMixin:
    """For DRF views: the request's handler (the most derived one, so a ``super()`` call inside
    is not retried twice) runs under ``retry_transient``."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        method = request.method.lower()
        if method in HANDLERS and hasattr(self, method):
            setattr(self, method, retry_transient(getattr(self, method)))
