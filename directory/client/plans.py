"""Routing plans from the client: send a statement run's numbers, get the plan, verify it.

The upload and the answer are streamed with progress callbacks (a 100,000-number plan is a few
megabytes each way). The receipt (the ``Vault-Registry-Receipt`` header) binds the SHA-256 of
the exact bytes sent and received; ``verify_plan`` checks both against it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from directory.client.errors import ClientError, RegistryError, Tampered
from directory.client.verify import PinnedKeys, VerifiedReceipt, verify_receipt

Progress = Callable[[int, int], None]
Poster = Callable[[str, dict[str, str], bytes, Progress, Progress], tuple[int, dict, bytes]]
"""``poster(url, headers, body, sent, received) -> (status, headers, body)``; tests inject one."""

CHUNK = 64 * 1024


def http_poster(timeout: float = 300.0) -> Poster:
    """POST with the standard library, reporting bytes sent and received as they go."""

    def post(url, headers, body, sent, received):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in {"http", "https"}:
            raise RegistryError(0, f"not an HTTP URL: {url}")
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(parts.netloc, timeout=timeout)
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            connection.putrequest("POST", path)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                connection.putheader(name, value)
            connection.endheaders()
            for start in range(0, len(body), CHUNK):
                connection.send(body[start : start + CHUNK])
                sent(min(start + CHUNK, len(body)), len(body))
            response = connection.getresponse()
            total = int(response.headers.get("Content-Length") or 0)
            chunks, done = [], 0
            while chunk := response.read(CHUNK):
                chunks.append(chunk)
                done += len(chunk)
                received(done, max(total, done))
            return response.status, dict(response.headers.items()), b"".join(chunks)
        except OSError as exc:
            raise RegistryError(0, f"cannot reach {url}: {exc}") from exc
        finally:
            connection.close()

    return post


def read_plan_file(path: str) -> tuple[bytes, str]:
    """The body to send and its media type: a JSON array as is, else one number per line."""
    data = Path(path).read_bytes()
    if data.lstrip()[:1] == b"[":
        return data, "application/json"
    return data, "text/plain; charset=utf-8"


def send_plan(
    base_url: str,
    token: str,
    body: bytes,
    content_type: str,
    *,
    ndjson: bool = False,
    purpose: str | None = None,
    poster: Poster | None = None,
    sent: Progress = lambda done, total: None,
    received: Progress = lambda done, total: None,
) -> tuple[bytes, str | None]:
    """POST the plan; returns the answer bytes and the receipt header."""
    url = base_url.rstrip("/") + "/api/v1/routing-plans"
    if purpose:
        url += "?" + urllib.parse.urlencode({"purpose": purpose})
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": content_type,
        "Accept": "application/x-ndjson" if ndjson else "application/json",
    }
    status, answer_headers, answer = (poster or http_poster())(url, headers, body, sent, received)
    if status != 200:
        try:
            detail = json.loads(answer).get("detail", "")
        except ValueError:
            detail = answer[:200].decode(errors="replace")
        raise RegistryError(status, detail)
    receipt = {k.lower(): v for k, v in answer_headers.items()}.get("vault-registry-receipt")
    return answer, receipt


def verify_plan(
    receipt: str | None, keys: PinnedKeys, request: bytes, answer: bytes
) -> VerifiedReceipt:
    """The receipt is the registry's, unexpired, and signs exactly these request and answer."""
    if not receipt:
        raise ClientError("the plan came without a receipt")
    verified = verify_receipt(receipt, keys)
    payload: dict[str, Any] = verified.payload
    if payload.get("typ") != "routing-plan":
        raise Tampered("the receipt is not a routing plan's")
    if payload["asked"].get("request_sha256") != hashlib.sha256(request).hexdigest():
        raise Tampered("the receipt signs another request than the one sent")
    if payload["answer"].get("answer_sha256") != hashlib.sha256(answer).hexdigest():
        raise Tampered("the answer differs from what its receipt signed")
    return verified
