"""Structured logs: one JSON object per line, with the request each line belongs to (issue 12).

Every line carries ``time``, ``level``, ``logger`` and ``message``; a line logged while a request
is being answered also carries its ``request_id`` (from ``contextvars``, set by
``registry.middleware``), and the access line of each request (logger ``registry.requests``)
adds ``method``, ``route``, ``status``, ``latency_ms`` and ``caller`` (the organisation id of
the token, never the token). ``LOG_FORMAT=text`` writes the same fields as readable text.

No Django import: gunicorn's own logger uses these formatters too (deploy/gunicorn.conf.py).
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import traceback
from datetime import UTC, datetime

import orjson

# The request being answered in this thread or task (None outside a request).
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# The fields of a request's access line, in the order they are written.
REQUEST_FIELDS = ("request_id", "method", "route", "status", "latency_ms", "caller")

# What a proxy's X-Request-ID may be to be kept: anything else is replaced (log injection).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_request_id() -> str:
    return os.urandom(16).hex()


def accept_request_id(value: str | None) -> str:
    """The proxy's request id when it is a plain token, a new one otherwise."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return new_request_id()


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = {}
    for name in REQUEST_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            fields[name] = value
    if "request_id" not in fields:
        current = request_id.get()
        if current is not None:
            fields["request_id"] = current
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the request's
    fields when there is one, and the traceback as ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_fields(record))
        if record.exc_info:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """The same fields as readable text, for a terminal (``make run``)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        if not fields:
            return text
        extra = " ".join(f"{name}={value}" for name, value in fields.items())
        first, _newline, rest = text.partition("\n")
        return f"{first} [{extra}]" + (f"\n{rest}" if rest else "")


FORMATTERS = {"json": JsonFormatter, "text": TextFormatter}
