"""The log on PostgreSQL: a trigger keeps it append-only; concurrent writers keep it gapless."""

from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError, connection, transaction

from registry.models import LogEntry, LogHead, Vault
from registry.services import vaults
from registry.services.common import Actor
from tests.factories import ProviderFactory

pytestmark = pytest.mark.postgresql


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE registry_logentry SET kind = 'forged' WHERE sequence = 0",
        "UPDATE registry_logentry SET body = '\\x7b7d'::bytea WHERE sequence = 0",
        "DELETE FROM registry_logentry WHERE sequence = 0",
    ],
    ids=["update-kind", "update-body", "delete"],
)
def test_the_log_refuses_update_and_delete(provider, sql):
    # given
    vaults.vault_allocate(actor=Actor.system("tests"), provider=provider)
    before = LogEntry.objects.values().get(sequence=0)

    # when
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql)

    # then
    assert "append-only" in str(caught.value)
    assert LogEntry.objects.values().get(sequence=0) == before


def test_concurrent_batches_keep_the_log_gapless(transactional_db):
    # given
    LogHead.objects.get_or_create(pk=1)
    providers = [ProviderFactory(), ProviderFactory()]
    before = LogEntry.objects.count()  # the factories' set-up is logged too
    start = threading.Barrier(len(providers))
    failures: list[BaseException] = []

    def allocate(provider):
        try:
            start.wait(timeout=30)
            vaults.vault_allocate_many(actor=Actor.system("tests"), provider=provider, count=200)
        except BaseException as exc:  # surfaced to the main thread below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=allocate, args=(p,)) for p in providers]

    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # then
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    sequences = sorted(LogEntry.objects.values_list("sequence", flat=True))
    assert sequences == list(range(before + 400))
    assert LogHead.objects.get(pk=1).size == before + 400
    assert Vault.objects.count() == 400
    for provider in providers:
        indexes = sorted(
            Vault.objects.filter(provider=provider).values_list("last_log_index", flat=True)
        )
        # each batch reserved one block of consecutive positions
        assert indexes == list(range(indexes[0], indexes[0] + 200))
