"""Driving the verifying client against the Django test server, without a network."""

from __future__ import annotations

import json
from pathlib import Path

from django.test import Client

from directory.client import http
from directory.client.verify import PinnedKeys

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
