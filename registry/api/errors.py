"""RFC 9457 problem+json for every API error, with a stable machine ``code``."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from registry.errors import DomainError, ErrorCode
from registry.numbers import InvalidNumber

logger = logging.getLogger("registry.api")

PROBLEM_CONTENT_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    410: "Gone",
    411: "Length required",
    413: "Content too large",
    415: "Unsupported media type",
    429: "Too many requests",
    500: "Internal server error",
    421: "Misdirected request",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}

_DRF_CODES: list[tuple[type[exceptions.APIException], str]] = [
    (exceptions.NotAuthenticated, ErrorCode.NOT_AUTHENTICATED),
    (exceptions.AuthenticationFailed, ErrorCode.INVALID_TOKEN),
    (exceptions.PermissionDenied, ErrorCode.PERMISSION_DENIED),
    (exceptions.NotFound, ErrorCode.NOT_FOUND),
    (exceptions.MethodNotAllowed, ErrorCode.METHOD_NOT_ALLOWED),
    (exceptions.NotAcceptable, ErrorCode.NOT_ACCEPTABLE),
    (exceptions.UnsupportedMediaType, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    (exceptions.Throttled, ErrorCode.THROTTLED),
    (exceptions.ParseError, ErrorCode.MALFORMED_JSON),
    (exceptions.ValidationError, ErrorCode.VALIDATION_ERROR),
]


def problem(
    status: int, code: str, detail: str, *, instance: str = "", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:vault-registry:problem:{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "code": str(code),
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str = "",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JsonResponse:
    """A plain Django response, for errors raised outside DRF (middleware, URL resolver)."""
    response = JsonResponse(
        problem(status, code, detail, instance=instance, **extra),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
        json_dumps_params={"ensure_ascii": False},
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _field_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """Flatten DRF's nested error detail into [{field, code, message}]."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            field = f"{prefix}.{key}" if prefix else str(key)
            out += _field_errors(value, "" if key == "non_field_errors" else field)
        return out
    if isinstance(detail, list):
        out = []
        for index, value in enumerate(detail):
            nested = isinstance(value, dict | list)
            out += _field_errors(value, f"{prefix}[{index}]" if nested else prefix)
        return out
    return [
        {"field": prefix, "code": str(getattr(detail, "code", "invalid")), "message": str(detail)}
    ]


def _django_validation_errors(exc: DjangoValidationError) -> list[dict[str, str]]:
    if hasattr(exc, "error_dict"):
        return [
            {
                "field": "" if field == "__all__" else field,
                "code": error.code or "invalid",
                "message": " ".join(error.messages),
            }
            for field, errors in exc.error_dict.items()
            for error in errors
        ]
    return [
        {"field": "", "code": error.code or "invalid", "message": " ".join(error.messages)}
        for error in exc.error_list
    ]


def _drf_code(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str) and codes in ErrorCode.__members__.values():
        return codes
    for cls, code in _DRF_CODES:
        if isinstance(exc, cls):
            return code
    return ErrorCode.BAD_REQUEST


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every error becomes problem+json, unexpected ones a bare 500."""
    request = context.get("request")
    instance = request.path if request is not None else ""
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}

    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, DomainError):
        status, code, detail, extra = exc.status, exc.code, exc.detail, dict(exc.extra)
        headers.update(exc.headers)
    elif isinstance(exc, InvalidNumber):
        status, code, detail = 400, str(exc.code), exc.message
    elif isinstance(exc, DjangoValidationError):
        status, code, detail = 400, ErrorCode.VALIDATION_ERROR, "The request is not valid."
        extra["errors"] = _django_validation_errors(exc)
    elif isinstance(exc, exceptions.APIException):
        status, code = exc.status_code, _drf_code(exc)
        if isinstance(exc, exceptions.ValidationError):
            detail = "The request is not valid."
            extra["errors"] = _field_errors(exc.detail)
        else:
            detail = str(exc.detail)
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
    else:
        logger.exception("Unexpected error on %s", instance)
        status, code = 500, ErrorCode.SERVER_ERROR
        detail = "The registry could not answer; the error was logged."

    # As DRF's own handler does: a request wrapped in a transaction (ATOMIC_REQUESTS) must not
    # commit what it did before failing.
    set_rollback()
    if status == 401 and "WWW-Authenticate" not in headers:
        headers["WWW-Authenticate"] = 'Bearer realm="vault-registry"'
    return Response(
        problem(status, code, detail, instance=instance, **extra),
        status=status,
        headers=headers,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def problem_from_exception(exc: Exception, request) -> JsonResponse:
    """The handler's answer as a plain Django response, for views that skip DRF's dispatch."""
    answer = problem_exception_handler(exc, {"request": request})
    headers = {
        name: value
        for name, value in answer.items()
        if name in {"WWW-Authenticate", "Retry-After", "Allow"} or name.startswith("RateLimit-")
    }
    response = JsonResponse(
        answer.data,
        status=answer.status_code,
        content_type=PROBLEM_CONTENT_TYPE,
        json_dumps_params={"ensure_ascii": False},
    )
    for name, value in headers.items():
        response[name] = value
    return response
