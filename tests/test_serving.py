"""`make run` says where it really answers: gunicorn's when_ready hook names the sockets it
bound (registry/serving.py), and load_demo writes its commands for the bind make run uses."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings

from registry.serving import bind_url, http_url, listener_url

CONF = Path(settings.BASE_DIR) / "deploy" / "gunicorn.conf.py"


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8010, "http://127.0.0.1:8010/"),
        ("0.0.0.0", 8000, "http://127.0.0.1:8000/"),
        ("::1", 18300, "http://[::1]:18300/"),
        ("::", 80, "http://[::1]:80/"),
        ("registry.example", 443, "http://registry.example:443/"),
    ],
)
def test_an_address_is_written_as_a_url_a_local_browser_opens(host, port, url):
    assert http_url(host, port) == url


@pytest.mark.parametrize(
    ("bind", "url"),
    [
        ("127.0.0.1:8010", "http://127.0.0.1:8010"),
        ("0.0.0.0:8020", "http://127.0.0.1:8020"),
        ("[::1]:8030", "http://[::1]:8030"),
        ("localhost", "http://localhost:8000"),
        ("127.0.0.1:8040,127.0.0.1:8041", "http://127.0.0.1:8040"),
        ("unix:/run/vault-registry/gunicorn.sock", None),
        ("fd://3", None),
        ("127.0.0.1:0", None),  # the system picks the port: only the hook can say it
    ],
)
def test_the_url_a_bind_setting_names(bind, url):
    assert bind_url(bind) == url


def _hook_lines(listeners, *, https=False) -> list[str]:
    """Run the configuration's when_ready hook on these sockets; return what it logs."""
    values: dict = {}
    exec(CONF.read_text(), values)
    logged: list[str] = []
    server = SimpleNamespace(
        LISTENERS=listeners,
        cfg=SimpleNamespace(is_ssl=https),
        log=SimpleNamespace(info=lambda message, *args: logged.append(message % args)),
    )
    values["when_ready"](server)
    return logged


def test_the_hook_names_the_port_really_bound(tmp_path):
    # given a socket bound to port 0 (the system chose the port) and a Unix socket
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(tmp_path / "gunicorn.sock"))
    try:
        port = tcp.getsockname()[1]
        # when gunicorn is ready
        lines = _hook_lines([tcp, unix])
    finally:
        tcp.close()
        unix.close()

    # then each socket is named with its real address, the TCP one with the main pages
    base = f"http://127.0.0.1:{port}/"
    assert lines == [
        f"Serving on {base}: API docs {base}api/docs/, admin {base}admin/, portal {base}portal/",
        f"Serving on unix:{tmp_path / 'gunicorn.sock'} (behind the reverse proxy)",
    ]


def test_the_hook_says_https_and_every_interface():
    wildcard = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    wildcard.bind(("0.0.0.0", 0))
    try:
        port = wildcard.getsockname()[1]
        [line] = _hook_lines([wildcard], https=True)
    finally:
        wildcard.close()

    assert line.startswith(f"Serving on https://127.0.0.1:{port}/ (every interface): ")


def test_listener_url_of_an_ipv6_socket():
    assert listener_url(socket.AF_INET6, ("::1", 8000, 0, 0)) == "http://[::1]:8000/"


def test_gunicorn_prints_the_url_of_the_port_it_really_binds(tmp_path, signing_key_dir):
    """gunicorn itself, with the deploy configuration, on a port the system picks."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "GUNICORN_BIND": "127.0.0.1:0",
        "GUNICORN_WORKERS": "1",
        "VAR_DIR": str(tmp_path),
        "VAULT_KEY_DIR": str(signing_key_dir),
        "LOG_FORMAT": "text",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(CONF)],
        cwd=settings.BASE_DIR,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        url, seen, deadline = None, [], time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            ready, _, _ = select.select([server.stderr], [], [], 1)
            if not ready:
                continue
            line = server.stderr.readline()
            if not line:
                break
            seen.append(line)
            found = re.search(r"Serving on (http://127\.0\.0\.1:(\d+)/): ", line)
            if found:
                url = found.group(1)
        assert url is not None, "".join(seen)
        assert not url.endswith(":0/") and not url.endswith(":8000/")
        with urllib.request.urlopen(f"{url}healthz", timeout=10) as answer:
            assert answer.status == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
