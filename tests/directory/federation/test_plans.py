"""Federated routing plans: split by home registry, peers asked in parallel, merged; a peer
down costs only its numbers; the client verifies each part with its registry's keys."""

from __future__ import annotations

import hashlib
import json
from io import StringIO

import pytest

from directory.client import cli
from directory.federation import forwarding
from directory.federation import plans as federated
from directory.plans import build_plan
from directory.receipts import receipt_for_plan
from directory.transparency import note
from registry.numbers import check_digits
from tests.directory.helpers import BASE, django_poster, django_transport
from tests.factories import make_token


def _foreign(n: int) -> str:
    serial = f"{n:012d}"
    return "FR" + check_digits("FR", "VLT2", serial) + "VLT2" + serial


@pytest.fixture
def peer(monkeypatch):
    calls, behaviour = [], {"raise": forwarding.RegistryDown("connection refused")}

    def send(method, url, headers, body, timeout):
        calls.append({"method": method, "url": url, "headers": headers, "body": body})
        if "raise" in behaviour:
            raise behaviour["raise"]
        return behaviour["answer"](body)

    forwarding.set_transport(send)
    yield calls, behaviour
    forwarding.set_transport(None)


def _plan(client, numbers):
    return client.post(
        "/api/v1/routing-plans", data=json.dumps(numbers), content_type="application/json"
    )


def test_a_plan_is_split_by_home_registry(federation, document):
    from directory.federation import members

    local, shares = federated.split(
        ["FR00VLT1000000000000", _foreign(1), "garbage", _foreign(2)], members.current()
    )

    assert local == ["FR00VLT1000000000000", "garbage"]  # malformed: refused here, with reasons
    assert shares == {"peer-b": [_foreign(1), _foreign(2)]}


def test_each_peer_gets_its_share_in_one_signed_call(
    federation, lookup_client, vault, checkpoint, peer
):
    calls, _behaviour = peer

    response = _plan(lookup_client, [vault.number, _foreign(1), _foreign(2)])

    assert response.status_code == 200
    (call,) = calls
    assert call["method"] == "POST"
    assert call["url"] == "http://peer-b.test/api/v1/routing-plans"
    assert json.loads(call["body"]) == [_foreign(1), _foreign(2)]
    assert "content-digest" in call["headers"]["Signature-Input"]


def test_a_peer_down_costs_only_its_numbers(federation, lookup_client, vault, checkpoint, peer):
    response = _plan(lookup_client, [vault.number, _foreign(1)])

    plan = response.json()
    assert response.status_code == 200
    assert plan["summary"]["registries_unavailable"] == ["peer-b"]
    assert plan["unavailable"] == [{"number": _foreign(1), "reason": "registry_unavailable:peer-b"}]
    local, lost = plan["parts"]
    assert local["registry"] == "self"
    assert json.loads(local["answer"])["summary"]["routable"] == 1
    assert lost["error"]["code"] == "registry_unavailable"


def _run_cli(token, fed_vkey, tmp_path, numbers, *extra):
    (tmp_path / "numbers.txt").write_text("\n".join(numbers) + "\n")
    out, err = StringIO(), StringIO()
    code = cli.main(
        [
            "--url",
            BASE,
            "--token",
            token,
            "--federation-key",
            fed_vkey,
            "plan",
            str(tmp_path / "numbers.txt"),
            "--out",
            str(tmp_path / "plan.json"),
            *extra,
        ],
        transport=django_transport(),
        poster=django_poster(),
        out=out,
        err=err,
    )
    return code, err.getvalue()


@pytest.fixture
def fed_vkey(federation_key) -> str:
    return note.verifier_key("fed.test", federation_key.public_key().public_bytes_raw())


def test_the_client_verifies_the_local_part_and_names_the_peer_down(
    federation, fed_vkey, issuer, vault, checkpoint, peer, tmp_path
):
    code, err = _run_cli(make_token(issuer)[1], fed_vkey, tmp_path, [vault.number, _foreign(1)])

    assert code == 0, err
    assert "part of self verified: 1 numbers" in err
    assert "peer-b unavailable: 1 numbers not resolved" in err


def test_a_purpose_goes_to_each_peer_and_the_client_verifies_the_parts_for_it(
    federation, fed_vkey, issuer, vault, checkpoint, peer, tmp_path
):
    calls, _behaviour = peer

    code, err = _run_cli(
        make_token(issuer)[1],
        fed_vkey,
        tmp_path,
        [vault.number, _foreign(1)],
        "--purpose",
        "bank_statement",
    )

    assert code == 0, err
    assert "part of self verified: 1 numbers" in err
    (call,) = calls
    assert call["url"] == "http://peer-b.test/api/v1/routing-plans?purpose=bank_statement"
    local = json.loads((tmp_path / "plan.json").read_text())["parts"][0]
    assert json.loads(local["answer"])["purpose"] == "bank_statement"


def test_the_client_refuses_a_part_not_signed_by_its_registry(
    federation, fed_vkey, issuer, vault, checkpoint, peer, tmp_path
):
    """peer-b 'answers' with a plan this registry signed: not peer-b's keys, refused."""
    token = make_token(issuer)[1]
    _calls, behaviour = peer
    del behaviour["raise"]

    # This registry's own signed plan of peer-b's share (what an impersonator could replay).
    body = json.dumps([_foreign(1)]).replace(" ", "").encode()
    plan = build_plan([_foreign(1)])
    answer = plan.as_json()
    receipt = receipt_for_plan(
        hashlib.sha256(body).hexdigest(),
        hashlib.sha256(answer).hexdigest(),
        plan.summary,
        plan.checkpoint,
    )

    def impersonated(sent):
        assert sent == body
        return 200, {"Vault-Registry-Receipt": receipt}, answer

    behaviour["answer"] = impersonated

    code, err = _run_cli(token, fed_vkey, tmp_path, [vault.number, _foreign(1)])

    assert code == 4, err  # the part's receipt is by a key peer-b does not have
