"""The log over HTTP: checkpoint, C2SP tiles and entry bundles, proofs, history, public keys."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from directory import tree
from directory.api.log import parse_tile_index
from directory.models import Checkpoint
from directory.transparency import merkle
from directory.transparency.tiles import tile_path
from registry.errors import InvalidInput
from registry.models import LogEntry
from registry.services import vaults
from registry.services.vaults import HoldKind
from tests.directory.helpers import append_entries, leaf_hashes

pytestmark = pytest.mark.django_db


def publish_now():
    from directory.checkpoints import publish

    return publish(force=True)


def test_the_log_is_public_and_full_tiles_are_cacheable_by_anyone(anon_client, db):
    # given a full tile of entries
    append_entries(256)
    checkpoint = publish_now()
    # then anyone reads the log without a token (witnesses, mirrors, holders' monitors)
    assert anon_client.get("/api/v1/log/checkpoint").content.decode() == checkpoint.note
    tile = anon_client.get("/api/v1/log/tile/0/000")
    assert tile.status_code == 200
    # and a full tile is the same for everyone: any cache may keep it, whoever asks
    assert tile["Cache-Control"] == "public, max-age=31536000, immutable"
    assert not {"authorization", "cookie"} & {
        v.strip().lower() for v in tile.get("Vary", "").split(",")
    }
    entries = anon_client.get("/api/v1/log/tile/entries/000", HTTP_AUTHORIZATION="Bearer junk")
    assert entries.status_code == 200  # a token, even a wrong one, changes nothing


def test_checkpoint_is_served_as_text(lookup_client, db):
    append_entries(3)
    from directory.checkpoints import publish

    published = publish()
    response = lookup_client.get("/api/v1/log/checkpoint", HTTP_ACCEPT="text/plain")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == published.note


def test_no_checkpoint_yet_is_404_no_checkpoint(lookup_client, db):
    response = lookup_client.get("/api/v1/log/checkpoint")
    assert response.status_code == 404
    assert response.json()["code"] == "no_checkpoint"


@pytest.mark.parametrize(
    ("index", "path"),
    [(0, "000"), (7, "007"), (1000, "x001/000"), (1234067, "x001/x234/067")],
)
def test_tile_index_path_encoding_round_trips(index, path):
    assert tile_path(index) == path
    assert parse_tile_index(path) == (index, None)
    assert parse_tile_index(path + ".p/17") == (index, 17)


@pytest.mark.parametrize("path", ["1", "0001", "x000/001", "001.p/0", "001.p/256", "x1/001", "abc"])
def test_non_canonical_tile_paths_are_refused(path):
    with pytest.raises(InvalidInput):
        parse_tile_index(path)


def test_full_and_partial_hash_tiles(lookup_client, db):
    # given 300 entries: one full level-0 tile and a partial one of 44
    append_entries(300)
    leaves = leaf_hashes()
    full = lookup_client.get("/api/v1/log/tile/0/000")
    assert full.status_code == 200
    assert full["Content-Type"] == "application/octet-stream"
    assert full.content == b"".join(leaves[:256])
    assert full["Cache-Control"] == "public, max-age=31536000, immutable"
    partial = lookup_client.get("/api/v1/log/tile/0/001.p/44")
    assert partial.content == b"".join(leaves[256:300])
    assert "immutable" not in partial["Cache-Control"]
    # and the level-1 tile holds the root of the first 256 leaves
    level1 = lookup_client.get("/api/v1/log/tile/1/000.p/1")
    assert level1.content == merkle.root_from_leaf_hashes(leaves[:256])
    # and a tile that does not exist yet is 404
    missing = lookup_client.get("/api/v1/log/tile/0/001")
    assert missing.status_code == 404
    assert missing.json()["code"] == "tile_not_found"


def test_full_tiles_answer_304_to_their_etag(lookup_client, db):
    append_entries(256)
    first = lookup_client.get("/api/v1/log/tile/0/000")
    again = lookup_client.get("/api/v1/log/tile/0/000", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304


def test_entry_bundles_are_uint16_length_prefixed(lookup_client, db):
    append_entries(5)
    bodies = [
        bytes(b) for b in LogEntry.objects.order_by("sequence").values_list("body", flat=True)
    ]
    response = lookup_client.get("/api/v1/log/tile/entries/000.p/5")
    assert response.status_code == 200
    assert response.content == b"".join(len(b).to_bytes(2, "big") + b for b in bodies)
    assert lookup_client.get("/api/v1/log/tile/entries/000.p/6").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/log/tile/0/0001",
        "/api/v1/log/tile/0/000.p/300",
        "/api/v1/log/tile/9/000",
        "/api/v1/log/tile/entries/x000/001",
    ],
)
def test_malformed_tile_paths_are_400_invalid_tile_path(lookup_client, db, url):
    response = lookup_client.get(url)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_tile_path"


def test_inclusion_and_consistency_proofs_verify(lookup_client, db):
    append_entries(37)
    leaves = leaf_hashes()
    body = lookup_client.get("/api/v1/log/proofs/inclusion?index=5&size=30").json()
    proof = [base64.b64decode(h) for h in body["proof"]]
    assert base64.b64decode(body["leaf_hash"]) == leaves[5]
    merkle.verify_inclusion(leaves[5], 5, 30, proof, merkle.root_from_leaf_hashes(leaves[:30]))
    body = lookup_client.get("/api/v1/log/proofs/consistency?from=11&to=37").json()
    proof = [base64.b64decode(h) for h in body["proof"]]
    merkle.verify_consistency(11, 37, proof, tree.root(11), merkle.root_from_leaf_hashes(leaves))


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("inclusion?index=5&size=5", "invalid_leaf_index"),
        ("inclusion?index=-1&size=5", "invalid_leaf_index"),
        ("inclusion?index=0&size=99", "invalid_tree_size"),
        ("inclusion?index=0&size=0", "invalid_tree_size"),
        ("inclusion?size=3", "invalid_leaf_index"),
        ("consistency?from=0&to=3", "invalid_tree_size"),
        ("consistency?from=4&to=3", "invalid_tree_size"),
        ("consistency?from=1&to=11", "invalid_tree_size"),
        ("consistency?from=a&to=3", "invalid_tree_size"),
    ],
)
def test_bad_proof_parameters_are_400_with_a_stable_code(lookup_client, db, query, code):
    append_entries(10)
    response = lookup_client.get(f"/api/v1/log/proofs/{query}")
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_well_known_lists_public_keys_without_authentication(anon_client, signing_key_dir):
    response = anon_client.get("/.well-known/vault-registry")
    assert response.status_code == 200
    body = response.json()
    assert body["origin"] == "vault-registry.example/log"
    (log_key,) = body["log_keys"]
    assert log_key["vkey"].startswith("vault-registry.example/log+" + log_key["key_hash"] + "+")
    (receipt_key,) = body["receipt_keys"]
    assert receipt_key["jwk"]["kty"] == "OKP" and receipt_key["jwk"]["crv"] == "Ed25519"
    assert receipt_key["jwk"]["kid"] == receipt_key["kid"]
    assert "d" not in receipt_key["jwk"]
    private = (signing_key_dir / "receipt.key").read_text()
    assert private.split("\n")[1] not in response.content.decode()


def test_vault_history_lists_its_routing_changes(lookup_client, provider, actor):
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    vaults.vault_hold(actor=actor, vault=vault, kind=HoldKind.CLIENT)
    vaults.vault_release(actor=actor, vault=vault, kind=HoldKind.CLIENT)
    other = vaults.vault_allocate(actor=actor, provider=provider)
    response = lookup_client.get(f"/api/v1/vaults/{vault.number.lower()}/history")
    assert response.status_code == 200
    body = response.json()
    assert body["number"] == vault.number
    assert [e["kind"] for e in body["entries"]] == [
        "vault.allocated",
        "vault.held",
        "vault.released",
    ]
    assert all(e["provider"] == str(provider.pk) for e in body["entries"])
    assert other.last_log_index not in [e["log_index"] for e in body["entries"]]


def test_history_of_an_unknown_vault_is_404(lookup_client, db):
    from registry import numbers

    response = lookup_client.get(f"/api/v1/vaults/{numbers.draw('FR', 'VLT1').value}/history")
    assert response.status_code == 404


def test_lookup_at_a_past_time_answers_the_routing_then(lookup_client, provider, actor):
    # given a vault held yesterday… (entries are dated by their append time)
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    before_hold = timezone.now()
    vaults.vault_hold(actor=actor, vault=vault, kind=HoldKind.SERVER)
    # then now it is held, but at the earlier moment it was deliverable
    now = lookup_client.get(f"/api/v1/vaults/{vault.number}").json()
    assert now["reasons"] == ["hold"]
    then = lookup_client.get(
        f"/api/v1/vaults/{vault.number}", {"at": before_hold.isoformat()}
    ).json()
    assert then["deliverable"] is True
    assert then["proof"]["checkpoint"] == (
        Checkpoint.objects.filter(created_at__lte=before_hold).first().note
    )
    assert (
        json.loads(base64.urlsafe_b64decode(then["receipt"].split(".")[1] + "=="))["asked"]["at"]
        == before_hold.isoformat()
    )
    # and before it existed, it was not found
    earlier = (before_hold - timedelta(days=1)).isoformat()
    assert lookup_client.get(f"/api/v1/vaults/{vault.number}", {"at": earlier}).status_code == 404


@pytest.mark.parametrize("at", ["yesterday", "2025-01-01T00:00:00", "2999-01-01T00:00:00Z"])
def test_bad_at_is_400_invalid_time(lookup_client, vault, at):
    response = lookup_client.get(f"/api/v1/vaults/{vault.number}", {"at": at})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_time"
    assert response.json()["receipt"]
