"""The committed OpenAPI schema (deploy/openapi.yaml) matches the code."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from django.conf import settings
from django.core.management import call_command

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
