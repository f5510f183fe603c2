"""Federated routing plans: split by home registry, peers asked in parallel, merged; a peer
down costs only its numbers; the client verifies each part with its registry's keys."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from io import StringIO

import pytest

from directory.client import cli
from directory.client.errors import PlanMismatch, Tampered
from directory.federation import forwarding
from directory.federation import plans as federated
from directory.models import RoutingPlan
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


def _run_cli(token, fed_vkey, tmp_path, numbers, *extra, poster=None):
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
        poster=poster or django_poster(),
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


# --- NDJSON: the local groups first, each peer's as it arrives ------------------------------------


def _peer_ndjson(numbers: list[str]) -> bytes:
    """A peer's NDJSON answer (its content is the client's business, not this registry's)."""
    summary = {
        "asked": len(numbers),
        "distinct": len(numbers),
        "routable": 0,
        "unroutable": len(numbers),
        "unroutable_by_reason": {"unknown": len(numbers)},
        "providers": 0,
    }
    lines = [{"type": "plan", "id": "p", "summary": summary}]
    lines += [{"type": "unroutable", "number": n, "reason": "unknown"} for n in numbers]
    return b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines)


def test_ndjson_streams_the_local_groups_while_a_slow_peer_is_pending(
    federation, lookup_client, vault, checkpoint, peer
):
    calls, behaviour = peer
    del behaviour["raise"]
    asked, release = threading.Event(), threading.Event()
    peer_answer = _peer_ndjson([_foreign(1)])

    def slow(body):
        asked.set()
        assert release.wait(10)
        return 200, {"Vault-Registry-Receipt": "receipt-of-peer-b"}, peer_answer

    behaviour["answer"] = slow
    body = json.dumps([vault.number, _foreign(1)]).encode()

    response = lookup_client.post(
        "/api/v1/routing-plans",
        data=body,
        content_type="application/json",
        HTTP_ACCEPT="application/x-ndjson",
    )
    stream = iter(response.streaming_content)
    first = next(stream)

    assert asked.wait(5) and not release.is_set()  # peer-b was asked and has not answered
    head, *local = [json.loads(line) for line in first.splitlines()]
    assert head["type"] == "plan" and head["federated"] is True
    assert [(p["registry"], p["count"]) for p in head["parts"]] == [("self", 1), ("peer-b", 1)]
    assert local[0]["type"] == "part" and local[0]["registry"] == "self"
    (group,) = [line for line in local if line.get("type") == "group"]
    assert group["registry"] == "self" and group["numbers"] == [vault.number]
    assert all(line["registry"] == "self" for line in local)

    release.set()
    rest = b"".join(stream)
    assert calls[0]["headers"]["Accept"] == "application/x-ndjson"
    lines = [json.loads(line) for line in rest.splitlines()]
    assert lines[0] == {
        "type": "part",
        "registry": "peer-b",
        "url": "http://peer-b.test",
        "count": 1,
        "request": json.dumps([_foreign(1)], separators=(",", ":")),
        "receipt": "receipt-of-peer-b",
    }
    assert lines[1]["registry"] == "peer-b" and lines[1]["type"] == "plan"
    assert lines[2] == {
        "registry": "peer-b",
        "type": "unroutable",
        "number": _foreign(1),
        "reason": "unknown",
    }
    end = lines[-1]
    signed = first + rest[: rest.rstrip(b"\n").rfind(b"\n") + 1]
    assert end["type"] == "end"
    assert end["answer_sha256"] == hashlib.sha256(signed).hexdigest()
    assert end["summary"]["routable"] == 1 and end["summary"]["unroutable"] == 1
    # Taking the registry's name out again gives back peer-b's bytes exactly.
    relayed = b"".join(
        b"{" + line.removeprefix(b'{"registry":"peer-b",') + b"\n"
        for line in rest.splitlines()[1:-1]
    )
    assert relayed == peer_answer


def test_ndjson_a_peer_down_is_streamed_as_unavailable(
    federation, lookup_client, vault, checkpoint, peer
):
    response = lookup_client.post(
        "/api/v1/routing-plans",
        data=json.dumps([vault.number, _foreign(1), _foreign(2)]),
        content_type="application/json",
        HTTP_ACCEPT="application/x-ndjson",
    )
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]

    (lost_part,) = [line for line in lines if line.get("type") == "part" and "error" in line]
    assert lost_part["registry"] == "peer-b"
    assert lost_part["error"]["code"] == "registry_unavailable"
    assert [line for line in lines if line.get("type") == "unavailable"] == [
        {"type": "unavailable", "number": n, "reason": "registry_unavailable:peer-b"}
        for n in (_foreign(1), _foreign(2))
    ]
    assert lines[-1]["summary"]["registries_unavailable"] == ["peer-b"]


# --- the issuer's record of a federated plan ------------------------------------------------------


def test_a_federated_plan_is_recorded_with_who_answered_what(
    federation, issuer, lookup_client, vault, checkpoint, peer
):
    body = json.dumps([vault.number, _foreign(1), "garbage"]).encode()

    response = lookup_client.post(
        "/api/v1/routing-plans", data=body, content_type="application/json"
    )

    record = RoutingPlan.objects.get(pk=response["Location"].rsplit("/", 1)[1])
    local_answer = json.loads(response.content)["parts"][0]["answer"].encode()
    assert record.issuer == issuer
    assert (record.asked, record.distinct, record.routable, record.unroutable) == (3, 3, 1, 2)
    assert record.unroutable_by_reason == {
        "invalid:invalid_length": 1,
        "registry_unavailable:peer-b": 1,
    }
    assert record.request_sha256 == hashlib.sha256(body).hexdigest()
    assert record.answer_sha256 == hashlib.sha256(response.content).hexdigest()
    assert record.answer_sha256 == response["Vault-Registry-Answer-SHA256"]
    assert record.registries == [
        {"registry": "peer-b", "count": 1, "error": "registry_unavailable"},
        {
            "registry": "self",
            "count": 2,
            "answer_sha256": hashlib.sha256(local_answer).hexdigest(),
        },
    ]
    shown = lookup_client.get(response["Location"]).json()
    assert shown["registries"] == record.registries and shown["asked"] == 3


def test_a_streamed_federated_plan_is_recorded_once_streamed(
    federation, lookup_client, vault, checkpoint, peer
):
    response = lookup_client.post(
        "/api/v1/routing-plans",
        data=json.dumps([vault.number, _foreign(1)]),
        content_type="application/json",
        HTTP_ACCEPT="application/x-ndjson",
    )
    plan_id = response["Location"].rsplit("/", 1)[1]
    assert not RoutingPlan.objects.filter(pk=plan_id).exists()  # nothing answered yet

    streamed = b"".join(response.streaming_content)

    end = json.loads(streamed.splitlines()[-1])
    record = RoutingPlan.objects.get(pk=plan_id)
    assert record.answer_sha256 == end["answer_sha256"]
    assert record.routable == 1 and record.unroutable == 1
    assert [entry["registry"] for entry in record.registries] == ["peer-b", "self"]


# --- the client and NDJSON ------------------------------------------------------------------------


def test_the_client_verifies_a_streamed_federated_plan(
    federation, fed_vkey, issuer, vault, checkpoint, peer, tmp_path
):
    code, err = _run_cli(
        make_token(issuer)[1], fed_vkey, tmp_path, [vault.number, _foreign(1)], "--ndjson"
    )

    assert code == 0, err
    assert "part of self verified: 1 numbers" in err
    assert "peer-b unavailable: 1 numbers not resolved" in err


@pytest.mark.parametrize(
    ("damage", "refusal"),
    [
        (lambda s: s[: s.rstrip(b"\n").rfind(b"\n") + 1], PlanMismatch),  # cut before its end
        (lambda s: s.replace(b'"reason":"registry_unavailable:peer-b"', b'"reason":"x"'), Tampered),
        (
            lambda s: s.replace(
                b'{"registry":"self","type":"group"', b'{"registry":"peer-b","type":"group"'
            ),
            PlanMismatch,
        ),
    ],
    ids=["cut-short", "line-edited", "line-moved-to-another-registry"],
)
def test_the_client_refuses_a_damaged_stream(
    federation, fed_vkey, issuer, vault, checkpoint, peer, tmp_path, damage, refusal
):
    poster = django_poster()

    def damaging(url, headers, body, sent, received):
        status, answer_headers, answer = poster(url, headers, body, sent, received)
        if "routing-plans" in url:
            answer = damage(answer)
        return status, answer_headers, answer

    code, err = _run_cli(
        make_token(issuer)[1],
        fed_vkey,
        tmp_path,
        [vault.number, _foreign(1)],
        "--ndjson",
        poster=damaging,
    )

    assert code == refusal.exit_code, err


# --- the home registry's side: a member's share ---------------------------------------------------


@pytest.mark.parametrize("media", ["application/json", "application/x-ndjson"])
def test_a_members_share_is_answered_as_asked_and_counted(
    federation, peer_b, client, vault, checkpoint, settings, media
):
    from directory.federation import signatures, traffic
    from directory.federation.models import PeerTraffic

    settings.VAULT_USAGE_FLUSH_SECONDS = 3600
    body = json.dumps([vault.number]).encode()
    url = "http://testserver/api/v1/routing-plans"
    plain = {"Content-Type": "application/json", "Accept": media}
    signed = signatures.sign_as("peer-b", peer_b.request_key, "POST", url, plain, body, "iss-9")

    response = client.post(
        "/api/v1/routing-plans",
        data=body,
        content_type="application/json",
        headers={k: v for k, v in signed.items() if k != "Content-Type"},
    )

    assert response.status_code == 200
    assert response["Content-Type"] == media
    receipt = response["Vault-Registry-Receipt"]
    payload = json.loads(base64.urlsafe_b64decode(receipt.split(".")[1] + "=="))
    assert payload["answer"]["answer_sha256"] == hashlib.sha256(response.content).hexdigest()
    assert not RoutingPlan.objects.exists()  # the asking registry keeps the record
    traffic.flush()
    row = PeerTraffic.objects.get()
    assert (row.member, row.direction, row.plans, row.numbers) == ("peer-b", "in", 1, 1)


def test_the_issuers_portal_lists_a_federated_plan_and_who_answered(
    federation, issuer, lookup_client, vault, checkpoint, peer
):
    from tests.portal.conftest import make_member, signed_in

    response = lookup_client.post(
        "/api/v1/routing-plans",
        data=json.dumps([vault.number, _foreign(1)]),
        content_type="application/json",
    )
    record = RoutingPlan.objects.get(pk=response["Location"].rsplit("/", 1)[1])
    browser = signed_in(make_member(issuer))

    listing = browser.get("/portal/plans/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    page = browser.get(f"/portal/plans/{record.pk}/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()

    assert f"/portal/plans/{record.pk}/" in listing
    assert "Registres qui ont répondu" in page
    assert "<td>peer-b</td><td>1</td><td>pas de réponse : registry_unavailable</td>" in page
    assert "<td>self</td><td>1</td><td><code>" in page
