"""`manage.py load_demo`: a usable demo federation, loaded twice without duplicates."""

from __future__ import annotations

import base64
import re
from io import StringIO
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.management import call_command
from django.test import Client
from django_otp.oath import TOTP
from rest_framework.test import APIClient

from registry.management.commands.load_demo import PROVIDERS, example_number
from registry.models import Issuer, Provider, Vault, VaultStatus
from registry.services import transfers, vaults
from registry.services.common import Actor
from registry.services.vaults import HoldKind

pytestmark = pytest.mark.django_db


def load(vaults: int = 300) -> str:
    out = StringIO()
    call_command("load_demo", vaults=vaults, stdout=out)
    return out.getvalue()


def test_demo_prints_working_credentials_and_curl_commands():
    output = load()
    # a federation of 5 providers, 2 issuers and the vaults asked for, some held, some closed
    assert Provider.objects.filter(status="active").count() == 5
    assert Issuer.objects.filter(status="active").count() == 2
    assert Vault.objects.count() == 300
    assert Vault.objects.filter(client_hold=True).exists()
    assert Vault.objects.filter(status=VaultStatus.CLOSED).exists()
    # the admin password, the TOTP URI, and the tokens are printed
    assert re.search(r"password:\s+\S+", output)
    assert "otpauth://totp/" in output
    issuer_token = re.search(r"Issuer token \(scope lookup\):\s+(\S+)", output).group(1)
    # and the first printed curl resolves a deliverable vault with the issuer token
    curl = next(line for line in output.splitlines() if "curl" in line)
    path = re.search(r"http://127\.0\.0\.1:8000(/\S+)", curl).group(1)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issuer_token}")
    response = api.get(path.replace("%20", " "))
    assert response.status_code == 200
    assert response.json()["deliverable"] is True


def test_demo_is_idempotent_and_revokes_the_previous_tokens():
    first = load()
    counts = (Provider.objects.count(), Issuer.objects.count(), Vault.objects.count())
    second = load()
    assert (Provider.objects.count(), Issuer.objects.count(), Vault.objects.count()) == counts
    old = re.search(r"Issuer token \(scope lookup\):\s+(\S+)", first).group(1)
    new = re.search(r"Issuer token \(scope lookup\):\s+(\S+)", second).group(1)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {old}")
    vault = Vault.objects.filter(status=VaultStatus.ACTIVE).first()
    assert api.get(f"/api/v1/vaults/{vault.number}").json()["code"] == "token_revoked"
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {new}")
    assert api.get(f"/api/v1/vaults/{vault.number}").status_code == 200


def test_demo_prints_portal_logins_that_sign_in():
    output = load()
    block = output.split("Portal (")[1]
    for username in ("provider-admin", "issuer-admin"):
        part = block.split(f"user:      {username}")[1]
        password = re.search(r"password:\s+(\S+)", part).group(1)
        uri = re.search(r"TOTP URI:\s+(\S+)", part).group(1)
        secret = parse_qs(urlparse(uri).query)["secret"][0]
        key = base64.b32decode(secret + "=" * (-len(secret) % 8))
        code = f"{TOTP(key).token():06d}"
        answer = Client().post(
            "/portal/login/", {"username": username, "password": password, "code": code}
        )
        assert answer.status_code == 302 and answer["Location"] == "/portal/"


def _tokens(output: str) -> tuple[str, str]:
    first = re.search(r"Provider token \(scope provider\):\s+(\S+)", output).group(1)
    second = re.search(r"Second provider token:\s+(\S+)", output).group(1)
    return first, second


def _provider_api(token: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def test_demo_prints_two_provider_tokens_that_work_each_for_its_own_provider():
    output = load()
    first, second = _tokens(output)
    assert first != second
    names = [spec[0] for spec in PROVIDERS[:2]]
    assert f"({names[0]})" in output and f"({names[1]})" in output
    example = example_number()
    for token, name, sees_example in ((first, names[0], 200), (second, names[1], 404)):
        api = _provider_api(token)
        # each lists its own provider's vaults, and only those
        listed = api.get("/api/v1/provider/vaults?page_size=1000").json()["results"]
        owner = Provider.objects.get(legal_name=name)
        assert {v["number"] for v in listed} == set(
            Vault.objects.filter(provider=owner).values_list("number", flat=True)
        )
        # the first hosts the README's example vault; the second does not see it
        assert api.get(f"/api/v1/provider/vaults/{example}").status_code == sees_example
    # and the shell lines for the README's examples name the same tokens
    assert f"PROVIDER={first} PROVIDER2={second}" in output
    assert "export R=http://127.0.0.1:8000/api/v1 REG=http://127.0.0.1:8000" in output


def test_demo_commands_name_the_bind_make_run_passes(monkeypatch):
    monkeypatch.setenv("GUNICORN_BIND", "127.0.0.1:8010")

    output = load()

    assert "export R=http://127.0.0.1:8010/api/v1 REG=http://127.0.0.1:8010" in output
    assert "Admin (http://127.0.0.1:8010/admin/)" in output
    curls = [line for line in output.splitlines() if "curl" in line]
    assert curls and all("http://127.0.0.1:8010/api/v1/" in line for line in curls)


def test_the_example_vault_is_put_back_as_the_readme_describes_it():
    # given the demo, then the README's hold example run on its example vault
    load()
    vault = Vault.objects.get(number=example_number())
    vaults.vault_hold(actor=Actor.system("readme"), vault=vault, kind=HoldKind.CLIENT)

    # when the demo is loaded again
    err = StringIO()
    call_command("load_demo", vaults=300, stdout=StringIO(), stderr=err)

    # then the example is open and unheld again, and nothing was reported
    vault.refresh_from_db()
    assert (vault.status, vault.client_hold, vault.server_hold) == ("active", False, False)
    assert err.getvalue() == ""


def test_a_closed_example_vault_is_reported():
    load()
    vault = Vault.objects.get(number=example_number())
    vaults.vault_close(actor=Actor.system("readme"), vault=vault)

    err = StringIO()
    out = StringIO()
    call_command("load_demo", vaults=300, stdout=out, stderr=err)

    assert "FR97 VLT1 0123 4567 8901 was closed by its examples" in err.getvalue()
    # the first curl then names another deliverable vault
    curl = next(line for line in out.getvalue().splitlines() if "curl" in line)
    assert "FR97%20VLT1%200123" not in curl


def test_a_pending_transfer_of_the_example_vault_is_reported():
    # given the README's portability examples run: a code, then a request by the second provider
    load()
    vault = Vault.objects.get(number=example_number())
    losing, gaining = (Provider.objects.get(legal_name=spec[0]) for spec in PROVIDERS[:2])
    actor = Actor.system("readme")
    _code, value = transfers.transfer_code_issue(actor=actor, provider=losing, vault=vault)
    transfers.transfer_request(
        actor=actor,
        gaining_provider=gaining,
        number=vault.number,
        code=value,
        consent_reference="contract 2025-00042",
    )

    # when the demo is loaded again
    err = StringIO()
    call_command("load_demo", vaults=300, stdout=StringIO(), stderr=err)

    # then it says so
    assert "a transfer of the README's example vault is pending" in err.getvalue()
