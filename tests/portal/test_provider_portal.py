"""The provider portal through its pages: readiness, roles, secrets shown once, headers."""

from __future__ import annotations

import pytest

from registry import x509
from registry.models import ApiToken, AuditEvent, Endpoint, Vault
from registry.services import transfers
from registry.services.common import Actor
from tests.factories import EndpointFactory, VaultFactory
from tests.portal.conftest import make_member, signed_in

pytestmark = pytest.mark.django_db


def test_the_start_page_says_why_a_provider_cannot_receive_documents(bare_provider):
    client = signed_in(make_member(bare_provider))
    page = client.get("/portal/").content.decode()
    assert "ne peut pas recevoir de documents" in page
    assert "Aucune adresse de dépôt active" in page
    assert "Aucun certificat de chiffrement valide" in page


def test_an_operator_publishes_an_endpoint_and_a_certificate_then_can_receive(bare_provider):
    user = make_member(bare_provider, "operator")
    client = signed_in(user)
    client.post(
        "/portal/endpoints/",
        {
            "url": "https://in.coffre.example/v1",
            "transport_profile": "vault-pivot-https/1",
            "document_types": ["bank_statement"],
        },
    )
    pem, _key = x509.generate_certificate("Coffre documents", "encryption")
    client.post("/portal/certificates/", {"use": "encryption", "pem": pem})
    assert "peut recevoir des documents" in client.get("/portal/").content.decode()
    assert AuditEvent.objects.filter(
        action="endpoint:published", actor__startswith=f"user:{user.username} "
    ).exists()


def test_a_certificate_upload_error_is_in_plain_words_on_the_field(provider, operator):
    page = signed_in(operator).post(
        "/portal/certificates/", {"use": "encryption", "pem": "-----BEGIN PRIVATE KEY-----\nx"}
    )
    assert "C&#x27;est une clé privée" in page.content.decode()


def test_a_viewer_reads_but_cannot_act(provider, viewer):
    client = signed_in(viewer)
    assert client.get("/portal/vaults/").status_code == 200
    refused = client.post("/portal/vaults/allocate/")
    assert refused.status_code == 403
    assert not Vault.objects.filter(provider=provider).exists()


def test_deactivating_the_last_endpoint_says_how_many_vaults_it_affects(provider, operator):
    VaultFactory.create_batch(3, provider=provider)
    endpoint = Endpoint.objects.get(provider=provider)
    page = signed_in(operator).get(f"/portal/endpoints/{endpoint.pk}/deactivate/")
    assert "3 coffres ne recevront plus de documents" in page.content.decode()
    EndpointFactory(provider=provider)
    page = signed_in(operator).get(f"/portal/endpoints/{endpoint.pk}/deactivate/")
    assert "aucun coffre ne cesse" in page.content.decode()


def test_closing_a_vault_needs_its_number_typed_again(provider, operator):
    vault = VaultFactory(provider=provider)
    client = signed_in(operator)
    client.post(f"/portal/vaults/{vault.number}/close/", {"number": "FR00 XXXX"})
    vault.refresh_from_db()
    assert vault.status == "active"
    client.post(f"/portal/vaults/{vault.number}/close/", {"number": vault.number.lower()})
    vault.refresh_from_db()
    assert vault.status == "closed"


def test_a_new_token_is_shown_once_and_never_cached(provider, administrator):
    client = signed_in(administrator)
    answer = client.post("/portal/tokens/", {"name": "ERP", "expires_in_days": 30})
    assert answer.status_code == 302  # POST/redirect/GET: a reload creates nothing
    page = client.get("/portal/tokens/")
    assert "no-store" in page["Cache-Control"]
    shown = page.content.decode()
    assert 'id="new-token"' in shown
    assert 'id="new-token"' not in client.get("/portal/tokens/").content.decode()
    assert ApiToken.objects.filter(provider=provider, name="ERP").count() == 1


def test_an_operator_cannot_create_tokens(provider, operator):
    assert signed_in(operator).post("/portal/tokens/", {"name": "x"}).status_code == 403


def test_a_transfer_code_is_shown_once(provider, operator):
    vault = VaultFactory(provider=provider)
    client = signed_in(operator)
    client.post(f"/portal/vaults/{vault.number}/transfer-code/")
    assert 'id="transfer-code"' in client.get(f"/portal/vaults/{vault.number}/").content.decode()
    assert (
        'id="transfer-code"' not in client.get(f"/portal/vaults/{vault.number}/").content.decode()
    )


def test_another_providers_vault_is_not_found(provider, other_provider, operator):
    vault = VaultFactory(provider=other_provider)
    assert signed_in(operator).get(f"/portal/vaults/{vault.number}/").status_code == 404


def test_every_page_has_a_content_security_policy(client):
    for url in ("/", "/portal/login/", "/check/", "/apply/provider/"):
        policy = client.get(url)["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy


def test_the_public_number_checker_never_says_where_the_vault_is(client, vault):
    page = client.get("/check/", {"number": vault.number.lower()}).content.decode()
    assert "bien formé" in page and "VLT1" in page
    assert vault.provider.legal_name not in page


def test_a_rejected_transfer_shows_its_reason_in_words(provider, other_provider, operator):
    vault = VaultFactory(provider=provider)
    system = Actor.system("tests")
    _code, value = transfers.transfer_code_issue(actor=system, provider=provider, vault=vault)
    transfer = transfers.transfer_request(
        actor=system,
        gaining_provider=other_provider,
        number=vault.number,
        code=value,
        consent_reference="consent-9",
    )
    client = signed_in(operator)
    client.post(
        f"/portal/transfers/{transfer.pk}/",
        {"action": "reject", "reason": "holder_objection", "comment": "appel du 3 mars"},
    )
    page = client.get(f"/portal/transfers/{transfer.pk}/").content.decode()
    assert 'id="transfer-reason">le titulaire s&#x27;y oppose — appel du 3 mars<' in page
