"""Forwarded lookups: a number of another member is answered by its home registry, untouched.

The issuer's registry signs the question (``signatures.sign_request``, naming the asking issuer),
sends it to the home registry, and returns the home registry's status, media type and body as
they came: the body carries the home registry's proof and receipt, which the client verifies
with the home registry's keys from the federation document. Nothing of the answer is re-signed
or rewritten here. ``?forward=false`` answers a referral instead (421 ``referred``).
"""

from __future__ import annotations

import logging
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from django.conf import settings
from django.http import HttpResponse

from directory.federation import signatures, traffic
from directory.transparency import federation as fed
from registry.errors import DomainError, ErrorCode

logger = logging.getLogger("directory.federation")

ANSWERED_BY = "Vault-Federation-Answered-By"

Send = Callable[[str, str, dict[str, str], bytes | None, float], tuple[int, dict[str, str], bytes]]
"""``send(method, url, headers, body, timeout) -> (status, headers, body)``; raises
``RegistryDown`` or ``RegistryTimeout``. Tests inject one."""


class RegistryDown(Exception):
    pass


class RegistryTimeout(Exception):
    pass


def urllib_send(
    method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with the standard library (no redirects followed)."""
    if not url.startswith(("https://", "http://")):
        raise RegistryDown(f"not an HTTP URL: {url}")
    request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()
    except TimeoutError as exc:
        raise RegistryTimeout(str(exc)) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError | socket.timeout):
            raise RegistryTimeout(str(exc.reason)) from exc
        raise RegistryDown(str(exc.reason)) from exc
    except OSError as exc:
        raise RegistryDown(str(exc)) from exc


_send: Send = urllib_send


def set_transport(send: Send | None) -> None:
    """Replace how peers are called (tests); None restores urllib."""
    global _send
    _send = send or urllib_send


def unavailable(member: fed.Member, reason: str, *, timeout: bool = False) -> DomainError:
    """502 (down) or 504 (too slow), naming the registry, with Retry-After."""
    return DomainError(
        ErrorCode.REGISTRY_TIMEOUT if timeout else ErrorCode.REGISTRY_UNAVAILABLE,
        f"The home registry {member.name} {'did not answer in time' if timeout else 'is down'}"
        f" ({reason}); ask again later.",
        status=504 if timeout else 502,
        extra={"registry": member.name, "registry_url": member.url},
        retry_after=settings.VAULT_FEDERATION_RETRY_AFTER,
    )


def referral(member: fed.Member, number: str) -> DomainError:
    return DomainError(
        ErrorCode.REFERRED,
        f"This number's home registry is {member.name}: ask it.",
        status=421,
        extra={
            "number": number,
            "registry": member.name,
            "registry_url": member.url,
            "location": f"{member.url}/api/v1/vaults/{number}",
        },
    )


def prepare(
    member: fed.Member,
    method: str,
    path: str,
    issuer: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[str, dict[str, str]]:
    """The URL and signed headers of a request to a member (``unavailable`` when it is not
    active): signed in the caller's thread, sent by ``send`` in any."""
    if member.status != fed.MemberStatus.ACTIVE:
        raise unavailable(member, f"it is {member.status}")
    url = member.url + path
    return url, signatures.sign_request(method, url, headers or {}, body, issuer)


def send(
    member: fed.Member,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float,
    *,
    kind: str,
    numbers: int = 1,
) -> tuple[int, dict[str, str], bytes]:
    """Send a prepared request; its answer, or ``unavailable``. Counted as forwarded traffic
    (``traffic``: in memory, no write here)."""
    try:
        status, answer_headers, answer = _send(method, url, headers, body, timeout)
    except RegistryTimeout as exc:
        logger.warning("registry %s: no answer within %s s: %s", member.name, timeout, exc)
        traffic.count(member.name, traffic.OUT, kind, numbers, error=f"timeout after {timeout} s")
        raise unavailable(member, "timeout", timeout=True) from exc
    except RegistryDown as exc:
        logger.warning("registry %s unreachable: %s", member.name, exc)
        traffic.count(member.name, traffic.OUT, kind, numbers, error=f"unreachable: {exc}")
        raise unavailable(member, "unreachable") from exc
    error = f"HTTP {status}" if status >= 500 else None
    traffic.count(member.name, traffic.OUT, kind, numbers, error=error)
    return status, answer_headers, answer


def call(
    member: fed.Member,
    method: str,
    path: str,
    *,
    issuer: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float | None = None,
    kind: str = "lookup",
    numbers: int = 1,
) -> tuple[int, dict[str, str], bytes]:
    """One signed request to a member registry; its answer, or ``unavailable``."""
    url, signed = prepare(member, method, path, issuer, headers, body)
    timeout = settings.VAULT_FEDERATION_TIMEOUT if timeout is None else timeout
    return send(member, method, url, signed, body, timeout, kind=kind, numbers=numbers)


def forward_lookup(
    member: fed.Member, number: str, at: str | None, issuer: str, purpose: str = ""
) -> HttpResponse:
    """Ask the home registry (the same time and purpose); its answer as it came (status,
    media type, body)."""
    path = "/api/v1/vaults/" + urllib.parse.quote(number, safe="")
    query = {name: value for name, value in (("at", at), ("purpose", purpose)) if value}
    if query:
        path += "?" + urllib.parse.urlencode(query)
    status, headers, body = call(
        member, "GET", path, issuer=issuer, headers={"Accept": "application/json"}
    )
    lowered = {k.lower(): v for k, v in headers.items()}
    if status >= 500:
        raise unavailable(member, f"HTTP {status}")
    response = HttpResponse(
        body, status=status, content_type=lowered.get("content-type", "application/json")
    )
    response[ANSWERED_BY] = member.name
    return response
