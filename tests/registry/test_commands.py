"""Operators' commands: create_token, and load_demo's progress in a log (issue 12)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from registry.models import ApiToken, AuditEvent, OrganisationStatus, TokenScope
from registry.services.tokens import hash_token
from tests.factories import IssuerFactory, ProviderFactory

pytestmark = pytest.mark.django_db


def create_token(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_token_for_an_issuer_by_name_prints_it_once(issuer, vault):
    out, err = create_token(
        issuer.legal_name.upper(), "--scope", "lookup", "--name", "statement run", "--days", "30"
    )

    value = out.strip()
    token = ApiToken.objects.get(key_hash=hash_token(value))
    assert (token.issuer, token.scope, token.name) == (issuer, TokenScope.LOOKUP, "statement run")
    assert (token.expires_at - token.created_at).days == 30
    assert value not in err and "not shown again" in err
    assert AuditEvent.objects.filter(action="token:created").exists()  # through the service
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {value}")
    assert client.get(f"/api/v1/vaults/{vault.number}").status_code == 200


def test_create_token_for_a_provider_by_id(provider):
    out, _err = create_token(str(provider.pk), "--scope", "provider")
    token = ApiToken.objects.get(key_hash=hash_token(out.strip()))
    assert (token.provider, token.scope) == (provider, TokenScope.PROVIDER)
    assert (token.expires_at - token.created_at).days == 90


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Nobody SA", "--scope", "lookup"], "No issuer has the id or legal name 'Nobody SA'."),
        (["{provider}", "--scope", "lookup"], "No issuer has the id or legal name"),
        (["{provider}", "--scope", "provider", "--days", "0"], "validation_error"),
        (["{inactive}", "--scope", "provider"], "provider_not_active"),
        (["Twin SA", "--scope", "lookup"], "Several issuers are named 'Twin SA': give the id."),
    ],
)
def test_create_token_refusals_change_nothing(args, message, provider):
    inactive = ProviderFactory(status=OrganisationStatus.SUSPENDED)
    IssuerFactory.create_batch(2, legal_name="Twin SA")
    args = [a.format(provider=provider.pk, inactive=inactive.pk) for a in args]
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        create_token(*args)
    assert not ApiToken.objects.exists()


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_load_demo_writes_whole_progress_lines_when_not_a_terminal():
    out = StringIO()
    call_command("load_demo", vaults=3000, stdout=out)
    output = out.getvalue()
    assert "\r" not in output
    progress = [line for line in output.splitlines() if line.endswith("allocated")]
    assert 2 <= len(progress) <= 11
    assert progress[-1] == "vaults      3000 allocated"


def test_load_demo_rewrites_one_line_on_a_terminal():
    out = Terminal()
    call_command("load_demo", vaults=3000, stdout=out)
    assert "\rvaults      3000 allocated\n" in out.getvalue()
