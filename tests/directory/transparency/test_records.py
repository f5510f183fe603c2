"""What a plan or a lookup derives from the records for a purpose (pure: no database)."""

from __future__ import annotations

import pytest

from directory.transparency import records as rec

AT = "2026-06-01T12:00:00.000000Z"


def endpoint(name: str, types: list[str], **times) -> dict:
    return {
        "id": name,
        "transport_profile": "vault-pivot-https/1",
        "url": f"https://{name}.example/v1",
        "document_types": types,
        "activates_at": times.get("activates_at", "2026-01-01T00:00:00.000000Z"),
        "expires_at": times.get("expires_at"),
    }


def provider(*endpoints: dict) -> dict:
    return {
        "type": "provider",
        "id": "p1",
        "legal_name": "Coffre SAS",
        "legal_id": "siren:732829320",
        "status": "active",
        "endpoints": list(endpoints),
        "certificates": [
            {
                "id": "c1",
                "use": "encryption",
                "fingerprint_sha256": "ab" * 32,
                "key_type": "ec-p256",
                "not_before": "2026-01-01T00:00:00.000000Z",
                "not_after": "2027-01-01T00:00:00.000000Z",
            }
        ],
    }


VAULT = {
    "type": "vault",
    "number": "FR97VLT1012345678901",
    "provider": "p1",
    "status": "active",
    "client_hold": False,
    "server_hold": False,
}


def test_a_purpose_keeps_the_endpoints_accepting_its_document_type():
    record = provider(
        endpoint("statements", ["bank_statement"]),
        endpoint("pay", ["payslip", "invoice"]),
        endpoint("any", []),  # declares no document type: no restriction
    )

    def urls(purpose):
        return [e["id"] for e in rec.route_fields(record, AT, purpose)["endpoints"]]

    assert urls(None) == ["statements", "pay", "any"]
    assert urls("") == ["statements", "pay", "any"]
    assert urls("payslip") == ["pay", "any"]
    assert urls("tax_notice") == ["any"]
    fields = rec.lookup_fields(VAULT, record, AT, "bank_statement")
    assert [e["id"] for e in fields["endpoints"]] == ["statements", "any"]
    assert fields["deliverable"] is True


def test_a_provider_without_an_endpoint_for_the_purpose_is_unroutable_for_it():
    record = provider(endpoint("statements", ["bank_statement"]))

    assert rec.placement(VAULT, record, AT) is None
    assert rec.placement(VAULT, record, AT, "bank_statement") is None
    assert rec.placement(VAULT, record, AT, "payslip") == "no_endpoint_for_purpose"
    fields = rec.lookup_fields(VAULT, record, AT, "payslip")
    assert fields["deliverable"] is False
    assert fields["reasons"] == ["no_endpoint_for_purpose"]
    assert fields["endpoints"] == []


@pytest.mark.parametrize(
    ("endpoints", "vault", "purpose", "placed"),
    [
        # no endpoint in force at all stays no_endpoint, whatever the purpose
        ([], VAULT, "payslip", "no_endpoint"),
        (
            [endpoint("late", ["payslip"], activates_at="2026-09-01T00:00:00.000000Z")],
            VAULT,
            "payslip",
            "no_endpoint",
        ),
        # an expired endpoint accepting the purpose does not count
        (
            [
                endpoint("old", ["payslip"], expires_at="2026-02-01T00:00:00.000000Z"),
                endpoint("now", ["invoice"]),
            ],
            VAULT,
            "payslip",
            "no_endpoint_for_purpose",
        ),
        # a hold is more decisive than the purpose
        (
            [endpoint("now", ["invoice"])],
            {**VAULT, "client_hold": True},
            "payslip",
            "hold",
        ),
    ],
    ids=["no-endpoint", "not-yet-active", "expired-one-accepted-it", "hold-first"],
)
def test_reasons_keep_their_order(endpoints, vault, purpose, placed):
    assert rec.placement(vault, provider(*endpoints), AT, purpose) == placed
