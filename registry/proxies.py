"""Who is asking: the client's address and the proxy headers believed, from trusted proxies only.

A header a client sets itself (``X-Forwarded-For``, ``X-Request-ID``) is believed only when the
connection comes from a proxy listed in ``TRUSTED_PROXIES`` (addresses or networks; ``unix``
for a Unix socket, as nginx reaches gunicorn in deploy/), which replaces what the client sent.
One setting and one ``client_address`` for every user of it: request ids, /metrics and the
per-address rate limits.
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


@functools.lru_cache(maxsize=8)
def _parsed(items: tuple[str, ...]) -> tuple[list[Network], bool]:
    return parse_networks(list(items))


def trusted_proxies() -> tuple[list[Network], bool]:
    """``TRUSTED_PROXIES`` parsed (once per value: tests change the setting)."""
    return _parsed(tuple(settings.TRUSTED_PROXIES))


def from_trusted_proxy(request) -> bool:
    return in_networks(request.META.get("REMOTE_ADDR", ""), trusted_proxies())


def client_address(request) -> str:
    """The connection's address, unless it is a trusted proxy: then the right-most
    ``X-Forwarded-For`` hop that is not a trusted proxy itself (proxies in a chain each append
    the address they were reached from; whatever is left of them is the client's to forge).
    When every hop is a trusted address (e.g. Prometheus on the proxy's host), the left-most."""
    remote = request.META.get("REMOTE_ADDR", "")
    trusted = trusted_proxies()
    if not in_networks(remote, trusted):
        return remote
    networks = trusted[0]
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [hop for hop in hops if hop]
    for hop in reversed(hops):
        address = _address(hop)
        # A hop is an IP address; anything else ('unknown', a path) is not a proxy of ours.
        if address is None or not any(address in network for network in networks):
            return hop
    return hops[0] if hops else remote
