"""Shared test helpers: a log of test entries, raw SQL past the append-only triggers, and the
verifying client driven against the Django test server without a network."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

from django.db import connection
from django.test import Client
from django.utils import timezone

from directory.client import cli, http
from directory.client.verify import PinnedKeys, Trust
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


def django_poster(tamper: bool = False):
    """POSTs through Django's test client, reporting progress as a real upload would; with
    ``tamper``, a routing plan's answer is altered by one byte on its way."""
    client = Client()

    def post(url, headers, body, sent, received):
        sent(len(body), len(body))
        response = client.post(
            url.removeprefix(BASE),
            data=body,
            content_type=headers["Content-Type"],
            HTTP_AUTHORIZATION=headers.get("Authorization", ""),
            HTTP_ACCEPT=headers["Accept"],
        )
        content = b"".join(response.streaming_content) if response.streaming else response.content
        if tamper and "routing-plans" in url:
            content = content.replace(b'"routable":', b'"routable": ', 1)
        received(len(content), len(content))
        return response.status_code, dict(response.items()), content

    return post


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


class Cli:
    """Runs ``vault-registry`` in-process against the test server with pinned keys, its own
    mirror and ``--state`` file (``name`` tells two clients of one test apart)."""

    def __init__(self, tmp_path: Path, token: str, name: str = "client"):
        _, self.keys = pinned_keys(tmp_path)
        self.tmp_path = tmp_path
        self.mirror = tmp_path / f"{name}.mirror.sqlite3"
        self.state = tmp_path / f"{name}.state.json"
        self.token = token

    def __call__(self, *argv: str, options=(), transport=None, poster=None):
        out, err = StringIO(), StringIO()
        code = cli.main(
            [
                "--url",
                BASE,
                "--token",
                self.token,
                "--keys",
                str(self.keys),
                "--mirror",
                str(self.mirror),
                "--state",
                str(self.state),
                *options,
                *argv,
            ],
            transport=transport or django_transport(),
            poster=poster or django_poster(),
            out=out,
            err=err,
        )
        return code, out.getvalue(), err.getvalue()

    def plan(self, numbers_asked: list[str], *extra: str, **kwargs):
        """``vault-registry plan`` (``extra``: more arguments, e.g. ``--purpose``); returns the
        exit status, the plan written (None if refused) and the standard error."""
        run = self.tmp_path / "run.txt"
        run.write_text("\n".join(numbers_asked) + "\n")
        written = self.tmp_path / "plan.json"
        written.unlink(missing_ok=True)
        code, _out, err = self("plan", str(run), "--out", str(written), *extra, **kwargs)
        return code, json.loads(written.read_text()) if written.exists() else None, err

    def trust(self) -> Trust:
        return Trust(PinnedKeys.from_file(self.keys))
