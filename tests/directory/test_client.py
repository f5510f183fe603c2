"""The verifying client end to end: mirror sync, offline resolve, monitor, and rewritten history."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from directory import checkpoints, proven
from directory.client import cli
from directory.client.errors import ProofMismatch
from directory.transparency import records as rec
from registry.models import LogEntry, Provider, Vault
from registry.services import routing, vaults
from registry.services.common import Actor
from registry.services.vaults import HoldKind
from tests.directory.helpers import (
    Cli,
    execute_without_trigger,
)
from tests.factories import make_token

pytestmark = pytest.mark.django_db


def _offline(url, headers):
    raise AssertionError(f"the client went online: {url}")


@pytest.fixture
def client_cli(tmp_path, issuer):
    return Cli(tmp_path, make_token(issuer)[1])


def _project(number: str, purpose: str = "") -> dict:
    """The online, proven answer reduced to what the offline resolution gives."""
    online = proven.lookup(number, purpose=purpose)
    if online.status != 200:
        return {"status": "closed"}
    fields = online.fields
    return {
        "status": fields["status"],
        "deliverable": fields["deliverable"],
        "reasons": fields["reasons"],
        "provider": fields["provider"]["id"],
        "endpoints": [e["url"] for e in fields["endpoints"]],
        "certificate_fingerprints": [
            c["fingerprint_sha256"] for c in fields["encryption_certificates"]
        ],
    }


def test_offline_resolve_for_a_purpose_agrees_with_the_registry(client_cli, tmp_path):
    # given the demo and a vault at its fifth provider (which takes no bank statements)
    call_command("load_demo", vaults=300, stdout=StringIO())
    vaults.vault_allocate(
        actor=Actor.system("t"), provider=Provider.objects.get(legal_name="Lumière Vault SAS")
    )
    checkpoints.publish()
    assert client_cli("mirror", "sync")[0] == 0
    numbers = sorted(Vault.objects.filter(status="active").values_list("number", flat=True))
    path = tmp_path / "numbers.txt"
    path.write_text("\n".join(numbers) + "\n")

    # when they are resolved offline for bank statements
    code, out, err = client_cli(
        "mirror", "resolve", str(path), "--purpose", "bank_statement", transport=_offline
    )

    # then each answer is the online lookup's for that purpose
    assert code == 0, err
    answers = {a["number"]: a for a in map(json.loads, out.splitlines())}
    reasons = set()
    for number in numbers:
        offline, online = answers[number], _project(number, "bank_statement")
        assert (offline["deliverable"], offline["reasons"], offline["endpoints"]) == (
            online["deliverable"],
            online["reasons"],
            online["endpoints"],
        ), number
        reasons.update(offline["reasons"])
    assert "no_endpoint_for_purpose" in reasons


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
    # then every answer agrees with the online, proven lookup
    assert len(numbers) >= 300
    for number in numbers:
        offline, online = answers[number], _project(number)
        if online["status"] == "closed":
            assert offline["status"] == "closed" and offline["reasons"][0] == "closed"
            continue
        assert {
            "status": offline["status"],
            "deliverable": offline["deliverable"],
            "reasons": offline["reasons"],
            "provider": offline["provider"]["id"],
            "endpoints": offline["endpoints"],
            "certificate_fingerprints": offline["certificate_fingerprints"],
        } == online, number
    assert answers[unknown] == {"number": unknown, "found": False}
    assert {a["reasons"][0] for a in answers.values() if a.get("reasons")} == {"hold", "closed"}
    # and an online, verified lookup of a few says the same
    for number in numbers[:5]:
        code, out, err = client_cli("lookup", number, "--json")
        assert code == 0, err
        if answers[number]["status"] != "closed":
            assert json.loads(out)["provider"]["id"] == answers[number]["provider"]["id"]


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
    kinds = [line.split("\t")[2] for line in out.splitlines()]
    assert kinds[-1] == "vault.allocated" and set(kinds[:-1]) == {"state.snapshot"}  # set-up
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


def test_a_vault_moved_away_is_shown_to_both_hosts_and_to_its_holder(
    client_cli, provider, other_provider, actor
):
    # given a vault mirrored at its first provider
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    for key in (str(provider.pk), str(other_provider.pk)):
        client_cli("monitor", "--provider", key)
    assert client_cli("monitor", "--vault", vault.number)[0] == 0
    # when its holder moves it (as an approved transfer does) and closes it
    moved = Vault.objects.get(pk=vault.pk)
    moved.provider, moved.previous_provider = other_provider, provider
    moved.transferred_at = timezone.now()
    from registry.services.common import append_log, vault_record

    append_log(
        "transfer.completed",
        {"vault": vault.number, "provider": str(other_provider.pk)},
        at=timezone.now(),
        records=[vault_record(moved)],
    )
    # then the losing and the gaining provider's monitors and the holder's see the move
    for watched in (["--provider", str(provider.pk)], ["--provider", str(other_provider.pk)]):
        code, out, err = client_cli("monitor", *watched)
        assert code == 0, err
        assert [line.split("\t")[2] for line in out.splitlines()] == ["transfer.completed"]
    code, out, _ = client_cli("monitor", "--vault", numbers_display(vault.number))
    assert [line.split("\t")[2] for line in out.splitlines()] == ["transfer.completed"]


def numbers_display(number: str) -> str:
    from registry.numbers import format_display

    return format_display(number).lower()


def test_a_monitor_alerts_when_the_online_answer_contradicts_the_log(
    client_cli, provider, actor, tmp_path
):
    # given a holder's monitor that followed its vault
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    assert client_cli("monitor", "--vault", vault.number)[0] == 0
    # when the registry's stored record is changed behind its back (the map is not)
    key = rec.vault_key(vault.number)
    forged = rec.record_bytes(
        json.loads(proven.state.records_at([key])[key]) | {"server_hold": True}
    )
    execute_without_trigger(
        "directory_staterecord",
        "directory_staterecord_append_only",
        "UPDATE directory_staterecord SET record = %s WHERE key = %s",
        [forged, key],
    )
    # then the monitor raises the alarm: the online answer does not verify against the log
    code, _out, err = client_cli("monitor", "--vault", vault.number, "--no-sync")
    assert code == ProofMismatch.exit_code
    assert "ALERT" in err and key in err


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
