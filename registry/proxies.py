"""Who is asking: the client's address and the proxy headers believed, from trusted proxies only.

A header a client sets itself (``X-Forwarded-For``, ``X-Request-ID``) is believed only when the
connection comes from a proxy listed in ``TRUSTED_PROXIES`` (addresses or networks; ``unix``
for a Unix socket, as nginx reaches gunicorn in deploy/), which replaces what the client sent.
"""

from __future__ import annotations

import functools
import ipaddress

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(items: list[str]) -> tuple[list[Network], bool]:
    """(networks, whether ``unix`` is listed) from a list of addresses and CIDR networks."""
    networks = [ipaddress.ip_network(item, strict=False) for item in items if item != "unix"]
    return networks, "unix" in items


@functools.lru_cache(maxsize=256)
def _address(value: str):
    try:
        return ipaddress.ip_address(value.strip().split("%", 1)[0])
    except ValueError:
        return None


def in_networks(address: str, allowed: tuple[list[Network], bool]) -> bool:
    networks, unix = allowed
    parsed = _address(address)
    if parsed is None:  # a Unix socket's peer has no IP address (gunicorn gives '' or a path)
        return unix
    return any(parsed in network for network in networks)


def from_trusted_proxy(request) -> bool:
    return in_networks(request.META.get("REMOTE_ADDR", ""), settings.TRUSTED_PROXY_NETWORKS)


def client_address(request) -> str:
    """The connection's address, or through a trusted proxy the last address it forwards."""
    remote = request.META.get("REMOTE_ADDR", "")
    if in_networks(remote, settings.TRUSTED_PROXY_NETWORKS):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.rsplit(",", 1)[-1].strip()
    return remote
