"""Helpers shared by the registry's API tests: problem documents and the log's kinds."""

from __future__ import annotations

from registry.models import LogEntry, LogKind

PROBLEM = "application/problem+json"


def changes():
    """The log entries a test's actions appended: the factories' set-up is logged as
    ``state.snapshot`` entries (tests/factories.py), which these leave out."""
    return LogEntry.objects.exclude(kind=LogKind.STATE_SNAPSHOT)


def log_kinds() -> list[str]:
    return list(changes().order_by("sequence").values_list("kind", flat=True))


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body
