"""The write side: every service validates, writes, logs and audits in one transaction."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
import rfc8785
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from registry import numbers, x509
from registry.errors import Conflict, ErrorCode, Gone, InvalidInput
from registry.models import (
    ApiToken,
    AuditEvent,
    Certificate,
    Endpoint,
    Issuer,
    IssuerStatusChange,
    LogEntry,
    LogHead,
    OrganisationStatus,
    Provider,
    ProviderStatusChange,
    Vault,
    VaultStatus,
)
from registry.services import organisations, routing, tokens, vaults
from registry.services.common import Actor
from registry.services.vaults import HoldKind
from tests.factories import (
    IssuerFactory,
    ProviderFactory,
    VaultFactory,
    make_token,
    random_siren,
)
from tests.registry.helpers import changes

S = OrganisationStatus

# DESIGN.md §3, written out here rather than read from the code under test.
ALLOWED = {
    (S.APPLIED, S.ACTIVE),
    (S.APPLIED, S.REJECTED),
    (S.APPLIED, S.WITHDRAWN),
    (S.ACTIVE, S.SUSPENDED),
    (S.ACTIVE, S.WITHDRAWN),
    (S.SUSPENDED, S.ACTIVE),
    (S.SUSPENDED, S.WITHDRAWN),
}
DISALLOWED = sorted({(a, b) for a in S for b in S} - ALLOWED)


def log_size() -> int:
    return LogHead.objects.filter(pk=1).values_list("size", flat=True).first() or 0


def log_bodies() -> list[dict]:
    """Every log entry's body, after checking the log is well formed: canonical JSON, correct
    leaf hashes, sequences gapless from 0 and the head's size equal to the number of entries.
    The factories' set-up (``state.snapshot`` entries) is checked but not returned."""
    entries = list(LogEntry.objects.order_by("sequence"))
    assert [entry.sequence for entry in entries] == list(range(len(entries)))
    head = log_size()
    assert head == len(entries)
    bodies = []
    for entry in entries:
        body = bytes(entry.body)
        assert rfc8785.dumps(json.loads(body)) == body
        assert bytes(entry.leaf_hash) == hashlib.sha256(b"\x00" + body).digest()
        parsed = json.loads(body)
        assert parsed["kind"] == entry.kind
        if parsed["kind"] != "state.snapshot":
            bodies.append(parsed)
    return bodies


def seq(n: int) -> int:
    """The log position of the ``n``-th entry the test's actions appended (0-based)."""
    return changes().order_by("sequence")[n].sequence


def only_audit(action: str, target) -> AuditEvent:
    return AuditEvent.objects.get(action=action, target_id=str(target.pk))


def application(**fields) -> dict:
    return {
        "legal_name": "Coffre Numérique SAS",
        "legal_id": random_siren(),
        "technical_email": "tech@coffre.example",
        "security_email": "security@coffre.example",
        **fields,
    }


# --- Onboarding ---------------------------------------------------------------------------------


def test_provider_apply_lands_as_applied_with_history_and_audit(db, actor):
    # given
    fields = application(certifications=["NF Z42-020"])

    # when
    provider = organisations.provider_apply(actor=actor, **fields)

    # then
    provider.refresh_from_db()
    assert provider.status == S.APPLIED
    assert provider.certifications == ["NF Z42-020"]
    change = ProviderStatusChange.objects.get(provider=provider)
    assert (change.from_status, change.to_status, change.actor) == ("", S.APPLIED, actor.label)
    audit = only_audit("applied", provider)
    assert audit.actor == actor.label
    assert audit.data == {"legal_id_scheme": "siren", "legal_id": fields["legal_id"]}
    assert log_bodies() == []


def test_issuer_apply_lands_as_applied_with_history_and_audit(db, actor):
    # when
    issuer = organisations.issuer_apply(actor=actor, **application(purposes=["payslip"]))

    # then
    issuer.refresh_from_db()
    assert issuer.status == S.APPLIED
    assert issuer.purposes == ["payslip"]
    change = IssuerStatusChange.objects.get(issuer=issuer)
    assert (change.from_status, change.to_status) == ("", S.APPLIED)
    assert only_audit("applied", issuer).actor == actor.label
    assert log_bodies() == []


def test_apply_compacts_the_siren(db, actor):
    # when
    provider = organisations.provider_apply(actor=actor, **application(legal_id="732 829 320"))

    # then
    assert Provider.objects.get(pk=provider.pk).legal_id == "732829320"


@pytest.mark.parametrize("apply", [organisations.provider_apply, organisations.issuer_apply])
def test_apply_refuses_an_invalid_siren(db, actor, apply):
    # when
    with pytest.raises(ValidationError) as caught:
        apply(actor=actor, **application(legal_id="732829321"))

    # then
    assert [error.code for error in caught.value.error_dict["legal_id"]] == ["invalid_siren"]
    assert not Provider.objects.exists()
    assert not Issuer.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("apply", [organisations.provider_apply, organisations.issuer_apply])
def test_apply_refuses_a_legal_id_already_applied_for(db, actor, apply):
    # given
    apply(actor=actor, **application(legal_id="732829320"))

    # when
    with pytest.raises(Conflict) as caught:
        apply(actor=actor, **application(legal_id="732 829 320", legal_name="Other"))

    # then
    assert caught.value.code == ErrorCode.DUPLICATE_LEGAL_ID
    assert AuditEvent.objects.filter(action="applied").count() == 1


def test_a_rejected_application_frees_the_legal_id(db, actor):
    # given
    first = organisations.provider_apply(actor=actor, **application(legal_id="732829320"))
    organisations.provider_set_status(
        actor=actor, provider=first, status=S.REJECTED, reason="incomplete file"
    )

    # when
    second = organisations.provider_apply(actor=actor, **application(legal_id="732829320"))

    # then
    assert second.pk != first.pk
    assert Provider.objects.get(pk=second.pk).status == S.APPLIED


def test_a_provider_and_an_issuer_may_share_a_legal_id(db, actor):
    # given
    organisations.provider_apply(actor=actor, **application(legal_id="732829320"))

    # when
    issuer = organisations.issuer_apply(actor=actor, **application(legal_id="732829320"))

    # then
    assert Issuer.objects.get(pk=issuer.pk).legal_id == "732829320"


# --- Status transitions -------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "to"), sorted(ALLOWED))
def test_provider_set_status_allowed_transition(db, actor, start, to):
    # given
    provider = ProviderFactory(status=start)
    effective_at = timezone.now() - timedelta(hours=2)

    # when
    result = organisations.provider_set_status(
        actor=actor,
        provider=provider,
        status=to,
        reason="  board decision  ",
        effective_at=effective_at,
    )

    # then
    provider.refresh_from_db()
    assert provider.status == to == result.status
    assert provider.status_changed_at == effective_at
    change = ProviderStatusChange.objects.get(provider=provider)
    assert (change.from_status, change.to_status) == (start, to)
    assert (change.actor, change.reason, change.effective_at) == (
        actor.label,
        "board decision",
        effective_at,
    )
    [body] = log_bodies()
    assert body["kind"] == "provider.status"
    assert body["provider"] == str(provider.pk)
    assert (body["status"], body["previous_status"]) == (to, start)
    assert body["legal_id"] == f"siren:{provider.legal_id}"
    audit = only_audit(f"status:{to}", provider)
    assert audit.log_sequence == seq(0) == provider.last_log_index
    assert audit.data == {"from": start, "reason": "board decision"}


@pytest.mark.parametrize(("start", "to"), sorted(ALLOWED))
def test_issuer_set_status_allowed_transition(db, actor, start, to):
    # given
    issuer = IssuerFactory(status=start)

    # when
    organisations.issuer_set_status(actor=actor, issuer=issuer, status=to, reason="checked")

    # then
    issuer.refresh_from_db()
    assert issuer.status == to
    change = IssuerStatusChange.objects.get(issuer=issuer)
    assert (change.from_status, change.to_status, change.actor, change.reason) == (
        start,
        to,
        actor.label,
        "checked",
    )
    assert change.effective_at == issuer.status_changed_at
    assert only_audit(f"status:{to}", issuer).data == {"from": start, "reason": "checked"}
    assert log_bodies() == []


@pytest.mark.parametrize(("start", "to"), DISALLOWED)
def test_provider_set_status_disallowed_transition_changes_nothing(db, actor, start, to):
    # given
    provider = ProviderFactory(status=start)

    # when
    with pytest.raises(Conflict) as caught:
        organisations.provider_set_status(actor=actor, provider=provider, status=to, reason="try")

    # then
    assert caught.value.code == ErrorCode.INVALID_STATUS_TRANSITION
    assert Provider.objects.get(pk=provider.pk).status == start
    assert not ProviderStatusChange.objects.exists()
    assert not AuditEvent.objects.exists()
    assert log_bodies() == []


@pytest.mark.parametrize(("start", "to"), DISALLOWED)
def test_issuer_set_status_disallowed_transition_changes_nothing(db, actor, start, to):
    # given
    issuer = IssuerFactory(status=start)

    # when
    with pytest.raises(Conflict) as caught:
        organisations.issuer_set_status(actor=actor, issuer=issuer, status=to, reason="try")

    # then
    assert caught.value.code == ErrorCode.INVALID_STATUS_TRANSITION
    assert Issuer.objects.get(pk=issuer.pk).status == start
    assert not IssuerStatusChange.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_set_status_refuses_an_empty_reason(db, actor, reason):
    # given
    provider = ProviderFactory(status=S.ACTIVE)
    issuer = IssuerFactory(status=S.ACTIVE)

    # when
    with pytest.raises(InvalidInput) as for_provider:
        organisations.provider_set_status(
            actor=actor, provider=provider, status=S.SUSPENDED, reason=reason
        )
    with pytest.raises(InvalidInput) as for_issuer:
        organisations.issuer_set_status(
            actor=actor, issuer=issuer, status=S.SUSPENDED, reason=reason
        )

    # then
    assert for_provider.value.code == for_issuer.value.code == ErrorCode.VALIDATION_ERROR
    assert Provider.objects.get(pk=provider.pk).status == S.ACTIVE
    assert Issuer.objects.get(pk=issuer.pk).status == S.ACTIVE
    assert not AuditEvent.objects.exists()
    assert log_bodies() == []


# --- Endpoints and certificates -----------------------------------------------------------------


def test_endpoint_create_logs_and_audits(provider, actor):
    # when
    endpoint = routing.endpoint_create(
        actor=actor,
        provider=provider,
        transport_profile="vault-pivot-https/1",
        url="https://new.provider.example/v1",
        document_types=["payslip"],
    )

    # then
    endpoint.refresh_from_db()
    assert endpoint.provider_id == provider.pk
    [body] = log_bodies()
    assert body["kind"] == "endpoint.published"
    assert (body["provider"], body["endpoint"]) == (str(provider.pk), str(endpoint.pk))
    assert (body["url"], body["document_types"]) == ("https://new.provider.example/v1", ["payslip"])
    assert only_audit("endpoint:published", endpoint).log_sequence == seq(0)
    assert Provider.objects.get(pk=provider.pk).last_log_index == seq(0)


def test_endpoint_create_refuses_a_duplicate(provider, actor):
    # given
    existing = provider.endpoints.get()

    # when
    with pytest.raises(Conflict) as caught:
        routing.endpoint_create(
            actor=actor,
            provider=provider,
            transport_profile=existing.transport_profile,
            url=existing.url,
        )

    # then
    assert caught.value.code == ErrorCode.DUPLICATE_ENDPOINT
    assert provider.endpoints.count() == 1
    assert log_bodies() == []


def test_endpoint_create_refuses_an_expiry_before_activation(provider, actor):
    # given
    now = timezone.now()

    # when
    with pytest.raises(ValidationError) as caught:
        routing.endpoint_create(
            actor=actor,
            provider=provider,
            transport_profile="vault-pivot-https/1",
            url="https://new.provider.example/v1",
            activates_at=now,
            expires_at=now - timedelta(days=1),
        )

    # then
    assert "expires_at" in caught.value.error_dict
    assert provider.endpoints.count() == 1
    assert log_bodies() == []


def test_endpoint_create_refuses_an_inactive_provider(db, actor):
    # given
    provider = ProviderFactory(status=S.SUSPENDED)

    # when
    with pytest.raises(Conflict) as caught:
        routing.endpoint_create(
            actor=actor,
            provider=provider,
            transport_profile="vault-pivot-https/1",
            url="https://new.provider.example/v1",
        )

    # then
    assert caught.value.code == ErrorCode.PROVIDER_NOT_ACTIVE
    assert not Endpoint.objects.exists()


def test_endpoint_deactivate_logs_and_audits(provider, actor):
    # given
    endpoint = provider.endpoints.get()

    # when
    routing.endpoint_deactivate(actor=actor, endpoint=endpoint)

    # then
    endpoint.refresh_from_db()
    assert endpoint.deactivated_at is not None
    [body] = log_bodies()
    assert body["kind"] == "endpoint.deactivated"
    assert (body["provider"], body["endpoint"]) == (str(provider.pk), str(endpoint.pk))
    assert only_audit("endpoint:deactivated", endpoint).log_sequence == seq(0)


def test_endpoint_deactivate_twice_is_a_conflict(provider, actor):
    # given
    endpoint = routing.endpoint_deactivate(actor=actor, endpoint=provider.endpoints.get())

    # when
    with pytest.raises(Conflict) as caught:
        routing.endpoint_deactivate(actor=actor, endpoint=endpoint)

    # then
    assert caught.value.code == ErrorCode.ENDPOINT_ALREADY_DEACTIVATED
    assert len(log_bodies()) == 1


def test_certificate_upload_logs_and_audits(provider, actor):
    # given
    pem, _key = x509.generate_certificate("docs.provider.example", "encryption")

    # when
    certificate = routing.certificate_upload(
        actor=actor, provider=provider, use="encryption", pem=pem
    )

    # then
    certificate.refresh_from_db()
    assert certificate.key_type == "ec-p256"
    [body] = log_bodies()
    assert body["kind"] == "certificate.published"
    assert (body["provider"], body["certificate"]) == (str(provider.pk), str(certificate.pk))
    assert body["fingerprint_sha256"] == certificate.fingerprint_sha256
    assert body["use"] == "encryption"
    assert only_audit("certificate:published", certificate).log_sequence == seq(0)


def test_certificate_upload_refuses_a_duplicate(provider, actor):
    # given
    pem, _key = x509.generate_certificate("docs.provider.example", "encryption")
    routing.certificate_upload(actor=actor, provider=provider, use="encryption", pem=pem)

    # when
    with pytest.raises(Conflict) as caught:
        routing.certificate_upload(actor=actor, provider=provider, use="encryption", pem=pem)

    # then
    assert caught.value.code == ErrorCode.DUPLICATE_CERTIFICATE
    assert provider.certificates.count() == 2  # the fixture's and the first upload
    assert len(log_bodies()) == 1


def test_certificate_upload_refuses_an_invalid_certificate(provider, actor):
    # given
    pem, _key = x509.generate_certificate("docs", "encryption", key_type="rsa", rsa_bits=1024)

    # when
    with pytest.raises(InvalidInput) as caught:
        routing.certificate_upload(actor=actor, provider=provider, use="encryption", pem=pem)

    # then
    assert caught.value.code == "cert_weak_key"
    assert provider.certificates.count() == 1
    assert log_bodies() == []


def test_certificate_retire_logs_and_audits(provider, actor):
    # given
    certificate = provider.certificates.get()

    # when
    routing.certificate_retire(actor=actor, certificate=certificate)

    # then
    certificate.refresh_from_db()
    assert certificate.retired_at is not None
    [body] = log_bodies()
    assert body["kind"] == "certificate.retired"
    assert (body["provider"], body["certificate"]) == (str(provider.pk), str(certificate.pk))
    assert only_audit("certificate:retired", certificate).log_sequence == seq(0)


def test_certificate_retire_twice_is_a_conflict(provider, actor):
    # given
    certificate = routing.certificate_retire(actor=actor, certificate=provider.certificates.get())

    # when
    with pytest.raises(Conflict) as caught:
        routing.certificate_retire(actor=actor, certificate=certificate)

    # then
    assert caught.value.code == ErrorCode.CERTIFICATE_ALREADY_RETIRED
    assert len(log_bodies()) == 1


# --- Vaults -------------------------------------------------------------------------------------


def test_vault_allocate_logs_and_audits(provider, actor):
    # when
    vault = vaults.vault_allocate(actor=actor, provider=provider)

    # then
    vault.refresh_from_db()
    assert numbers.parse(vault.number).allocator == settings.VAULT_ALLOCATOR
    assert (vault.provider_id, vault.status, vault.last_log_index) == (
        provider.pk,
        VaultStatus.ACTIVE,
        seq(0),
    )
    [body] = log_bodies()
    assert body["kind"] == "vault.allocated"
    assert (body["vault"], body["provider"]) == (vault.number, str(provider.pk))
    assert only_audit("vault:allocated", vault).log_sequence == seq(0)


def test_vault_allocate_many_logs_each_vault_and_audits_once(provider, actor):
    # when
    allocated = vaults.vault_allocate_many(actor=actor, provider=provider, count=5)

    # then
    assert Vault.objects.filter(provider=provider).count() == 5
    bodies = log_bodies()
    assert [body["kind"] for body in bodies] == ["vault.allocated"] * 5
    assert {body["provider"] for body in bodies} == {str(provider.pk)}
    by_number = {body["vault"]: seq(index) for index, body in enumerate(bodies)}
    assert set(by_number) == {vault.number for vault in allocated}
    for vault in Vault.objects.filter(provider=provider):
        assert vault.last_log_index == by_number[vault.number]
    audit = only_audit("vault:allocated_many", provider)
    assert audit.data == {"count": 5, "first_log_sequence": seq(0)}


@pytest.mark.parametrize("count", [0, -1, vaults.MAX_BATCH + 1])
def test_vault_allocate_many_refuses_a_count_out_of_range(provider, actor, count):
    # when
    with pytest.raises(InvalidInput):
        vaults.vault_allocate_many(actor=actor, provider=provider, count=count)

    # then
    assert not Vault.objects.exists()
    assert log_bodies() == []


@pytest.mark.parametrize("status", [S.APPLIED, S.SUSPENDED, S.REJECTED, S.WITHDRAWN])
def test_vault_allocate_refuses_a_provider_not_active(db, actor, status):
    # given
    provider = ProviderFactory(status=status)

    # when
    with pytest.raises(Conflict) as one:
        vaults.vault_allocate(actor=actor, provider=provider)
    with pytest.raises(Conflict) as many:
        vaults.vault_allocate_many(actor=actor, provider=provider, count=2)

    # then
    assert one.value.code == many.value.code == ErrorCode.PROVIDER_NOT_ACTIVE
    assert not Vault.objects.exists()
    assert log_bodies() == []


def test_vault_allocate_never_reuses_a_closed_number(provider, actor, monkeypatch):
    # given
    closed = VaultFactory(provider=provider, status=VaultStatus.CLOSED, closed_at=timezone.now())
    fresh = numbers.make(settings.VAULT_COUNTRY, settings.VAULT_ALLOCATOR, "000000000042")
    draws = iter([numbers.VaultNumber(closed.number), fresh])
    monkeypatch.setattr(numbers, "draw", lambda country, allocator: next(draws))

    # when
    vault = vaults.vault_allocate(actor=actor, provider=provider)

    # then
    assert vault.number == fresh.value
    closed.refresh_from_db()
    assert closed.status == VaultStatus.CLOSED
    assert [body["vault"] for body in log_bodies()] == [fresh.value]


def test_vault_allocate_many_never_reuses_a_closed_number(provider, actor, monkeypatch):
    # given
    closed = VaultFactory(provider=provider, status=VaultStatus.CLOSED, closed_at=timezone.now())
    fresh = [
        numbers.make(settings.VAULT_COUNTRY, settings.VAULT_ALLOCATOR, f"00000000004{digit}")
        for digit in (1, 2)
    ]
    draws = iter([numbers.VaultNumber(closed.number), fresh[0], fresh[1]])
    monkeypatch.setattr(numbers, "draw", lambda country, allocator: next(draws))

    # when
    allocated = vaults.vault_allocate_many(actor=actor, provider=provider, count=2)

    # then
    assert sorted(vault.number for vault in allocated) == sorted(n.value for n in fresh)
    assert Vault.objects.get(pk=closed.number).status == VaultStatus.CLOSED


@pytest.mark.parametrize("kind", list(HoldKind))
def test_vault_hold_and_release_log_and_audit(vault, actor, kind):
    # when
    vaults.vault_hold(actor=actor, vault=vault, kind=kind)
    held = Vault.objects.get(pk=vault.pk)
    vaults.vault_release(actor=actor, vault=vault, kind=kind)

    # then
    assert held.flags == [str(kind)]
    released = Vault.objects.get(pk=vault.pk)
    assert released.flags == []
    assert released.last_log_index == seq(1)
    bodies = log_bodies()
    assert [body["kind"] for body in bodies] == ["vault.held", "vault.released"]
    assert all(body["vault"] == vault.number for body in bodies)
    assert all(body["provider"] == str(vault.provider_id) for body in bodies)
    assert all(body["hold"] == str(kind) for body in bodies)
    assert only_audit(f"vault:{kind}", vault).log_sequence == seq(0)
    assert only_audit(f"vault:{kind}_released", vault).log_sequence == seq(1)


def test_vault_hold_twice_is_a_conflict(vault, actor):
    # given
    vaults.vault_hold(actor=actor, vault=vault, kind=HoldKind.CLIENT)

    # when
    with pytest.raises(Conflict) as caught:
        vaults.vault_hold(actor=actor, vault=vault, kind=HoldKind.CLIENT)

    # then
    assert caught.value.code == ErrorCode.ALREADY_HELD
    assert len(log_bodies()) == 1
    assert AuditEvent.objects.count() == 1


def test_vault_release_without_hold_is_a_conflict(vault, actor):
    # when
    with pytest.raises(Conflict) as caught:
        vaults.vault_release(actor=actor, vault=vault, kind=HoldKind.CLIENT)

    # then
    assert caught.value.code == ErrorCode.NOT_HELD
    assert log_bodies() == []
    assert not AuditEvent.objects.exists()


def test_one_hold_does_not_release_the_other(vault, actor):
    # given
    vaults.vault_hold(actor=actor, vault=vault, kind=HoldKind.SERVER)

    # when
    with pytest.raises(Conflict) as caught:
        vaults.vault_release(actor=actor, vault=vault, kind=HoldKind.CLIENT)

    # then
    assert caught.value.code == ErrorCode.NOT_HELD
    assert Vault.objects.get(pk=vault.pk).server_hold is True


def test_vault_close_logs_and_audits(vault, actor):
    # when
    vaults.vault_close(actor=actor, vault=vault)

    # then
    vault.refresh_from_db()
    assert vault.status == VaultStatus.CLOSED
    assert vault.closed_at is not None
    [body] = log_bodies()
    assert body["kind"] == "vault.closed"
    assert (body["vault"], body["provider"]) == (vault.number, str(vault.provider_id))
    assert only_audit("vault:closed", vault).log_sequence == seq(0)


@pytest.mark.parametrize(
    "act",
    [
        lambda actor, vault: vaults.vault_hold(actor=actor, vault=vault, kind=HoldKind.CLIENT),
        lambda actor, vault: vaults.vault_release(actor=actor, vault=vault, kind=HoldKind.CLIENT),
        lambda actor, vault: vaults.vault_close(actor=actor, vault=vault),
    ],
    ids=["hold", "release", "close"],
)
def test_a_closed_vault_is_gone(provider, actor, act):
    # given
    closed = VaultFactory(
        provider=provider, status=VaultStatus.CLOSED, closed_at=timezone.now(), client_hold=True
    )

    # when
    with pytest.raises(Gone) as caught:
        act(actor, closed)

    # then
    assert caught.value.code == ErrorCode.VAULT_CLOSED
    after = Vault.objects.get(pk=closed.pk)
    assert (after.status, after.client_hold, after.closed_at) == (
        VaultStatus.CLOSED,
        True,
        closed.closed_at,
    )
    assert log_bodies() == []


@pytest.mark.parametrize(
    "act",
    [
        lambda actor, vault: vaults.vault_hold(actor=actor, vault=vault, kind=HoldKind.CLIENT),
        lambda actor, vault: vaults.vault_release(actor=actor, vault=vault, kind=HoldKind.SERVER),
        lambda actor, vault: vaults.vault_close(actor=actor, vault=vault),
    ],
    ids=["hold", "release", "close"],
)
def test_registry_lock_refuses_provider_actions(vault, act):
    # given
    Vault.objects.filter(pk=vault.pk).update(registry_lock=True, server_hold=True)
    provider_actor = Actor.for_token(make_token(vault.provider)[0])

    # when
    with pytest.raises(Conflict) as caught:
        act(provider_actor, vault)

    # then
    assert caught.value.code == ErrorCode.REGISTRY_LOCKED
    after = Vault.objects.get(pk=vault.pk)
    assert (after.status, after.flags) == (VaultStatus.ACTIVE, ["server_hold", "registry_lock"])
    assert log_bodies() == []
    assert not AuditEvent.objects.exists()


def test_registry_lock_lets_a_federation_admin_act(vault, django_user_model):
    # given
    Vault.objects.filter(pk=vault.pk).update(registry_lock=True)
    admin = django_user_model.objects.create_user("admin", password="x", is_staff=True)

    # when
    vaults.vault_hold(actor=Actor.for_user(admin), vault=vault, kind=HoldKind.SERVER)

    # then
    assert Vault.objects.get(pk=vault.pk).server_hold is True
    assert only_audit("vault:server_hold", vault).actor_user == admin


# --- Tokens -------------------------------------------------------------------------------------


@pytest.mark.parametrize("owner_fixture", ["provider", "issuer"])
def test_token_create_audits_without_the_value(request, actor, owner_fixture):
    # given
    owner = request.getfixturevalue(owner_fixture)

    # when
    token, value = tokens.token_create(actor=actor, owner=owner, name="ci", expires_in_days=30)

    # then
    assert value.startswith("vr_")
    assert token.key_hash == hashlib.sha256(value.encode()).hexdigest()
    audit = only_audit("token:created", token)
    assert audit.data["owner"] == str(owner.pk)
    assert value not in json.dumps(audit.data)
    assert log_bodies() == []


def test_token_create_refuses_an_applied_provider(db, actor):
    # given
    provider = ProviderFactory(status=S.APPLIED)

    # when
    with pytest.raises(Conflict) as caught:
        tokens.token_create(actor=actor, owner=provider, name="ci")

    # then
    assert caught.value.code == ErrorCode.PROVIDER_NOT_ACTIVE
    assert not ApiToken.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("days", [0, settings.VAULT_TOKEN_MAX_DAYS + 1])
def test_token_create_refuses_a_lifetime_out_of_range(provider, actor, days):
    # when
    with pytest.raises(InvalidInput):
        tokens.token_create(actor=actor, owner=provider, name="ci", expires_in_days=days)

    # then
    assert not ApiToken.objects.exists()


def test_token_revoke_audits_and_refuses_twice(provider, actor):
    # given
    token, _value = tokens.token_create(actor=actor, owner=provider, name="ci")

    # when
    tokens.token_revoke(actor=actor, token=token)
    with pytest.raises(Conflict) as caught:
        tokens.token_revoke(actor=actor, token=token)

    # then
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert caught.value.code == ErrorCode.TOKEN_ALREADY_REVOKED
    assert only_audit("token:revoked", token).actor == actor.label
    assert log_bodies() == []


# --- A failing write leaves nothing -------------------------------------------------------------


class Boom(Exception):
    pass


def _explode(*args, **kwargs):
    raise Boom("audit store unavailable")


def test_a_failing_allocation_leaves_no_vault_no_log_no_audit(provider, actor, monkeypatch):
    # given
    vaults.vault_allocate(actor=actor, provider=provider)
    size, audits = log_size(), AuditEvent.objects.count()
    monkeypatch.setattr(vaults, "record_audit", _explode)

    # when
    with pytest.raises(Boom):
        vaults.vault_allocate(actor=actor, provider=provider)

    # then
    assert Vault.objects.count() == 1
    assert changes().count() == 1
    assert AuditEvent.objects.count() == audits
    assert log_size() == size


def test_a_failing_batch_allocation_leaves_nothing(provider, actor, monkeypatch):
    # given
    size = log_size()
    monkeypatch.setattr(vaults, "record_audit", _explode)

    # when
    with pytest.raises(Boom):
        vaults.vault_allocate_many(actor=actor, provider=provider, count=10)

    # then
    assert not Vault.objects.exists()
    assert not changes().exists()
    assert not AuditEvent.objects.exists()
    assert log_size() == size


def test_a_failing_status_change_leaves_nothing(db, actor, monkeypatch):
    # given
    provider = ProviderFactory(status=S.ACTIVE)
    size = log_size()
    monkeypatch.setattr(organisations, "record_audit", _explode)

    # when
    with pytest.raises(Boom):
        organisations.provider_set_status(
            actor=actor, provider=provider, status=S.SUSPENDED, reason="late fees"
        )

    # then
    provider.refresh_from_db()
    assert (provider.status, provider.last_log_index) == (S.ACTIVE, None)
    assert not ProviderStatusChange.objects.exists()
    assert not changes().exists()
    assert not AuditEvent.objects.exists()
    assert log_size() == size


def test_a_failing_certificate_upload_leaves_nothing(provider, actor, monkeypatch):
    # given
    pem, _key = x509.generate_certificate("docs.provider.example", "encryption")
    size = log_size()
    monkeypatch.setattr(routing, "record_audit", _explode)

    # when
    with pytest.raises(Boom):
        routing.certificate_upload(actor=actor, provider=provider, use="encryption", pem=pem)

    # then
    assert Certificate.objects.filter(provider=provider).count() == 1
    assert Provider.objects.get(pk=provider.pk).last_log_index is None
    assert not changes().exists()
    assert not AuditEvent.objects.exists()
    assert log_size() == size


def test_the_log_stays_gapless_across_services_and_failures(provider, actor, monkeypatch):
    # given
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    with monkeypatch.context() as patched:
        patched.setattr(vaults, "record_audit", _explode)
        with pytest.raises(Boom):
            vaults.vault_close(actor=actor, vault=vault)

    # when
    vaults.vault_hold(actor=actor, vault=vault, kind=HoldKind.CLIENT)
    routing.endpoint_deactivate(actor=actor, endpoint=provider.endpoints.get())

    # then
    bodies = log_bodies()
    assert [body["kind"] for body in bodies] == [
        "vault.allocated",
        "vault.held",
        "endpoint.deactivated",
    ]
    assert log_size() == LogEntry.objects.count()


def test_a_given_number_is_allocated_once_and_never_again(actor, provider):
    # given the demo's example number, allocated on purpose
    vault = vaults.vault_allocate(actor=actor, provider=provider, number="fr97 vlt1 0123 4567 8901")
    assert vault.number == "FR97VLT1012345678901"
    assert LogEntry.objects.get(sequence=vault.last_log_index).kind == "vault.allocated"

    # when it is asked again, even once closed
    vaults.vault_close(actor=actor, vault=vault)
    with pytest.raises(Conflict) as taken:
        vaults.vault_allocate(actor=actor, provider=provider, number="FR97VLT1012345678901")

    # then it is refused: numbers are never reused
    assert taken.value.code == "number_taken"


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("FR98VLT1012345678901", "invalid_check_digits"),
        (
            "FR" + numbers.check_digits("FR", "VLT9", "012345678901") + "VLT9012345678901",
            "unknown_allocator",
        ),
    ],
)
def test_a_given_number_must_be_one_of_this_registry(actor, provider, number, code):
    with pytest.raises(InvalidInput) as refused:
        vaults.vault_allocate(actor=actor, provider=provider, number=number)
    assert refused.value.code == code
    assert not Vault.objects.filter(number=number).exists()
