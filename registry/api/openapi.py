"""The schema class of every API operation (REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS): the
answers every operation of a kind may give, whatever its handler declares (429, 503).

Its own module: ``registry.api.schema`` defines a view, and DRF loads this class while that
view's class is built.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent

from registry.api.errors import PROBLEM_CONTENT_TYPE
from registry.api.retry import RetryWritesMixin
from registry.api.throttles import AddressRateThrottle
from registry.errors import ErrorCode

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document; `code` is the stable machine code. Some "
    "problems add members (e.g. `limit` and `retry_after` for `rate_limited`).",
    "properties": {
        "type": {"type": "string", "example": "urn:vault-registry:problem:rate_limited"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "stable machine code (README, Errors)"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status", "code", "detail"],
    "additionalProperties": True,
}
INTEGER = {"type": "integer", "minimum": 0}
RETRY_AFTER = {"schema": INTEGER, "description": "Seconds to wait before trying again"}
RATELIMIT_HEADERS = {
    "RateLimit-Limit": {"schema": INTEGER, "description": "The limit of the current window"},
    "RateLimit-Remaining": {"schema": INTEGER, "description": "What is left of it"},
    "RateLimit-Reset": {"schema": INTEGER, "description": "Seconds until the window ends"},
}
# Shared responses (components/responses): name → (description, headers).
RESPONSES: dict[str, tuple[str, dict[str, Any]]] = {
    "RateLimitedToken": (
        "rate_limited: this token's lookups or plan numbers per minute are used up "
        "(VAULT_RATE_*, or the issuer's own limits); the refused request is not counted",
        {"Retry-After": RETRY_AFTER, **RATELIMIT_HEADERS},
    ),
    "RateLimitedAddress": (
        "rate_limited: too many requests from this client address",
        {"Retry-After": RETRY_AFTER, **RATELIMIT_HEADERS},
    ),
    "RetryLater": (
        f"{ErrorCode.RETRY_LATER}: a write refused for concurrency after its retries; "
        "nothing changed",
        {"Retry-After": RETRY_AFTER},
    ),
}


class RegistryAutoSchema(AutoSchema):
    """Adds to every operation the refusals its view's kind gives whatever the handler:
    ``429 rate_limited`` where a rate limit applies (``rate_limit = "token"`` on the view, or
    the per-address throttle) and ``503 retry_later`` where writes are retried
    (``RetryWritesMixin``); both problem+json with ``Retry-After``, as shared responses."""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        kind = getattr(self.view, "rate_limit", None)
        if kind is None and AddressRateThrottle in getattr(self.view, "throttle_classes", []):
            kind = "address"
        if kind is not None:
            responses.setdefault("429", self._shared(f"RateLimited{kind.capitalize()}"))
        if isinstance(self.view, RetryWritesMixin):
            responses.setdefault("503", self._shared("RetryLater"))
        return operation

    def _shared(self, name: str) -> dict[str, Any]:
        """A reference to the shared response ``name`` (registered once, with the Problem
        schema it answers)."""
        problem = ResolvedComponent(
            name="Problem", type=ResolvedComponent.SCHEMA, schema=PROBLEM_SCHEMA, object="Problem"
        )
        self.registry.register_on_missing(problem)
        description, headers = RESPONSES[name]
        response = ResolvedComponent(
            name=name,
            type=ResolvedComponent.RESPONSE,
            schema={
                "description": description,
                "headers": headers,
                "content": {PROBLEM_CONTENT_TYPE: {"schema": problem.ref}},
            },
            object=name,
        )
        self.registry.register_on_missing(response)
        return response.ref
