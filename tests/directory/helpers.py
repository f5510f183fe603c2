"""Shared test helpers: a log of test entries, raw SQL past the append-only triggers, and the
verifying client driven against the Django test server without a network."""

from __future__ import annotations

import json
from pathlib import Path

from django.db import connection
from django.test import Client
from django.utils import timezone

from directory.client import http
from directory.client.verify import PinnedKeys
from registry.models import LogEntry
from registry.services.common import append_log_many

BASE = "http://testserver"


def django_transport(client: Client | None = None) -> http.Transport:
    """A client transport that calls the Django app in-process through its test client."""
    client = client or Client()

    def get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
        extra = {}
        if "Authorization" in headers:
            extra["HTTP_AUTHORIZATION"] = headers["Authorization"]
        response = client.get(url.removeprefix(BASE), **extra)
        return response.status_code, response.content

    return get


def registry(token: str) -> http.Registry:
    return http.Registry(BASE, token, django_transport())


def pinned_keys(tmp_path: Path) -> tuple[PinnedKeys, Path]:
    """The registry's well-known document, saved as a user would pin it."""
    document = Client().get("/.well-known/vault-registry").json()
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(document))
    return PinnedKeys.from_document(document), path


def append_entries(count: int, start: int = 0) -> None:
    """Append ``count`` test entries (numbered from ``start``) in one batch, as services do."""
    append_log_many([("test.entry", {"n": start + i}) for i in range(count)], at=timezone.now())


def leaf_hashes() -> list[bytes]:
    """The leaf hashes of the whole log, in order."""
    return [
        bytes(h) for h in LogEntry.objects.order_by("sequence").values_list("leaf_hash", flat=True)
    ]


def execute_without_trigger(table: str, trigger: str, sql: str, params: list) -> None:
    """Raw SQL behind the registry's back: on PostgreSQL the append-only trigger is disabled."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")
