"""Routing plans: POST /api/v1/routing-plans and GET /api/v1/routing-plans/{id}."""

from __future__ import annotations

import hashlib
import json
import re
from io import StringIO

import orjson
import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase
from rest_framework.test import APIClient

from directory import checkpoints, proven
from directory.models import RoutingPlan
from registry import numbers
from registry.models import OrganisationStatus, Vault, VaultStatus
from registry.services import organisations, vaults
from registry.services.common import Actor
from registry.services.vaults import HoldKind
from tests.factories import (
    CertificateFactory,
    EndpointFactory,
    IssuerFactory,
    ProviderFactory,
    VaultFactory,
    make_token,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/routing-plans"


def post_plan(client, items, *, accept="application/json", content_type="application/json"):
    body = json.dumps(items) if content_type == "application/json" else "\n".join(items)
    return client.post(URL, data=body, content_type=content_type, HTTP_ACCEPT=accept)


def ndjson_lines(response) -> list[dict]:
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def fresh_number() -> str:
    return numbers.draw("FR", "VLT1").value


def deliverable_provider():
    provider = ProviderFactory()
    EndpointFactory(provider=provider)
    CertificateFactory(provider=provider)
    return provider


def test_groups_numbers_per_provider_with_endpoints_and_certificates_once(lookup_client):
    # given two deliverable providers with vaults
    first, second = deliverable_provider(), deliverable_provider()
    mine = [VaultFactory(provider=first).number for _ in range(3)]
    theirs = [VaultFactory(provider=second).number for _ in range(2)]
    # when an issuer sends both in one plan
    response = post_plan(lookup_client, mine + theirs)
    # then there is one group per provider with its routing, given once, and its numbers
    assert response.status_code == 200
    body = response.json()
    groups = {group["provider"]["id"]: group for group in body["groups"]}
    assert sorted(groups[str(first.pk)]["numbers"]) == sorted(mine)
    assert sorted(groups[str(second.pk)]["numbers"]) == sorted(theirs)
    assert groups[str(first.pk)]["count"] == 3
    assert groups[str(first.pk)]["endpoints"][0]["url"] == first.endpoints.get().url
    certificate = groups[str(second.pk)]["encryption_certificates"][0]
    assert certificate["fingerprint_sha256"] == second.certificates.get().fingerprint_sha256
    assert body["summary"] == {
        "asked": 5,
        "distinct": 5,
        "duplicated": 0,
        "routable": 5,
        "unroutable": 0,
        "unroutable_by_reason": {},
        "providers": 2,
    }


def test_every_reason_a_number_cannot_be_delivered(lookup_client):
    actor = Actor.system("tests")
    good = deliverable_provider()
    closed = VaultFactory(provider=good)
    vaults.vault_close(actor=actor, vault=closed)
    held = VaultFactory(provider=good)
    vaults.vault_hold(actor=actor, vault=held, kind=HoldKind.SERVER)
    suspended = deliverable_provider()
    organisations.provider_set_status(
        actor=actor, provider=suspended, status=OrganisationStatus.SUSPENDED, reason="audit"
    )
    withdrawn = deliverable_provider()
    organisations.provider_set_status(
        actor=actor, provider=withdrawn, status=OrganisationStatus.WITHDRAWN, reason="left"
    )
    no_endpoint = ProviderFactory()
    CertificateFactory(provider=no_endpoint)
    no_certificate = ProviderFactory()
    EndpointFactory(provider=no_certificate)
    typo = VaultFactory(provider=good).number
    typo = typo[:-1] + str((int(typo[-1]) + 1) % 10)
    cases = {
        closed.number: "closed",
        held.number: "hold",
        VaultFactory(provider=suspended).number: "provider_suspended",
        VaultFactory(provider=withdrawn).number: "provider_withdrawn",
        VaultFactory(provider=no_endpoint).number: "no_endpoint",
        VaultFactory(provider=no_certificate).number: "no_valid_certificate",
        fresh_number(): "unknown",
        typo: "invalid:invalid_check_digits",
        "FR12": "invalid:invalid_length",
        "FR97 VLT1 0123 4567 89!1": "invalid:invalid_characters",
        numbers.make("FR", "ZZZ9", "000000000001").value: "invalid:unknown_allocator",
    }
    body = post_plan(lookup_client, list(cases)).json()
    answered = {item["number"]: item["reason"] for item in body["unroutable"]}
    assert answered == cases
    assert body["groups"] == []
    assert body["summary"]["unroutable_by_reason"]["invalid:invalid_length"] == 1
    assert sum(body["summary"]["unroutable_by_reason"].values()) == len(cases)


def test_duplicates_are_answered_once_with_their_count(lookup_client):
    vault = VaultFactory(provider=deliverable_provider())
    forms = [vault.number, vault.number.lower(), numbers.format_display(vault.number)]
    body = post_plan(lookup_client, [*forms, "FR12", "FR12"]).json()
    assert body["groups"][0]["numbers"] == [vault.number]
    assert body["duplicates"] == [
        {"number": vault.number, "count": 3},
        {"number": "FR12", "count": 2},
    ]
    assert body["summary"]["asked"] == 5
    assert body["summary"]["distinct"] == 2


def test_text_and_csv_bodies_are_accepted(lookup_client):
    vault = VaultFactory(provider=deliverable_provider())
    for content_type in ("text/plain", "text/csv"):
        body = f'"{numbers.format_display(vault.number)}",\r\n\r\n'
        response = lookup_client.post(URL, data=body, content_type=content_type)
        assert response.status_code == 200
        assert response.json()["groups"][0]["numbers"] == [vault.number]


def test_ndjson_and_json_carry_the_same_content(lookup_client):
    provider = deliverable_provider()
    items = [VaultFactory(provider=provider).number for _ in range(3)] + ["FR12", fresh_number()]
    as_json = post_plan(lookup_client, items).json()
    response = post_plan(lookup_client, items, accept="application/x-ndjson")
    assert response["Content-Type"] == "application/x-ndjson"
    lines = ndjson_lines(response)
    assert lines[0]["type"] == "plan"
    assert lines[0]["summary"] == as_json["summary"]
    groups = [
        {k: v for k, v in line.items() if k != "type"} for line in lines if line["type"] == "group"
    ]
    unroutable = [
        {k: v for k, v in line.items() if k != "type"}
        for line in lines
        if line["type"] == "unroutable"
    ]
    assert groups == as_json["groups"]
    assert unroutable == as_json["unroutable"]


def test_the_plan_record_proves_request_and_answer(lookup_client, issuer):
    vault = VaultFactory(provider=deliverable_provider())
    request_body = json.dumps([vault.number, "FR12"]).encode()
    response = lookup_client.post(URL, data=request_body, content_type="application/json")
    # the record has the counts and the hashes of exactly the bytes exchanged
    record = lookup_client.get(response["Location"]).json()
    assert record["id"] == response.json()["id"]
    assert record["request_sha256"] == hashlib.sha256(request_body).hexdigest()
    assert record["answer_sha256"] == hashlib.sha256(response.content).hexdigest()
    assert (record["asked"], record["routable"], record["unroutable"]) == (2, 1, 1)
    # both the answer and the record carry a signed receipt (a compact JWS)
    assert response["Vault-Registry-Receipt"].count(".") == 2
    assert record["receipt"].count(".") == 2
    # and the NDJSON answer is recorded the same way
    streamed = post_plan(lookup_client, [vault.number], accept="application/x-ndjson")
    content = b"".join(streamed.streaming_content)
    plan = RoutingPlan.objects.get(pk=streamed["Location"].rsplit("/", 1)[1])
    assert plan.answer_sha256 == hashlib.sha256(content).hexdigest()
    assert plan.issuer == issuer


def test_another_issuer_cannot_read_a_plan_record(lookup_client):
    vault = VaultFactory(provider=deliverable_provider())
    location = post_plan(lookup_client, [vault.number])["Location"]
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(IssuerFactory())[1]}")
    response = stranger.get(location)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_a_provider_token_cannot_ask_for_a_plan(provider_client):
    response = post_plan(provider_client, [fresh_number()])
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"


def test_more_numbers_than_the_limit_is_413_and_records_nothing(lookup_client, settings):
    settings.VAULT_PLAN_MAX_NUMBERS = 3
    response = post_plan(lookup_client, [fresh_number() for _ in range(4)])
    assert response.status_code == 413
    assert response.json()["code"] == "too_many_numbers"
    assert not RoutingPlan.objects.exists()


def test_a_body_over_its_size_limit_is_413_before_it_is_read(lookup_client, settings):
    settings.VAULT_PLAN_MAX_BODY = 1000
    response = post_plan(lookup_client, [fresh_number() for _ in range(60)])
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert not RoutingPlan.objects.exists()


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"[1, 2]", "application/json", 400, "bad_request"),
        (b"{not json", "application/json", 400, "malformed_json"),
        (b"[]", "application/json", 400, "bad_request"),
        (b"\xff\xfe", "text/plain", 400, "bad_request"),
        (b"<numbers/>", "application/xml", 415, "unsupported_media_type"),
    ],
)
def test_bad_bodies_are_refused_with_their_code(lookup_client, body, content_type, status, code):
    response = lookup_client.post(URL, data=body, content_type=content_type)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert not RoutingPlan.objects.exists()


def test_purpose_must_be_one_the_issuer_is_allowed(lookup_client, issuer, checkpoint):
    number = fresh_number()
    assert (
        lookup_client.post(
            f"{URL}?purpose=bank_statement",
            data=json.dumps([number]),
            content_type="application/json",
        ).status_code
        == 200
    )
    refused = lookup_client.post(
        f"{URL}?purpose=payslip", data=json.dumps([number]), content_type="application/json"
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "purpose_not_allowed"
    assert RoutingPlan.objects.get().purpose == "bank_statement"


def test_query_count_does_not_grow_with_the_numbers_asked(lookup_client, django_assert_num_queries):
    providers = [deliverable_provider() for _ in range(3)]
    small = [VaultFactory(provider=providers[0]).number]
    large = [VaultFactory(provider=p).number for p in providers for _ in range(40)]
    post_plan(lookup_client, small)  # the token's last use is recorded once a minute

    def count(items) -> int:
        proven.clear_cache()
        with django_assert_num_queries(5) as captured:
            assert post_plan(lookup_client, items).status_code == 200
        return len(captured.captured_queries)

    # token, the vaults' records, their providers' records, the certificates' PEMs, the plan's
    # record (the checkpoint served is cached): the same for 1 number and for 170
    assert count(small) == count(large + [fresh_number() for _ in range(50)])


def test_plan_and_single_lookup_agree_for_every_vault_of_the_demo(lookup_client):
    # given the demo federation
    out = StringIO()
    call_command("load_demo", vaults=400, stdout=out)
    token = re.search(r"Issuer token \(scope lookup\):\s+(\S+)", out.getvalue()).group(1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    every = [*Vault.objects.values_list("number", flat=True), fresh_number()]
    # when the whole federation is asked in one plan
    plan = post_plan(client, every).json()
    routed = {n: g["provider"]["id"] for g in plan["groups"] for n in g["numbers"]}
    refused = {item["number"]: item["reason"] for item in plan["unroutable"]}
    # then each single lookup tells the same story
    for number in every:
        single = client.get(f"/api/v1/vaults/{number}")
        if number in routed:
            assert single.status_code == 200
            assert single.json()["deliverable"] is True
            assert single.json()["provider"]["id"] == routed[number]
        elif refused[number] == "unknown":
            assert single.status_code == 404
        elif refused[number] == "closed":
            assert single.status_code == 410
        else:
            assert single.status_code == 200
            assert single.json()["reasons"][0] == refused[number]
    assert Vault.objects.filter(status=VaultStatus.CLOSED).exists()


class EveryNumberAppearsExactlyOnce(HypothesisTestCase):
    """Property: whatever the mix asked, each distinct number appears exactly once."""

    @classmethod
    def setUpTestData(cls):
        actor = Actor.system("tests")
        cls.provider = deliverable_provider()
        cls.dead = ProviderFactory()
        cls.open = [VaultFactory(provider=cls.provider).number for _ in range(8)]
        cls.nowhere = [VaultFactory(provider=cls.dead).number for _ in range(3)]
        closed = [VaultFactory(provider=cls.provider) for _ in range(3)]
        for vault in closed:
            vaults.vault_close(actor=actor, vault=vault)
        held = [VaultFactory(provider=cls.provider) for _ in range(3)]
        for vault in held:
            vaults.vault_hold(actor=actor, vault=vault, kind=HoldKind.CLIENT)
        cls.closed = [v.number for v in closed]
        cls.held = [v.number for v in held]
        cls.unknown = [fresh_number() for _ in range(5)]
        cls.token = make_token(IssuerFactory())[1]

    def setUp(self):
        checkpoints.publish()  # the class's data was written before the per-test publication
        self.api = APIClient()
        self.api.credentials(HTTP_AUTHORIZATION=f"Bearer {self.token}")

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def test_property(self, data):
        pool = self.open + self.nowhere + self.closed + self.held + self.unknown
        picked = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=30))
        variants = data.draw(
            st.lists(
                st.sampled_from([str.lower, numbers.format_display, lambda n: n]),
                min_size=len(picked),
                max_size=len(picked),
            )
        )
        garbage = data.draw(st.lists(st.text(max_size=24).filter(str.strip), max_size=5))
        asked = [form(n) for form, n in zip(variants, picked, strict=True)] + garbage
        body = self.api.post(URL, data=orjson.dumps(asked), content_type="application/json")
        assert body.status_code == 200, body.content
        plan = body.json()
        answered = [n for g in plan["groups"] for n in g["numbers"]]
        answered += [item["number"] for item in plan["unroutable"]]
        # every distinct number asked appears exactly once, under its normalised form when valid
        expected = {numbers.normalise_fast(a, {"VLT1"}) or a for a in asked}
        assert len(answered) == len(set(answered))
        assert set(answered) == expected
        assert plan["summary"]["asked"] == len(asked)
        assert plan["summary"]["distinct"] == len(expected)
        assert plan["summary"]["routable"] + plan["summary"]["unroutable"] == len(expected)


def test_a_purpose_routes_only_to_endpoints_accepting_its_document_type():
    # given a provider with one endpoint per document type, and one taking bank statements only
    both = ProviderFactory()
    statements = EndpointFactory(provider=both, document_types=["bank_statement"])
    payslips = EndpointFactory(provider=both, document_types=["payslip", "invoice"])
    CertificateFactory(provider=both)
    banks_only = deliverable_provider()  # its endpoint takes bank_statement
    mine = VaultFactory(provider=both).number
    theirs = VaultFactory(provider=banks_only).number
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION="Bearer "
        + make_token(IssuerFactory(purposes=["bank_statement", "payslip"]))[1]
    )

    # when the issuer sends a payslip run, then the same numbers with no purpose
    payslip = client.post(
        f"{URL}?purpose=payslip", data=json.dumps([mine, theirs]), content_type="application/json"
    ).json()
    any_purpose = post_plan(client, [mine, theirs]).json()

    # then the payslip run routes to the payslip endpoint only, and the provider without one
    # is unroutable with its own reason
    assert payslip["purpose"] == "payslip"
    [group] = payslip["groups"]
    assert group["numbers"] == [mine]
    assert [e["url"] for e in group["endpoints"]] == [payslips.url]
    assert payslip["unroutable"] == [{"number": theirs, "reason": "no_endpoint_for_purpose"}]
    assert payslip["summary"]["unroutable_by_reason"] == {"no_endpoint_for_purpose": 1}
    assert RoutingPlan.objects.get(purpose="payslip").unroutable_by_reason == {
        "no_endpoint_for_purpose": 1
    }
    # while without a purpose both are routable, with every endpoint in force
    assert any_purpose["purpose"] is None
    groups = {g["provider"]["id"]: g for g in any_purpose["groups"]}
    assert {e["url"] for e in groups[str(both.pk)]["endpoints"]} == {statements.url, payslips.url}
    assert any_purpose["summary"]["unroutable"] == 0


def test_the_purpose_is_in_the_ndjson_header_line(lookup_client, vault):
    response = lookup_client.post(
        f"{URL}?purpose=bank_statement",
        data=json.dumps([vault.number]),
        content_type="application/json",
        HTTP_ACCEPT="application/x-ndjson",
    )

    header = ndjson_lines(response)[0]
    assert (header["type"], header["purpose"]) == ("plan", "bank_statement")
