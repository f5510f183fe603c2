"""Every vault number the README uses is one the demo creates, in the state the README says:
well-formed numbers exist in a freshly loaded demo, open and deliverable at the first provider
(whose token is $PROVIDER), as the lookup example shows them; malformed ones are refused with
the code the README gives next to them."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from rest_framework.test import APIClient

from registry import numbers
from registry.federation import known_allocators

pytestmark = pytest.mark.django_db

README = Path(settings.BASE_DIR) / "README.md"
# Any input form the README writes: grouped by spaces, hyphens, dots or %20, or compact.
NUMBER = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:(?:%20|[ .\-])?[A-Za-z0-9]{4}){4}(?![A-Za-z0-9])"
)


def readme_numbers() -> dict[str, list[int]]:
    """Each number of the README in compact form → where it appears (character offsets)."""
    found: dict[str, list[int]] = {}
    for match in NUMBER.finditer(README.read_text()):
        compact = numbers.compact(match.group(0).replace("%20", ""))
        if compact[:2] == settings.VAULT_COUNTRY:
            found.setdefault(compact, []).append(match.start())
    return found


def _client(token: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def test_the_readme_uses_numbers_at_all():
    # a guard: the extraction finds the README's example in its four written forms
    assert len(readme_numbers()) >= 2
    assert "FR97VLT1012345678901" in readme_numbers()


def test_every_number_of_the_readme_is_in_the_demo_as_the_readme_says():
    # given a freshly loaded demo and the tokens it prints
    out = StringIO()
    call_command("load_demo", vaults=300, stdout=out)
    output = out.getvalue()
    issuer = _client(re.search(r"Issuer token \(scope lookup\):\s+(\S+)", output).group(1))
    provider = _client(re.search(r"Provider token \(scope provider\):\s+(\S+)", output).group(1))
    second = _client(re.search(r"Second provider token:\s+(\S+)", output).group(1))
    text = README.read_text()
    lookup_example = text[text.index("### Lookup") : text.index("## Routing plans")]
    valid = 0

    for number, places in readme_numbers().items():
        try:
            numbers.parse(number, known_allocators(), settings.VAULT_COUNTRY)
        except numbers.InvalidNumber as exc:
            # a malformed example: the README names the refusal next to it
            nearby = [text[max(0, at - 600) : at + 100] for at in places]
            assert any(exc.code in part for part in nearby), (number, exc.code)
            continue
        valid += 1
        # then the issuer finds it deliverable, as the lookup example shows it
        answer = issuer.get(f"/api/v1/vaults/{number}")
        assert answer.status_code == 200, (number, answer.content)
        body = answer.json()
        assert (body["status"], body["flags"], body["deliverable"]) == ("active", [], True)
        assert body["previous_provider"] is None
        assert f'"legal_name": "{body["provider"]["legal_name"]}"' in lookup_example
        assert f'"url": "{body["endpoints"][0]["url"]}"' in lookup_example
        # hosted by $PROVIDER (its self-service examples), not by $PROVIDER2 (the gaining side)
        assert provider.get(f"/api/v1/provider/vaults/{number}").status_code == 200
        assert second.get(f"/api/v1/provider/vaults/{number}").status_code == 404
    assert valid >= 1
