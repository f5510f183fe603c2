"""Where the registry may send a request on a provider's behalf (webhooks). Pure: no Django.

A webhook URL is chosen by a provider, so the registry must not become its way into the
registry's own network (SSRF): loopback, private and link-local ranges, the cloud metadata
address 169.254.169.254, multicast, reserved and unspecified addresses, in IPv4 and IPv6
(including IPv4 addresses embedded in IPv6: mapped, 6to4, NAT64), are refused. The host name is
resolved when the webhook is registered and again at each delivery, every address it resolves to
must be public, and the delivery connects to the address that was checked, so that a DNS answer
that changes in between (rebinding) cannot redirect it. Credentials in URLs are refused: they
would be stored and shown like the rest of the URL.

``allow_private`` lifts the address rule (not the others) for tests and closed networks
(setting VAULT_WEBHOOK_ALLOW_PRIVATE).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from registry.errors import ErrorCode

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedDestination(ValueError):
    """A URL the registry will not call, with its stable code."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked URL: the host to name (TLS SNI, Host header), and the addresses to connect to."""

    host: str
    port: int
    target: str  # path and query, as sent on the request line
    addresses: tuple[str, ...]


def resolve(host: str, port: int) -> list[str]:
    """Every address the host name resolves to (tests replace this)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: Address) -> bool:
    """Routable on the public Internet, and neither multicast nor reserved."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified
    )


def check(url: str, *, allow_private: bool = False) -> Destination:
    """The destination of ``url`` once checked, or RefusedDestination saying why."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise RefusedDestination(ErrorCode.NOT_HTTPS, "an https:// URL is required")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise RefusedDestination(
            ErrorCode.CREDENTIALS_IN_URL, "a webhook URL carries no user name or password"
        )
    host = parts.hostname
    try:
        port = parts.port or 443
    except ValueError:
        raise RefusedDestination(ErrorCode.NOT_HTTPS, "the port is not valid") from None
    try:
        literal: Address | None = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        literal = None
    if literal is not None:
        found = [str(literal)]
    else:
        try:
            found = resolve(host, port)
        except (OSError, UnicodeError):
            found = []
        if not found:
            raise RefusedDestination(ErrorCode.UNRESOLVABLE_HOST, f"{host} does not resolve")
    if not allow_private:
        refused = [a for a in found if not is_public(ipaddress.ip_address(a.split("%")[0]))]
        if refused:
            raise RefusedDestination(
                ErrorCode.ADDRESS_NOT_PUBLIC,
                f"{host} resolves to {', '.join(refused)}, which is not a public address",
            )
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Destination(host=host, port=port, target=target, addresses=tuple(found))
