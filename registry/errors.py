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
    LENGTH_REQUIRED = "length_required"
    INVALID_PAGE_SIZE = "invalid_page_size"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    THROTTLED = "throttled"
    RATE_LIMITED = "rate_limited"
    RETRY_LATER = "retry_later"
    SERVER_ERROR = "server_error"
    NOT_READY = "not_ready"
    # Answered by the reverse proxy in front (deploy/nginx/errors/*.json)
    URI_TOO_LONG = "uri_too_long"
    HEADERS_TOO_LARGE = "headers_too_large"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    UPSTREAM_TIMEOUT = "upstream_timeout"
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
    NUMBER_TAKEN = "number_taken"
    # Portability (transfer codes, transfers, locks) and notifications
    TRANSFER_CODE_MALFORMED = "transfer_code_malformed"
    TRANSFER_CODE_INVALID = "transfer_code_invalid"
    TRANSFER_CODE_EXPIRED = "transfer_code_expired"
    TRANSFER_CODE_LOCKED = "transfer_code_locked"
    TRANSFER_CODE_NOT_FOUND = "transfer_code_not_found"
    VAULT_ON_HOLD = "vault_on_hold"
    CLIENT_TRANSFER_PROHIBITED = "client_transfer_prohibited"
    POST_TRANSFER_LOCK = "post_transfer_lock"
    TRANSFER_ALREADY_PENDING = "transfer_already_pending"
    GAINING_PROVIDER_NOT_ACTIVE = "gaining_provider_not_active"
    ALREADY_HOSTED_HERE = "already_hosted_here"
    TRANSFER_NOT_FOUND = "transfer_not_found"
    INVALID_TRANSFER_STATE = "invalid_transfer_state"
    TRANSFER_DEADLINE_PASSED = "transfer_deadline_passed"
    NOT_LOSING_PROVIDER = "not_losing_provider"
    NOT_GAINING_PROVIDER = "not_gaining_provider"
    ALREADY_LOCKED = "already_locked"
    NOT_LOCKED = "not_locked"
    ALREADY_TRANSFER_PROHIBITED = "already_transfer_prohibited"
    NOT_TRANSFER_PROHIBITED = "not_transfer_prohibited"
    MESSAGE_NOT_FOUND = "message_not_found"
    WEBHOOK_NOT_FOUND = "webhook_not_found"
    # Webhook destinations (registry.destinations): refused at registration and at delivery
    NOT_HTTPS = "not_https"
    CREDENTIALS_IN_URL = "credentials_in_url"
    UNRESOLVABLE_HOST = "unresolvable_host"
    ADDRESS_NOT_PUBLIC = "address_not_public"
    # Portal accounts
    USERNAME_TAKEN = "username_taken"
    LAST_ADMINISTRATOR = "last_administrator"
    # Routing plans
    TOO_MANY_NUMBERS = "too_many_numbers"
    PURPOSE_NOT_ALLOWED = "purpose_not_allowed"
    # Transparency log, receipts and history
    INVALID_TREE_SIZE = "invalid_tree_size"
    INVALID_LEAF_INDEX = "invalid_leaf_index"
    INVALID_TILE_PATH = "invalid_tile_path"
    TILE_NOT_FOUND = "tile_not_found"
    NO_CHECKPOINT = "no_checkpoint"
    INVALID_STATE_KEY = "invalid_state_key"
    NOT_A_CHECKPOINT_SIZE = "not_a_checkpoint_size"
    INVALID_TIME = "invalid_time"
    # Federation (directory.federation): the bootstrap, forwarding, registry-to-registry calls
    UNKNOWN_ALLOCATOR = "unknown_allocator"
    REFERRED = "referred"
    REGISTRY_UNAVAILABLE = "registry_unavailable"
    REGISTRY_TIMEOUT = "registry_timeout"
    NO_FEDERATION = "no_federation"
    FEDERATION_DOCUMENT_REFUSED = "federation_document_refused"
    UNSIGNED_REQUEST = "unsigned_request"
    INVALID_REQUEST_SIGNATURE = "invalid_request_signature"
    STALE_REQUEST = "stale_request"
    REPLAYED_REQUEST = "replayed_request"
    NOT_A_FEDERATION_MEMBER = "not_a_federation_member"
    NOT_A_MEMBER_OF_HOME_REGISTRY = "not_a_member_of_home_registry"


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
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.code = str(code)
        self.detail = detail
        if status is not None:
            self.status = status
        self.extra = extra or {}
        self.headers = headers or {}
        if retry_after is not None:
            self.headers["Retry-After"] = str(retry_after)


class InvalidInput(DomainError):
    status = 400
    title = "Invalid input"


class Forbidden(DomainError):
    """The caller is known but may not do this (a wrong transfer code, the wrong side)."""

    status = 403
    title = "Forbidden"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Gone(DomainError):
    status = 410
    title = "Gone"


class Unauthorized(DomainError):
    """The caller did not prove who it is (a registry-to-registry request's signature)."""

    status = 401
    title = "Unauthorized"


class Conflict(DomainError):
    """The request is well-formed but the record is not in a state that allows it."""

    status = 409
    title = "Conflict"


class TooManyRequests(DomainError):
    """A rate limit is reached (``rate_limited``); ``Retry-After`` says when to come back."""

    status = 429
    title = "Too many requests"


class RetryLater(DomainError):
    """A write refused for concurrency after every retry (``retry_later``); nothing changed."""

    status = 503
    title = "Service unavailable"

    def __init__(self, code: str, detail: str, *, retry_after: int = 1, **kwargs: Any):
        super().__init__(code, detail, **kwargs)
        self.headers.setdefault("Retry-After", str(retry_after))
