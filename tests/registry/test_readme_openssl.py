"""The README's openssl line makes a certificate the registry accepts (and without its
keyUsage, one it refuses), through the upload service and the API."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from registry.models import Certificate, CertificateUse
from registry.services import routing
from registry.services.common import Actor

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_openssl_command() -> list[str]:
    """The ``openssl req`` command of the README, its continuation lines joined."""
    text = README.read_text()
    match = re.search(r"^openssl req .*?(?<!\\)$", text, re.MULTILINE | re.DOTALL)
    assert match, "the README shows an openssl req command"
    return shlex.split(match.group(0).replace("\\\n", " "))


def run_openssl(tmp_path, command: list[str]) -> str:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    subprocess.run(command, cwd=tmp_path, check=True, capture_output=True, timeout=120)
    return (tmp_path / "cert.pem").read_text()


def test_the_readme_openssl_certificate_is_accepted_for_encryption(tmp_path, provider):
    pem = run_openssl(tmp_path, readme_openssl_command())

    certificate = routing.certificate_upload(
        actor=Actor.system("tests"), provider=provider, use=CertificateUse.ENCRYPTION, pem=pem
    )

    assert (certificate.key_type, certificate.key_size) == ("rsa", 3072)
    assert Certificate.objects.filter(pk=certificate.pk).exists()


def test_without_the_key_usage_extension_it_is_refused(tmp_path, provider_client):
    command = readme_openssl_command()
    while "-addext" in command:  # drop every -addext and its value
        at = command.index("-addext")
        del command[at : at + 2]
    pem = run_openssl(tmp_path, command)

    response = provider_client.post(
        "/api/v1/provider/certificates", {"use": "encryption", "pem": pem}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] in {"cert_key_usage_missing", "cert_key_usage_mismatch"}
    assert not Certificate.objects.filter(pem=pem).exists()
