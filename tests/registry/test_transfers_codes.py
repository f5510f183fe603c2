"""Transfer codes: the pure format (randomness, check character, hashing) and the provider API."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest

from registry import transfer_codes
from registry.models import AuditEvent, LogEntry, Message, TransferCode, Vault
from registry.services import transfers, vaults
from registry.services.common import Actor
from registry.transfer_codes import ALPHABET, CodeError, InvalidCode
from tests.registry.helpers import PROBLEM

SYSTEM = Actor.system("tests")


def code_url(vault, suffix: str = "") -> str:
    return f"/api/v1/provider/vaults/{vault.number}/transfer-code{suffix}"


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == code
    return response.json()


# --- The format (pure) ----------------------------------------------------------------------------


def test_a_code_carries_at_least_80_random_bits_in_five_groups_of_four():
    code = transfer_codes.generate()
    assert len(code) == 20
    assert set(code) <= set(ALPHABET)
    assert transfer_codes.ENTROPY_BITS == 19 * math.log2(len(ALPHABET)) >= 80
    display = transfer_codes.format_display(code)
    assert [len(group) for group in display.split("-")] == [4, 4, 4, 4, 4]
    assert transfer_codes.normalise(display) == code


def test_codes_do_not_repeat():
    assert len({transfer_codes.generate() for _ in range(2000)}) == 2000


@pytest.mark.parametrize(
    "form",
    [
        lambda c: c.lower(),
        lambda c: transfer_codes.format_display(c),
        lambda c: " ".join(transfer_codes.format_display(c).split("-")),
        lambda c: c.replace("1", "I").replace("0", "O"),
        lambda c: c.replace("1", "l"),
    ],
    ids=["lower", "hyphens", "spaces", "I-and-O", "lowercase-l"],
)
def test_typed_forms_are_tolerated(form):
    code = "0123456789ABCDEFGHJ" + transfer_codes.check_character("0123456789ABCDEFGHJ")
    assert transfer_codes.normalise(form(code)) == code


def test_every_single_wrong_character_is_caught_by_the_check_character():
    for _ in range(20):
        code = transfer_codes.generate()
        for index, original in enumerate(code):
            for replacement in ALPHABET:
                if replacement == original:
                    continue
                typo = code[:index] + replacement + code[index + 1 :]
                with pytest.raises(InvalidCode) as caught:
                    transfer_codes.normalise(typo)
                assert caught.value.reason == CodeError.INVALID_CHECK_CHARACTER


def test_nearly_every_swap_of_two_neighbours_is_caught():
    # ISO 7064's hybrid system over 32 symbols (MOD 33,32) does not catch every transposition:
    # measured, about 0.2 % slip through. Single typos are all caught (test above).
    caught = total = 0
    for _ in range(300):
        code = transfer_codes.generate()
        for i in range(len(code) - 1):
            if code[i] == code[i + 1]:
                continue
            total += 1
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
            try:
                transfer_codes.normalise(swapped)
            except InvalidCode:
                caught += 1
    assert caught / total > 0.99


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", CodeError.EMPTY),
        ("ABCD-EFGH-JKMN-PQRS-TVWU", CodeError.INVALID_CHARACTERS),
        ("ABCD-EFGH-JKMN-PQRS-TV%X", CodeError.INVALID_CHARACTERS),
        ("ABCD-EFGH", CodeError.INVALID_LENGTH),
    ],
)
def test_non_codes_are_refused_with_their_reason(raw, reason):
    with pytest.raises(InvalidCode) as caught:
        transfer_codes.normalise(raw)
    assert caught.value.reason == reason


def test_the_hash_is_salted_and_keyed_to_the_code():
    code = transfer_codes.generate()
    salt_a, salt_b = transfer_codes.new_salt(), transfer_codes.new_salt()
    hashed = transfer_codes.hash_code(code, salt_a)
    assert hashed != transfer_codes.hash_code(code, salt_b)
    assert transfer_codes.matches(code, salt_a, hashed)
    assert not transfer_codes.matches(transfer_codes.generate(), salt_a, hashed)
    assert code not in hashed


# --- Issuing and revoking through the API ---------------------------------------------------------


def test_issue_shows_the_code_once_and_stores_only_its_hash(losing_client, provider, vault):
    # when the holder's provider asks for a code
    response = losing_client.post(code_url(vault))

    # then it gets the value once, not cacheable
    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    value = body["code"]
    assert transfer_codes.normalise(value) == value
    assert body["display"] == transfer_codes.format_display(value)
    assert body["state"] == "active"
    # and the value is nowhere: not in the record, the audit trail, the messages or the log
    record = TransferCode.objects.get()
    assert record.code_hash == transfer_codes.hash_code(value, bytes(record.salt))
    stored = json.dumps(
        [
            list(TransferCode.objects.values_list("code_hash", "id")),
            list(AuditEvent.objects.values_list("data", flat=True)),
            list(Message.objects.values_list("payload", flat=True)),
        ],
        default=str,
    )
    assert value not in stored
    assert transfer_codes.format_display(value) not in stored
    assert not any(value.encode() in bytes(e.body) for e in LogEntry.objects.all())
    # and the provider's queue records the issue (without the value)
    message = Message.objects.get(kind="transfer_code.issued")
    assert message.provider_id == provider.pk
    assert message.payload["vault"] == vault.number
    # and reading the code's state afterwards never shows it again
    state = losing_client.get(code_url(vault))
    assert state.status_code == 200
    assert "code" not in state.json()
    assert state.json()["expires_at"] == body["expires_at"]


def test_a_new_code_voids_the_previous_one(losing_client, gaining_client, vault):
    first = losing_client.post(code_url(vault)).json()["code"]
    second = losing_client.post(code_url(vault)).json()["code"]

    codes = list(TransferCode.objects.order_by("created_at", "id"))
    assert codes[0].void_reason == "replaced"
    assert codes[0].code_hash == ""  # wiped
    payload = {"vault": vault.number, "consent_reference": "c"}
    response = gaining_client.post(
        "/api/v1/provider/transfers", {**payload, "code": first}, format="json"
    )
    assert_problem(response, 403, "transfer_code_invalid")
    response = gaining_client.post(
        "/api/v1/provider/transfers", {**payload, "code": second}, format="json"
    )
    assert response.status_code == 201


def test_revoke_voids_the_code(losing_client, gaining_client, vault):
    value = losing_client.post(code_url(vault)).json()["code"]

    response = losing_client.post(code_url(vault, "/revoke"))

    assert response.status_code == 200
    assert response.json()["state"] == "voided"
    assert response.json()["void_reason"] == "revoked"
    response = gaining_client.post(
        "/api/v1/provider/transfers",
        {"vault": vault.number, "code": value, "consent_reference": "c"},
        format="json",
    )
    assert_problem(response, 403, "transfer_code_invalid")
    assert_problem(losing_client.post(code_url(vault, "/revoke")), 404, "transfer_code_not_found")


def test_no_code_yet_is_404(losing_client, vault):
    assert_problem(losing_client.get(code_url(vault)), 404, "transfer_code_not_found")
    assert_problem(losing_client.post(code_url(vault, "/revoke")), 404, "transfer_code_not_found")


def test_only_the_host_issues_reads_and_revokes(gaining_client, vault):
    assert_problem(gaining_client.post(code_url(vault)), 404, "vault_not_found")
    assert_problem(gaining_client.get(code_url(vault)), 404, "vault_not_found")
    assert_problem(gaining_client.post(code_url(vault, "/revoke")), 404, "vault_not_found")
    assert not TransferCode.objects.exists()


def test_no_code_for_a_closed_or_registry_locked_vault(losing_client, provider):
    closed = vaults.vault_allocate(actor=SYSTEM, provider=provider)
    vaults.vault_close(actor=SYSTEM, vault=closed)
    assert_problem(losing_client.post(code_url(closed)), 410, "vault_closed")
    locked = vaults.vault_allocate(actor=SYSTEM, provider=provider)
    Vault.objects.filter(pk=locked.pk).update(registry_lock=True)
    assert_problem(losing_client.post(code_url(locked)), 409, "registry_locked")


def test_closing_a_vault_voids_its_code(provider, vault, holder_code):
    vaults.vault_close(actor=SYSTEM, vault=vault)
    code = TransferCode.objects.get()
    assert (code.void_reason, code.code_hash) == ("closed", "")


def test_an_expired_code_reads_as_expired(clock, losing_client, vault, holder_code):
    clock.advance(days=14)
    assert losing_client.get(code_url(vault)).json()["state"] == "expired"


def test_issue_through_the_service_returns_a_usable_value(provider, other_provider, vault):
    code, value = transfers.transfer_code_issue(actor=SYSTEM, provider=provider, vault=vault)
    assert code.expires_at - code.created_at == timedelta(days=14)
    transfer = transfers.transfer_request(
        actor=SYSTEM,
        gaining_provider=other_provider,
        number=vault.number,
        code=transfer_codes.format_display(value).lower(),
        consent_reference="signed form 2025-001",
    )
    assert transfer.code_id == code.pk
    assert transfer.consent_reference == "signed form 2025-001"
