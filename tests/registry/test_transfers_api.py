"""Transfers over the provider API: requests and their refusals, every transition, visibility."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from directory import proven
from registry import transfer_codes
from registry.errors import DomainError
from registry.models import (
    AuditEvent,
    Message,
    Transfer,
    TransferCode,
    Vault,
)
from registry.numbers import format_display
from registry.services import organisations, transfers, vaults
from registry.services.common import Actor
from registry.services.vaults import HoldKind
from tests.factories import VaultFactory
from tests.registry.conftest import bearer
from tests.registry.helpers import assert_problem, changes, log_kinds

pytestmark = pytest.mark.django_db

TRANSFERS = "/api/v1/provider/transfers"
SYSTEM = Actor.system("tests")


def request_transfer(client, vault, code: str, consent: str = "consent-42"):
    payload = {"vault": format_display(vault.number), "code": code, "consent_reference": consent}
    return client.post(TRANSFERS, payload, format="json")


def act(client, transfer, action: str, **payload):
    return client.post(f"{TRANSFERS}/{transfer.pk}/{action}", payload or None, format="json")


def wrong_but_well_formed(code: str) -> str:
    """Another code with a valid check character: the registry must count it as a wrong try."""
    other = transfer_codes.generate()
    assert other != code
    return other


# --- Requests -------------------------------------------------------------------------------------


def test_request_opens_a_pending_transfer(
    clock, gaining_client, provider, other_provider, vault, holder_code
):
    # when the gaining provider requests the vault with the holder's code (typed loosely)
    response = request_transfer(gaining_client, vault, holder_code.lower())

    # then the transfer is pending until the deadline, the vault is flagged, the losing side told
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "pending"
    assert body["direction"] == "incoming"
    assert body["vault"] == vault.number
    assert body["losing_provider"]["id"] == str(provider.pk)
    assert body["gaining_provider"]["id"] == str(other_provider.pk)
    assert body["consent_reference"] == "consent-42"
    transfer = Transfer.objects.get()
    assert transfer.deadline == transfers.transfer_deadline(clock.now)
    assert [event["event"] for event in body["timeline"]] == ["requested"]
    vault.refresh_from_db()
    assert vault.pending_transfer is True
    assert vault.provider_id == provider.pk
    assert log_kinds()[-1] == "transfer.requested"
    assert vault.last_log_index == changes().last().sequence
    assert Message.objects.filter(provider=provider, kind="transfer.requested").count() == 1
    assert AuditEvent.objects.filter(action="transfer:requested").count() == 1


def test_a_mistyped_code_is_400_and_counts_no_attempt(gaining_client, vault, holder_code):
    # given the code with one character changed (the check character catches it)
    index = 5
    typo_char = next(c for c in transfer_codes.ALPHABET if c != holder_code[index])
    typo = holder_code[:index] + typo_char + holder_code[index + 1 :]

    # when
    response = request_transfer(gaining_client, vault, typo)

    # then
    body = assert_problem(response, 400, "transfer_code_malformed")
    assert body["reason"] == "invalid_check_character"
    assert TransferCode.objects.get().failed_attempts == 0
    assert not Transfer.objects.exists()


def test_a_wrong_code_is_403_and_counted(gaining_client, vault, holder_code):
    response = request_transfer(gaining_client, vault, wrong_but_well_formed(holder_code))

    body = assert_problem(response, 403, "transfer_code_invalid")
    assert body["attempts_left"] == 4
    assert TransferCode.objects.get().failed_attempts == 1
    assert AuditEvent.objects.filter(action="transfer_code:wrong_attempt").count() == 1
    assert not Transfer.objects.exists()


def test_five_wrong_attempts_lock_the_code(gaining_client, vault, holder_code):
    # given four wrong attempts
    for _ in range(4):
        assert_problem(
            request_transfer(gaining_client, vault, wrong_but_well_formed(holder_code)),
            403,
            "transfer_code_invalid",
        )
    # when the fifth is wrong too, the code locks
    assert_problem(
        request_transfer(gaining_client, vault, wrong_but_well_formed(holder_code)),
        403,
        "transfer_code_locked",
    )
    # then even the right code is refused
    assert_problem(
        request_transfer(gaining_client, vault, holder_code), 403, "transfer_code_locked"
    )
    code = TransferCode.objects.get()
    assert code.failed_attempts == 5
    assert code.locked_at is not None
    assert not Transfer.objects.exists()


def test_an_expired_code_is_403(clock, gaining_client, vault, holder_code):
    clock.advance(days=14, seconds=1)
    assert_problem(
        request_transfer(gaining_client, vault, holder_code), 403, "transfer_code_expired"
    )


def test_a_vault_without_a_code_is_403_invalid(gaining_client, vault):
    assert_problem(
        request_transfer(gaining_client, vault, transfer_codes.generate()),
        403,
        "transfer_code_invalid",
    )


def test_a_code_is_single_use(clock, gaining_client, pending, holder_code):
    # given the transfer made with the code was cancelled
    assert act(gaining_client, pending, "cancel").status_code == 200
    # then the code cannot be used again
    assert_problem(
        request_transfer(gaining_client, pending.vault, holder_code), 403, "transfer_code_invalid"
    )


def test_unknown_vault_is_404(gaining_client, db):
    number = VaultFactory.build().number
    response = gaining_client.post(
        TRANSFERS,
        {"vault": number, "code": transfer_codes.generate(), "consent_reference": "c"},
        format="json",
    )
    assert_problem(response, 404, "vault_not_found")


def test_malformed_vault_number_is_400(gaining_client, vault, holder_code):
    typo = vault.number[:-1] + str((int(vault.number[-1]) + 1) % 10)
    response = gaining_client.post(
        TRANSFERS,
        {"vault": typo, "code": holder_code, "consent_reference": "c"},
        format="json",
    )
    assert_problem(response, 400, "invalid_check_digits")


def test_missing_consent_reference_is_400(gaining_client, vault, holder_code):
    response = gaining_client.post(
        TRANSFERS, {"vault": vault.number, "code": holder_code}, format="json"
    )
    body = assert_problem(response, 400, "validation_error")
    assert body["errors"][0]["field"] == "consent_reference"


def test_closed_vault_is_410(gaining_client, vault, holder_code):
    vaults.vault_close(actor=SYSTEM, vault=vault)
    assert_problem(request_transfer(gaining_client, vault, holder_code), 410, "vault_closed")


@pytest.mark.parametrize("kind", [HoldKind.CLIENT, HoldKind.SERVER])
def test_vault_on_hold_is_409(gaining_client, vault, holder_code, kind):
    vaults.vault_hold(actor=SYSTEM, vault=vault, kind=kind)
    assert_problem(request_transfer(gaining_client, vault, holder_code), 409, "vault_on_hold")
    assert TransferCode.objects.get().failed_attempts == 0


def test_registry_lock_is_409(gaining_client, vault, holder_code):
    Vault.objects.filter(pk=vault.pk).update(registry_lock=True)
    assert_problem(request_transfer(gaining_client, vault, holder_code), 409, "registry_locked")


def test_client_transfer_prohibited_is_409(losing_client, gaining_client, vault, holder_code):
    # given the holder asked their provider to block moves
    response = losing_client.post(f"/api/v1/provider/vaults/{vault.number}/prohibit-transfer")
    assert response.status_code == 200
    assert "client_transfer_prohibited" in response.json()["flags"]
    # then requests are refused
    assert_problem(
        request_transfer(gaining_client, vault, holder_code), 409, "client_transfer_prohibited"
    )
    # until the provider lifts the block
    assert (
        losing_client.post(f"/api/v1/provider/vaults/{vault.number}/allow-transfer").status_code
        == 200
    )
    assert request_transfer(gaining_client, vault, holder_code).status_code == 201


def test_prohibit_twice_is_409_and_allow_without_block_is_409(losing_client, vault):
    url = f"/api/v1/provider/vaults/{vault.number}"
    assert_problem(losing_client.post(f"{url}/allow-transfer"), 409, "not_transfer_prohibited")
    assert losing_client.post(f"{url}/prohibit-transfer").status_code == 200
    assert_problem(
        losing_client.post(f"{url}/prohibit-transfer"), 409, "already_transfer_prohibited"
    )


def test_another_providers_vault_cannot_be_prohibited(gaining_client, vault):
    response = gaining_client.post(f"/api/v1/provider/vaults/{vault.number}/prohibit-transfer")
    assert_problem(response, 404, "vault_not_found")


def test_already_pending_is_409(pending, third_client, provider, vault):
    # given the holder got a new code meanwhile and gave it to a third provider
    _code, value = transfers.transfer_code_issue(actor=SYSTEM, provider=provider, vault=vault)
    # then a second request waits for the first to end
    assert_problem(request_transfer(third_client, vault, value), 409, "transfer_already_pending")
    assert Transfer.objects.count() == 1


def test_already_hosted_here_is_409(losing_client, vault, holder_code):
    assert_problem(request_transfer(losing_client, vault, holder_code), 409, "already_hosted_here")


def test_post_transfer_lock_is_409_for_30_days(
    clock, pending, losing_client, other_provider, third_client, vault
):
    # given the vault moved to the gaining provider
    assert act(losing_client, pending, "approve").status_code == 200
    # and its new host issued a code for a third provider
    _code, value = transfers.transfer_code_issue(actor=SYSTEM, provider=other_provider, vault=vault)
    # then within 30 days the vault cannot move again
    clock.advance(days=13)
    body = assert_problem(request_transfer(third_client, vault, value), 409, "post_transfer_lock")
    assert body["locked_until"]
    # and after 30 days it can (with a fresh code: the first one has expired by then)
    clock.advance(days=17, seconds=1)
    _code, value = transfers.transfer_code_issue(actor=SYSTEM, provider=other_provider, vault=vault)
    assert request_transfer(third_client, vault, value).status_code == 201


def test_gaining_provider_not_active_is_refused(other_provider, vault, holder_code):
    # given the gaining provider was suspended (its tokens stop working: 403
    # organisation_inactive at the API's door), the service refuses on its own too
    organisations.provider_set_status(
        actor=SYSTEM, provider=other_provider, status="suspended", reason="audit"
    )
    with pytest.raises(DomainError) as refused:
        transfers.transfer_request(
            actor=SYSTEM,
            gaining_provider=other_provider,
            number=vault.number,
            code=holder_code,
            consent_reference="c",
        )
    assert (refused.value.status, refused.value.code) == (409, "gaining_provider_not_active")
    client = bearer(other_provider)
    assert_problem(request_transfer(client, vault, holder_code), 403, "organisation_inactive")


def test_only_one_pending_transfer_per_vault_in_the_database(pending, third_provider, vault):
    with pytest.raises(IntegrityError), transaction.atomic():
        Transfer.objects.create(
            vault=vault,
            losing_provider_id=vault.provider_id,
            gaining_provider=third_provider,
            consent_reference="c",
            deadline=pending.deadline,
        )


def test_an_issuer_token_cannot_request(lookup_client, vault, holder_code):
    assert_problem(request_transfer(lookup_client, vault, holder_code), 403, "insufficient_scope")


# --- Transitions ----------------------------------------------------------------------------------


def test_approve_moves_the_vault_at_once(clock, pending, losing_client, provider, other_provider):
    # given the losing provider's own flags on the vault
    Vault.objects.filter(pk=pending.vault_id).update(client_hold=True)
    # when the losing provider approves
    response = act(losing_client, pending, "approve")

    # then the vault routes to the gaining provider, with the losing one as previous
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "client_approved"
    assert [e["event"] for e in body["timeline"]] == ["requested", "client_approved"]
    assert body["timeline"][1]["by"] == "losing_provider"
    vault = Vault.objects.get(pk=pending.vault_id)
    assert vault.provider_id == other_provider.pk
    assert vault.previous_provider_id == provider.pk
    assert vault.transferred_at == clock.now
    assert vault.flags == []  # pending_transfer and the losing side's client_hold are gone
    # the code is destroyed, one outcome is logged, the audit names the actor
    code = TransferCode.objects.get()
    assert (code.code_hash, bytes(code.salt), code.destroyed_at) == ("", b"", clock.now)
    assert log_kinds()[-2:] == ["transfer.requested", "transfer.completed"]
    assert vault.last_log_index == changes().last().sequence
    event = AuditEvent.objects.get(action="transfer:client_approved")
    assert event.actor.startswith(f"provider:{provider.pk}")
    # both sides are told
    assert set(Message.objects.filter(kind="transfer.completed").values_list("provider", flat=True))
    assert Message.objects.filter(provider=other_provider, kind="transfer.approved").exists()


def test_reject_needs_an_enumerated_reason(pending, losing_client, provider):
    assert_problem(act(losing_client, pending, "reject"), 400, "validation_error")
    assert_problem(
        act(losing_client, pending, "reject", reason="competitor"), 400, "validation_error"
    )
    response = act(losing_client, pending, "reject", reason="holder_objection", comment="call")

    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["outcome_reason"]) == ("client_rejected", "holder_objection")
    vault = Vault.objects.get(pk=pending.vault_id)
    assert vault.provider_id == provider.pk
    assert vault.pending_transfer is False
    assert log_kinds()[-1] == "transfer.rejected"
    assert Message.objects.filter(provider=pending.gaining_provider, kind="transfer.rejected")


def test_cancel_by_the_gaining_provider(pending, gaining_client, provider):
    response = act(gaining_client, pending, "cancel")

    assert response.status_code == 200
    assert response.json()["state"] == "client_cancelled"
    assert response.json()["timeline"][1]["by"] == "gaining_provider"
    vault = Vault.objects.get(pk=pending.vault_id)
    assert (vault.provider_id, vault.pending_transfer) == (provider.pk, False)
    assert log_kinds()[-1] == "transfer.cancelled"
    assert Message.objects.filter(provider=provider, kind="transfer.cancelled").exists()


@pytest.mark.parametrize(
    ("who", "action", "code"),
    [
        ("gaining", "approve", "not_losing_provider"),
        ("gaining", "reject", "not_losing_provider"),
        ("losing", "cancel", "not_gaining_provider"),
    ],
)
def test_each_side_only_does_its_own_part(
    pending, losing_client, gaining_client, who, action, code
):
    client = gaining_client if who == "gaining" else losing_client
    payload = {"reason": "fraud"} if action == "reject" else {}
    assert_problem(act(client, pending, action, **payload), 403, code)
    assert Transfer.objects.get().state == "pending"


@pytest.mark.parametrize("first", ["approve", "reject", "cancel"])
@pytest.mark.parametrize("then", ["approve", "reject", "cancel"])
def test_every_transition_is_valid_only_from_pending(
    pending, losing_client, gaining_client, first, then
):
    clients = {"approve": losing_client, "reject": losing_client, "cancel": gaining_client}
    payloads = {"reject": {"reason": "dispute"}}
    assert act(clients[first], pending, first, **payloads.get(first, {})).status_code == 200
    entries = changes().count()

    body = assert_problem(
        act(clients[then], pending, then, **payloads.get(then, {})), 409, "invalid_transfer_state"
    )

    assert body["state"] in {"client_approved", "client_rejected", "client_cancelled"}
    assert changes().count() == entries


def test_approve_when_the_gaining_provider_was_suspended_is_409(
    pending, losing_client, other_provider
):
    organisations.provider_set_status(
        actor=SYSTEM, provider=other_provider, status="suspended", reason="audit"
    )
    assert_problem(act(losing_client, pending, "approve"), 409, "gaining_provider_not_active")


def test_the_deadline_cancels_when_the_gaining_provider_is_gone(clock, pending, other_provider):
    organisations.provider_set_status(
        actor=SYSTEM, provider=other_provider, status="withdrawn", reason="left"
    )
    clock.set(pending.deadline)
    assert transfers.transfer_settle_overdue() == 1
    pending.refresh_from_db()
    assert (pending.state, pending.outcome_reason) == (
        "server_cancelled",
        "gaining_provider_not_active",
    )
    assert Vault.objects.get(pk=pending.vault_id).provider_id == pending.losing_provider_id


def test_a_transition_after_the_deadline_is_refused_by_the_service(clock, pending, provider):
    clock.set(pending.deadline + timedelta(seconds=1))
    with pytest.raises(DomainError) as refused:
        transfers.transfer_reject(actor=SYSTEM, provider=provider, transfer=pending, reason="fraud")
    assert refused.value.code == "transfer_deadline_passed"


def test_after_the_deadline_the_api_answers_server_approved(clock, pending, losing_client):
    # given the losing provider did not answer in time
    clock.set(pending.deadline)
    # when it tries to reject now, the overdue transfer is settled first
    body = assert_problem(
        act(losing_client, pending, "reject", reason="fraud"), 409, "invalid_transfer_state"
    )
    assert body["state"] == "server_approved"


def test_closing_the_vault_cancels_the_pending_transfer(pending, losing_client, other_provider):
    response = losing_client.post(f"/api/v1/provider/vaults/{pending.vault_id}/close")

    assert response.status_code == 200
    pending.refresh_from_db()
    assert (pending.state, pending.outcome_reason) == ("server_cancelled", "vault_closed")
    assert log_kinds()[-2:] == ["transfer.cancelled", "vault.closed"]
    assert Message.objects.filter(provider=other_provider, kind="transfer.cancelled").exists()


def test_a_registry_lock_cancels_the_pending_transfer(pending, django_user_model):
    admin = django_user_model.objects.create_user("ops")
    vault = Vault.objects.get(pk=pending.vault_id)

    transfers.vault_set_registry_lock(
        actor=Actor.for_user(admin), vault=vault, locked=True, reason="court order 12"
    )

    pending.refresh_from_db()
    assert (pending.state, pending.outcome_reason) == ("server_cancelled", "registry_lock")
    assert pending.outcome_note == "court order 12"
    assert Vault.objects.get(pk=vault.pk).registry_lock is True


def test_only_admins_set_a_registry_lock(vault):
    with pytest.raises(DomainError) as refused:
        transfers.vault_set_registry_lock(actor=SYSTEM, vault=vault, locked=True, reason="x")
    assert (refused.value.status, refused.value.code) == (403, "permission_denied")


# --- Reading --------------------------------------------------------------------------------------


def test_detail_shows_the_transfer_to_both_sides_only(
    pending, losing_client, gaining_client, third_client
):
    url = f"{TRANSFERS}/{pending.pk}"
    assert losing_client.get(url).json()["direction"] == "outgoing"
    assert gaining_client.get(url).json()["direction"] == "incoming"
    assert_problem(third_client.get(url), 404, "transfer_not_found")
    assert_problem(act(third_client, pending, "approve"), 404, "transfer_not_found")
    assert_problem(act(third_client, pending, "cancel"), 404, "transfer_not_found")


def test_list_filters_by_direction_state_and_vault(
    pending, losing_client, gaining_client, third_client, provider, other_provider
):
    # given another transfer, of another vault, the other way round and already rejected
    back = VaultFactory(provider=other_provider)
    _code, value = transfers.transfer_code_issue(actor=SYSTEM, provider=other_provider, vault=back)
    other = transfers.transfer_request(
        actor=SYSTEM,
        gaining_provider=provider,
        number=back.number,
        code=value,
        consent_reference="c",
    )
    transfers.transfer_reject(actor=SYSTEM, provider=other_provider, transfer=other, reason="fraud")

    def ids(client, query=""):
        response = client.get(f"{TRANSFERS}{query}")
        assert response.status_code == 200, response.content
        return {item["id"] for item in response.json()["results"]}

    assert ids(losing_client) == {str(pending.pk), str(other.pk)}
    assert ids(losing_client, "?direction=outgoing") == {str(pending.pk)}
    assert ids(losing_client, "?direction=incoming") == {str(other.pk)}
    assert ids(gaining_client, "?state=pending") == {str(pending.pk)}
    assert ids(gaining_client, f"?vault={format_display(back.number)}") == {str(other.pk)}
    assert ids(third_client) == set()
    assert_problem(losing_client.get(f"{TRANSFERS}?state=lost"), 400, "validation_error")


def test_the_lookup_names_the_previous_provider_for_30_days(
    clock, pending, losing_client, issuer, provider, other_provider
):
    # given the vault moved
    act(losing_client, pending, "approve")
    lookup_client = bearer(issuer)
    url = f"/api/v1/vaults/{pending.vault_id}"

    # then issuers are sent to the new provider, and told which one it left
    body = lookup_client.get(url).json()
    assert body["provider"]["id"] == str(other_provider.pk)
    assert body["previous_provider"]["id"] == str(provider.pk)
    assert (
        body["previous_provider"]["moved_at"]
        == body["proof"]["vault"]["record"]["previous_provider"]["moved_at"]
    )
    # and after 30 days the previous provider is no longer named
    clock.advance(days=30, seconds=1)
    assert lookup_client.get(url).json()["previous_provider"] is None


def test_a_vault_that_never_moved_has_no_previous_provider(lookup_client, vault):
    assert lookup_client.get(f"/api/v1/vaults/{vault.number}").json()["previous_provider"] is None


def test_naming_the_previous_provider_costs_no_query_it_is_in_the_vault_record(
    clock, pending, losing_client, provider
):
    # given a vault that moved, and one that never did (their providers' evidence cached)
    act(losing_client, pending, "approve")
    still = VaultFactory(provider=provider)
    proven.lookup(pending.vault_id), proven.lookup(still.number)
    # then both cost the same queries, two at most: the vault's record and its proof's nodes
    # (one query on PostgreSQL; the map's cached top levels may hold the whole proof here)
    with CaptureQueriesContext(connection) as never_moved:
        assert proven.lookup(still.number).fields["previous_provider"] is None
    with CaptureQueriesContext(connection) as moved_once:
        moved = proven.lookup(pending.vault_id).fields["previous_provider"]
    assert moved["id"] == str(provider.pk)
    assert len(moved_once) == len(never_moved) <= 2
