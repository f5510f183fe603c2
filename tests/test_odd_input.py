"""Odd input found by a fuzzer and by hand (issue 12): a 4xx problem with a stable code, never a
500, and nothing changed."""

from __future__ import annotations

import json
import uuid
from io import BytesIO
from unittest import mock

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient
from rest_framework.views import APIView

from directory.models import RoutingPlan
from registry import numbers
from registry.models import AuditEvent, Endpoint, LogEntry, Provider
from registry.models.organisations import Purpose
from registry.wsgi import LookupFastPath, application
from tests.factories import VaultFactory, make_token
from tests.registry.helpers import PROBLEM, assert_problem

pytestmark = pytest.mark.django_db

NESTED = "[" * 1000 + "]" * 1000  # 2 KB, deeper than the interpreter's stack


def changes() -> tuple[int, int, int, int]:
    """What a refused request must leave as it was."""
    return (
        LogEntry.objects.count(),
        AuditEvent.objects.count(),
        Provider.objects.count(),
        Endpoint.objects.count(),
    )


def drf_routes() -> list[tuple[str, type]]:
    """Every URL served by a DRF view, its parameters filled with values that exist nowhere."""
    unallocated = numbers.make("FR", "VLT1", "000000000000").value
    fill = {"uuid": str(uuid.uuid4()), "int": "1", "path": "x001", "str": unallocated}
    found = []

    def walk(patterns, prefix):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                view = getattr(entry.callback, "cls", None)
                if view is None or not issubclass(view, APIView):
                    continue
                route = prefix + str(entry.pattern)
                for converter, value in fill.items():
                    for name in ("pk", "number", "index", "level"):
                        route = route.replace(f"<{converter}:{name}>", value)
                found.append(("/" + route, view))

    walk(get_resolver().url_patterns, "")
    return found


def test_every_drf_route_is_found():
    routes = dict(drf_routes())
    assert "/api/v1/provider-applications" in routes
    assert "/api/v1/provider/webhook" in routes
    assert all("<" not in route for route in routes)


@pytest.mark.parametrize("who", ["anonymous", "provider", "issuer"])
def test_deeply_nested_json_is_never_a_500_on_any_drf_endpoint(who, provider, issuer):
    client = APIClient()
    if who != "anonymous":
        token = make_token(provider if who == "provider" else issuer)[1]
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    for route, _view in drf_routes():
        for method in ("post", "put", "patch"):
            response = getattr(client, method)(route, NESTED, content_type="application/json")
            assert response.status_code < 500, (route, method, response.content)
            assert response["Content-Type"] in {PROBLEM, "application/json"}, route


@pytest.mark.parametrize(
    "route",
    [
        "/api/v1/provider-applications",
        "/api/v1/issuer-applications",
        "/api/v1/provider/endpoints",
        "/api/v1/provider/certificates",
        "/api/v1/provider/transfers",
        "/api/v1/provider/webhook",
    ],
)
def test_deeply_nested_json_is_malformed_json_and_changes_nothing(route, provider_client):
    before = changes()
    response = provider_client.post(route, NESTED, content_type="application/json")
    body = assert_problem(response, 400, "malformed_json")
    assert "nested too deeply" in body["detail"]
    assert changes() == before


@pytest.mark.parametrize(
    ("depth", "code"),
    [(1000, "bad_request"), (1100, "malformed_json")],  # orjson reads up to 1,024 levels
)
def test_nested_json_in_a_routing_plan_is_a_400(depth, code, lookup_client):
    body = "[" * depth + "]" * depth
    response = lookup_client.post("/api/v1/routing-plans", body, content_type="application/json")
    assert_problem(response, 400, code)
    assert not RoutingPlan.objects.exists()


@pytest.mark.parametrize(
    "at",
    ["0001-01-01T00:00:00+14:00", "0001-01-01T13:59:59+14:00", "9999-12-31T23:59:59-14:00"],
)
def test_a_time_outside_what_utc_can_hold_is_invalid_time(at, lookup_client, vault):
    response = lookup_client.get(f"/api/v1/vaults/{vault.number}", {"at": at})
    assert_problem(response, 400, "invalid_time")


def test_the_first_moment_utc_can_hold_is_still_a_time(lookup_client, vault):
    response = lookup_client.get(
        f"/api/v1/vaults/{vault.number}", {"at": "0001-01-01T14:00:00+14:00"}
    )
    # long before the registry signed anything: a real answer, not a crash
    assert response.status_code == 404
    assert response.json()["code"] == "no_checkpoint"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"index": "²", "size": "5"}, "invalid_leaf_index"),
        ({"index": "0", "size": "٣"}, "invalid_tree_size"),
        ({"index": "\u0660", "size": "1"}, "invalid_leaf_index"),  # Arabic-Indic zero
        ({"index": "0", "size": "\U0001d7d3"}, "invalid_tree_size"),  # mathematical bold 5
    ],
)
def test_log_proof_parameters_take_ascii_digits_only(query, code, lookup_client, vault):
    response = lookup_client.get("/api/v1/log/proofs/inclusion", query)
    assert_problem(response, 400, code)


@pytest.mark.parametrize("size", ["-1", "abc", "0", "1001", "²", "1.5", ""])
def test_a_page_size_that_is_not_1_to_1000_is_refused(size, provider_client, provider):
    VaultFactory.create_batch(3, provider=provider)
    response = provider_client.get("/api/v1/provider/vaults", {"page_size": size})
    body = assert_problem(response, 400, "invalid_page_size")
    assert body["errors"][0]["field"] == "page_size"


def test_a_page_size_is_obeyed(provider_client, provider):
    VaultFactory.create_batch(3, provider=provider)
    response = provider_client.get("/api/v1/provider/vaults", {"page_size": "2"})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 2
    assert response.json()["next"]


@pytest.mark.parametrize(
    "route",
    ["/api/v1/provider/vaults", "/api/v1/provider/endpoints", "/api/v1/messages"],
)
def test_an_unknown_format_is_406_not_404(route, provider_client):
    response = provider_client.get(route, {"format": "xml"})
    body = assert_problem(response, 406, "not_acceptable")
    assert "json" in body["detail"]
    assert provider_client.get(route, {"format": "json"}).status_code == 200


def test_the_lookup_ignores_format_on_both_paths(lookup_client, vault, issuer):
    """The lookup negotiates nothing (it only answers JSON): ?format= changes nothing."""
    response = lookup_client.get(f"/api/v1/vaults/{vault.number}", {"format": "xml"})
    assert (response.status_code, response["Content-Type"]) == (200, "application/json")
    status, headers, _body = wsgi_call(
        "GET",
        f"/api/v1/vaults/{vault.number}",
        query="format=xml",
        HTTP_AUTHORIZATION=f"Bearer {make_token(issuer)[1]}",
    )
    assert (status, headers["Content-Type"]) == (200, "application/json")


def wsgi_call(method: str, path: str, *, body: bytes = b"", query: str = "", **environ):
    """One request through registry.wsgi.application with a hand-made environ, as gunicorn
    passes a chunked body: Transfer-Encoding and no CONTENT_LENGTH."""
    base = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "HTTP_HOST": "localhost",
        "wsgi.input": BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": BytesIO(),
    }
    started = {}

    def start_response(status, headers):
        started["status"], started["headers"] = int(status.split()[0]), dict(headers)

    # The test's transaction must survive the request signals, as Django's test client does.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    keep = mock.patch.object(LookupFastPath, "close_unusable_connection", staticmethod(lambda: 0))
    try:
        with keep:
            response = application({**base, **environ}, start_response)
            content = b"".join(response)
            response.close() if hasattr(response, "close") else None
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return started["status"], started["headers"], content


def chunked(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)


def test_a_chunked_plan_is_411_not_an_empty_plan(issuer, vault):
    token = make_token(issuer)[1]
    status, headers, body = wsgi_call(
        "POST",
        "/api/v1/routing-plans",
        body=chunked(vault.number.encode()),
        CONTENT_TYPE="text/plain",
        HTTP_TRANSFER_ENCODING="chunked",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert (status, headers["Content-Type"]) == (411, PROBLEM)
    assert json.loads(body)["code"] == "length_required"
    assert not RoutingPlan.objects.exists()


def test_a_chunked_application_is_411_and_changes_nothing(db):
    before = changes()
    status, _headers, body = wsgi_call(
        "POST",
        "/api/v1/provider-applications",
        body=chunked(b'{"legal_name": "Coffre SAS"}'),
        CONTENT_TYPE="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert (status, json.loads(body)["code"]) == (411, "length_required")
    assert changes() == before


def test_a_body_with_its_length_is_still_read(lookup_client, vault):
    response = lookup_client.post("/api/v1/routing-plans", vault.number, content_type="text/plain")
    assert response.status_code == 200
    assert response.json()["summary"]["routable"] == 1


@pytest.mark.parametrize("separator", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028"])
def test_a_text_plan_splits_lines_where_a_lookup_does(separator, lookup_client, provider):
    first, second = VaultFactory(provider=provider), VaultFactory(provider=provider)
    inside = [n[:4] + separator + n[4:] for n in (first.number, second.number)]
    body = f"{inside[0]}\r\n{inside[1]}\n"

    plan = lookup_client.post("/api/v1/routing-plans", body, content_type="text/plain").json()
    lookups = [lookup_client.get(f"/api/v1/vaults/{number}") for number in inside]

    assert plan["summary"]["asked"] == 2
    assert plan["summary"]["routable"] == 2
    assert plan["groups"][0]["numbers"] == sorted([first.number, second.number])
    assert [response.status_code for response in lookups] == [200, 200]


def other_country_number() -> str:
    number = numbers.make("DE", "VLT1", "012345678901").value
    assert numbers.is_valid(number, {"VLT1"})  # valid check digits: only the country is wrong
    return number


def test_another_country_is_invalid_country_in_a_lookup(lookup_client):
    number = other_country_number()
    response = lookup_client.get(f"/api/v1/vaults/{number}")
    assert_problem(response, 400, "invalid_country")
    display = numbers.format_display(number)
    assert_problem(lookup_client.get(f"/api/v1/vaults/{display}"), 400, "invalid_country")


def test_another_country_is_invalid_country_in_a_plan(lookup_client, vault):
    number = other_country_number()
    response = lookup_client.post("/api/v1/routing-plans", [number, vault.number], format="json")
    plan = response.json()
    assert plan["summary"]["routable"] == 1
    assert plan["unroutable"] == [{"number": number, "reason": "invalid:invalid_country"}]


def test_another_country_is_invalid_country_for_a_provider(provider_client):
    response = provider_client.get(f"/api/v1/provider/vaults/{other_country_number()}")
    assert_problem(response, 400, "invalid_country")


def test_the_country_check_follows_the_setting(lookup_client, settings, checkpoint):
    settings.VAULT_COUNTRY = "DE"
    response = lookup_client.get(f"/api/v1/vaults/{other_country_number()}")
    assert response.status_code == 404  # a number of this federation, just not allocated
    assert response.json()["code"] == "vault_not_found"


def endpoint_payload(**overrides) -> dict:
    return {
        "transport_profile": "vault-pivot-https/1",
        "url": "https://in.provider.example/v2",
        "document_types": ["payslip", "invoice"],
        **overrides,
    }


def test_unknown_document_types_are_refused_and_nothing_is_published(provider_client):
    before = changes()
    response = provider_client.post(
        "/api/v1/provider/endpoints",
        endpoint_payload(document_types=["payslip", "recipes"]),
        format="json",
    )
    body = assert_problem(response, 400, "validation_error")
    assert body["errors"] == [
        {
            "field": "document_types",
            "code": "unknown_document_type",
            "message": "Unknown document types recipes; known: "
            "bank_statement, payslip, invoice, tax_notice, insurance, other.",
        }
    ]
    assert changes() == before


def test_document_types_come_from_the_setting(provider_client, settings):
    settings.VAULT_DOCUMENT_TYPES = ["recipes"]
    response = provider_client.post(
        "/api/v1/provider/endpoints", endpoint_payload(document_types=["recipes"]), format="json"
    )
    assert response.status_code == 201
    assert response.json()["document_types"] == ["recipes"]
    response = provider_client.post(
        "/api/v1/provider/endpoints",
        endpoint_payload(url="https://in.provider.example/v3"),
        format="json",
    )
    assert response.status_code == 400


def test_the_default_document_types_are_the_purposes():
    from registry import settings as production

    assert Purpose.values == production.VAULT_DOCUMENT_TYPES


@pytest.mark.parametrize(
    ("headers", "query", "status", "code"),
    [
        ({}, {"format": "xml"}, 406, "not_acceptable"),
        ({"HTTP_AUTHORIZATION": "Bearer vr_nope"}, {}, 401, "invalid_token"),
        ({"HTTP_ACCEPT": "text/html"}, {}, 406, "not_acceptable"),
    ],
)
def test_schema_errors_are_problem_json(headers, query, status, code, db):
    response = APIClient().get("/api/schema/", query, **headers)
    body = assert_problem(response, status, code)
    assert body["instance"] == "/api/schema/"


def test_the_schema_itself_is_still_yaml_or_json(db):
    response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert response.content.startswith(b"openapi:")
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.json()["openapi"].startswith("3.")
