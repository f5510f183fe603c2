"""The verifying client end to end: mirror sync, offline resolve, monitor, and rewritten history."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from directory import checkpoints, selectors, tree
from directory.client import cli
from directory.client.errors import Inconsistent, ProofMismatch
from directory.client.mirror import Mirror
from registry.models import LogEntry, Vault
from registry.services import routing, vaults
from registry.services.common import Actor, canonical, leaf_hash
from registry.services.vaults import HoldKind
from tests.directory.helpers import (
    BASE,
    django_transport,
    execute_without_trigger,
    leaf_hashes,
    pinned_keys,
)
from tests.factories import make_token

pytestmark = pytest.mark.django_db


def _offline(url, headers):
    raise AssertionError(f"the client went online: {url}")


class Cli:
    """Runs ``vault-registry`` in-process against the test server, with pinned keys."""

    def __init__(self, tmp_path, token: str):
        _, self.keys = pinned_keys(tmp_path)
        self.mirror = tmp_path / "mirror.sqlite3"
        self.state = tmp_path / "state.json"
        self.token = token

    def __call__(self, *argv: str, transport=None) -> tuple[int, str, str]:
        out, err = StringIO(), StringIO()
        code = cli.main(
            [
                "--url",
                BASE,
                "--token",
                self.token,
                "--keys",
                str(self.keys),
                "--mirror",
                str(self.mirror),
                "--state",
                str(self.state),
                *argv,
            ],
            transport=transport or django_transport(),
            out=out,
            err=err,
        )
        return code, out.getvalue(), err.getvalue()


@pytest.fixture
def client_cli(tmp_path, issuer):
    return Cli(tmp_path, make_token(issuer)[1])


def _project(online: selectors.Resolution) -> dict:
    return {
        "status": online.status,
        "deliverable": online.deliverable,
        "reasons": [str(r) for r in online.reasons],
        "provider": online.provider.id,
        "endpoints": [e["url"] for e in online.provider.endpoints],
        "certificate_fingerprints": [c["fingerprint_sha256"] for c in online.provider.certificates],
    }


def test_mirror_sync_then_offline_resolve_agrees_with_the_registry(client_cli, tmp_path):
    # given the demo federation (holds, closures, five providers) and a checkpoint over it
    call_command("load_demo", vaults=300, stdout=StringIO())
    checkpoints.publish()
    # when the client mirrors the log through its tiles
    code, out, err = client_cli("mirror", "sync")
    assert code == 0, err
    size = LogEntry.objects.count()
    assert f"mirror at checkpoint {size} ({size} new entries)" in out
    assert "mirror sync [" in err and f"{size}/{size}" in err  # the progress bar
    # and resolves every number offline
    numbers = sorted(Vault.objects.values_list("number", flat=True))
    unknown = "FR76VLT1000000000001"
    path = tmp_path / "numbers.txt"
    path.write_text("\n".join([*numbers, unknown.lower()]) + "\n")
    code, out, err = client_cli("mirror", "resolve", str(path), transport=_offline)
    assert code == 0, err
    answers = {a["number"]: a for a in map(json.loads, out.splitlines())}
    # then every answer agrees with the online resolution the routing plan and lookup use
    online = selectors.resolve(numbers)
    assert len(online) == len(numbers) >= 300
    for number in numbers:
        offline = answers[number]
        assert {
            "status": offline["status"],
            "deliverable": offline["deliverable"],
            "reasons": offline["reasons"],
            "provider": offline["provider"]["id"],
            "endpoints": offline["endpoints"],
            "certificate_fingerprints": offline["certificate_fingerprints"],
        } == _project(online[number]), number
    assert answers[unknown] == {"number": unknown, "found": False}
    assert {a["reasons"][0] for a in answers.values() if a.get("reasons")} == {"hold", "closed"}
    # and an online, verified lookup of a few says the same
    for number in numbers[:5]:
        code, out, err = client_cli("lookup", number, "--json")
        if online[number].status == "closed":
            continue
        assert code == 0, err
        assert json.loads(out)["answer"]["provider"]["id"] == answers[number]["provider"]["id"]


def test_sync_is_incremental_and_idempotent(client_cli, provider, actor):
    vaults.vault_allocate_many(actor=actor, provider=provider, count=300)
    checkpoints.publish()
    assert client_cli("mirror", "sync")[0] == 0
    vaults.vault_allocate_many(actor=actor, provider=provider, count=20)
    checkpoints.publish()
    code, out, _ = client_cli("mirror", "sync")
    assert code == 0 and "(20 new entries)" in out
    code, out, _ = client_cli("mirror", "sync")
    assert code == 0 and "(0 new entries)" in out


def test_monitor_lists_what_touched_a_provider_since_the_last_run(
    client_cli, provider, other_provider, actor
):
    mine = vaults.vault_allocate(actor=actor, provider=provider)
    vaults.vault_allocate(actor=actor, provider=other_provider)
    checkpoints.publish()
    code, out, err = client_cli("monitor", "--provider", str(provider.pk))
    assert code == 0, err
    assert [line.split("\t")[2] for line in out.splitlines()] == ["vault.allocated"]
    # when someone else's change and changes to the provider happen
    vaults.vault_hold(actor=actor, vault=mine, kind=HoldKind.SERVER)
    endpoint = provider.endpoints.get()
    routing.endpoint_deactivate(actor=actor, endpoint=endpoint)
    vaults.vault_allocate(actor=actor, provider=other_provider)
    checkpoints.publish()
    # then the next run shows exactly those touching the provider
    code, out, _ = client_cli("monitor", "--provider", str(provider.pk))
    kinds = [line.split("\t")[2] for line in out.splitlines()]
    assert kinds == ["vault.held", "endpoint.deactivated"]
    assert client_cli("monitor", "--provider", str(provider.pk))[1] == ""


def test_a_vault_moved_away_is_shown_to_its_previous_host(tmp_path, provider, other_provider):
    # given a mirror that replays a log where a vault moves (as a transfer entry would)
    mirror = Mirror(tmp_path / "m.sqlite3")
    mirror._apply(0, {"kind": "vault.allocated", "vault": "V1", "provider": str(provider.pk)})
    mirror._apply(
        1, {"kind": "vault.transferred", "vault": "V1", "provider": str(other_provider.pk)}
    )
    mirror.db.execute("INSERT INTO leaves VALUES (0, x'00', '{}'), (1, x'00', '{\"kind\":\"x\"}')")
    # then the losing provider's monitor sees the move, and the vault routes to the gaining one
    assert [index for index, _ in mirror.monitor(str(provider.pk))] == [0, 1]
    row = mirror.db.execute("SELECT provider FROM vaults WHERE number = 'V1'").fetchone()
    assert row == (str(other_provider.pk),)


# --- A rewritten history ------------------------------------------------------------------------


def _repoint(vault: Vault, provider) -> None:
    """Rewrite the vault's allocation entry so that it names another provider."""
    entry = LogEntry.objects.get(sequence=vault.last_log_index)
    body = json.loads(bytes(entry.body)) | {"provider": str(provider.pk)}
    data = canonical(body)
    execute_without_trigger(
        "registry_logentry",
        "registry_logentry_append_only",
        "UPDATE registry_logentry SET body = %s, leaf_hash = %s WHERE sequence = %s",
        [data, leaf_hash(data), vault.last_log_index],
    )
    Vault.objects.filter(pk=vault.pk).update(provider=provider)


@pytest.fixture
def mirrored(client_cli, provider, actor):
    """Ten vaults, checkpointed, mirrored, and looked up once (the client saw the checkpoint)."""
    allocated = vaults.vault_allocate_many(actor=actor, provider=provider, count=10)
    checkpoints.publish()
    assert client_cli("mirror", "sync")[0] == 0
    assert client_cli("lookup", allocated[3].number)[0] == 0
    return allocated


def test_a_rewritten_log_entry_is_caught_by_the_mirror_and_the_lookup(
    client_cli, mirrored, other_provider, provider, actor
):
    # given a past entry rewritten with raw SQL so that vault 3 routes to another provider
    victim = mirrored[3]
    _repoint(victim, other_provider)
    # and the registry goes on and publishes its next checkpoint
    vaults.vault_allocate(actor=actor, provider=provider)
    checkpoints.publish()
    # then the mirror refuses to follow: the entry no longer hashes to the signed tree
    size_before = Mirror(client_cli.mirror).size()
    code, _out, err = client_cli("mirror", "sync")
    assert code == Inconsistent.exit_code, err
    assert "REFUSED (HISTORY REWRITTEN)" in err and "entry 3" in err
    assert Mirror(client_cli.mirror).size() == size_before  # nothing was written
    # and a lookup of the re-pointed vault fails verification: its proof does not match
    code, out, err = client_cli("lookup", victim.number)
    assert code == ProofMismatch.exit_code, err
    assert "REFUSED (proof mismatch)" in err
    assert out == ""


def test_a_rewritten_tree_and_checkpoint_are_refused_as_inconsistent(
    client_cli, mirrored, other_provider, provider, actor
):
    # given the same rewrite, and an attacker who also rebuilds the stored tree from the
    # rewritten entries and publishes a checkpoint over it, signed with the real log key
    victim = mirrored[3]
    _repoint(victim, other_provider)
    execute_without_trigger(
        "directory_treenode", "directory_treenode_append_only", "DELETE FROM directory_treenode", []
    )
    tree.extend(0, leaf_hashes())
    vaults.vault_allocate(actor=actor, provider=provider)
    checkpoints.publish()
    # then the mirror refuses the new checkpoint: it is not consistent with the one it had
    code, _out, err = client_cli("mirror", "sync")
    assert code == Inconsistent.exit_code
    assert "not consistent with the one of size 10" in err
    # and the lookup, although its proof matches the rewritten tree, is refused by a client
    # that saw the earlier checkpoint
    code, _out, err = client_cli("lookup", victim.number)
    assert code == Inconsistent.exit_code, err
    assert "REFUSED (HISTORY REWRITTEN)" in err


def test_over_real_http_with_checkpoints_published_by_the_writes(live_server, tmp_path):
    # given a registry served over HTTP, whose writes commit for real (so they publish checkpoints)
    from directory.client import http
    from tests.factories import CertificateFactory, EndpointFactory, IssuerFactory, ProviderFactory

    provider = ProviderFactory()
    EndpointFactory(provider=provider)
    CertificateFactory(provider=provider)
    vault = vaults.vault_allocate(actor=Actor.system("tests"), provider=provider)
    token = make_token(IssuerFactory())[1]
    keys_path = tmp_path / "keys.json"
    keys_path.write_text(json.dumps(http.Registry(live_server.url).well_known()))
    base = ["--url", live_server.url, "--token", token, "--keys", str(keys_path)]
    # when the client looks the vault up and mirrors the log with the standard library's HTTP
    out, err = StringIO(), StringIO()
    assert cli.main([*base, "lookup", vault.number], out=out, err=err) == 0, err.getvalue()
    assert f"{vault.number}: deliverable" in out.getvalue()
    mirror = ["--mirror", str(tmp_path / "m.sqlite3")]
    assert cli.main([*base, *mirror, "mirror", "sync"], out=out, err=err) == 0, err.getvalue()


def test_offline_resolve_of_the_whole_demo_agrees_with_the_online_routing_plan(
    client_cli, tmp_path, issuer
):
    # given the full demo federation (10,000 vaults) mirrored through the tiles
    call_command("load_demo", stdout=StringIO())
    checkpoints.publish()
    code, _out, err = client_cli("mirror", "sync")
    assert code == 0, err
    numbers = sorted(Vault.objects.values_list("number", flat=True))
    assert len(numbers) == 10_000
    path = tmp_path / "numbers.txt"
    path.write_text("\n".join(numbers) + "\n")
    # when they are resolved offline, and sent online as one routing plan
    code, out, err = client_cli("mirror", "resolve", str(path), transport=_offline)
    assert code == 0, err
    offline = {a["number"]: a for a in map(json.loads, out.splitlines())}
    api = Client()
    plan = api.post(
        "/api/v1/routing-plans",
        data="\n".join(numbers),
        content_type="text/plain",
        HTTP_AUTHORIZATION=f"Bearer {client_cli.token}",
    ).json()
    # then both say the same for every number: where it routes, or why it cannot be delivered
    routed = {n: g["provider"]["id"] for g in plan["groups"] for n in g["numbers"]}
    refused = {item["number"]: item["reason"] for item in plan["unroutable"]}
    assert len(routed) + len(refused) == 10_000
    for number in numbers:
        answer = offline[number]
        if number in routed:
            assert answer["deliverable"] is True, number
            assert answer["provider"]["id"] == routed[number], number
        else:
            assert answer["deliverable"] is False, number
            assert answer["reasons"][0] == refused[number], number
