"""The WSGI entry point's short path for lookups answers exactly as Django's full stack does."""

from __future__ import annotations

import json
import time
from io import BytesIO
from unittest import mock

import pytest
from django.core.signals import request_finished, request_started
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections

from registry import numbers
from registry.wsgi import LookupFastPath, application
from tests.factories import make_token

pytestmark = pytest.mark.django_db


def call(
    path: str,
    *,
    token: str | None = None,
    method: str = "GET",
    host: str = "localhost",
    keep_connection: bool = True,
):
    """One request through registry.wsgi.application, as gunicorn would send it."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "HTTP_HOST": host,
        "wsgi.input": BytesIO(b""),
        "wsgi.url_scheme": "http",
        "wsgi.errors": BytesIO(),
    }
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    started = {}

    def start_response(status, headers):
        started["status"], started["headers"] = int(status.split()[0]), dict(headers)

    # As Django's test client does: the test's transaction must survive the request signals
    # (full stack) and the short path's own connection housekeeping.
    if keep_connection:
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
    keep = mock.patch.object(LookupFastPath, "close_unusable_connection", staticmethod(lambda: 0))
    try:
        if keep_connection:
            keep.start()
        response = application(environ, start_response)
        body = b"".join(response)
        if hasattr(response, "close"):
            response.close()
    finally:
        if keep_connection:
            keep.stop()
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
    return started["status"], started["headers"], body


def without_receipt(body: bytes) -> dict:
    """The answer without what differs between two calls: the receipt and the time answered."""
    answer = json.loads(body)
    answer.pop("receipt", None)
    answer.pop("at", None)
    answer.get("proof", {}).pop("at", None)
    return answer


@pytest.mark.parametrize("case", ["found", "unknown", "malformed", "closed"])
def test_short_path_answers_as_the_full_stack(case, issuer, vault, lookup_client, actor):
    from registry.services import vaults

    token = make_token(issuer)[1]
    number = {
        "found": vault.number,
        "unknown": numbers.draw("FR", "VLT1").value,
        "malformed": "FR12",
        "closed": vault.number,
    }[case]
    if case == "closed":
        vaults.vault_close(actor=actor, vault=vault)
    status, headers, body = call(f"/api/v1/vaults/{number}", token=token)
    full = lookup_client.get(f"/api/v1/vaults/{number}")
    assert status == full.status_code
    assert headers["Content-Type"] == full["Content-Type"]
    assert without_receipt(body) == without_receipt(full.content)
    assert json.loads(body)["receipt"].count(".") == 2  # signed on the short path too
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Content-Length"] == str(len(body))  # as CommonMiddleware: never chunked


@pytest.mark.django_db(transaction=True)
def test_short_path_closes_an_obsolete_connection_as_django_does(issuer, vault):
    """A connection that outlived CONN_MAX_AGE is closed, as Django's request signals would,
    though the short path does not send them."""
    token = make_token(issuer)[1]
    wrapper = connections[DEFAULT_DB_ALIAS]
    wrapper.ensure_connection()
    wrapper.close_at = time.monotonic() - 1
    with mock.patch.object(wrapper, "close", wraps=wrapper.close) as close:
        status, _headers, _body = call(
            f"/api/v1/vaults/{vault.number}", token=token, keep_connection=False
        )
    assert status == 200
    assert close.called


def test_short_path_accepts_the_display_form(issuer, vault):
    display = numbers.format_display(vault.number)
    status, _headers, body = call(f"/api/v1/vaults/{display}", token=make_token(issuer)[1])
    assert status == 200
    assert json.loads(body)["number"] == vault.number


def test_short_path_refuses_missing_tokens_and_wrong_scopes(vault, provider):
    status, headers, body = call(f"/api/v1/vaults/{vault.number}")
    assert status == 401
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert json.loads(body)["code"] == "not_authenticated"
    status, _headers, body = call(f"/api/v1/vaults/{vault.number}", token=make_token(provider)[1])
    assert (status, json.loads(body)["code"]) == (403, "insufficient_scope")


def test_short_path_checks_allowed_hosts(issuer, vault):
    status, _headers, body = call(
        f"/api/v1/vaults/{vault.number}", token=make_token(issuer)[1], host="evil.example"
    )
    assert status == 400
    assert json.loads(body)["code"] == "bad_request"


def test_other_requests_go_through_django(issuer, provider, actor):
    from registry.services import vaults

    vault = vaults.vault_allocate(actor=actor, provider=provider)
    token = make_token(issuer)[1]
    # the history page and other methods are not the short path, and still answer
    status, _headers, body = call(f"/api/v1/vaults/{vault.number}/history", token=token)
    assert status == 200
    assert json.loads(body)["number"] == vault.number
    status, _headers, body = call(f"/api/v1/vaults/{vault.number}", token=token, method="DELETE")
    assert status == 405
    assert json.loads(body)["code"] == "method_not_allowed"
