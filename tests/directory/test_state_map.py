"""The stored state map: written with the append, derived from the log alone, and rebuilt."""

from __future__ import annotations

import importlib
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from directory import checkpoints, proven, state
from directory.models import MapNode, StateRecord
from directory.transparency import records as rec
from directory.transparency import statemap
from registry.models import LogEntry, Vault
from registry.services import routing, vaults
from registry.services.vaults import HoldKind
from tests.directory.helpers import execute_without_trigger

pytestmark = pytest.mark.django_db


def replayed() -> dict[str, dict]:
    """The state as anyone replaying the log computes it."""
    return rec.replay(json.loads(bytes(b)) for b in LogEntry.objects.values_list("body", flat=True))


def test_every_change_carries_the_complete_new_records_and_the_map_follows(provider, actor):
    # given a vault allocated, held, then an endpoint of its provider deactivated
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    vaults.vault_hold(actor=actor, vault=vault, kind=HoldKind.SERVER)
    routing.endpoint_deactivate(actor=actor, endpoint=provider.endpoints.get())
    # then the last entry carries the provider's whole record, without that endpoint
    last = json.loads(bytes(LogEntry.objects.last().body))
    [record] = last["records"]
    assert record["type"] == "provider" and record["endpoints"] == []
    assert record["certificates"][0]["fingerprint_sha256"]
    # and the vault's record holds every flag
    state_now = replayed()
    held = state_now[rec.vault_key(vault.number)]
    assert held["server_hold"] is True and held["provider"] == str(provider.pk)
    # and the stored map is exactly the replayed state: records and root
    stored = state.decoded_at(list(state_now))
    assert stored == state_now
    expected_root = statemap.root_of(
        (statemap.path_of(k), rec.value_of(r)) for k, r in state_now.items()
    )
    assert state.root() == expected_root == bytes(checkpoints.serving().map_root)


def test_registry_lock_and_transfer_prohibition_are_logged(vault, provider, django_user_model):
    from registry.services import transfers
    from registry.services.common import Actor

    # when the holder's provider blocks moves, then an admin locks the vault
    transfers.vault_set_transfer_prohibited(
        actor=Actor.system("tests"), provider=provider, vault=vault, prohibited=True
    )
    assert LogEntry.objects.last().kind == "vault.transfer_prohibited"
    admin = Actor.for_user(django_user_model.objects.create_user("ops"))
    transfers.vault_set_registry_lock(actor=admin, vault=vault, locked=True, reason="court")
    # then both are in the vault's logged record, hence in every proven answer
    assert LogEntry.objects.last().kind == "vault.registry_lock"
    record = replayed()[rec.vault_key(vault.number)]
    assert (record["client_transfer_prohibited"], record["registry_lock"]) == (True, True)


def test_rebuild_verify_agrees_with_a_live_registry(provider, actor):
    vaults.vault_allocate_many(actor=actor, provider=provider, count=30)
    out = StringIO()
    call_command("rebuild_state_map", "--verify", stdout=out)
    assert "the stored state map is what the log gives" in out.getvalue()


def test_rebuild_verify_names_a_record_changed_behind_the_registry(vault):
    # given the stored record of a vault re-pointed with raw SQL
    key = rec.vault_key(vault.number)
    forged = json.loads(state.records_at([key])[key]) | {"provider": "evil"}
    execute_without_trigger(
        "directory_staterecord",
        "directory_staterecord_append_only",
        "UPDATE directory_staterecord SET record = %s WHERE key = %s",
        [rec.record_bytes(forged), key],
    )
    # then the verification names it, and fails
    out = StringIO()
    with pytest.raises(CommandError, match="differences"):
        call_command("rebuild_state_map", "--verify", stdout=out)
    assert f"DIFFERS: {key}" in out.getvalue()


def test_rebuild_builds_the_map_of_a_bulk_loaded_log(provider, actor, lookup_client):
    # given a log whose state map was never written (as after a bulk load by COPY)
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    before = state.root()
    for table in ("directory_staterecord", "directory_mapnode"):
        execute_without_trigger(table, f"{table}_append_only", f"DELETE FROM {table}", [])
    execute_without_trigger(
        "directory_checkpoint",
        "directory_checkpoint_append_only",
        "DELETE FROM directory_checkpoint",
        [],
    )
    checkpoints.clear_cache()
    assert not MapNode.objects.exists()
    # when the map is rebuilt from the log alone, and a checkpoint published
    out = StringIO()
    call_command("rebuild_state_map", stdout=out)
    assert "built the state map" in out.getvalue()
    checkpoints.publish()
    # then it is the map the registry had built as it went, and lookups are proven again
    assert state.root() == before
    assert lookup_client.get(f"/api/v1/vaults/{vault.number}").json()["deliverable"] is True
    # and a second build refuses to write over it
    with pytest.raises(CommandError, match="not empty"):
        call_command("rebuild_state_map", stdout=StringIO())
    assert StateRecord.objects.filter(key=rec.vault_key(vault.number)).count() == 1


def test_a_lookup_proof_is_about_log2_hashes(provider, actor):
    # given 2,000 vaults: a map about 11 levels deep
    allocated = vaults.vault_allocate_many(actor=actor, provider=provider, count=2000)
    checkpoint = checkpoints.serving()
    # then one vault's proof is a hash per non-EMPTY sibling (one per level, give or take a few)
    # with a byte of depth, its bitmap and the end tag: the multiproof of its path less the
    # node tags and the key's own path and value
    key = rec.vault_key(allocated[0].number)
    result = proven.lookup(allocated[0].number)
    depth = result.vault.proof[0]
    assert 8 <= depth <= 20
    assert len(result.vault.proof) <= 1 + (depth + 7) // 8 + 32 * depth + 1
    value = rec.value_of(result.vault.record)
    expanded = statemap.expand_path(statemap.path_of(key), result.vault.proof, value)
    assert expanded == state.prove([key], checkpoint.size)


def test_a_state_proof_request_of_200000_keys_is_answered_not_refused(checkpoint, anon_client):
    # given the largest request the API accepts: a plan's numbers and their providers
    keys = [f"vault:FR76VLT1{index:012d}" for index in range(200_000)]
    body = json.dumps({"size": checkpoint.size, "keys": keys})
    assert len(body) > 2.5 * 1024 * 1024  # above Django's default in-memory cap
    # when it is sent
    response = anon_client.post("/api/v1/state/proofs", data=body, content_type="application/json")
    # then every key is answered (absent here), with one proof
    assert response.status_code == 200, response.content[:200]
    answer = response.json()
    assert len(answer["records"]) == 200_000 and set(answer["records"].values()) == {None}


def test_the_migration_forward_appends_snapshots_and_rewrites_no_entry(provider, actor):
    # given a registry whose state map is empty, as before the state map existed
    vaults.vault_allocate_many(actor=actor, provider=provider, count=5)
    for table in ("directory_staterecord", "directory_mapnode"):
        execute_without_trigger(table, f"{table}_append_only", f"DELETE FROM {table}", [])
    before = list(LogEntry.objects.order_by("sequence").values_list("sequence", "body"))
    # when the data migration runs
    from django.apps import apps

    migration = importlib.import_module("directory.migrations.0003_state_map")
    migration.snapshot(apps, None)
    # then no entry was rewritten, and one snapshot entry per live provider and vault follows
    after = list(LogEntry.objects.order_by("sequence").values_list("sequence", "body"))
    assert [(s, bytes(b)) for s, b in after[: len(before)]] == [(s, bytes(b)) for s, b in before]
    added = [json.loads(bytes(b)) for _s, b in after[len(before) :]]
    assert {e["kind"] for e in added} == {"state.snapshot"}
    keys = {rec.key_of(r) for e in added for r in e["records"]}
    assert keys == {rec.provider_key(str(provider.pk))} | {
        rec.vault_key(v) for v in provider.vaults.values_list("number", flat=True)
    }
    # and the map holds them, as replaying the log gives them
    assert state.decoded_at(sorted(keys)) == {k: replayed()[k] for k in keys}


def test_many_keys_read_in_one_pass_give_what_one_probe_per_key_gives(provider, actor, monkeypatch):
    # given a map with history: vaults allocated over several appends, one of them held later
    first = vaults.vault_allocate_many(actor=actor, provider=provider, count=30)
    size_before = checkpoints.serving().size
    vaults.vault_allocate_many(actor=actor, provider=provider, count=30)
    vaults.vault_hold(actor=actor, vault=first[0], kind=HoldKind.SERVER)
    size_after = checkpoints.serving().size
    keys = [rec.vault_key(v.number) for v in first] + [rec.vault_key("FR00VLT10000000000")]
    keys += [rec.provider_key(str(provider.pk))]
    # when the same records and proofs are read key by key and as a large batch (the set-based
    # query, with server-side binary parameters on PostgreSQL), at an old size and the newest
    for size in (size_before, size_after):
        monkeypatch.setattr(state, "_BULK", 10**9)
        one_by_one = (state.records_at(keys, size), state.prove(keys, size), state.root(size))
        monkeypatch.setattr(state, "_BULK", 1)
        in_bulk = (state.records_at(keys, size), state.prove(keys, size), state.root(size))
        # then they are the same, and the proof holds against the checkpoint's map root
        assert in_bulk == one_by_one
        assert rec.vault_key(first[0].number) in in_bulk[0]
        assert rec.vault_key("FR00VLT10000000000") not in in_bulk[0]
        paths = [statemap.path_of(k) for k in keys]
        values = statemap.verify_multiproof(in_bulk[2], paths, in_bulk[1])
        assert values[statemap.path_of(keys[0])] == statemap.value_of(in_bulk[0][keys[0]])
    # and the held record is the newer one only at the newer size
    held = rec.vault_key(first[0].number)
    assert json.loads(state.records_at([held], size_before)[held])["server_hold"] is False
    assert json.loads(state.records_at([held], size_after)[held])["server_hold"] is True


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the set-based pass is PostgreSQL's")
def test_a_large_proof_probes_the_upper_levels_and_scans_only_those_with_few_versions(
    provider, actor, monkeypatch
):
    # given a map updated by many appends: its root has a version per append
    for _ in range(40):
        vaults.vault_allocate(actor=actor, provider=provider)
    size = checkpoints.serving().size
    root_versions = MapNode.objects.filter(node=statemap.node_id(0, b""), version__lte=size).count()
    assert root_versions >= 40
    # when a proof is read with every batch treated as large
    reads = []
    real = state._binary_read

    def spy(conn, sql, params):
        if "directory_mapnode" in sql and "count(" not in sql:
            reads.append(("DISTINCT ON" in sql, [bytes(k) for k in params[0]]))
        return real(conn, sql, params)

    monkeypatch.setattr(state, "_BULK", 1)
    monkeypatch.setattr(state, "_binary_read", spy)
    keys = [rec.vault_key(v) for v in Vault.objects.values_list("number", flat=True)]
    state.prove(keys, size)
    # then no node above the depth where nodes hold about 16 versions went to the set-based
    # pass, which reads every version; the others did
    shallow = root_versions.bit_length() - 4
    scanned = [k for is_scan, ids in reads if is_scan for k in ids]
    probed = [k for is_scan, ids in reads if not is_scan for k in ids]
    assert scanned and probed
    assert all(int.from_bytes(k[:2], "big") >= shallow for k in scanned)
    assert all(int.from_bytes(k[:2], "big") < shallow for k in probed)
