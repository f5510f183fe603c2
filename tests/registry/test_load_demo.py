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

from registry.models import Issuer, Provider, Vault, VaultStatus

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
