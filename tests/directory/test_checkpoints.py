"""Signing keys, C2SP checkpoints and their publication."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import time
from io import StringIO
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.management import call_command
from django.utils import timezone

from directory import checkpoints, keys, state, tree
from directory.models import Checkpoint
from directory.transparency import note, statemap
from registry.services import vaults
from registry.services.common import append_log_many

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_key_dir(settings, tmp_path):
    settings.VAULT_KEY_DIR = tmp_path / "keys"
    keys.reset()
    return settings.VAULT_KEY_DIR


def test_generate_keys_creates_private_files_0600_and_a_public_manifest(fresh_key_dir):
    out = StringIO()
    call_command("generate_keys", stdout=out)
    for purpose in ("log", "receipt"):
        path = fresh_key_dir / f"{purpose}.key"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    manifest = json.loads((fresh_key_dir / "public.json").read_text())
    assert [e["name"] for e in manifest["log"]] == ["vault-registry.example/log"]
    assert len(manifest["receipt"]) == 1 and manifest["receipt"][0]["kid"]
    assert "PRIVATE" not in (fresh_key_dir / "public.json").read_text()
    assert "created the log key" in out.getvalue()


def test_generate_keys_is_idempotent_and_never_overwrites(fresh_key_dir):
    call_command("generate_keys", stdout=StringIO())
    before = {p.name: p.read_bytes() for p in fresh_key_dir.iterdir()}
    out = StringIO()
    call_command("generate_keys", stdout=out)
    assert {p.name: p.read_bytes() for p in fresh_key_dir.iterdir()} == before
    assert "already present" in out.getvalue()


def test_rotation_keeps_the_old_public_key_with_its_validity_window(fresh_key_dir):
    call_command("generate_keys", stdout=StringIO())
    old_kid = keys.signing_key(keys.Purpose.RECEIPT).kid
    call_command("generate_keys", "--rotate", "receipt", stdout=StringIO())
    manifest = keys.public_manifest()["receipt"]
    assert manifest[0]["kid"] == old_kid
    assert manifest[0]["valid_until"] is not None and manifest[1]["valid_until"] is None
    assert keys.signing_key(keys.Purpose.RECEIPT).kid == manifest[1]["kid"] != old_kid
    retired = list((fresh_key_dir / "retired").iterdir())
    assert len(retired) == 1 and stat.S_IMODE(retired[0].stat().st_mode) == 0o600


def test_checkpoint_is_a_c2sp_signed_note_binding_log_map_and_time():
    # given a log of 3 entries
    append_log_many([("t", {"n": i}) for i in range(3)], at=timezone.now())
    # when a checkpoint is published
    before = int(time.time())
    checkpoint = checkpoints.publish(force=True)
    # then its text is origin, size, base64 log root, the map and time extension lines, a blank
    # line and one signature line
    lines = checkpoint.note.split("\n")
    assert lines[0] == "vault-registry.example/log"
    assert lines[1] == "3"
    assert base64.b64decode(lines[2]) == tree.root(3) == bytes(checkpoint.root_hash)
    assert lines[3] == "map " + base64.b64encode(state.root(3)).decode()
    assert bytes(checkpoint.map_root) == state.root(3) == statemap.EMPTY  # no records yet
    assert before <= int(lines[4].removeprefix("time ")) <= time.time()
    assert lines[5] == ""
    assert lines[6].startswith("\u2014 vault-registry.example/log ")
    assert lines[7:] == [""]
    # and the signature is 4-byte key hash ‖ Ed25519 signature over the text
    key = keys.signing_key(keys.Purpose.LOG)
    blob = base64.b64decode(lines[6].split(" ")[2])
    expected_hash = hashlib.sha256(key.name.encode() + b"\n\x01" + key.public).digest()[:4]
    assert blob[:4] == expected_hash
    Ed25519PublicKey.from_public_bytes(key.public).verify(
        blob[4:], "\n".join(lines[:5]).encode() + b"\n"
    )
    # and the pure verifier accepts it with the public key, and refuses another one
    parsed = note.parse_checkpoint(checkpoint.note, {key.name: [key.public]})
    assert (parsed.size, parsed.root, parsed.map_root) == (3, tree.root(3), statemap.EMPTY)
    with pytest.raises(note.NoteError):
        note.parse_checkpoint(checkpoint.note, {key.name: [bytes(32)]})
    with pytest.raises(note.NoteError):
        note.parse_checkpoint(checkpoint.note.replace("\n3\n", "\n4\n"), {key.name: [key.public]})


def test_publish_does_not_repeat_a_checkpoint_of_the_same_size(checkpoint):
    assert checkpoints.publish() == checkpoint
    assert checkpoints.publish(force=True) != checkpoint
    assert Checkpoint.objects.count() == 2


def test_publish_checkpoint_command_prints_the_note():
    out = StringIO()
    call_command("publish_checkpoint", stdout=out)
    assert out.getvalue() == Checkpoint.objects.get().note


def test_a_committed_write_publishes_a_checkpoint(
    provider, actor, commit_publication, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        vault = vaults.vault_allocate(actor=actor, provider=provider)
    assert len(callbacks) == 1
    assert Checkpoint.objects.first().size == vault.last_log_index + 1


@pytest.fixture
def timers(monkeypatch) -> list:
    """Background timers recorded instead of started; calling ``function`` runs one here, in
    this thread and the test's transaction."""
    started = []

    class Timer:
        def __init__(self, interval, function):
            self.interval, self.function, self.daemon = interval, function, False
            started.append(self)

        def start(self):
            pass

    monkeypatch.setattr(checkpoints.threading, "Timer", Timer)
    monkeypatch.setattr(checkpoints, "_timer", None)
    monkeypatch.setattr(checkpoints, "connection", type("C", (), {"close": lambda self: None})())
    monkeypatch.setattr(checkpoints, "close_old_connections", lambda: None)
    return started


def test_a_burst_of_writes_is_signed_once_by_one_background_timer(
    settings, provider, actor, commit_publication, django_capture_on_commit_callbacks, timers
):
    # given writes are signed within 60 s by a background thread
    settings.VAULT_CHECKPOINT_INTERVAL = 60
    count = Checkpoint.objects.count()
    # when two writes commit
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            vaults.vault_allocate(actor=actor, provider=provider)
    # then nothing is signed in the request, and one timer of 60 s will sign both
    assert Checkpoint.objects.count() == count
    assert [(t.interval, t.daemon) for t in timers] == [(60, True)]
    # when it fires (here, in this thread and transaction), the last write is signed
    timers[0].function()
    assert Checkpoint.objects.first().size == checkpoints.log_size()
    assert checkpoints._timer is None


def test_without_keys_a_write_still_commits_and_only_warns(
    settings, tmp_path, provider, actor, django_capture_on_commit_callbacks, caplog
):
    settings.VAULT_KEY_DIR = tmp_path / "none"
    keys.reset()
    with django_capture_on_commit_callbacks(execute=True):
        vault = vaults.vault_allocate(actor=actor, provider=provider)
    assert vault.pk and Checkpoint.objects.first().size <= vault.last_log_index
    assert "generate_keys" in caplog.text


def test_an_old_checkpoint_is_re_signed_in_the_background_when_served(settings, checkpoint, timers):
    # given a checkpoint older than the refresh period, and writes signed by a background thread
    settings.VAULT_CHECKPOINT_INTERVAL = 2
    settings.VAULT_CHECKPOINT_REFRESH = 300
    Checkpoint.objects.update(created_at=timezone.now() - timezone.timedelta(seconds=301))
    checkpoints.clear_cache()
    # when answers are served from it
    served = checkpoints.serving()
    # then it is still the one served, and one background re-signing is scheduled at once
    assert served.pk == checkpoint.pk
    assert [(t.interval, t.daemon) for t in timers] == [(0, True)]
    timers[0].function()
    checkpoints.clear_cache()
    fresh = checkpoints.serving()
    assert fresh.pk != checkpoint.pk and fresh.size == checkpoint.size
    assert timezone.now() - fresh.created_at < timezone.timedelta(seconds=60)


@pytest.mark.postgresql
def test_signed_checkpoints_are_never_deleted_and_only_gain_cosignatures(checkpoint):
    from django.db import DatabaseError, connection, transaction

    def refused(sql, params) -> bool:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, params)
        except DatabaseError as exc:
            return "append-only" in str(exc)
        return False

    table = "directory_checkpoint"
    assert refused(f"DELETE FROM {table} WHERE id = %s", [checkpoint.pk])
    assert refused(f"UPDATE {table} SET size = size + 1 WHERE id = %s", [checkpoint.pk])
    assert refused(f"UPDATE {table} SET note = %s WHERE id = %s", ["forged\n", checkpoint.pk])
    # a cosignature line appended to the note is what the registry does: allowed
    line = "\u2014 witness.test AAAA\n"
    assert not refused(f"UPDATE {table} SET note = note || %s WHERE id = %s", [line, checkpoint.pk])


def test_the_registry_never_signs_a_history_that_does_not_extend_its_last_checkpoint(
    settings, provider, actor
):
    # given a checkpoint this server signed (kept in VAULT_CHECKPOINT_STATE_FILE)
    vaults.vault_allocate(actor=actor, provider=provider)
    signed = Checkpoint.objects.first()
    state_file = Path(settings.VAULT_CHECKPOINT_STATE_FILE)
    kept = json.loads(state_file.read_text())
    assert (kept["size"], kept["root"]) == (signed.size, bytes(signed.root_hash).hex())
    # when that file says another tree of the same size was signed (as after a rewrite)
    kept["root"] = "00" * 32
    state_file.write_text(json.dumps(kept))
    # then the next publication is refused, and the last good checkpoint stays served
    with pytest.raises(checkpoints.CheckpointRefused, match="this server signed"):
        checkpoints.publish(force=True)
    assert Checkpoint.objects.first().pk == signed.pk
