"""A vault's routing history from the log, and where it routed at a past moment.

``VaultLogRef`` (written with every entry that names a vault) makes this one indexed query on
(number, sequence) joined to the log by primary key, whatever the size of the log.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from directory.models import VaultLogRef
from registry.errors import ErrorCode, InvalidInput
from registry.models import LogEntry


def at_parameter(request) -> str | None:
    """The raw ``at`` of a request; its query string is parsed only if there is one (most
    lookups have none)."""
    return request.GET.get("at") if request.META.get("QUERY_STRING") else None


def parse_at(raw: str | None) -> datetime | None:
    """The ``at`` query parameter: an ISO 8601 time with a UTC offset; None when absent."""
    if not raw:
        return None
    try:
        moment = parse_datetime(raw.replace(" ", "+"))  # a '+' in a query string arrives as ' '
    except ValueError:
        moment = None
    if moment is None or timezone.is_naive(moment):
        raise InvalidInput(
            ErrorCode.INVALID_TIME,
            "at must be an ISO 8601 time with a UTC offset, e.g. 2025-01-31T12:00:00Z.",
        )
    try:
        # 0001-01-01T00:00:00+14:00 is before year 1 in UTC, which datetime cannot hold: every
        # comparison with it would raise OverflowError.
        moment.astimezone(timezone.get_fixed_timezone(0))
    except OverflowError:
        raise InvalidInput(
            ErrorCode.INVALID_TIME, "at is out of range (years 1 to 9999, in UTC)."
        ) from None
    if moment > timezone.now():
        raise InvalidInput(ErrorCode.INVALID_TIME, "at must not be in the future.")
    return moment


def vault_entries(number: str, until: datetime | None = None) -> list[tuple[int, dict[str, Any]]]:
    """(log index, decoded entry) of every log entry naming the vault, oldest first: one query."""
    sequences = VaultLogRef.objects.filter(number=number).values("sequence")
    rows = LogEntry.objects.filter(sequence__in=sequences).order_by("sequence")
    if until is not None:
        rows = rows.filter(created_at__lte=until)
    return [
        (sequence, json.loads(bytes(body)))
        for sequence, body in rows.values_list("sequence", "body")
    ]


def vault_history(number: str) -> list[dict[str, Any]]:
    """The vault's routing changes as the log recorded them."""
    return [
        {
            "log_index": sequence,
            "kind": entry.get("kind"),
            "at": entry.get("at"),
            "provider": entry.get("provider"),
            "entry": entry,
        }
        for sequence, entry in vault_entries(number)
    ]
