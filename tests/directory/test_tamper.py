"""Tampering behind the registry's back, and a man in the middle: the project's own client refuses.

Issue 9's checklist (DESIGN.md §6). Each database tamper is raw SQL (past the append-only
triggers on PostgreSQL); the registry then keeps running and publishing as usual, and the
verifying client (``vault-registry`` with pinned keys, its mirror and monitors) must refuse with
the exit status of the reason. The man-in-the-middle cases alter a genuine answer on its way to
the client, without any access to the database. The honest path shows that none of these checks
refuses the truth.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from io import StringIO
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from directory import checkpoints, keys, proven, receipts, state, tree
from directory.checkpoints import CheckpointRefused
from directory.client import plans
from directory.client.errors import (
    CertificateMismatch,
    Inconsistent,
    NoQuorum,
    PlanMismatch,
    ProofMismatch,
    RefusedNumber,
    RolledBack,
    Stale,
    Tampered,
)
from directory.client.mirror import Mirror
from directory.client.verify import verify_lookup
from directory.models import Checkpoint, StateRecord
from directory.transparency import cosignature, note, tiles
from directory.transparency import records as rec
from directory.transparency.answers import PROVEN_FIELDS
from registry import numbers, x509
from registry.models import Certificate, LogEntry, Provider, Vault
from registry.services import common, transfers, vaults
from registry.services.common import canonical, leaf_hash
from registry.services.vaults import HoldKind
from tests.directory.helpers import (
    BASE,
    Cli,
    django_poster,
    django_transport,
    execute_without_trigger,
    leaf_hashes,
)
from tests.factories import EndpointFactory, IssuerFactory, make_token

pytestmark = pytest.mark.django_db

EVIL_URL = "https://attacker.example/collect"
EVIL_NAME = "Attacker Collecte SAS"
APPEND_ONLY = {
    "registry_logentry",
    "directory_treenode",
    "directory_staterecord",
    "directory_mapnode",
    "directory_checkpoint",
}


# --- Behind the registry's back ---------------------------------------------------------------


def sql(table: str, statement: str, params=()) -> None:
    """Raw SQL on ``table``, past its append-only trigger if it has one (PostgreSQL)."""
    if table in APPEND_ONLY:
        execute_without_trigger(table, f"{table}_append_only", statement, list(params))
        return
    with connection.cursor() as cursor:
        cursor.execute(statement, list(params))


def db_id(model, value):
    """A primary key as the database stores it (a UUID is 32 hex digits on SQLite)."""
    return model._meta.pk.get_db_prep_value(value, connection)


def forget_caches() -> None:
    """No process answers from what it cached before the tamper."""
    proven.clear_cache()
    checkpoints.clear_cache()


def registry_goes_on(actor, provider) -> None:
    """After a tamper the registry keeps running: another write through a service, published
    at once as every write is in tests, and no cache left from before."""
    vaults.vault_allocate(actor=actor, provider=provider)
    checkpoints.publish()
    forget_caches()


def forge_record(key: str, alter) -> dict:
    """Rewrite every stored version of ``key``'s state record (its map nodes are left alone)."""
    forged = alter(state.decoded_at([key])[key])
    sql(
        "directory_staterecord",
        "UPDATE directory_staterecord SET record = %s WHERE key = %s",
        [rec.record_bytes(forged), key],
    )
    return forged


def rewrite_entry(sequence: int, provider_id: str) -> None:
    """Rewrite a past log entry (and its leaf hash) so that its vault routes to another provider."""
    body = json.loads(bytes(LogEntry.objects.get(sequence=sequence).body))
    body["provider"] = provider_id
    for record in body["records"]:
        record["provider"] = provider_id
    data = canonical(body)
    sql(
        "registry_logentry",
        "UPDATE registry_logentry SET body = %s, leaf_hash = %s WHERE sequence = %s",
        [data, leaf_hash(data), sequence],
    )


# --- The client -------------------------------------------------------------------------------


def mirror_size(path: Path) -> int:
    mirror = Mirror(path)
    try:
        return mirror.size()
    finally:
        mirror.close()


@pytest.fixture
def client_cli(tmp_path, issuer) -> Cli:
    return Cli(tmp_path, make_token(issuer)[1])


# === Database tampers =========================================================================


def test_an_endpoint_url_changed_in_its_table_is_not_answered_and_in_the_state_is_refused(
    client_cli, provider, other_provider, actor
):
    # given a vault whose provider's logged endpoint is its real URL, and the provider's monitor
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    logged_url = provider.endpoints.get().url
    assert client_cli("monitor", "--provider", str(provider.pk))[0] == 0
    # when an insider points the endpoint at an attacker's URL in registry_endpoint
    sql(
        "registry_endpoint",
        "UPDATE registry_endpoint SET url = %s WHERE provider_id = %s",
        [EVIL_URL, db_id(Provider, provider.pk)],
    )
    registry_goes_on(actor, other_provider)
    # then the lookup still answers the logged URL, verified: answers do not read that table
    code, out, err = client_cli("lookup", vault.number)
    assert code == 0, err
    assert f"endpoint  {logged_url}" in out and EVIL_URL not in out
    # and the stored state map is still what the log gives: the table is not the state
    report = StringIO()
    call_command("rebuild_state_map", "--verify", stdout=report)
    assert "the stored state map is what the log gives" in report.getvalue()
    # when the provider's stored state record is rewritten with the attacker's URL instead
    key = rec.provider_key(str(provider.pk))
    forge_record(key, lambda r: r | {"endpoints": [e | {"url": EVIL_URL} for e in r["endpoints"]]})
    registry_goes_on(actor, other_provider)
    # then the lookup is refused: the record answered is not the one the signed map holds
    code, out, err = client_cli("lookup", vault.number)
    assert code == ProofMismatch.exit_code, err
    assert "REFUSED (proof mismatch)" in err and out == ""
    # and so is a plan holding that number
    code, plan, err = client_cli.plan([vault.number])
    assert code == ProofMismatch.exit_code, err
    assert plan is None
    # and the provider's monitor raises the alarm
    code, _out, err = client_cli("monitor", "--provider", str(provider.pk))
    assert code == ProofMismatch.exit_code
    assert "ALERT" in err and key in err
    # and the rebuild names the record
    with pytest.raises(CommandError, match="differences"):
        call_command("rebuild_state_map", "--verify", stdout=StringIO())


def test_a_certificate_pem_swapped_in_its_table_is_refused(
    client_cli, provider, other_provider, actor
):
    # given a vault of a provider with one logged encryption certificate
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    certificate = provider.certificates.get()
    assert client_cli("lookup", vault.number)[0] == 0
    # when its PEM (and stored fingerprint) are swapped for another valid certificate's
    pem, _key = x509.generate_certificate("Attacker documents", "encryption")
    info = x509.inspect_certificate(pem, "encryption")
    sql(
        "registry_certificate",
        "UPDATE registry_certificate SET pem = %s, fingerprint_sha256 = %s WHERE id = %s",
        [info.pem, info.fingerprint_sha256, db_id(Certificate, certificate.pk)],
    )
    registry_goes_on(actor, other_provider)
    # then the lookup is refused: the PEM is not the certificate the log publishes
    code, out, err = client_cli("lookup", vault.number)
    assert code == CertificateMismatch.exit_code, err
    assert "REFUSED (certificate mismatch)" in err and out == ""
    # and so is a plan
    code, plan, err = client_cli.plan([vault.number])
    assert code == CertificateMismatch.exit_code, err
    assert plan is None


def test_a_vault_repointed_in_its_table_is_not_answered_and_in_the_state_is_refused(
    client_cli, provider, other_provider, actor
):
    # given a vault at a provider, followed by its holder's monitor and its provider's
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    assert client_cli("monitor", "--vault", vault.number)[0] == 0
    assert client_cli("monitor", "--provider", str(provider.pk))[0] == 0
    # when its row in registry_vault is re-pointed to another provider
    sql(
        "registry_vault",
        "UPDATE registry_vault SET provider_id = %s WHERE number = %s",
        [db_id(Provider, other_provider.pk), vault.number],
    )
    registry_goes_on(actor, other_provider)
    # then the lookup and the plan still route it to the logged provider, verified
    code, out, err = client_cli("lookup", vault.number)
    assert code == 0, err
    assert provider.legal_name in out and other_provider.legal_name not in out
    code, plan, err = client_cli.plan([vault.number])
    assert code == 0, err
    assert [g["provider"]["id"] for g in plan["groups"]] == [str(provider.pk)]
    # when the vault's stored state record is re-pointed instead
    key = rec.vault_key(vault.number)
    forge_record(key, lambda r: r | {"provider": str(other_provider.pk)})
    registry_goes_on(actor, other_provider)
    # then the lookup and the plan are refused
    code, out, err = client_cli("lookup", vault.number)
    assert code == ProofMismatch.exit_code, err
    assert other_provider.legal_name not in out
    code, plan, err = client_cli.plan([vault.number])
    assert code in (PlanMismatch.exit_code, ProofMismatch.exit_code), err
    assert plan is None
    # and the holder's monitor raises the alarm, and so does its provider's (it checks every
    # vault the log says it hosts)
    code, _out, err = client_cli("monitor", "--vault", vault.number)
    assert code == ProofMismatch.exit_code
    assert "ALERT" in err and key in err
    code, _out, err = client_cli("monitor", "--provider", str(provider.pk))
    assert code == ProofMismatch.exit_code
    assert "ALERT" in err and key in err


def test_a_vault_pointed_back_at_its_previous_host_with_an_old_record_is_refused(
    client_cli, provider, other_provider, actor
):
    # given a vault that moved from provider to other_provider by an approved transfer
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    _code, value = transfers.transfer_code_issue(actor=actor, provider=provider, vault=vault)
    transfer = transfers.transfer_request(
        actor=actor,
        gaining_provider=other_provider,
        number=vault.number,
        code=value,
        consent_reference="consent-1",
    )
    transfers.transfer_approve(actor=actor, provider=provider, transfer=transfer)
    code, out, err = client_cli("lookup", vault.number)
    assert code == 0, err
    assert other_provider.legal_name in out and f"moved     from {provider.pk}" in out
    assert client_cli("monitor", "--vault", vault.number)[0] == 0
    # when its row is pointed back at the provider that hosted it before
    sql(
        "registry_vault",
        "UPDATE registry_vault SET provider_id = %s, previous_provider_id = NULL, "
        "transferred_at = NULL WHERE number = %s",
        [db_id(Provider, provider.pk), vault.number],
    )
    registry_goes_on(actor, other_provider)
    # then the answer is unaffected
    code, out, err = client_cli("lookup", vault.number)
    assert code == 0, err
    assert other_provider.legal_name in out
    # when the newest stored record is replaced by the vault's own first, genuine record (from
    # when the old provider hosted it), the record an old log entry carried
    key = rec.vault_key(vault.number)
    versions = list(
        StateRecord.objects.filter(key=key).order_by("version").values_list("version", "record")
    )
    first, newest = bytes(versions[0][1]), versions[-1][0]
    assert json.loads(first)["provider"] == str(provider.pk)
    sql(
        "directory_staterecord",
        "UPDATE directory_staterecord SET record = %s WHERE key = %s AND version = %s",
        [first, key, newest],
    )
    registry_goes_on(actor, other_provider)
    # then the lookup and the plan are refused: a genuine record, but not the current one
    code, out, err = client_cli("lookup", vault.number)
    assert code == ProofMismatch.exit_code, err
    code, plan, err = client_cli.plan([vault.number])
    assert code in (PlanMismatch.exit_code, ProofMismatch.exit_code), err
    assert plan is None
    # and the holder's monitor raises the alarm
    code, _out, err = client_cli("monitor", "--vault", vault.number)
    assert code == ProofMismatch.exit_code
    assert "ALERT" in err


def test_a_legal_name_changed_in_its_table_is_not_answered_and_in_the_state_is_refused(
    client_cli, provider, other_provider, actor
):
    # given a vault of a provider
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    # when the provider's legal name is changed in registry_provider
    sql(
        "registry_provider",
        "UPDATE registry_provider SET legal_name = %s WHERE id = %s",
        [EVIL_NAME, db_id(Provider, provider.pk)],
    )
    registry_goes_on(actor, other_provider)
    # then the answer still names the logged provider, verified
    code, out, err = client_cli("lookup", vault.number)
    assert code == 0, err
    assert provider.legal_name in out and EVIL_NAME not in out
    # when its stored state record is changed instead
    forge_record(rec.provider_key(str(provider.pk)), lambda r: r | {"legal_name": EVIL_NAME})
    registry_goes_on(actor, other_provider)
    # then the lookup and the plan are refused
    code, out, err = client_cli("lookup", vault.number)
    assert code == ProofMismatch.exit_code, err
    assert EVIL_NAME not in out
    code, plan, err = client_cli.plan([vault.number])
    assert code == ProofMismatch.exit_code, err
    assert plan is None


def held_or_closed(actor, provider, forgery: str):
    """A vault held by the registry ("hold_cleared") or closed, and what the client prints of
    it."""
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    if forgery == "hold_cleared":
        vaults.vault_hold(actor=actor, vault=vault, kind=HoldKind.SERVER)
        return vault, "NOT deliverable hold"
    vaults.vault_close(actor=actor, vault=vault)
    return vault, "closed (proven)"


@pytest.mark.parametrize("forgery", ["hold_cleared", "closed_reopened"])
def test_a_hold_cleared_or_a_closed_vault_reopened_in_the_state_is_refused(
    client_cli, provider, other_provider, actor, forgery
):
    # given a vault held by the registry, or closed
    vault, shown = held_or_closed(actor, provider, forgery)
    changes = {
        "hold_cleared": {"server_hold": False},
        "closed_reopened": {"status": "active", "closed_at": None},
    }[forgery]
    code, out, err = client_cli("lookup", vault.number)
    assert code == 0 and shown in out, err
    # when its stored state record is changed to let documents through again
    forge_record(rec.vault_key(vault.number), lambda record: record | changes)
    registry_goes_on(actor, other_provider)
    # then the registry's answer says deliverable, and the client refuses it
    assert proven.lookup(vault.number).fields["deliverable"] is True
    code, out, err = client_cli("lookup", vault.number)
    assert code == ProofMismatch.exit_code, err
    assert out == ""
    # and the plan that would deliver to it
    code, plan, err = client_cli.plan([vault.number])
    assert code in (PlanMismatch.exit_code, ProofMismatch.exit_code), err
    assert plan is None


@pytest.mark.parametrize("forgery", ["hold_cleared", "closed_reopened"])
def test_a_hold_cleared_or_a_closed_vault_reopened_in_its_table_only_is_not_answered(
    client_cli, provider, other_provider, actor, forgery
):
    # given a vault held by the registry, or closed
    vault, shown = held_or_closed(actor, provider, forgery)
    if forgery == "hold_cleared":
        statement = "UPDATE registry_vault SET server_hold = %s WHERE number = %s"
        params = [False, vault.number]
    else:
        statement = "UPDATE registry_vault SET status = %s, closed_at = NULL WHERE number = %s"
        params = ["active", vault.number]
    # when registry_vault alone is changed
    sql("registry_vault", statement, params)
    registry_goes_on(actor, other_provider)
    row = Vault.objects.get(number=vault.number)
    assert (row.status, row.server_hold) == ("active", False)
    # then the answer is still the logged one (held, or 410), verified
    code, out, err = client_cli("lookup", vault.number)
    assert code == 0, err
    assert shown in out
    if forgery == "closed_reopened":
        assert proven.lookup(vault.number).status == 410


def test_a_vault_deleted_from_the_state_records_is_refused_as_a_404(
    client_cli, provider, other_provider, actor
):
    # given a vault followed by its holder's monitor
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    key = rec.vault_key(vault.number)
    assert client_cli("monitor", "--vault", vault.number)[0] == 0
    # when its registry_vault row is deleted, the answer is unaffected
    sql("registry_vault", "DELETE FROM registry_vault WHERE number = %s", [vault.number])
    registry_goes_on(actor, other_provider)
    code, out, err = client_cli("lookup", vault.number)
    assert code == 0, err
    assert f"{vault.number}: deliverable" in out
    # when every version of its stored state record is deleted
    sql("directory_staterecord", "DELETE FROM directory_staterecord WHERE key = %s", [key])
    registry_goes_on(actor, other_provider)
    # then the registry answers a signed 404, and the client refuses it: the map holds the vault
    assert proven.lookup(vault.number).status == 404
    code, out, err = client_cli("lookup", vault.number)
    assert code == ProofMismatch.exit_code, err
    assert "in the signed map, but was answered absent" in err and out == ""
    # and the plan that calls it unknown
    code, plan, err = client_cli.plan([vault.number])
    assert code in (PlanMismatch.exit_code, ProofMismatch.exit_code), err
    assert plan is None
    # and the holder's monitor raises the alarm
    code, _out, err = client_cli("monitor", "--vault", vault.number)
    assert code == ProofMismatch.exit_code
    assert "ALERT" in err


def test_an_old_entry_rewritten_in_a_full_tile_is_refused_by_an_existing_and_a_fresh_mirror(
    client_cli, tmp_path, provider, other_provider, actor
):
    # given a log larger than one full tile, mirrored by a client
    allocated = vaults.vault_allocate_many(actor=actor, provider=provider, count=300)
    checkpoints.publish()
    code, _out, err = client_cli("mirror", "sync")
    assert code == 0, err
    size = checkpoints.log_size()
    victim = allocated[10]
    assert size > tiles.TILE_WIDTH > victim.last_log_index
    leaves = Mirror(client_cli.mirror)
    kept = leaves.db.execute(
        "SELECT hash, body FROM leaves WHERE idx = ?", (victim.last_log_index,)
    ).fetchone()
    leaves.close()
    # when an entry of the first (full) tile is rewritten to re-point a vault
    rewrite_entry(victim.last_log_index, str(other_provider.pk))
    # and the registry goes on and signs its next checkpoint (the stored tree is untouched)
    registry_goes_on(actor, provider)
    assert checkpoints.serving().size == size + 1
    # then the existing mirror refuses to follow: it fetched that tile again
    code, out, err = client_cli("mirror", "sync")
    assert code == Inconsistent.exit_code, err
    assert "REFUSED (HISTORY REWRITTEN)" in err and "rewritten" in err and "tile 0" in err
    # and wrote nothing
    assert mirror_size(client_cli.mirror) == size
    leaves = Mirror(client_cli.mirror)
    assert (
        leaves.db.execute(
            "SELECT hash, body FROM leaves WHERE idx = ?", (victim.last_log_index,)
        ).fetchone()
        == kept
    )
    leaves.close()
    # and a fresh mirror refuses too: the entry does not hash to the signed tree's leaf
    fresh = Cli(tmp_path, client_cli.token, name="fresh")
    code, _out, err = fresh("mirror", "sync")
    assert code == Inconsistent.exit_code, err
    assert f"entry {victim.last_log_index}" in err
    assert mirror_size(fresh.mirror) == 0
    # and the lookup still answers the logged routing (the map was not rewritten)
    code, out, err = client_cli("lookup", victim.number)
    assert code == 0, err
    assert provider.legal_name in out


def test_an_entry_rewritten_with_its_tree_recomputed_in_sql_is_never_signed(
    client_cli, tmp_path, provider, other_provider, actor, caplog
):
    # given a log larger than one full tile, mirrored, and a client (--state) that saw it
    allocated = vaults.vault_allocate_many(actor=actor, provider=provider, count=300)
    checkpoints.publish()
    assert client_cli("mirror", "sync")[0] == 0
    victim = allocated[10]
    assert client_cli("lookup", victim.number)[0] == 0
    signed = checkpoints.serving()
    count = Checkpoint.objects.count()
    # when an entry is rewritten and the whole stored tree recomputed from the rewritten leaves
    # (no key is needed for that)
    rewrite_entry(victim.last_log_index, str(other_provider.pk))
    sql("directory_treenode", "DELETE FROM directory_treenode", [])
    tree.extend(0, leaf_hashes())
    assert tree.root(signed.size) != bytes(signed.root_hash)
    # and the registry goes on: a write, then its publication
    with caplog.at_level(logging.ERROR, logger="directory.checkpoints"):
        newcomer = vaults.vault_allocate(actor=actor, provider=provider)
        # then the registry refuses to sign the forged tree, and says so
        with pytest.raises(CheckpointRefused, match="no longer gives the root signed"):
            checkpoints.publish()
    assert any(
        r.levelno == logging.ERROR and "Checkpoint refused" in r.getMessage()
        for r in caplog.records
    )
    # and the last good checkpoint stays the one served
    forget_caches()
    served = checkpoints.serving()
    assert (served.pk, served.size, served.note) == (signed.pk, signed.size, signed.note)
    assert Checkpoint.objects.count() == count
    # and the existing mirror accepts nothing new
    code, out, err = client_cli("mirror", "sync")
    assert code == 0, err
    assert "(0 new entries)" in out and mirror_size(client_cli.mirror) == signed.size
    # and a fresh mirror refuses the forged entries: they do not hash to the signed root
    fresh = Cli(tmp_path, client_cli.token, name="fresh")
    code, _out, err = fresh("mirror", "sync")
    assert code == Inconsistent.exit_code, err
    assert mirror_size(fresh.mirror) == 0
    # and lookups with --state answer the signed state: the victim where the log put it, the
    # vault written after the forgery not yet
    code, out, err = client_cli("lookup", victim.number)
    assert code == 0, err
    assert f"verified against checkpoint {signed.size} " in out and provider.legal_name in out
    code, out, err = client_cli("lookup", newcomer.number)
    assert code == 0, err
    assert "proven absent" in out
    assert json.loads(client_cli.state.read_text())["size"] == signed.size


def test_map_nodes_forged_to_match_a_forged_record_are_never_signed(
    client_cli, provider, other_provider, actor, monkeypatch, caplog
):
    # given a vault, signed
    victim = vaults.vault_allocate(actor=actor, provider=provider)
    signed = checkpoints.serving()
    # and a write the registry has appended and mapped but not signed yet (its background
    # publication is due in a moment)
    monkeypatch.setattr(common, "_schedule_checkpoint", lambda: None)
    newcomer = vaults.vault_allocate(actor=actor, provider=provider)
    size = checkpoints.log_size()
    assert checkpoints.serving().size == signed.size == size - 1
    # when an insider forges the map at that new version: the victim re-pointed, its record and
    # the map nodes recomputed with the registry's own code so that they agree
    victim_key, newcomer_key = rec.vault_key(victim.number), rec.vault_key(newcomer.number)
    honest = state.decoded_at([newcomer_key], size)[newcomer_key]
    forged = state.decoded_at([victim_key])[victim_key] | {"provider": str(other_provider.pk)}
    for table in ("directory_staterecord", "directory_mapnode"):
        sql(table, f"DELETE FROM {table} WHERE version = %s", [size])
    state.apply(size, [honest, forged])
    assert state.records_at([victim_key], size)[victim_key] == rec.record_bytes(forged)
    # then the registry refuses to sign it, and says so
    with (
        caplog.at_level(logging.ERROR, logger="directory.checkpoints"),
        pytest.raises(CheckpointRefused, match="the stored map is not what the log produces"),
    ):
        checkpoints.publish()
    assert any("Checkpoint refused" in r.getMessage() for r in caplog.records)
    # and the signed checkpoint stays the one served
    forget_caches()
    assert checkpoints.serving().pk == signed.pk
    # and lookups keep the signed state
    code, out, err = client_cli("lookup", victim.number)
    assert code == 0, err
    assert provider.legal_name in out and other_provider.legal_name not in out
    code, out, err = client_cli("lookup", newcomer.number)
    assert code == 0, err
    assert "proven absent" in out


def test_a_map_forged_in_place_under_the_signed_checkpoint_is_refused_and_never_resigned(
    client_cli, provider, other_provider, actor
):
    # given a vault, signed
    victim = vaults.vault_allocate(actor=actor, provider=provider)
    signed = checkpoints.serving()
    # when the whole stored map is rebuilt at the signed size from the log, with one lie
    replayed = rec.replay(
        json.loads(bytes(body))
        for body in LogEntry.objects.order_by("sequence").values_list("body", flat=True)
    )
    key = rec.vault_key(victim.number)
    replayed[key] = replayed[key] | {"provider": str(other_provider.pk)}
    for table in ("directory_staterecord", "directory_mapnode"):
        sql(table, f"DELETE FROM {table}", [])
    state.apply(signed.size, list(replayed.values()))
    forget_caches()
    # then the answers, proven by the forged map, do not verify against the signed map root
    code, out, err = client_cli("lookup", victim.number)
    assert code == ProofMismatch.exit_code, err
    assert other_provider.legal_name not in out
    # and the registry refuses to sign anything over it
    vaults.vault_allocate(actor=actor, provider=provider)
    with pytest.raises(CheckpointRefused, match="no longer gives the root signed"):
        checkpoints.publish(force=True)
    forget_caches()
    assert checkpoints.serving().pk == signed.pk


def test_a_history_rewritten_after_every_checkpoint_was_deleted_is_refused_by_who_saw_it(
    client_cli, provider, other_provider, actor, settings
):
    # given a client (--state) and a mirror that saw the signed log
    allocated = vaults.vault_allocate_many(actor=actor, provider=provider, count=20)
    victim = allocated[3]
    assert client_cli("lookup", victim.number)[0] == 0
    assert client_cli("mirror", "sync")[0] == 0
    signed = checkpoints.serving()
    # when an insider rewrites an entry, recomputes the tree and the map from the rewritten log,
    # and deletes every checkpoint row (past the table's append-only trigger)
    rewrite_entry(victim.last_log_index, str(other_provider.pk))
    sql("directory_treenode", "DELETE FROM directory_treenode", [])
    tree.extend(0, leaf_hashes())
    for table in ("directory_staterecord", "directory_mapnode"):
        sql(table, f"DELETE FROM {table}", [])
    sql("directory_checkpoint", "DELETE FROM directory_checkpoint", [])
    call_command("rebuild_state_map", stdout=StringIO())
    # then the registry refuses to sign it: it does not extend the last checkpoint this server
    # signed, kept outside the database
    with pytest.raises(checkpoints.CheckpointRefused, match="this server signed"):
        checkpoints.publish()
    # and when the insider also deletes that file, the registry signs the rewritten history
    Path(settings.VAULT_CHECKPOINT_STATE_FILE).unlink()
    forged = checkpoints.publish()
    forget_caches()
    assert forged.size == signed.size and bytes(forged.root_hash) != bytes(signed.root_hash)
    assert proven.lookup(victim.number).fields["provider"]["id"] == str(other_provider.pk)
    # then the client that saw the genuine checkpoint refuses, and keeps both notes
    code, out, err = client_cli("lookup", victim.number)
    assert code == Inconsistent.exit_code, err
    assert "REFUSED (HISTORY REWRITTEN)" in err and out == ""
    (folder,) = Path(f"{client_cli.state}.evidence").iterdir()
    assert (folder / "seen.note").read_text() == signed.note
    assert (folder / "served.note").read_text() == forged.note
    # and so does the mirror
    code, _out, err = client_cli("mirror", "sync")
    assert code == Inconsistent.exit_code, err
    assert mirror_size(client_cli.mirror) == signed.size


def test_a_rollback_to_an_older_checkpoint_is_refused_and_both_notes_are_kept(
    client_cli, provider, actor
):
    # given a client (--state) and a mirror that saw the newest checkpoint
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    older = checkpoints.serving()
    vaults.vault_allocate(actor=actor, provider=provider)
    newer = checkpoints.serving()
    assert newer.size > older.size
    code, out, err = client_cli("lookup", vault.number)
    assert code == 0 and f"verified against checkpoint {newer.size} " in out, err
    assert client_cli("mirror", "sync")[0] == 0
    # when the newest checkpoint row is deleted: the registry serves the older one again
    sql("directory_checkpoint", "DELETE FROM directory_checkpoint WHERE id = %s", [newer.pk])
    forget_caches()
    assert checkpoints.serving().pk == older.pk
    # then the client refuses the rollback
    code, out, err = client_cli("lookup", vault.number)
    assert code == RolledBack.exit_code, err
    assert "REFUSED (ROLLBACK)" in err and out == ""
    # and keeps both conflicting signed notes as evidence
    folders = list(Path(f"{client_cli.state}.evidence").iterdir())
    assert len(folders) == 1 and folders[0].name.endswith(f"-rolledback-{older.size}")
    assert (folders[0] / "seen.note").read_text() == newer.note
    assert (folders[0] / "served.note").read_text() == older.note
    assert str(folders[0]) in err
    # and still holds the newer one
    assert json.loads(client_cli.state.read_text())["size"] == newer.size
    # and the mirror refuses to go back, keeping both notes too
    code, _out, err = client_cli("mirror", "sync")
    assert code == RolledBack.exit_code, err
    assert "rolled back" in err and mirror_size(client_cli.mirror) == newer.size
    (kept,) = Path(f"{client_cli.mirror}.evidence").iterdir()
    assert (kept / "seen.note").read_text() == newer.note
    assert (kept / "served.note").read_text() == older.note


def test_a_stale_checkpoint_is_refused_until_the_registry_signs_again(
    client_cli, provider, actor, monkeypatch
):
    # given a vault, and a registry whose last checkpoint was signed an hour ago
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    real = time.time
    with monkeypatch.context() as patch:
        patch.setattr(
            checkpoints,
            "time",
            SimpleNamespace(time=lambda: real() - 3600, monotonic=time.monotonic),
        )
        stale = checkpoints.publish(force=True)
    forget_caches()
    assert checkpoints.serving().pk == stale.pk
    # then a client that accepts at most ten minutes refuses it, for lookups, mirrors and plans
    options = ["--max-age", "600"]
    code, out, err = client_cli("lookup", vault.number, options=options)
    assert code == Stale.exit_code, err
    assert "REFUSED (stale checkpoint)" in err and out == ""
    assert client_cli("mirror", "sync", options=options)[0] == Stale.exit_code
    assert client_cli.plan([vault.number], options=options)[0] == Stale.exit_code
    # when the registry signs the same state again, now
    checkpoints.publish(force=True)
    forget_caches()
    # then it is accepted
    code, out, err = client_cli("lookup", vault.number, options=options)
    assert code == 0, err
    assert f"{vault.number}: deliverable" in out


# === A man in the middle ======================================================================


@pytest.fixture
def world(provider, other_provider, actor):
    """X and Y at two providers, a closed vault and a number no vault has; all signed."""
    x = vaults.vault_allocate(actor=actor, provider=provider)
    y = vaults.vault_allocate(actor=actor, provider=other_provider)
    closed = vaults.vault_close(
        actor=actor, vault=vaults.vault_allocate(actor=actor, provider=provider)
    )
    unknown = numbers.draw(settings.VAULT_COUNTRY, settings.VAULT_ALLOCATOR).value
    assert not Vault.objects.filter(number=unknown).exists()
    return SimpleNamespace(
        x=x.number,
        y=y.number,
        closed=closed.number,
        unknown=unknown,
        provider=provider,
        other_provider=other_provider,
    )


def genuine(number: str, token: str) -> tuple[int, dict]:
    """The registry's genuine answer for ``number``, now."""
    status, content = django_transport()(
        f"{BASE}/api/v1/vaults/{number}", {"Authorization": f"Bearer {token}"}
    )
    return status, json.loads(content)


def mitm(alter):
    """A transport through a man in the middle: genuine answers from the registry, each lookup
    answer replaced by ``alter(url, status, body) -> (status, body)`` on its way."""
    transport = django_transport()

    def get(url, headers):
        status, content = transport(url, headers)
        if "/api/v1/vaults/" not in url:
            return status, content
        status, body = alter(url, status, json.loads(content))
        return status, json.dumps(body).encode()

    return get


@pytest.mark.parametrize("replayed", ["unknown", "closed"])
def test_a_genuine_404_or_410_of_another_number_replayed_is_refused(client_cli, world, replayed):
    # given the registry's genuine refusal for another number, which verifies for that number
    other = getattr(world, replayed)
    status, body = genuine(other, client_cli.token)
    assert status == {"unknown": 404, "closed": 410}[replayed]
    assert verify_lookup(other, None, status, body, client_cli.trust()).status == status
    # when it is served as the answer for X
    code, out, err = client_cli("lookup", world.x, transport=mitm(lambda *_: (status, body)))
    # then it is refused: the answer is about another number
    assert code == Tampered.exit_code, err
    assert "another number" in err and out == ""


def test_vault_y_genuine_answer_served_for_x_is_refused(client_cli, world):
    # given Y's genuine, verifiable answer served as the answer for X
    status, body = genuine(world.y, client_cli.token)
    assert status == 200
    code, out, err = client_cli("lookup", world.x, transport=mitm(lambda *_: (status, body)))
    # then it is refused: the answer is about another number
    assert code == Tampered.exit_code, err
    assert "another number" in err and out == ""


def test_vault_y_routing_grafted_onto_x_genuine_answer_is_refused(client_cli, world):
    # given X's genuine answer whose routing fields and provider proof are Y's (all genuine)
    _status, y_answer = genuine(world.y, client_cli.token)

    def graft(_url, status, body):
        for name in PROVEN_FIELDS:
            if name != "number":
                body[name] = y_answer[name]
        body["proof"]["provider"] = y_answer["proof"]["provider"]
        return status, body

    # then it is refused: the provider proven is not X's provider
    code, out, err = client_cli("lookup", world.x, transport=mitm(graft))
    assert code == ProofMismatch.exit_code, err
    assert out == ""


def test_a_genuine_answer_from_before_a_hold_replayed_to_a_client_that_saw_it_is_refused(
    client_cli, world, actor
):
    # given X's genuine answer captured while it was deliverable
    status, before = genuine(world.x, client_cli.token)
    # when X is held, and a client (--state) sees the checkpoint that signs the hold
    vaults.vault_hold(actor=actor, vault=Vault.objects.get(number=world.x), kind=HoldKind.SERVER)
    forget_caches()
    code, out, err = client_cli("lookup", world.x)
    assert code == 0 and "NOT deliverable hold" in out, err
    # then the old answer replayed to it is refused: its checkpoint is older than one it saw
    code, out, err = client_cli("lookup", world.x, transport=mitm(lambda *_: (status, before)))
    assert code == RolledBack.exit_code, err
    assert out == ""


def test_lookup_json_prints_nothing_the_proofs_do_not_cover(client_cli, world):
    # given a man in the middle who changes what no proof covers in X's genuine answer: the
    # display form of the number, the body's time, and an extra member
    shown = numbers.format_display(world.y)

    def alter(_url, status, body):
        body["display"] = shown
        body["at"] = "2000-01-01T00:00:00.000000Z"
        body["deliver_to"] = EVIL_URL
        return status, body

    # then `lookup --json` refuses it, or prints none of these unproven values
    _code, out, _err = client_cli("lookup", world.x, "--json", transport=mitm(alter))
    assert shown not in out, "an unproven display form printed as verified"
    assert "2000-01-01" not in out, "an unproven time printed as verified"
    assert EVIL_URL not in out, "an unproven member printed as verified"


def test_a_pem_replaced_by_another_valid_certificate_is_refused(client_cli, world):
    # given X's genuine answer whose PEM is replaced by another valid certificate's
    pem, _key = x509.generate_certificate("Attacker documents", "encryption")

    def swap(_url, status, body):
        body["encryption_certificates"][0]["pem"] = pem
        return status, body

    # then it is refused: the PEM does not hash to the proven fingerprint
    code, out, err = client_cli("lookup", world.x, transport=mitm(swap))
    assert code == CertificateMismatch.exit_code, err
    assert "REFUSED (certificate mismatch)" in err and out == ""


FIELD_CHANGES = {
    "url": lambda b, w: b["endpoints"][0].update(url=EVIL_URL),
    "transport_profile": lambda b, w: b["endpoints"][0].update(transport_profile="plain-smtp/1"),
    "document_types": lambda b, w: b["endpoints"][0].update(
        document_types=[*b["endpoints"][0]["document_types"], "medical_record"]
    ),
    "endpoint_expiry": lambda b, w: b["endpoints"][0].update(
        expires_at="2099-12-31T00:00:00.000000Z"
    ),
    "certificate_expiry": lambda b, w: b["encryption_certificates"][0].update(
        not_after="2099-12-31T00:00:00.000000Z"
    ),
    "certificate_fingerprint": lambda b, w: b["encryption_certificates"][0].update(
        fingerprint_sha256="00" * 32
    ),
    "previous_provider": lambda b, w: b.update(
        previous_provider={
            "id": str(w.other_provider.pk),
            "moved_at": "2025-01-01T00:00:00.000000Z",
            "until": "2099-01-01T00:00:00.000000Z",
        }
    ),
    "deliverable": lambda b, w: b.update(deliverable=False),
    "reasons": lambda b, w: b.update(reasons=["hold"]),
    "flags": lambda b, w: b.update(flags=["server_hold"]),
    "status": lambda b, w: b.update(status="closed"),
    "provider": lambda b, w: b["provider"].update(id=str(w.other_provider.pk)),
    "legal_name": lambda b, w: b["provider"].update(legal_name=EVIL_NAME),
}


@pytest.mark.parametrize("field", sorted(FIELD_CHANGES))
def test_a_changed_field_of_a_genuine_answer_is_refused(client_cli, world, field):
    # given X's genuine answer, with one field an issuer acts on changed on its way
    def change(_url, status, body):
        FIELD_CHANGES[field](body, world)
        return status, body

    # then the client refuses it: the field is not what the proven records give
    code, out, err = client_cli("lookup", world.x, transport=mitm(change))
    assert code == ProofMismatch.exit_code, err
    assert "REFUSED (proof mismatch)" in err and out == ""


@pytest.mark.parametrize(
    ("asked", "served_status", "refusal"),
    [
        ("x", 404, ProofMismatch),
        ("x", 410, ProofMismatch),
        ("unknown", 200, ProofMismatch),
        ("closed", 200, ProofMismatch),
        ("closed", 404, ProofMismatch),
        ("unknown", 410, ProofMismatch),
        ("x", 400, Tampered),
    ],
)
def test_a_genuine_body_served_with_another_status_is_refused(
    client_cli, world, asked, served_status, refusal
):
    # given the genuine answer for a number, served with another HTTP status
    number = getattr(world, asked)
    code, out, err = client_cli(
        "lookup", number, transport=mitm(lambda _url, _status, body: (served_status, body))
    )
    # then it is refused: the status is not the one the proven records imply (or, for a 400,
    # not the refusal its receipt signs)
    assert code == refusal.exit_code, err
    assert out == ""


def test_an_at_query_answered_with_the_current_answer_is_refused(client_cli, world, actor):
    # given X deliverable at a past moment, and held since
    then = timezone.now()
    vaults.vault_hold(actor=actor, vault=Vault.objects.get(number=world.x), kind=HoldKind.SERVER)
    forget_caches()
    code, out, err = client_cli("lookup", world.x, "--at", then.isoformat())
    assert code == 0, err
    assert f"{world.x}: deliverable" in out
    code, out, err = client_cli("lookup", world.x)
    assert code == 0 and "NOT deliverable hold" in out, err

    # when a man in the middle answers the --at question with the current answer
    def current(url, _status, _body):
        return genuine(url.removeprefix(f"{BASE}/api/v1/vaults/").split("?")[0], client_cli.token)

    code, out, err = client_cli(
        "lookup", world.x, "--at", then.isoformat(), transport=mitm(current)
    )
    # then it is refused: it is not about the time asked
    assert code == ProofMismatch.exit_code, err
    assert "asked about" in err and out == ""


def test_an_honest_at_answer_is_accepted_by_a_client_that_saw_newer_checkpoints(
    client_cli, world, actor
):
    # given X deliverable at a past moment, held since, and a client (--state) that saw the
    # checkpoint signing the hold
    then = timezone.now()
    vaults.vault_hold(actor=actor, vault=Vault.objects.get(number=world.x), kind=HoldKind.SERVER)
    forget_caches()
    code, out, err = client_cli("lookup", world.x)
    assert code == 0 and "NOT deliverable hold" in out, err
    # when it asks where X routed then: the registry's honest answer, proven by the checkpoint
    # in force then (older than the one the client saw, and consistent with it)
    code, out, err = client_cli("lookup", world.x, "--at", then.isoformat())
    # then it is accepted, and no rollback is claimed
    assert code == 0, err
    assert f"{world.x}: deliverable" in out
    assert not Path(f"{client_cli.state}.evidence").exists()


# --- Plans ------------------------------------------------------------------------------------


@pytest.fixture
def plan_world(provider, other_provider, actor):
    """Three vaults at one provider (one held), two at another, and a malformed entry."""
    mine = vaults.vault_allocate_many(actor=actor, provider=provider, count=3)
    theirs = vaults.vault_allocate_many(actor=actor, provider=other_provider, count=2)
    vaults.vault_hold(actor=actor, vault=mine[2], kind=HoldKind.CLIENT)
    checkpoints.publish()
    forget_caches()
    asked = [v.number for v in [*mine, *theirs]] + ["FR12"]
    return SimpleNamespace(
        asked=asked,
        mine=[v.number for v in mine],
        theirs=[v.number for v in theirs],
        held=mine[2].number,
        provider=str(provider.pk),
        other_provider=str(other_provider.pk),
    )


def _forge_plan(plan: dict, how: str, w) -> dict:
    groups = {group["provider"]["id"]: group for group in plan["groups"]}
    mine, theirs = groups[w.provider], groups[w.other_provider]
    if how == "moved":  # a number moved to another provider's group
        number = w.mine[0]
        mine["numbers"].remove(number)
        theirs["numbers"] = sorted([*theirs["numbers"], number])
    elif how == "reason":  # an unroutable number's reason changed
        for item in plan["unroutable"]:
            if item["number"] == w.held:
                item["reason"] = "closed"
    elif how == "dropped":  # a number left out
        mine["numbers"].remove(w.mine[0])
    elif how == "held_delivered":  # a held number routed after all
        plan["unroutable"] = [i for i in plan["unroutable"] if i["number"] != w.held]
        mine["numbers"] = sorted([*mine["numbers"], w.held])
    for group in plan["groups"]:
        group["count"] = len(group["numbers"])
    if how == "summary":  # the summary inflated (the numbers themselves untouched)
        plan["summary"]["routable"] += 1000
    elif how == "count":  # a group's count inflated
        mine["count"] += 10
    elif how == "duplicates":  # duplicates invented
        plan["duplicates"] = [{"number": w.mine[0], "count": 3}]
    return plan


PLAN_FORGERIES = ["moved", "reason", "dropped", "held_delivered", "summary", "count", "duplicates"]


@pytest.mark.parametrize("how", PLAN_FORGERIES)
def test_a_plan_altered_on_its_way_is_refused_by_its_receipt(client_cli, plan_world, how):
    # given a man in the middle who alters the plan's answer (he cannot re-sign its receipt)
    honest = django_poster()

    def poster(url, headers, body, sent, received):
        status, answer_headers, content = honest(url, headers, body, sent, received)
        if "routing-plans" in url:
            content = json.dumps(_forge_plan(json.loads(content), how, plan_world)).encode()
        return status, answer_headers, content

    # then the client refuses it
    code, plan, err = client_cli.plan(plan_world.asked, poster=poster)
    assert code == Tampered.exit_code, err
    assert "differs from what its receipt signed" in err and plan is None
    # while the same plan untouched is verified
    code, plan, err = client_cli.plan(plan_world.asked)
    assert code == 0, err
    assert "plan verified: 6 numbers placed" in err


PLACEMENT_REFUSALS = {
    "moved": "the signed state routes it to provider",
    "reason": "the signed state says hold, the plan closed",
    "dropped": "does not answer each number asked exactly once",
    "held_delivered": "the signed state says hold",
    "summary": "the plan's summary is not what its placements say",
    "count": "a group's count is not the number of its numbers",
    "duplicates": "the plan's duplicates are not the numbers asked several times",
}


@pytest.mark.parametrize("how", PLAN_FORGERIES)
def test_a_lying_registry_that_signs_a_forged_plan_is_refused_by_its_placements(
    client_cli, plan_world, how
):
    # given the registry's genuine plan, verified
    request = ("\n".join(plan_world.asked) + "\n").encode()
    fetch_state = plans.state_fetcher(BASE, django_poster())
    answer, receipt = plans.send_plan(
        BASE, client_cli.token, request, "text/plain; charset=utf-8", poster=django_poster()
    )
    trust = client_cli.trust()
    assert plans.verify_plan(receipt, trust, request, answer, fetch_state).numbers == 6
    # when the registry itself forges the plan and signs a receipt over the forged bytes
    forged = _forge_plan(json.loads(answer), how, plan_world)
    forged_bytes = json.dumps(forged).encode()
    lying_receipt = receipts.sign_receipt(
        {
            "typ": "routing-plan",
            "asked": {"request_sha256": hashlib.sha256(request).hexdigest()},
            "answer": {
                "answer_sha256": hashlib.sha256(forged_bytes).hexdigest(),
                "summary": forged["summary"],
            },
            "checkpoint": forged["checkpoint"],
        }
    )
    # then the placements, checked against the signed state map, refuse it
    with pytest.raises(PlanMismatch, match=PLACEMENT_REFUSALS[how]):
        plans.verify_plan(lying_receipt, trust, request, forged_bytes, fetch_state)


# --- Purposes: endpoints filtered by document type, in plans and lookups ----------------------


@pytest.fixture
def purpose_world(tmp_path, provider, other_provider, actor):
    """``provider`` takes payslips on a second endpoint, ``other_provider`` bank statements
    only; one vault at each; a client of an issuer allowed both purposes."""
    payslips = EndpointFactory(provider=provider, document_types=["payslip"])
    mine = vaults.vault_allocate(actor=actor, provider=provider)
    theirs = vaults.vault_allocate(actor=actor, provider=other_provider)
    checkpoints.publish()
    forget_caches()
    issuer = IssuerFactory(purposes=["bank_statement", "payslip"])
    return SimpleNamespace(
        cli=Cli(tmp_path, make_token(issuer)[1], name="payroll"),
        asked=[mine.number, theirs.number],
        mine=mine.number,
        theirs=theirs.number,
        payslip_url=payslips.url,
    )


def _send(w, purpose: str | None) -> tuple[bytes, bytes, str]:
    request = ("\n".join(w.asked) + "\n").encode()
    answer, receipt = plans.send_plan(
        BASE,
        w.cli.token,
        request,
        "text/plain; charset=utf-8",
        purpose=purpose,
        poster=django_poster(),
    )
    return request, answer, receipt


def _lying_receipt(request: bytes, forged: bytes, plan: dict, purpose: str | None) -> str:
    return receipts.sign_receipt(
        {
            "typ": "routing-plan",
            "asked": {"request_sha256": hashlib.sha256(request).hexdigest(), "purpose": purpose},
            "answer": {
                "answer_sha256": hashlib.sha256(forged).hexdigest(),
                "summary": plan["summary"],
            },
            "checkpoint": plan["checkpoint"],
        }
    )


def test_a_plan_with_a_purpose_is_verified_end_to_end(purpose_world):
    # when the client sends a payslip run and verifies it
    code, plan, err = purpose_world.cli.plan(purpose_world.asked, "--purpose", "payslip")

    # then it is verified: the payslip endpoint only, the other provider unroutable for it
    assert code == 0, err
    assert "plan verified: 2 numbers placed" in err
    [group] = plan["groups"]
    assert [e["url"] for e in group["endpoints"]] == [purpose_world.payslip_url]
    assert plan["unroutable"] == [
        {"number": purpose_world.theirs, "reason": "no_endpoint_for_purpose"}
    ]


def test_a_registry_that_ignores_the_purpose_is_refused(purpose_world):
    # given the registry's genuine plan without a purpose, presented as the payslip run
    request, answer, _receipt = _send(purpose_world, None)
    forged_plan = {**json.loads(answer), "purpose": "payslip"}
    forged = json.dumps(forged_plan).encode()
    lying = _lying_receipt(request, forged, forged_plan, "payslip")
    fetch_state = plans.state_fetcher(BASE, django_poster())
    trust = purpose_world.cli.trust()

    # then the placements, recomputed for payslips from the proven records, refuse it
    with pytest.raises(PlanMismatch, match="the signed state says no_endpoint_for_purpose"):
        plans.verify_plan(lying, trust, request, forged, fetch_state, purpose="payslip")


def test_a_group_that_keeps_an_endpoint_refusing_the_purpose_is_refused(purpose_world):
    # given the genuine payslip plan, with the bank-statement endpoint slipped into the group
    request, answer, receipt = _send(purpose_world, "payslip")
    fetch_state = plans.state_fetcher(BASE, django_poster())
    trust = purpose_world.cli.trust()
    verified = plans.verify_plan(receipt, trust, request, answer, fetch_state, purpose="payslip")
    assert verified.numbers == 2
    unfiltered = json.loads(_send(purpose_world, None)[1])
    forged_plan = json.loads(answer)
    mine = next(g for g in unfiltered["groups"] if purpose_world.mine in g["numbers"])
    forged_plan["groups"][0]["endpoints"] = mine["endpoints"]
    forged = json.dumps(forged_plan).encode()
    lying = _lying_receipt(request, forged, forged_plan, "payslip")

    # then the group is not what the signed record gives for payslips
    with pytest.raises(PlanMismatch, match="the group is not its signed record"):
        plans.verify_plan(lying, trust, request, forged, fetch_state, purpose="payslip")


def test_a_plan_for_another_purpose_is_refused(purpose_world):
    # given a genuine bank-statement plan, served to a client that asked for payslips
    request, answer, receipt = _send(purpose_world, "bank_statement")
    fetch_state = plans.state_fetcher(BASE, django_poster())
    trust = purpose_world.cli.trust()

    # then its receipt gives it away, as does a plan whose header was changed and re-signed
    with pytest.raises(Tampered, match="not the 'payslip' asked"):
        plans.verify_plan(receipt, trust, request, answer, fetch_state, purpose="payslip")
    forged_plan = json.loads(answer)
    forged = json.dumps(forged_plan).encode()
    lying = _lying_receipt(request, forged, forged_plan, "payslip")
    with pytest.raises(PlanMismatch, match="resolved for purpose 'bank_statement'"):
        plans.verify_plan(lying, trust, request, forged, fetch_state, purpose="payslip")


def test_a_lookup_with_a_purpose_is_verified_for_it(purpose_world):
    # when the payroll issuer looks up both vaults for payslips
    code, out, err = purpose_world.cli("lookup", purpose_world.theirs, "--purpose", "payslip")
    assert code == 0, err
    assert f"{purpose_world.theirs}: NOT deliverable no_endpoint_for_purpose" in out
    code, out, err = purpose_world.cli(
        "lookup", purpose_world.mine, "--purpose", "payslip", "--json"
    )

    # then each answer is verified, with the endpoints accepting payslips only
    assert code == 0, err
    assert [e["url"] for e in json.loads(out)["endpoints"]] == [purpose_world.payslip_url]


def test_a_lookup_whose_purpose_was_dropped_on_its_way_is_refused(purpose_world):
    # given a man in the middle who removes the purpose from the question
    transport = django_transport()

    def strip(url, headers):
        return transport(url.split("?")[0], headers)

    # then the genuine answer to the other question is refused by its receipt
    code, out, err = purpose_world.cli(
        "lookup", purpose_world.theirs, "--purpose", "payslip", transport=strip
    )
    assert code == Tampered.exit_code, err
    assert "another purpose" in err and out == ""


def test_an_endpoint_refusing_the_purpose_added_to_an_answer_is_refused(purpose_world):
    # given the genuine payslip answer for the vault whose provider takes both types, with the
    # bank-statement endpoint slipped back in on its way
    everything = genuine(purpose_world.mine, purpose_world.cli.token)[1]["endpoints"]

    def add(_url, status, body):
        body["endpoints"] = everything
        return status, body

    code, out, err = purpose_world.cli(
        "lookup", purpose_world.mine, "--purpose", "payslip", transport=mitm(add)
    )

    # then the endpoints are not what the proven provider record gives for payslips
    assert len(everything) == 2
    assert code == ProofMismatch.exit_code, err
    assert "endpoints is not what the signed records say" in err and out == ""


# --- Witnesses --------------------------------------------------------------------------------


def test_a_lying_witness_quorum_is_refused(client_cli, provider, actor):
    # given three witnesses a client trusts, two of which must cosign
    witnesses = {f"w{i}.test": Ed25519PrivateKey.generate() for i in (1, 2, 3)}
    policy = [
        arg
        for name, key in witnesses.items()
        for arg in (
            "--witness",
            cosignature.verifier_key(name, key.public_key().public_bytes_raw()),
        )
    ] + ["--quorum", "2"]
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    genuine_checkpoint = checkpoints.serving()
    text = genuine_checkpoint.note.partition("\n\n")[0] + "\n"

    def cosigned(note_text: str, signed_note: str, *names: str) -> str:
        now = int(time.time())
        return signed_note + "".join(
            cosignature.sign_cosignature(note_text, name, witnesses[name], now) for name in names
        )

    def serve(signed_note: str) -> None:
        sql(
            "directory_checkpoint",
            "UPDATE directory_checkpoint SET note = %s WHERE id = %s",
            [signed_note, genuine_checkpoint.pk],
        )
        forget_caches()

    # then without any --witness the client verifies everything else and says so
    code, out, err = client_cli("lookup", vault.number)
    assert code == 0, err
    assert "no witness required" in out
    # when the served checkpoint is cosigned by one witness only, it is refused
    serve(cosigned(text, genuine_checkpoint.note, "w1.test"))
    code, out, err = client_cli("lookup", vault.number, options=policy)
    assert code == NoQuorum.exit_code, err
    assert "REFUSED (no witness quorum)" in err and out == ""
    # when two cosign it, it is accepted
    serve(cosigned(text, genuine_checkpoint.note, "w1.test", "w2.test"))
    code, out, err = client_cli("lookup", vault.number, options=policy)
    assert code == 0, err
    assert "cosigned by w1.test, w2.test (2 required)" in out
    # when the registry signs a fork (another log root at the same size) with its own log key,
    # and one lying witness cosigns it
    key = keys.signing_key(keys.Purpose.LOG)
    fork_text = note.checkpoint_text(
        settings.VAULT_LOG_ORIGIN,
        genuine_checkpoint.size,
        hashlib.sha256(b"another history").digest(),
        map_root=bytes(genuine_checkpoint.map_root),
        time=int(time.time()),
    )
    # (twice: the same witness counts once)
    fork = cosigned(fork_text, note.sign(fork_text, key.name, key.private), "w3.test", "w3.test")
    Checkpoint.objects.create(
        size=genuine_checkpoint.size,
        root_hash=hashlib.sha256(b"another history").digest(),
        map_root=genuine_checkpoint.map_root,
        note=fork,
        cosigners=["w3.test"],
        key_name=key.name,
        key_hash=note.key_hash(key.name, key.public).hex(),
    )
    forget_caches()
    assert checkpoints.serving().note == fork
    # then a client with the witness policy refuses it, for lookups and mirrors
    code, out, err = client_cli("lookup", vault.number, options=policy)
    assert code == NoQuorum.exit_code, err
    assert "1 fresh cosignatures" in err and out == ""
    fresh = Cli(client_cli.tmp_path, client_cli.token, name="fresh")
    assert fresh("mirror", "sync", options=policy)[0] == NoQuorum.exit_code
    # and a client without witnesses that saw the genuine checkpoint refuses the fork and keeps
    # both notes
    code, _out, err = client_cli("lookup", vault.number)
    assert code == Inconsistent.exit_code, err
    (folder,) = Path(f"{client_cli.state}.evidence").iterdir()
    assert (folder / "served.note").read_text() == fork
    assert (folder / "seen.note").read_text().startswith(text)


# === The honest path ==========================================================================


def test_the_honest_demo_is_verified_end_to_end(client_cli):
    # given the demo federation (five providers, holds and closures)
    call_command("load_demo", vaults=300, stdout=StringIO())
    forget_caches()
    every = sorted(Vault.objects.values_list("number", flat=True))
    assert len(every) == 300
    closed = sorted(Vault.objects.filter(status="closed").values_list("number", flat=True))
    held = sorted(
        Vault.objects.filter(
            Q(client_hold=True) | Q(server_hold=True), status="active"
        ).values_list("number", flat=True)
    )
    assert closed and held
    others = [n for n in every if n not in closed and n not in held]
    wanted = 30 - len(closed) - len(held)
    sample = closed + held + others[:: len(others) // wanted][:wanted]
    assert len(sample) == 30
    # then every looked-up number is verified through the CLI, as the state it is in
    for number in sample:
        code, out, err = client_cli("lookup", number)
        assert code == 0, (number, err)
        if number in closed:
            assert f"{number}: closed (proven)" in out
        elif number in held:
            assert f"{number}: NOT deliverable hold" in out
        else:
            assert f"{number}: deliverable" in out
    # and any input form of a number is verified as that number
    code, out, err = client_cli("lookup", numbers.format_display(others[0]).lower())
    assert code == 0 and f"{others[0]}: deliverable" in out, err
    # and an unknown number is proven absent, a malformed one refused with its own status
    unknown = numbers.draw(settings.VAULT_COUNTRY, settings.VAULT_ALLOCATOR).value
    assert unknown not in every
    code, out, err = client_cli("lookup", unknown)
    assert code == 0 and "proven absent" in out, err
    code, out, err = client_cli("lookup", "FR12")
    assert code == RefusedNumber.exit_code and out == "" and "invalid_length" in err
    # and a plan of every vault is verified end to end
    code, plan, err = client_cli.plan(every)
    assert code == 0, err
    assert "plan verified: 300 numbers placed" in err
    assert plan["summary"]["unroutable"] == len(closed) + len(held)
    # and the mirror follows the log, the monitors raise no alarm
    assert client_cli("mirror", "sync")[0] == 0
    first = Provider.objects.order_by("legal_name").first()
    code, _out, err = client_cli("monitor", "--provider", str(first.pk), "--no-sync")
    assert code == 0 and "ALERT" not in err, err
    code, _out, err = client_cli("monitor", "--vault", held[0], "--no-sync")
    assert code == 0 and "ALERT" not in err, err
