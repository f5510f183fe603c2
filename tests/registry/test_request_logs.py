"""Structured logs: one JSON object per line, a request id, the route, status, latency and
caller of every request (never its token), 4xx at INFO and 5xx at ERROR."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from django.test import Client

from registry.logs import JsonFormatter, TextFormatter
from tests.factories import make_token
from tests.test_wsgi import call

pytestmark = pytest.mark.django_db

LOOKUP_ROUTE = "/api/v1/vaults/<str:number>"


def access_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "registry.requests"]


def as_json(record: logging.LogRecord) -> dict:
    line = JsonFormatter().format(record)
    assert "\n" not in line
    return json.loads(line)


def test_a_lookup_logs_one_json_line_with_its_request_caller_and_never_the_token(
    caplog, issuer, vault, checkpoint
):
    caplog.set_level(logging.INFO)
    _token, value = make_token(issuer)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {value}")

    response = client.get(f"/api/v1/vaults/{vault.number}")

    assert response.status_code == 200
    [record] = access_lines(caplog)
    line = as_json(record)
    assert line["level"] == "INFO"
    assert line["logger"] == "registry.requests"
    assert line["request_id"] == response["X-Request-ID"]
    assert line["method"] == "GET"
    assert line["route"] == LOOKUP_ROUTE
    assert line["status"] == 200
    assert line["latency_ms"] >= 0
    assert line["caller"] == str(issuer.pk)
    assert line["time"].endswith("+00:00")
    assert value not in JsonFormatter().format(record)
    assert vault.number not in line["message"]  # the route, not the path asked


def test_the_short_path_logs_the_same_line(caplog, issuer, vault, checkpoint):
    caplog.set_level(logging.INFO)
    _token, value = make_token(issuer)

    status, headers, _body = call(f"/api/v1/vaults/{vault.number}", token=value)

    [record] = access_lines(caplog)
    line = as_json(record)
    assert (line["status"], line["route"], line["caller"]) == (status, LOOKUP_ROUTE, str(issuer.pk))
    assert line["request_id"] == headers["X-Request-ID"]


def test_a_provider_api_4xx_is_info_and_django_does_not_warn(caplog, provider_client, provider):
    caplog.set_level(logging.DEBUG)

    response = provider_client.post(
        "/api/v1/provider/endpoints", {"url": "not a url"}, format="json"
    )

    assert 400 <= response.status_code < 500
    [record] = access_lines(caplog)
    assert record.levelno == logging.INFO
    assert record.caller == str(provider.pk)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_5xx_is_an_error_line(caplog, provider_client, monkeypatch):
    from registry.api import views

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(views.EndpointListCreateApi, "get", boom)
    caplog.set_level(logging.INFO)

    response = provider_client.get("/api/v1/provider/endpoints")

    assert response.status_code == 500
    [record] = access_lines(caplog)
    assert record.levelno == logging.ERROR
    assert as_json(record)["status"] == 500


def test_every_line_of_a_request_carries_its_id(provider_client, monkeypatch):
    from registry.api import views

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(views.EndpointListCreateApi, "get", boom)
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JsonFormatter())
    logging.getLogger("registry.api").addHandler(handler)
    try:
        response = provider_client.get("/api/v1/provider/endpoints")
    finally:
        logging.getLogger("registry.api").removeHandler(handler)

    [line] = [json.loads(text) for text in lines]
    assert line["request_id"] == response["X-Request-ID"]
    assert "RuntimeError: boom" in line["exception"]


def test_the_request_id_of_a_trusted_proxy_is_kept_and_others_are_replaced(db):
    # nginx on the Unix socket (REMOTE_ADDR '') passes its $request_id
    proxied = Client(REMOTE_ADDR="", HTTP_X_REQUEST_ID="4f2a9c0e1b7d")
    assert proxied.get("/healthz")["X-Request-ID"] == "4f2a9c0e1b7d"
    # anyone else's is not believed
    direct = Client(REMOTE_ADDR="203.0.113.9", HTTP_X_REQUEST_ID="4f2a9c0e1b7d")
    generated = direct.get("/healthz")["X-Request-ID"]
    assert generated != "4f2a9c0e1b7d"
    assert len(generated) == 32
    # nor a proxy's that could forge a log line
    forged = Client(REMOTE_ADDR="", HTTP_X_REQUEST_ID='x" level=ERROR\nfake')
    assert forged.get("/healthz")["X-Request-ID"] != 'x" level=ERROR\nfake'


def test_text_format_carries_the_same_fields(caplog, db):
    caplog.set_level(logging.INFO)

    Client().get("/healthz")

    [record] = access_lines(caplog)
    text = TextFormatter().format(record)
    assert "GET /healthz 200" in text
    assert "route=/healthz" in text
    assert "status=200" in text


@pytest.mark.parametrize(("value", "formatter"), [("", "JsonFormatter"), ("text", "TextFormatter")])
def test_log_format_setting_picks_the_formatter(value, formatter):
    code = (
        "import os; os.environ['SECRET_KEY'] = 'x' * 40; "
        f"os.environ['LOG_FORMAT'] = {value!r}; "
        "from registry import settings; print(settings.LOGGING['formatters']['main']['()'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"registry.logs.{formatter}"


def test_an_unknown_log_format_refuses_to_start():
    code = (
        "import os; os.environ['SECRET_KEY'] = 'x' * 40; os.environ['LOG_FORMAT'] = 'xml'; "
        "from registry import settings"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    assert "LOG_FORMAT must be json or text" in out.stderr
