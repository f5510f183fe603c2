"""What a lookup answer commits to in its receipt (shared by the registry and the client)."""

from __future__ import annotations

from typing import Any


def found_answer(body: dict[str, Any]) -> dict[str, Any]:
    """The signed projection of a 200 lookup answer: who hosts the vault and how to deliver."""
    provider = body.get("provider") or {}
    return {
        "status": 200,
        "number": body.get("number"),
        "vault_status": body.get("status"),
        "flags": body.get("flags", []),
        "deliverable": body.get("deliverable"),
        "reasons": body.get("reasons", []),
        "provider": {
            "id": provider.get("id"),
            "legal_name": provider.get("legal_name"),
            "legal_id": provider.get("legal_id"),
            "status": provider.get("status"),
        },
        "endpoints": [endpoint["url"] for endpoint in body.get("endpoints", [])],
        "certificate_fingerprints": [
            c["fingerprint_sha256"] for c in body.get("encryption_certificates", [])
        ],
    }
