"""Where the web server answers: the URLs of the sockets gunicorn really bound, and the one a
bind setting names (pure: no Django). ``deploy/gunicorn.conf.py`` prints them when the server
is ready; ``load_demo`` writes its curl commands for the bind ``make run`` uses."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

# A wildcard address serves every interface; a browser or curl on the same machine reaches it
# through the loopback.
_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104
DEFAULT_PORT = 8000  # gunicorn's, for a bind without one


def http_url(host: str, port: int, *, https: bool = False) -> str:
    """``http://host:port/``: a wildcard host as the loopback, an IPv6 host in brackets."""
    local = _WILDCARDS.get(host, host)
    if ":" in local:
        local = f"[{local}]"
    return f"{'https' if https else 'http'}://{local}:{port}/"


def listener_url(family: int, address: Any, *, https: bool = False) -> str:
    """The URL of one bound socket, from its family and ``getsockname()``."""
    if family == socket.AF_UNIX:
        path = address.decode() if isinstance(address, bytes) else str(address)
        return f"unix:{path}"
    host, port = address[0], address[1]
    url = http_url(host, port, https=https)
    return f"{url} (every interface)" if host in _WILDCARDS else url


def announce(listeners: Iterable[Any], *, https: bool = False) -> list[str]:
    """One line per listening socket saying where the registry answers and its main pages."""
    lines = []
    for listener in listeners:
        url = listener_url(listener.family, listener.getsockname(), https=https)
        if url.startswith("unix:"):
            lines.append(f"Serving on {url} (behind the reverse proxy)")
            continue
        base = url.split(" ", 1)[0]
        lines.append(
            f"Serving on {url}: API docs {base}api/docs/, admin {base}admin/, portal {base}portal/"
        )
    return lines


def bind_url(bind: str) -> str | None:
    """The base URL (no trailing slash) a gunicorn bind (``GUNICORN_BIND``: ``host:port``,
    ``[v6]:port``, ``host``, ``unix:path``, several separated by commas: the first counts)
    serves, or None for a Unix socket or port 0 (known only once bound)."""
    first = bind.split(",")[0].strip()
    if not first or first.startswith(("unix:", "fd://")):
        return None
    if first.startswith("["):
        host, _, rest = first[1:].partition("]")
        port = rest.removeprefix(":")
    elif first.count(":") == 1:
        host, port = first.split(":")
    else:
        host, port = first, ""
    port_number = int(port) if port.isascii() and port.isdigit() else DEFAULT_PORT
    if port_number == 0:
        return None
    return http_url(host, port_number).rstrip("/")
