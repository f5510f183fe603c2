"""Talking to the registry: an injectable transport (urllib by default) and the API calls."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from directory.client.errors import RegistryError
from directory.transparency.tiles import TILE_WIDTH, tile_path

Transport = Callable[[str, dict[str, str]], tuple[int, bytes]]
"""``transport(url, headers) -> (status, body)``: one GET. Tests inject Django's test client."""


def urllib_transport(timeout: float = 30.0) -> Transport:
    """A GET over HTTP(S) with the standard library."""

    def get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
        if not url.startswith(("https://", "http://")):
            raise RegistryError(0, f"not an HTTP URL: {url}")
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 (scheme checked)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except urllib.error.URLError as exc:
            raise RegistryError(0, f"cannot reach {url}: {exc.reason}") from exc

    return get


class Registry:
    """The registry's HTTP API as the client uses it."""

    def __init__(self, base_url: str, token: str = "", transport: Transport | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.transport = transport or urllib_transport()

    def _get(self, path: str, params: dict[str, Any] | None = None) -> tuple[int, bytes]:
        url = f"{self.base_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return self.transport(url, headers)

    def _ok(self, path: str, params: dict[str, Any] | None = None) -> bytes:
        status, body = self._get(path, params)
        if status != 200:
            raise RegistryError(status, _problem(body))
        return body

    def lookup(
        self, number: str, at: str | None = None, purpose: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """The lookup answer, whatever its status (refusals carry receipts too)."""
        path = "/api/v1/vaults/" + urllib.parse.quote(number, safe="")
        params = {"at": at or None, "purpose": purpose or None}
        status, body = self._get(path, params if any(params.values()) else None)
        try:
            return status, json.loads(body)
        except ValueError as exc:
            raise RegistryError(status, "the answer is not JSON") from exc

    def checkpoint(self) -> str:
        return self._ok("/api/v1/log/checkpoint").decode()

    def consistency_proof(self, size1: int, size2: int) -> list[str]:
        body = self._ok("/api/v1/log/proofs/consistency", {"from": size1, "to": size2})
        return json.loads(body)["proof"]

    def tile(self, level: int, index: int, width: int) -> bytes:
        suffix = "" if width == TILE_WIDTH else f".p/{width}"
        return self._ok(f"/api/v1/log/tile/{level}/{tile_path(index)}{suffix}")

    def entries(self, index: int, width: int) -> bytes:
        suffix = "" if width == TILE_WIDTH else f".p/{width}"
        return self._ok(f"/api/v1/log/tile/entries/{tile_path(index)}{suffix}")

    def well_known(self) -> dict[str, Any]:
        return json.loads(self._ok("/.well-known/vault-registry"))

    def federation(self) -> str:
        """The signed federation document the registry serves (verify it before use)."""
        return self._ok("/.well-known/vault-federation").decode()


def _problem(body: bytes) -> str:
    try:
        problem = json.loads(body)
        return f"{problem.get('code')}: {problem.get('detail')}"
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace")
