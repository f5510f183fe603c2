"""Helpers shared by the registry's API tests: problem documents and the log's kinds."""

from __future__ import annotations

from registry.models import LogEntry

PROBLEM = "application/problem+json"


def log_kinds() -> list[str]:
    return list(LogEntry.objects.order_by("sequence").values_list("kind", flat=True))


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body
