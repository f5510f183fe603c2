"""One list of trusted proxies (TRUSTED_PROXIES) for every use of the client's address, and its
deprecated alias VAULT_TRUSTED_PROXIES read at start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.registry.helpers import assert_problem

CHECKPOINT = "/api/v1/log/checkpoint"


def test_one_list_decides_request_ids_and_rate_limits(settings, checkpoint):
    # given a proxy network trusted by the one setting, and one public request a minute
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.VAULT_RATE_PUBLIC_PER_MINUTE = 1
    proxy = Client(REMOTE_ADDR="10.1.2.3")

    # when two clients come through it, each with the request id the proxy gave
    one = proxy.get(CHECKPOINT, HTTP_X_FORWARDED_FOR="203.0.113.1", HTTP_X_REQUEST_ID="req-1")
    other = proxy.get(CHECKPOINT, HTTP_X_FORWARDED_FOR="203.0.113.2", HTTP_X_REQUEST_ID="req-2")

    # then each is its own client for the limit, and the proxy's request ids are kept
    assert (one.status_code, other.status_code) == (200, 200)
    assert (one["X-Request-ID"], other["X-Request-ID"]) == ("req-1", "req-2")

    # and once the proxy is no longer listed, neither its header nor its request id is believed
    settings.TRUSTED_PROXIES = []
    third = proxy.get(CHECKPOINT, HTTP_X_FORWARDED_FOR="203.0.113.3", HTTP_X_REQUEST_ID="req-3")
    fourth = proxy.get(CHECKPOINT, HTTP_X_FORWARDED_FOR="203.0.113.4")
    assert third.status_code == 200 and third["X-Request-ID"] != "req-3"
    assert_problem(fourth, 429, "rate_limited")


def _settings_with(**environment: str) -> subprocess.CompletedProcess:
    """Start the production settings in a new process with these variables; print the list in
    force, then the warnings of ``manage.py check``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "TRUSTED_PROXIES", "VAULT_TRUSTED_PROXIES"))
    }
    env |= {"DJANGO_SETTINGS_MODULE": "registry.settings", "SECRET_KEY": "s" * 50, **environment}
    code = (
        "import django; django.setup();"
        "from django.conf import settings; print(','.join(settings.TRUSTED_PROXIES));"
        "from django.core import checks;"
        "[print(m.id, m.msg) for m in checks.run_checks(tags=['security'])"
        " if m.id.startswith('registry.')]"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("environment", "in_force", "warning"),
    [
        ({}, "unix,127.0.0.1,::1", None),
        ({"TRUSTED_PROXIES": "unix,10.0.0.0/8"}, "unix,10.0.0.0/8", None),
        ({"VAULT_TRUSTED_PROXIES": "10.0.0.0/8"}, "10.0.0.0/8", "read in place of"),
        (
            {"TRUSTED_PROXIES": "unix", "VAULT_TRUSTED_PROXIES": "10.0.0.0/8"},
            "unix",
            "ignored: TRUSTED_PROXIES is set",
        ),
    ],
    ids=["default", "new-name", "old-name-alone", "both"],
)
def test_the_old_name_is_a_deprecated_alias_read_at_start(environment, in_force, warning):
    done = _settings_with(**environment)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == in_force
    warnings = [line for line in lines[1:] if line.startswith("registry.W001")]
    if warning is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warning in warnings[0]


def test_a_malformed_list_refuses_to_start():
    done = _settings_with(TRUSTED_PROXIES="unix,10.0.0.0/33")

    assert done.returncode != 0
    assert "ImproperlyConfigured: TRUSTED_PROXIES" in done.stderr
