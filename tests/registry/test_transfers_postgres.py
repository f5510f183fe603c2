"""Concurrent transitions on PostgreSQL: the row locks let exactly one of two rivals win."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from registry.errors import DomainError
from registry.models import LogEntry, Transfer, Vault
from registry.services import transfers
from registry.services.common import Actor
from tests.factories import ProviderFactory, VaultFactory

pytestmark = pytest.mark.postgresql

ROUNDS = 20
SYSTEM = Actor.system("tests")
WON = "won"


def race(*actions: Callable[[], object]) -> list[str]:
    """Run the actions in threads released together; each ends ``won`` or with its error code."""
    start = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)

    def run(index: int, action: Callable[[], object]) -> None:
        try:
            start.wait(timeout=30)
            action()
            results[index] = WON
        except DomainError as exc:
            results[index] = exc.code
        except BaseException as exc:  # surfaced below
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return sorted(results)  # type: ignore[arg-type]


def entries_about(kind_prefix: str, **match: str) -> list[dict]:
    found = []
    for body in LogEntry.objects.filter(kind__startswith=kind_prefix).values_list(
        "body", flat=True
    ):
        entry = json.loads(bytes(body))
        if all(entry.get(key) == value for key, value in match.items()):
            found.append(entry)
    return found


def open_transfer(losing, gaining) -> Transfer:
    vault = VaultFactory(provider=losing)
    _code, value = transfers.transfer_code_issue(actor=SYSTEM, provider=losing, vault=vault)
    return transfers.transfer_request(
        actor=SYSTEM,
        gaining_provider=gaining,
        number=vault.number,
        code=value,
        consent_reference="c",
    )


def test_approve_and_cancel_at_once_exactly_one_wins(transactional_db):
    losing, gaining = ProviderFactory(), ProviderFactory()
    for _ in range(ROUNDS):
        # given a pending transfer
        transfer = open_transfer(losing, gaining)

        # when the losing side approves while the gaining side cancels
        results = race(
            lambda t=transfer: transfers.transfer_approve(
                actor=SYSTEM, provider=losing, transfer=t
            ),
            lambda t=transfer: transfers.transfer_cancel(
                actor=SYSTEM, provider=gaining, transfer=t
            ),
        )

        # then exactly one wins, the other finds the transfer no longer pending
        assert results == ["invalid_transfer_state", WON]
        transfer.refresh_from_db()
        vault = Vault.objects.get(pk=transfer.vault_id)
        outcomes = [
            e for e in entries_about("transfer.", transfer=str(transfer.pk)) if "outcome" in e
        ]
        assert len(outcomes) == 1
        assert outcomes[0]["outcome"] == transfer.state
        if transfer.state == "client_approved":
            assert vault.provider_id == gaining.pk
        else:
            assert transfer.state == "client_cancelled"
            assert vault.provider_id == losing.pk
        assert vault.pending_transfer is False


def test_two_gaining_providers_request_one_vault_at_once_exactly_one_wins(transactional_db):
    losing, first, second = ProviderFactory(), ProviderFactory(), ProviderFactory()
    for _ in range(ROUNDS):
        # given a code the holder gave to two providers
        vault = VaultFactory(provider=losing)
        _code, value = transfers.transfer_code_issue(actor=SYSTEM, provider=losing, vault=vault)

        def request(gaining, number=vault.number, code=value):
            return transfers.transfer_request(
                actor=SYSTEM,
                gaining_provider=gaining,
                number=number,
                code=code,
                consent_reference="c",
            )

        # when both request the vault at once
        results = race(lambda: request(first), lambda: request(second))

        # then one transfer is pending and the other request was refused
        assert results == ["transfer_already_pending", WON]
        assert Transfer.objects.filter(vault=vault).count() == 1
        assert len(entries_about("transfer.requested", vault=vault.number)) == 1
        assert Vault.objects.get(pk=vault.pk).pending_transfer is True


def test_two_deadline_runs_at_once_settle_each_transfer_once(transactional_db):
    losing, gaining = ProviderFactory(), ProviderFactory()
    pending = [open_transfer(losing, gaining) for _ in range(ROUNDS)]
    later = max(t.deadline for t in pending) + timedelta(seconds=1)
    assert later > timezone.now()

    results = race(
        lambda: transfers.transfer_settle_overdue(now=later),
        lambda: transfers.transfer_settle_overdue(now=later),
    )

    assert results == [WON, WON]
    assert set(Transfer.objects.values_list("state", flat=True)) == {"server_approved"}
    assert LogEntry.objects.filter(kind="transfer.completed").count() == ROUNDS
