"""Domain errors and their stable machine codes, in one place (STYLE.md).

Services raise these; the API's exception handler turns them into RFC 9457 problem+json. The
codes are part of the public API: clients branch on them, so they never change meaning.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    # Request and protocol
    BAD_REQUEST = "bad_request"
    MALFORMED_JSON = "malformed_json"
    VALIDATION_ERROR = "validation_error"
    NOT_AUTHENTICATED = "not_authenticated"
    INVALID_TOKEN = "invalid_token"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_REVOKED = "token_revoked"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    ORGANISATION_INACTIVE = "organisation_inactive"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    THROTTLED = "throttled"
    SERVER_ERROR = "server_error"
    # Vault numbers (the parser's own codes are added as they are: invalid_check_digits, …)
    VAULT_NOT_FOUND = "vault_not_found"
    VAULT_CLOSED = "vault_closed"
    # State
    INVALID_STATUS_TRANSITION = "invalid_status_transition"
    PROVIDER_NOT_ACTIVE = "provider_not_active"
    ISSUER_NOT_ACTIVE = "issuer_not_active"
    ALREADY_HELD = "already_held"
    NOT_HELD = "not_held"
    REGISTRY_LOCKED = "registry_locked"
    ENDPOINT_ALREADY_DEACTIVATED = "endpoint_already_deactivated"
    CERTIFICATE_ALREADY_RETIRED = "certificate_already_retired"
    DUPLICATE_ENDPOINT = "duplicate_endpoint"
    DUPLICATE_CERTIFICATE = "duplicate_certificate"
    DUPLICATE_LEGAL_ID = "duplicate_legal_id"
    TOKEN_ALREADY_REVOKED = "token_already_revoked"
    NUMBER_SPACE_EXHAUSTED = "number_space_exhausted"
    # Routing plans
    TOO_MANY_NUMBERS = "too_many_numbers"
    PURPOSE_NOT_ALLOWED = "purpose_not_allowed"


class DomainError(Exception):
    """A refusal with an HTTP status, a stable code and a human message."""

    status = 400
    title = "Bad request"

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(detail)
        self.code = str(code)
        self.detail = detail
        if status is not None:
            self.status = status
        self.extra = extra or {}


class InvalidInput(DomainError):
    status = 400
    title = "Invalid input"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Gone(DomainError):
    status = 410
    title = "Gone"


class Conflict(DomainError):
    """The request is well-formed but the record is not in a state that allows it."""

    status = 409
    title = "Conflict"
