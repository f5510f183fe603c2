"""The committed OpenAPI schema (deploy/openapi.yaml) matches the code."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

from registry.api.retry import RetryWritesMixin
from registry.api.throttles import AddressRateThrottle

COMMITTED = Path(settings.BASE_DIR) / "deploy" / "openapi.yaml"


def test_committed_schema_matches_the_code():
    # when the schema is generated from the code as `make openapi` does
    out = StringIO()
    call_command("spectacular", "--validate", "--lang", "en", stdout=out)
    # then it is exactly the committed one; run `make openapi` after changing the API
    assert out.getvalue() == COMMITTED.read_text(), "deploy/openapi.yaml drifted: `make openapi`"


def test_schema_and_docs_are_served_without_a_cdn(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/vaults/{number}" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "swagger-ui" in page
    assert "cdn." not in page and "unpkg" not in page and "jsdelivr" not in page


def _committed() -> dict:
    return yaml.safe_load(COMMITTED.read_text())


def _views() -> list[tuple[str, str, object]]:
    """(path as in the schema, method, view instance) of every operation."""
    generator = SchemaGenerator()
    generator._initialise_endpoints()
    return [
        (path, method.lower(), view)
        for path, _regex, method, view in generator._get_paths_and_endpoints()
    ]


def test_every_rate_limited_or_retried_operation_documents_its_429_and_503():
    # given the committed schema and the view behind each of its operations
    paths = _committed()["paths"]
    limited = retried = 0
    for path, method, view in _views():
        if method not in paths.get(path, {}):  # the docs pages and the schema itself
            continue
        responses = paths[path][method]["responses"]
        # then an operation with a rate limit documents 429, a retried write 503 retry_later
        if getattr(view, "rate_limit", None) == "token":
            assert responses["429"] == {"$ref": "#/components/responses/RateLimitedToken"}, path
            limited += 1
        elif AddressRateThrottle in getattr(view, "throttle_classes", []):
            assert responses["429"] == {"$ref": "#/components/responses/RateLimitedAddress"}, path
            limited += 1
        else:
            assert "429" not in responses, path
        if isinstance(view, RetryWritesMixin):
            assert responses["503"] == {"$ref": "#/components/responses/RetryLater"}, path
            retried += 1
    # the lookup, plans, the log, state proofs and applications; the provider API's writes
    assert limited >= 10 and retried >= 20
    for path, method in [("/api/v1/vaults/{number}", "get"), ("/api/v1/routing-plans", "post")]:
        assert "RateLimitedToken" in paths[path][method]["responses"]["429"]["$ref"]


@pytest.mark.parametrize(
    ("name", "headers"),
    [
        ("RateLimitedToken", {"Retry-After", "RateLimit-Limit", "RateLimit-Remaining"}),
        ("RateLimitedAddress", {"Retry-After", "RateLimit-Limit", "RateLimit-Reset"}),
        ("RetryLater", {"Retry-After"}),
    ],
)
def test_the_shared_refusals_are_problem_documents_with_retry_after(name, headers):
    components = _committed()["components"]
    response = components["responses"][name]
    assert headers <= set(response["headers"])
    schema = response["content"]["application/problem+json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Problem"}
    assert {"type", "title", "status", "code", "detail"} <= set(
        components["schemas"]["Problem"]["required"]
    )


def test_a_lookup_over_its_limit_answers_what_the_schema_says(lookup_client, settings, vault):
    # given one lookup a minute
    settings.VAULT_RATE_LOOKUP_PER_MINUTE = 1
    lookup_client.get(f"/api/v1/vaults/{vault.number}")

    # when the second comes
    response = lookup_client.get(f"/api/v1/vaults/{vault.number}")

    # then it is the documented 429: a problem document with the documented headers
    documented = _committed()["components"]["responses"]["RateLimitedToken"]
    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"
    assert set(documented["headers"]) <= set(response.headers)
    assert set(_committed()["components"]["schemas"]["Problem"]["required"]) <= set(response.json())
