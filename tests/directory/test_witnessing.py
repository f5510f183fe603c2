"""The registry asks its witnesses to cosign each checkpoint and serves the cosigned one; clients
require a quorum. Witnesses are the project's own (directory.witness), run in-process, replaying
the registry's log over its public API."""

from __future__ import annotations

from io import StringIO
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.test import Client

from directory import checkpoints, witnessing
from directory.client import cli
from directory.client.errors import NoQuorum
from directory.models import Checkpoint
from directory.transparency import cosignature
from directory.witness.app import Witness, add_log
from registry.services import vaults
from tests.directory.helpers import BASE, django_poster, django_transport
from tests.factories import make_token

pytestmark = pytest.mark.django_db(transaction=True)


def _registry_post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """The witness's POSTs to the registry (state proofs), through Django's test client."""
    response = Client().post(
        url.removeprefix(BASE), data=body, content_type=headers["Content-Type"]
    )
    return response.status_code, response.content


@pytest.fixture
def witnesses(tmp_path, settings, monkeypatch, commit_publication):
    """Three witnesses of the registry's log; the registry is configured to ask the first two."""
    log_key = Client().get("/.well-known/vault-registry").json()["log_keys"][0]
    found = {}
    for index in range(3):
        name = f"witness-{index}.test"
        key = Ed25519PrivateKey.generate()
        state = tmp_path / f"{name}.sqlite3"
        add_log(state, settings.VAULT_LOG_ORIGIN, log_key["vkey"], BASE)
        app = Witness(
            state,
            name,
            key,
            tmp_path / f"{name}-evidence",
            get=django_transport(),
            post=_registry_post,
        )
        vkey = cosignature.verifier_key(name, key.public_key().public_bytes_raw())
        found[name] = (app, vkey)

    def post_to_witness(url, headers, body):
        app = found[urlsplit(url).hostname][0]
        reply = app.add_checkpoint(body)
        return reply.status, reply.body

    monkeypatch.setattr(witnessing, "urllib_post", lambda timeout=None: post_to_witness)
    monkeypatch.setattr(witnessing, "_sizes", {})
    settings.VAULT_WITNESSES = [
        {"name": name, "vkey": vkey, "url": f"http://{name}"}
        for name, (_app, vkey) in list(found.items())[:2]
    ]
    return {name: vkey for name, (_app, vkey) in found.items()}


def _cli(tmp_path, token, *argv):
    keys = tmp_path / "keys.json"
    keys.write_text(Client().get("/.well-known/vault-registry").content.decode())
    out, err = StringIO(), StringIO()
    code = cli.main(
        ["--url", BASE, "--token", token, "--keys", str(keys), *argv],
        transport=django_transport(),
        poster=django_poster(),
        out=out,
        err=err,
    )
    return code, out.getvalue(), err.getvalue()


def test_each_checkpoint_is_cosigned_and_clients_require_the_quorum(
    witnesses, provider, issuer, actor, settings, tmp_path
):
    # given the registry serves only checkpoints cosigned by both its witnesses
    settings.VAULT_WITNESS_QUORUM = 2
    # when a write commits (publication after commit, then the witnesses replay and cosign)
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    checkpoints.clear_cache()
    # then the checkpoint served carries both cosignatures, which verify
    served = checkpoints.serving()
    assert served.size == checkpoints.log_size()
    assert sorted(served.cosigners) == ["witness-0.test", "witness-1.test"]
    names = cosignature.verify_cosignatures(
        served.note, {n: [cosignature.parse_vkey(v)[1]] for n, v in witnesses.items()}
    )
    assert set(names) == {"witness-0.test", "witness-1.test"}
    # and a client requiring 2 of the 3 witnesses verifies the lookup and says who cosigned
    token = make_token(issuer)[1]
    policy = [arg for vkey in witnesses.values() for arg in ("--witness", vkey)]
    code, out, err = _cli(tmp_path, token, *policy, "--quorum", "2", "lookup", vault.number)
    assert code == 0, err
    assert "cosigned by witness-0.test, witness-1.test (2 required)" in out
    # and a client requiring all three refuses it: the third never cosigned
    code, _out, err = _cli(tmp_path, token, *policy, "lookup", vault.number)
    assert code == NoQuorum.exit_code
    assert "no witness quorum" in err


def test_without_the_quorum_the_registry_keeps_serving_the_last_cosigned_checkpoint(
    witnesses, provider, actor, settings, monkeypatch
):
    # given a checkpoint cosigned by both witnesses
    settings.VAULT_WITNESS_QUORUM = 2
    vaults.vault_allocate(actor=actor, provider=provider)
    cosigned = Checkpoint.objects.first()
    assert len(cosigned.cosigners) == 2
    # when one witness is down for the next publication
    up = witnessing.urllib_post(timeout=1)

    def partly_down(url, headers, body):
        if "witness-1" in url:
            raise OSError("connection refused")
        return up(url, headers, body)

    monkeypatch.setattr(witnessing, "urllib_post", lambda timeout=None: partly_down)
    vaults.vault_allocate(actor=actor, provider=provider)
    checkpoints.clear_cache()
    # then the new checkpoint is stored with one cosignature, and answers stay on the last
    # checkpoint with the quorum
    latest = Checkpoint.objects.first()
    assert latest.size > cosigned.size and latest.cosigners == ["witness-0.test"]
    assert checkpoints.serving().pk == cosigned.pk
